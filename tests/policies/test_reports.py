"""The compliance reports on a known fleet: the numbers, the trend's gaps, scoping, CSV, query counts.

The fleet (``fleet``): scope A (EMEA) and B (Americas), each with devices in every compliance state
that matters, a pending and a retired device that no report counts, a policy per scope and
platform, and the rule failures the engine would have stored. States and failures are set as the
compliance engine leaves them (its own tests cover how it gets there).
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from devices import services as device_services
from devices.choices import ComplianceState, LifecycleState, Platform
from policies.choices import ComplianceRule, DeliveryState
from policies.compliance import ERROR_PREFIX
from policies.models import ComplianceFailure, ComplianceSnapshot, ProfileDelivery
from policies.reports_csv import csv_cell
from policies.selectors import reports
from policies.services.policies import policy_save
from policies.services.profiles import profile_save
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant

pytestmark = pytest.mark.django_db

C, NC, G, E, NE = (
    ComplianceState.COMPLIANT,
    ComplianceState.NONCOMPLIANT,
    ComplianceState.IN_GRACE,
    ComplianceState.ERROR,
    ComplianceState.NOT_EVALUATED,
)
ENCRYPTION, OS_MIN = ComplianceRule.ENCRYPTION_REQUIRED, ComplianceRule.OS_MIN
ALL_DEVICES = [{"target": "all_devices"}]


def device(name, scope, *, platform=Platform.IOS, state=None, lifecycle=LifecycleState.ENROLLED):
    made = DeviceFactory(name=name, scope=scope, platform=platform, state=lifecycle)
    if state is not None:
        device_services.device_compliance_set(actor=SYSTEM, device=made, state=state)
    return made


def fail(dev, rule, policy=None, *, expected="on", actual="off", days_ago=3):
    # The compliance engine is the only writer in the product; the tests set its outcome directly.
    return ComplianceFailure.objects.create(
        device=dev,
        policy=policy,
        rule=rule,
        expected=expected,
        actual=actual,
        since=timezone.now() - timedelta(days=days_ago),
    )


def snapshot(scope, days_ago, **counts):
    day = timezone.localdate() - timedelta(days=days_ago)
    for state, count in counts.items():
        ComplianceSnapshot.objects.create(day=day, scope=scope, state=state, count=count)


@pytest.fixture
def fleet(people):
    a, b = people.scope_a, people.scope_b
    policy_a = policy_save(
        actor=SYSTEM,
        data={"name": "iOS baseline (EMEA)", "platform": Platform.IOS, "scope": a},
        assignments=ALL_DEVICES,
    )
    policy_b = policy_save(
        actor=SYSTEM,
        data={"name": "Windows baseline (Americas)", "platform": Platform.WINDOWS, "scope": b},
        assignments=ALL_DEVICES,
    )
    f = SimpleNamespace(people=people, policy_a=policy_a, policy_b=policy_b)
    f.a_ok = device("A-OK", a, state=C)
    f.a_android = device("A-ANDROID", a, platform=Platform.ANDROID, state=C)  # no Android policy
    f.a_bad = device("A-BAD", a, state=NC)
    f.a_grace = device("A-GRACE", a, state=G)
    f.a_error = device("A-ERROR", a, state=E)
    f.a_pending = device("A-PENDING", a, lifecycle=LifecycleState.PENDING)
    f.a_retired = device("A-RETIRED", a, lifecycle=LifecycleState.RETIRED)
    f.b_bad = device("B-BAD", b, platform=Platform.WINDOWS, state=NC)
    f.b_ok = device("B-OK", b, platform=Platform.WINDOWS, state=C)
    fail(f.a_bad, ENCRYPTION, policy_a)
    fail(f.a_bad, OS_MIN, policy_a, expected="17.0", actual="16.2")
    fail(f.a_grace, ENCRYPTION, policy_a)
    fail(f.a_error, ENCRYPTION, policy_a, actual=ERROR_PREFIX + "the device did not report encryption")
    fail(f.b_bad, ENCRYPTION, policy_b)
    fail(f.a_retired, OS_MIN, policy_a)  # a retired device is in no report
    return f


@pytest.fixture
def manager_a(people):
    person = StaffFactory(username="policy-manager-a")
    grant(person, "Policy and profile manager", [people.scope_a])
    return person


# The numbers -----------------------------------------------------------------------------------------------


def test_counts_by_state_and_platform(fleet):
    summary = reports.compliance_summary(user=fleet.people.global_admin)
    # device_a and device_b (the people fixture's) are enrolled and not evaluated yet.
    assert summary.counts == {NC: 2, G: 1, E: 1, NE: 2, C: 3}
    assert summary.total == 9
    by_platform = {p.platform: p.counts for p in summary.platforms}
    assert by_platform[Platform.IOS] == {NC: 1, G: 1, E: 1, NE: 2, C: 1}
    assert by_platform[Platform.ANDROID] == {NC: 0, G: 0, E: 0, NE: 0, C: 1}
    assert by_platform[Platform.WINDOWS] == {NC: 1, G: 0, E: 0, NE: 0, C: 1}
    assert [p.platform for p in summary.platforms] == [Platform.IOS, Platform.ANDROID, Platform.WINDOWS]


def test_scoped_person_counts_only_their_scope(fleet):
    summary = reports.compliance_summary(user=fleet.people.helpdesk_a)
    assert summary.counts == {NC: 1, G: 1, E: 1, NE: 1, C: 2}
    assert {p.platform for p in summary.platforms} == {Platform.IOS, Platform.ANDROID}


def test_no_permission_sees_nothing(fleet):
    assert reports.compliance_summary(user=fleet.people.no_role).total == 0
    assert reports.failing_settings(user=fleet.people.employee) == []
    assert not reports.devices_without_policy(user=fleet.people.no_role).exists()


def test_failing_settings(fleet):
    rows = {s.rule: s for s in reports.failing_settings(user=fleet.people.global_admin)}
    assert set(rows) == {ENCRYPTION, OS_MIN}
    assert (rows[ENCRYPTION].devices, rows[ENCRYPTION].noncompliant, rows[ENCRYPTION].cannot_evaluate) == (3, 2, 1)
    # The retired device's failure is not counted.
    assert (rows[OS_MIN].devices, rows[OS_MIN].noncompliant, rows[OS_MIN].cannot_evaluate) == (1, 1, 0)
    assert rows[ENCRYPTION].label == "Encryption required"
    assert [s.rule for s in reports.failing_settings(user=fleet.people.global_admin)] == [ENCRYPTION, OS_MIN]


def test_failing_settings_count_a_device_once_per_rule(fleet):
    """Two policies' failures of one rule on one device: one device."""
    extra = policy_save(
        actor=SYSTEM,
        data={"name": "Second iOS policy", "platform": Platform.IOS, "scope": fleet.people.scope_a},
        assignments=ALL_DEVICES,
    )
    fail(fleet.a_bad, ENCRYPTION, extra)
    rows = {s.rule: s for s in reports.failing_settings(user=fleet.people.global_admin)}
    assert rows[ENCRYPTION].devices == 3


