"""Journey of a helpdesk operator scoped to EMEA, against a live server, a real Celery worker and simulated devices.

Simulated laptops check in from EMEA and from the Americas. The operator sees EMEA only, everywhere:
the device list, its search, the autocomplete endpoint, the compliance reports and their CSV exports.
They sync and lock an EMEA laptop (which answers), have no retire or wipe control, and an Americas
device's URL is a 404. Screenshots: ``docs/screenshots/journey-helpdesk-*.png``.
"""

import re

import pytest

from devices.choices import CommandStatus
from devices.models import Device, DeviceCommand
from devices.services.enrollment import enrollment_profile_create
from policies.services.policies import policy_save
from tests.browser.journeys import CONSOLE_VIEWPORT, shot, wait_until
from tests.factories import PASSWORD, SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WHO = "helpdesk"
PER_SCOPE = 3
WAIT = 45  # seconds for anything a simulated device does


def test_helpdesk_operator_journey(page, live_server, people, celery_worker, simulators):
    # Windows disks must be encrypted; the first laptop of each scope turns encryption off at once.
    policy_save(
        actor=SYSTEM,
        data={"name": "Windows baseline", "platform": "windows", "encryption_required": True},
        actions=[{"action": "mark_noncompliant", "days_after": 0}],
        assignments=[{"target": "all_devices"}],
    )
    fleets = {}
    for scope, seed in ((people.scope_a, 11), (people.scope_b, 12)):
        profile_name = f"{scope.name} laptops"
        _, token = enrollment_profile_create(
            actor=SYSTEM,
            name=profile_name,
            enrollment_manager=people.global_admin,
            scope=scope,
            capacity=PER_SCOPE,
        )
        simulators(
            name=f"laptops-{scope.slug}",
            token=token,
            devices=PER_SCOPE,
            platform_mix="windows=1",
            seed=seed,
            drift=["0:encryption_off@1"],
        )
        fleets[scope.slug] = Device.objects.filter(enrollment_profile__name=profile_name)
    wait_until(
        lambda: (
            all(f.filter(compliance_state="noncompliant").exists() for f in fleets.values())
            and all(f.filter(last_checkin_at__isnull=False).count() == PER_SCOPE for f in fleets.values())
        ),
        timeout=WAIT,
        what="the simulated laptops of both scopes to check in, one of each noncompliant",
    )
    mine = sorted([people.device_a.name, *fleets["emea"].values_list("name", flat=True)])
    theirs = sorted([people.device_b.name, *fleets["americas"].values_list("name", flat=True)])
    assert not set(mine) & set(theirs)

    def sees_none_of_theirs(text: str, where: str) -> None:
        leaked = [name for name in theirs if name in text]
        assert not leaked, f"{where} shows Americas devices: {leaked}"

    base = live_server.url
    page.set_viewport_size(CONSOLE_VIEWPORT)
    page.goto(f"{base}/admin/")
    page.fill("input[name=username]", "helpdesk-a")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector("#site-name")

    # The device list: EMEA's devices, all of them, and nothing else.
    page.goto(f"{base}/admin/devices/device/")
    listed = sorted(page.locator("#result_list tbody tr th a").all_inner_texts())
    assert listed == mine
    sees_none_of_theirs(page.inner_text("body"), "The device list")
    assert "Americas" not in page.locator("#changelist-filter").inner_text()
    shot(page, WHO, "01-device-list")

    # Search: an Americas device's exact name finds nothing; a common prefix finds only EMEA's.
    page.goto(f"{base}/admin/devices/device/?q={theirs[-1]}")
    assert page.locator("#result_list tbody tr").count() == 0
    page.goto(f"{base}/admin/devices/device/?q=LT-")
    assert sorted(page.locator("#result_list tbody tr th a").all_inner_texts()) == [n for n in mine if "LT-" in n]
    sees_none_of_theirs(page.inner_text("body"), "The device search")
    shot(page, WHO, "02-search")

    # The autocomplete endpoint (a device group's members field).
    for term in ("", "LT", theirs[-1]):
        response = page.request.get(
            f"{base}/admin/autocomplete/",
            params={"app_label": "devices", "model_name": "devicegroup", "field_name": "static_members", "term": term},
        )
        assert response.ok, response.status
        names = [result["text"] for result in response.json()["results"]]
        sees_none_of_theirs(" ".join(names), f"The autocomplete for {term!r}")
        if term == "":
            assert sorted(names) == mine

    # Reports and their CSV exports.
    page.goto(f"{base}/admin/policies/compliance/")
    dashboard = page.inner_text("body")
    sees_none_of_theirs(dashboard, "The compliance dashboard")
    assert re.search(rf"{len(mine)}\s*\n\s*Enrolled devices", dashboard), dashboard
    shot(page, WHO, "03-compliance-dashboard")
    csv_links = page.locator("a:has-text('Download CSV')").evaluate_all("links => links.map(l => l.href)")
    page.get_by_role("link", name="Encryption required").first.click()
    failing = page.inner_text("#content")
    sees_none_of_theirs(failing, "The failing-setting report")
    assert fleets["emea"].get(compliance_state="noncompliant").name in failing
    shot(page, WHO, "04-failing-setting")
    csv_links += page.locator("a:has-text('Download CSV'), a:has-text('CSV')").evaluate_all(
        "links => links.map(l => l.href)"
    )
    page.goto(f"{base}/admin/policies/compliance/without-policy/")
    sees_none_of_theirs(page.inner_text("body"), "The devices without a policy")
    assert len(set(csv_links)) >= 5, csv_links
    for link in csv_links:
        response = page.request.get(link)
        assert response.ok and "csv" in response.headers["content-type"], (link, response.status)
        sees_none_of_theirs(response.text(), link)
    without_policy = page.request.get(f"{base}/admin/policies/compliance/export/devices-without-policy.csv").text()
    assert people.device_a.name in without_policy  # the iPhone: the policy is for Windows

    # An EMEA laptop: sync and lock, which it answers; no retire or wipe anywhere.
    laptop = fleets["emea"].order_by("name").first()
    page.goto(f"{base}/admin/devices/device/{laptop.pk}/change/")
    actions = page.locator(".remote-actions, fieldset:has-text('Remote actions')").first.inner_text()
    assert "Sync" in actions and "Lock" in actions
    controls = page.locator("#content a, #content button, #content input[type=submit]").all_inner_texts()
    controls += page.locator("#content input[type=submit]").evaluate_all("inputs => inputs.map(i => i.value)")
    offered = [text for text in controls if re.search(r"retire|wipe", text, re.I)]
    assert not offered, f"the device page offers {offered} to a helpdesk operator"
    assert page.locator("#content a[href*='/retirement/']").count() == 0
    shot(page, WHO, "05-device-page")

    page.get_by_role("link", name="Sync", exact=True).or_(page.get_by_role("button", name="Sync", exact=True)).click()
    _confirm(page)
    page.goto(f"{base}/admin/devices/device/{laptop.pk}/change/")
    page.get_by_role("link", name="Lock", exact=True).or_(page.get_by_role("button", name="Lock", exact=True)).click()
    page.fill("textarea[name=message]", "Locked by the helpdesk at your request. Call 0800 123 456.")
    shot(page, WHO, "06-lock-confirm")
    _confirm(page)
    commands = DeviceCommand.objects.filter(device=laptop, command_type__in=["sync", "lock"])
    wait_until(
        lambda: (
            commands.count() == 2 and set(commands.values_list("status", flat=True)) == {CommandStatus.ACKNOWLEDGED}
        ),
        timeout=WAIT,
        what="the laptop to answer the sync and the lock",
    )
    page.goto(f"{base}/admin/devices/devicecommand/?device__id__exact={laptop.pk}")
    text = page.inner_text("#result_list")
    assert text.count("Acknowledged") >= 2, text
    shot(page, WHO, "07-commands-answered")

    # No bulk retire or wipe in the list's actions either.
    page.goto(f"{base}/admin/devices/device/")
    options = page.locator("select[name=action] option").all_inner_texts()
    assert any("Lock" in option for option in options)
    assert not [option for option in options if re.search(r"retire|wipe", option, re.I)], options

    # Another scope's device, its retirement page and its commands: a 404 every time.
    other = fleets["americas"].first()
    for url in (
        f"/admin/devices/device/{other.pk}/change/",
        f"/admin/devices/device/{other.pk}/actions/lock/",
    ):
        response = page.goto(base + url)
        assert response.status == 404, (url, response.status)
    shot(page, WHO, "08-other-scope-404")
    # The device's pages in other modules: those the role may use are a 404 for the Americas laptop; those it
    # may not are refused the same way for EMEA's laptop as for the Americas one, saying nothing about the latter.
    for path in (
        "/admin/retirement/retirementrequest/request/{}/",
        "/admin/apps/appinstall/device/{}/",
        "/admin/policies/configurationprofile/effective/device/{}/",
    ):
        mine_status = page.goto(base + path.format(laptop.pk)).status
        theirs_status = page.goto(base + path.format(other.pk)).status
        assert theirs_status == (404 if mine_status == 200 else mine_status), (path, mine_status, theirs_status)
        assert theirs_status in (403, 404), (path, theirs_status)


def _confirm(page):
    """Confirm a remote action page and land back with the success message."""
    page.locator("#content form").get_by_role("button").first.click()
    page.wait_for_selector(".messagelist .success")
