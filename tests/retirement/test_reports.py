"""The retirement report: numbers on a known fleet, overdue requests, stale devices, the CSV exports,
the API summary, and a query count that does not grow with the rows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.choices import LifecycleState, Platform
from devices.models import Device
from mdm_portal.core.audit import Actor
from retirement.choices import RetirementSource, RetirementStatus
from retirement.models import RetirementRequest, RetirementSettings
from retirement.selectors import retirement_counts_by, stale_device_buckets
from retirement.services import retirement_request
from tests.factories import DeviceFactory, StaffFactory, grant

pytestmark = pytest.mark.django_db

REPORT = "admin:retirement_report"


def ask(people, device, *, days_ago: int = 0, status=None, source=RetirementSource.ADMIN, action="retire"):
    request = retirement_request(
        actor=Actor.for_user(people.global_admin), device=device, action=action, source=RetirementSource.ADMIN
    )
    changes = {"requested_at": timezone.now() - timedelta(days=days_ago), "source": source}
    if status is not None:
        changes["status"] = status
        if status in (RetirementStatus.UNENROLLED, RetirementStatus.FORCED):
            changes["finished_at"] = timezone.now()
    RetirementRequest.objects.filter(pk=request.pk).update(**changes)
    return request


def silent(device, days: int | None):
    Device.objects.filter(pk=device.pk).update(
        last_checkin_at=None if days is None else timezone.now() - timedelta(days=days)
    )


@pytest.fixture
def known_fleet(people, scope_a, scope_b):
    """Scope A: 5 requests of known ages and states; scope B: 2. Stale devices in both scopes."""
    a = [DeviceFactory(name=f"EMEA-{n}", scope=scope_a) for n in range(5)]
    b = [DeviceFactory(name=f"AMER-{n}", scope=scope_b) for n in range(2)]
    ask(people, a[0], days_ago=1)  # command sent, fresh
    ask(people, a[1], days_ago=20)  # command sent, overdue (timeout 14 days)
    ask(people, a[2], days_ago=45, status=RetirementStatus.UNENROLLED, source=RetirementSource.CLEANUP)
    ask(people, a[3], days_ago=100, status=RetirementStatus.TIMED_OUT)  # overdue
    ask(people, a[4], days_ago=200, status=RetirementStatus.FAILED, source=RetirementSource.OFFBOARDING)
    ask(people, b[0], days_ago=30, status=RetirementStatus.ACKNOWLEDGED)  # overdue, scope B
    ask(people, b[1], days_ago=5, status=RetirementStatus.CANCELLED)
    # Stale: enrolled devices by days since their last check-in.
    stale_a = [
        DeviceFactory(name="EMEA-OLD-35", scope=scope_a),
        DeviceFactory(name="EMEA-OLD-65", scope=scope_a, platform=Platform.ANDROID),
        DeviceFactory(name="EMEA-OLD-95", scope=scope_a),
        DeviceFactory(name="=HYPERLINK(1)", scope=scope_a, platform=Platform.WINDOWS),
    ]
    for device, days in zip(stale_a, (35, 65, 95, 400), strict=True):
        silent(device, days)
    silent(people.device_a, 2)
    silent(DeviceFactory(name="AMER-OLD-200", scope=scope_b), 200)
    silent(people.device_b, 1)
    silent(DeviceFactory(name="EMEA-RETIRED", scope=scope_a, state=LifecycleState.RETIRED), 300)
    return people


def counts(rows):
    return {row.value: (row.last_30_days, row.last_90_days, row.all_time) for row in rows}


def test_counts_by_status_and_source_in_windows(known_fleet):
    by_status = counts(retirement_counts_by(user=known_fleet.global_admin, by="status"))
    assert by_status[RetirementStatus.COMMAND_SENT] == (2, 2, 2)
    assert by_status[RetirementStatus.UNENROLLED] == (0, 1, 1)
    assert by_status[RetirementStatus.TIMED_OUT] == (0, 0, 1)
    assert by_status[RetirementStatus.FAILED] == (0, 0, 1)
    assert by_status[RetirementStatus.ACKNOWLEDGED][2] == 1
    assert by_status[RetirementStatus.CANCELLED] == (1, 1, 1)
    assert by_status[RetirementStatus.FORCED] == (0, 0, 0)
    by_source = counts(retirement_counts_by(user=known_fleet.global_admin, by="source"))
    assert by_source[RetirementSource.ADMIN][2] == 5
    assert by_source[RetirementSource.CLEANUP] == (0, 1, 1)
    assert by_source[RetirementSource.OFFBOARDING] == (0, 0, 1)
    assert by_source[RetirementSource.PORTAL] == (0, 0, 0)


def test_counts_are_scoped(known_fleet, scope_a):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    by_status = counts(retirement_counts_by(user=retirer, by="status"))
    assert sum(all_time for _, _, all_time in by_status.values()) == 5
    assert by_status[RetirementStatus.ACKNOWLEDGED] == (0, 0, 0)


def test_stale_buckets_by_platform(known_fleet):
    _, rows = stale_device_buckets(user=known_fleet.global_admin)
    by_platform = {row["platform"]: row for row in rows}
    ios, total = by_platform[Platform.IOS], by_platform[""]
    # iOS: 35, 95 and 200 days (the retired one does not count).
    assert (ios["days_30"], ios["days_60"], ios["days_90"], ios["days_180"]) == (3, 2, 2, 1)
    assert by_platform[Platform.ANDROID]["days_60"] == 1
    assert by_platform[Platform.WINDOWS]["days_180"] == 1
    assert (total["days_30"], total["days_60"], total["days_90"], total["days_180"]) == (5, 4, 3, 2)


def test_report_page(client, known_fleet):
    client.force_login(known_fleet.global_admin)
    page = client.get(reverse(REPORT))
    assert page.status_code == 200
    content = page.content.decode()
    assert '<span id="overdue-count">3</span>' in content
    overdue = content.split('id="overdue"')[1].split("</section>")[0]
    assert "EMEA-1" in overdue and "EMEA-3" in overdue and "AMER-0" in overdue
    assert "EMEA-0<" not in overdue and "EMEA-2" not in overdue
    assert "older than 14 days" in content
    assert '<span id="pending-total">4</span>' in content
    stale = content.split('id="stale"')[1].split("</section>")[0]
    assert "last_checkin_at__lt=" in stale and "platform__exact=ios" in stale
    assert reverse("admin:retirement_report_overdue_csv") in content
    assert reverse("admin:retirement_report_stale_csv") in content
    # The unenrolled request's proof of removal.
    unenrolled = RetirementRequest.objects.get(status=RetirementStatus.UNENROLLED)
    assert reverse("admin:retirement_retirementrequest_evidence_csv", args=[unenrolled.pk]) in content


def test_a_stale_link_opens_those_devices_in_the_device_list(client, known_fleet):
    client.force_login(known_fleet.global_admin)
    content = client.get(reverse(REPORT)).content.decode()
    row = content.split('<tr id="stale-ios">')[1].split("</tr>")[0]
    href = row.split('<a href="')[3].split('"')[0].replace("&amp;", "&")  # the 90+ days cell
    listing = client.get(href)
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2


def test_overdue_follows_the_timeout_setting(client, known_fleet):
    settings = RetirementSettings.load()
    settings.offline_timeout_days = 60
    settings.save()
    client.force_login(known_fleet.global_admin)
    assert '<span id="overdue-count">1</span>' in client.get(reverse(REPORT)).content.decode()


def test_report_of_a_scoped_operator(client, known_fleet, scope_a):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    content = client.get(reverse(REPORT)).content.decode()
    assert '<span id="overdue-count">2</span>' in content
    assert "AMER-" not in content


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_overdue_csv(client, known_fleet):
    client.force_login(known_fleet.global_admin)
    rows = read_csv(client.get(reverse("admin:retirement_report_overdue_csv")))
    assert rows[0][:3] == ["device", "serial number", "platform"]
    assert [r[0] for r in rows[1:]] == ["EMEA-3", "AMER-0", "EMEA-1"]  # oldest first
    assert rows[1][5] == "Timed out (device offline)"
    assert rows[1][7] == "100"


def test_stale_csv_is_scoped_and_formula_guarded(client, known_fleet, scope_a):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    rows = read_csv(client.get(reverse("admin:retirement_report_stale_csv")))
    names = [r[0] for r in rows[1:]]
    assert names == ["'=HYPERLINK(1)", "EMEA-OLD-95", "EMEA-OLD-65", "EMEA-OLD-35"]
    assert rows[1][7] == "400"


@pytest.mark.parametrize("extra", [0, 18])
def test_report_query_count_does_not_grow(client, people, scope_a, extra, django_assert_max_num_queries):
    devices = [DeviceFactory(name=f"EMEA-{n}", scope=scope_a) for n in range(2 + extra)]
    for device in devices:
        ask(people, device, days_ago=40)
        silent(device, 100)
    RetirementRequest.objects.filter(device__in=devices[: len(devices) // 2]).update(
        status=RetirementStatus.UNENROLLED, finished_at=timezone.now()
    )
    client.force_login(people.global_admin)
    client.get(reverse(REPORT))
    with django_assert_max_num_queries(14):
        assert client.get(reverse(REPORT)).status_code == 200


def test_the_request_list_and_the_index_link_to_the_report(client, people):
    client.force_login(people.global_admin)
    url = reverse(REPORT)
    assert url in client.get(reverse("admin:retirement_retirementrequest_changelist")).content.decode()
    assert url in client.get(reverse("admin:index")).content.decode()
    assert url in client.get(reverse("admin:app_list", args=["retirement"])).content.decode()


def test_the_index_does_not_offer_the_report_to_helpdesk(client, people):
    client.force_login(people.helpdesk_a)
    assert reverse(REPORT) not in client.get(reverse("admin:index")).content.decode()


# The API summary ------------------------------------------------------------------------------------------


def test_api_summary(client, known_fleet):
    client.force_login(known_fleet.global_admin)
    response = client.get(reverse("retirement-summary"))
    assert response.status_code == 200
    body = response.json()
    by_state = {row["value"]: row for row in body["by_state"]}
    assert by_state["command_sent"]["all_time"] == 2
    assert by_state["unenrolled"] == {
        "value": "unenrolled",
        "label": "Unenrolled (verified)",
        "last_30_days": 0,
        "last_90_days": 1,
        "all_time": 1,
    }
    assert {row["value"]: row["all_time"] for row in body["by_source"]}["cleanup"] == 1
    assert body["overdue"] == 3
    assert body["pending"] == 4
    assert body["offline_timeout_days"] == 14
    total = body["stale_devices"][-1]
    assert total["platform"] == "" and total["days_30"] == 5 and total["days_180"] == 2


def test_api_summary_of_a_scoped_operator(client, known_fleet, scope_a):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    body = client.get(reverse("retirement-summary")).json()
    assert body["overdue"] == 2
    assert body["stale_devices"][-1]["days_30"] == 4


def test_api_summary_without_device_view_has_no_stale_devices(client, known_fleet):
    from django.contrib.auth.models import Permission

    from mdm_portal.core import services as core_services
    from tests.factories import SYSTEM

    role_permissions = list(Permission.objects.filter(codename="view_retirementrequest"))
    core_services.role_save(actor=SYSTEM, name="Retirement auditor", permissions=role_permissions)
    auditor = StaffFactory(username="auditor")
    grant(auditor, "Retirement auditor")
    client.force_login(auditor)
    body = client.get(reverse("retirement-summary")).json()
    assert body["stale_devices"] is None
    assert body["overdue"] == 3