def test_failing_settings_scoped(fleet):
    rows = {s.rule: s for s in reports.failing_settings(user=fleet.people.helpdesk_a)}
    assert (rows[ENCRYPTION].devices, rows[ENCRYPTION].noncompliant, rows[ENCRYPTION].cannot_evaluate) == (2, 1, 1)


def test_device_list_per_failing_rule(fleet):
    names = [f.device.name for f in reports.failing_rule_list(user=fleet.people.global_admin, rule=ENCRYPTION)]
    assert names == ["A-BAD", "A-GRACE", "B-BAD"]
    scoped = [f.device.name for f in reports.failing_rule_list(user=fleet.people.helpdesk_a, rule=ENCRYPTION)]
    assert scoped == ["A-BAD", "A-GRACE"]
    unchecked = reports.failing_rule_list(user=fleet.people.global_admin, rule=ENCRYPTION, cannot_evaluate=True)
    assert [f.device.name for f in unchecked] == ["A-ERROR"]


def test_devices_without_a_policy(fleet):
    """A's Android device (no Android policy) and B's iPhone (B's policy is for Windows)."""
    names = list(reports.devices_without_policy(user=fleet.people.global_admin).values_list("name", flat=True))
    assert names == ["A-ANDROID", "AMER-PHONE-1"]
    scoped = reports.devices_without_policy(user=fleet.people.helpdesk_a).values_list("name", flat=True)
    assert list(scoped) == ["A-ANDROID"]


def test_devices_without_a_policy_follow_assignments(fleet):
    """An exclude assignment takes a device out of a policy; with no policy at all every device is listed."""
    policy_save(
        actor=SYSTEM,
        policy=fleet.policy_a,
        data={},
        assignments=[
            {"target": "all_devices"},
            {"mode": "exclude", "target": "all_devices", "filter_platforms": ["ios"]},
        ],
    )
    names = set(reports.devices_without_policy(user=fleet.people.helpdesk_a).values_list("name", flat=True))
    assert names == {"A-ANDROID", "A-OK", "A-BAD", "A-GRACE", "A-ERROR", "EMEA-PHONE-1"}


def test_trend_sums_scopes_and_leaves_gaps(fleet):
    a, b = fleet.people.scope_a, fleet.people.scope_b
    snapshot(a, 2, compliant=5, noncompliant=1)
    snapshot(b, 2, compliant=2, noncompliant=0)
    # Nothing one day ago: the sweep did not run.
    snapshot(a, 0, compliant=4, noncompliant=2)
    snapshot(b, 0, noncompliant=1)
    snapshot(a, 60, compliant=99)  # outside the 60 days
    days = reports.compliance_trend(user=fleet.people.global_admin)
    assert len(days) == 60
    today = timezone.localdate()
    assert days[0].day == today - timedelta(days=59) and days[-1].day == today
    assert days[-3].counts[C] == 7 and days[-3].counts[NC] == 1 and days[-3].total == 8
    assert days[-2].counts is None and days[-2].total is None
    assert days[-1].counts == {NC: 3, G: 0, E: 0, NE: 0, C: 4}
    assert all(d.counts is None for d in days[:-3])
    scoped = reports.compliance_trend(user=fleet.people.helpdesk_a)
    assert scoped[-3].counts[C] == 5 and scoped[-1].counts[NC] == 2


def test_profile_delivery_counts(fleet, manager_a):
    a, b = fleet.people.scope_a, fleet.people.scope_b
    profile_a = profile_save(
        actor=SYSTEM, data={"name": "Passcode A", "kind": "passcode", "scope": a}, settings={"min_length": 6}
    )
    profile_b = profile_save(
        actor=SYSTEM, data={"name": "Passcode B", "kind": "passcode", "scope": b}, settings={"min_length": 6}
    )
    # The fan-out is the writer of deliveries; here their outcome is set directly.
    ProfileDelivery.objects.create(profile=profile_a, device=fleet.a_ok, state=DeliveryState.SUCCEEDED)
    ProfileDelivery.objects.create(profile=profile_a, device=fleet.a_bad, state=DeliveryState.ERROR)
    ProfileDelivery.objects.create(profile=profile_b, device=fleet.b_ok, state=DeliveryState.PENDING)
    rows = {r.name: r for r in reports.profile_delivery_counts(user=fleet.people.global_admin)}
    assert rows["Passcode A"].counts[DeliveryState.SUCCEEDED] == 1 and rows["Passcode A"].total == 2
    assert rows["Passcode B"].counts[DeliveryState.PENDING] == 1
    assert [r.name for r in reports.profile_delivery_counts(user=manager_a)] == ["Passcode A"]
    # The helpdesk role does not see deliveries at all.
    assert reports.profile_delivery_counts(user=fleet.people.helpdesk_a) == []


# The dashboard -------------------------------------------------------------------------------------------------


def dashboard(client, user):
    client.force_login(user)
    response = client.get(reverse("admin:policies_compliance_dashboard"))
    assert response.status_code == 200
    return response


def test_dashboard_shows_the_numbers_with_links(client, fleet):
    snapshot(fleet.people.scope_a, 1, compliant=3)
    response = dashboard(client, fleet.people.global_admin)
    cards = {card["state"]: card for card in response.context["cards"]}
    assert cards[NC]["count"] == 2 and cards[C]["count"] == 3
    assert cards[NC]["url"] == (
        reverse("admin:devices_device_changelist")
        + "?lifecycle_state__exact=enrolled&compliance_state__exact=noncompliant"
    )
    assert response.context["without_count"] == 2
    html = response.content.decode()
    assert reverse("admin:policies_compliance_failing_rule", args=[ENCRYPTION]) in html
    assert reverse("admin:policies_compliance_without_policy") in html
    for report in ("summary", "trend", "failing-settings", "devices-without-policy"):
        assert reverse("admin:policies_compliance_export", args=[report]) in html
    # Charts: inline SVG with a title and a description, and a table of the same numbers.
    assert html.count('<svg class="chart"') == 2
    assert 'aria-labelledby="trend-title trend-desc"' in html and '<desc id="trend-desc">' in html
    assert "The trend as a table" in html
    assert "<script" not in html.split('id="content-main"')[1]


def test_dashboard_of_a_scoped_person(client, fleet):
    response = dashboard(client, fleet.people.helpdesk_a)
    cards = {card["state"]: card["count"] for card in response.context["cards"]}
    assert cards == {NC: 1, G: 1, E: 1, NE: 1, C: 2}
    assert response.context["total"] == 6
    assert response.context["without_count"] == 1
    assert response.context["deliveries"] is None  # no permission on deliveries: no section
    assert "B-BAD" not in response.content.decode()


def test_dashboard_is_listed_in_the_console_index(client, fleet):
    client.force_login(fleet.people.helpdesk_a)
    response = client.get(reverse("admin:index"))
    assert reverse("admin:policies_compliance_dashboard") in response.content.decode()
    # The helpdesk sees no policies model, so the section holds the dashboard alone, and its page works.
    section = client.get(reverse("admin:app_list", args=["policies"]))
    assert section.status_code == 200
    assert [m["name"] for m in section.context["app_list"][0]["models"]] == ["Compliance dashboard"]
    client.force_login(fleet.people.no_role)
    assert reverse("admin:policies_compliance_dashboard") not in client.get(reverse("admin:index")).content.decode()


def test_trend_chart_breaks_lines_at_gaps(client, fleet):
    a = fleet.people.scope_a
    for days_ago in (5, 4, 2, 1, 0):
        snapshot(a, days_ago, compliant=3, noncompliant=1)
    chart = dashboard(client, fleet.people.global_admin).context["trend"]
    compliant = next(s for s in chart.series if s.state == C)
    assert len(compliant.lines) == 2  # days 5-4 and 2-0: broken at day 3
    assert len(chart.gaps) == 2  # days 59-6 and day 3
    assert chart.gaps[-1][2].startswith("No snapshot: ")


def test_the_legend_says_its_numbers_are_the_last_snapshots_not_the_live_counts(client, fleet):
    snapshot(fleet.people.scope_a, 2, compliant=7, noncompliant=1)
    page = dashboard(client, fleet.people.global_admin)
    chart = page.context["trend"]
    assert chart.latest_day == timezone.localdate() - timedelta(days=2)
    assert next(s for s in chart.series if s.state == C).latest == 7
    assert f"In brackets: the last snapshot, {date_format(chart.latest_day, 'j M')}" in page.content.decode()


def test_failing_rule_page_and_without_policy_page(client, fleet):
    client.force_login(fleet.people.helpdesk_a)
    page = client.get(reverse("admin:policies_compliance_failing_rule", args=[ENCRYPTION]))
    assert page.status_code == 200
    assert [row[0][0] for row in page.context["rows"]] == ["A-BAD", "A-GRACE"]
    unchecked = client.get(reverse("admin:policies_compliance_failing_rule", args=[ENCRYPTION]) + "?cannot_evaluate=1")
    assert [row[0][0] for row in unchecked.context["rows"]] == ["A-ERROR"]
    assert client.get(reverse("admin:policies_compliance_failing_rule", args=["nonsense"])).status_code == 404
    without = client.get(reverse("admin:policies_compliance_without_policy"))
    assert [row[0][0] for row in without.context["rows"]] == ["A-ANDROID"]


# CSV -----------------------------------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def export(client, report, **params):
    url = reverse("admin:policies_compliance_export", args=[report])
    return client.get(url, params)


def test_every_report_exports_as_csv_within_scope(client, fleet):
    snapshot(fleet.people.scope_a, 0, compliant=4)
    snapshot(fleet.people.scope_b, 0, compliant=40)
    client.force_login(fleet.people.helpdesk_a)
    summary = read_csv(export(client, "summary"))
    assert summary[0] == ["platform", "noncompliant", "in_grace", "error", "not_evaluated", "compliant", "total"]
    assert summary[1] == ["all", "1", "1", "1", "1", "2", "6"]
    trend = read_csv(export(client, "trend"))
    assert len(trend) == 61
    assert trend[-1][-2:] == ["4", "4"]
    assert trend[-2][1:] == ["", "", "", "", "", ""]  # a gap is empty, not zero
    failing = read_csv(export(client, "failing-settings"))
    assert failing[1] == ["encryption_required", "Encryption required", "2", "1", "1"]
    devices = read_csv(export(client, "failing-rule", rule=ENCRYPTION))
    assert [row[1] for row in devices[1:]] == ["A-BAD", "A-GRACE"]
    without = read_csv(export(client, "devices-without-policy"))
    assert [row[1] for row in without[1:]] == ["A-ANDROID"]
    assert export(client, "profile-deliveries").status_code == 403  # the helpdesk sees no deliveries
    assert export(client, "failing-rule", rule="nonsense").status_code == 404
    assert export(client, "nonsense").status_code == 404


def test_global_export_holds_both_scopes(client, fleet):
    client.force_login(fleet.people.global_admin)
    devices = read_csv(export(client, "failing-rule", rule=ENCRYPTION))
    assert [row[1] for row in devices[1:]] == ["A-BAD", "A-GRACE", "B-BAD"]
    assert read_csv(export(client, "profile-deliveries"))[0][0] == "profile"


@pytest.mark.parametrize(
    "value, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("Plain name", "Plain name"),
        (-5, -5),
        (None, ""),
    ],
)
def test_csv_cells_are_made_inert(value, written):
    assert csv_cell(value) == written


def test_csv_export_guards_device_names(client, fleet):
    evil = DeviceFactory(name="=cmd|' /C calc'!A0", scope=fleet.people.scope_a, platform=Platform.LINUX)
    client.force_login(fleet.people.global_admin)
    rows = read_csv(export(client, "devices-without-policy"))
    row = next(r for r in rows if r[0] == str(evil.uuid))
    assert row[1] == "'=cmd|' /C calc'!A0"


# Query counts -------------------------------------------------------------------------------------------------------


def grow_fleet(scopes, start: int, count: int) -> None:
    platforms = [Platform.IOS, Platform.ANDROID, Platform.WINDOWS]
    states = [C, NC, G, E, NE]
    for n in range(start, start + count):
        made = device(f"FLEET-{n:04d}", scopes[n % 2], platform=platforms[n % 3], state=states[n % 5])
        if n % 5 == 1:
            fail(made, [ENCRYPTION, OS_MIN, ComplianceRule.PASSCODE_REQUIRED][n % 3])


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_dashboard_queries_do_not_grow_with_the_fleet(client, fleet, persona):
    scopes = [fleet.people.scope_a, fleet.people.scope_b]
    snapshot(fleet.people.scope_a, 0, compliant=1)
    client.force_login(getattr(fleet.people, persona))
    urls = [
        reverse("admin:policies_compliance_dashboard"),
        reverse("admin:policies_compliance_failing_rule", args=[ENCRYPTION]),
        reverse("admin:policies_compliance_without_policy"),
        reverse("admin:policies_compliance_export", args=["devices-without-policy"]),
        reverse("admin:policies_compliance_export", args=["failing-rule"]) + f"?rule={ENCRYPTION}",
    ]
    grow_fleet(scopes, 0, 10)
    for url in urls:
        client.get(url)  # warm per-process caches
    small = [count_queries(client, url) for url in urls]
    grow_fleet(scopes, 10, 190)
    large = [count_queries(client, url) for url in urls]
    assert small == large
    assert max(large) <= 20
