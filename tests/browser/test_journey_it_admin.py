"""Journey of an IT administrator in the console, against a live server, a real Celery worker and simulated devices.

Import corporate identifiers (one bad row) and read the report; create a compliance policy for a device
group and watch the dashboard change as the simulated laptops check in; lock the noncompliant ones in
the background and follow the batch; retire one and open the proof of removal. Screenshots:
``docs/screenshots/journey-it-admin-*.png``.
"""

import re

import pytest

from devices import services as device_services
from devices.choices import CommandStatus, LifecycleState
from devices.models import Device, DeviceCommand
from devices.services.enrollment import enrollment_profile_create
from policies.models import CompliancePolicy
from tests.browser.journeys import CONSOLE_VIEWPORT, poll_page, shot, wait_until
from tests.factories import PASSWORD, SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WHO = "it-admin"
LAPTOPS = 4
WAIT = 45  # seconds for anything the worker or a simulated device does

IMPORT_CSV = (
    "serial_number,imei,user,scope,device_group,description\n"
    "JRN-0001,,employee,emea,EMEA laptops,Ordered in March\n"
    "JRN-0002,,,emea,,Spare\n"
    "JRN 0003,,,emea,,Typo in the serial number\n"
    "JRN-0004,,,emea,,Replacement\n"
)


def test_it_administrator_journey(page, live_server, people, celery_worker, simulators, monkeypatch):
    # Four corporate Windows laptops enrol into the "EMEA laptops" group and check in every 2 s; the
    # first two turn their disk encryption off at their first check-in.
    laptops = device_services.device_group_save(actor=SYSTEM, name="EMEA laptops", scope=people.scope_a)
    _, token = enrollment_profile_create(
        actor=SYSTEM,
        name="EMEA laptop rollout",
        enrollment_manager=people.global_admin,
        scope=people.scope_a,
        device_group=laptops,
        capacity=LAPTOPS,
    )
    fleet = simulators(
        name="laptops",
        token=token,
        devices=LAPTOPS,
        platform_mix="windows=1",
        seed=2026,
        drift=["0:encryption_off@1", "1:encryption_off@1"],
    )
    enrolled = Device.objects.filter(enrollment_profile__name="EMEA laptop rollout")
    wait_until(
        lambda: enrolled.filter(last_checkin_at__isnull=False).count() == LAPTOPS,
        timeout=WAIT,
        what="the simulated laptops to enrol and check in",
    )
    base = live_server.url
    page.set_viewport_size(CONSOLE_VIEWPORT)

    # Sign in.
    page.goto(f"{base}/admin/")
    page.fill("input[name=username]", "global-admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector("#site-name")
    shot(page, WHO, "01-console")

    # Bulk-import corporate identifiers with a bad row; the worker processes the file.
    page.goto(f"{base}/admin/devices/identifierimport/add/")
    page.set_input_files(
        "input[name=file]", files=[{"name": "identifiers.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode()}]
    )
    page.check("input[name=mode][value=good_rows]")
    page.click("input[name=_save]")
    report = poll_page(
        page,
        page.url,
        lambda text: "Line 4" in text,
        timeout=WAIT,
        what="the import report",
    )
    assert "Line 4: the serial number 'JRN 0003' has characters other than letters, digits and - . _ /." in report
    assert re.search(r"\b3\b.*imported|imported.*\b3\b", report, re.I | re.S), report
    shot(page, WHO, "02-import-report")

    # The dashboard before any policy: the laptops have none.
    page.goto(f"{base}/admin/policies/compliance/")
    assert "Devices without a compliance policy" in page.inner_text("body")
    shot(page, WHO, "03-dashboard-before")

    # A compliance policy for Windows, disk encryption required, assigned to the EMEA laptops group.
    page.goto(f"{base}/admin/policies/compliancepolicy/add/")
    page.fill("input[name=name]", "Windows laptops: encrypted disk")
    page.select_option("select[name=platform]", "windows")
    page.check("input[name=encryption_required]")
    page.select_option("select[name=assignments-0-target]", "device_group")
    page.select_option("select[name=assignments-0-device_group]", str(laptops.pk))
    shot(page, WHO, "04-policy-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    policy = CompliancePolicy.objects.get(name="Windows laptops: encrypted disk")

    # The worker evaluates the group, and the laptops keep checking in: two are noncompliant.
    dashboard = poll_page(
        page,
        f"{base}/admin/policies/compliance/",
        lambda text: _tile(text, "Noncompliant") == 2 and _tile(text, "Compliant") == LAPTOPS - 2,
        timeout=WAIT,
        what="the dashboard to count the two unencrypted laptops as noncompliant",
    )
    assert "Encryption required" in dashboard or "encryption" in dashboard.lower()
    shot(page, WHO, "05-dashboard-after")
    assert enrolled.filter(compliance_state="noncompliant").count() == 2
    assert policy.assignments.count() == 1

    # Lock every noncompliant device: filter the list, select all, confirm. Past the threshold (lowered
    # here to keep the fleet small) the request is queued in the background by the worker.
    monkeypatch.setattr("devices.admin.devices.BACKGROUND_THRESHOLD", 1)
    page.goto(f"{base}/admin/devices/device/?compliance_state__exact=noncompliant")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    page.check("#action-toggle")
    page.select_option("select[name=action]", "queue_lock")
    page.click("button[name=index]")
    page.wait_for_selector("h1:has-text('Lock: 2 selected devices')")
    assert "queued in the background" in page.inner_text("#content")
    page.fill("textarea[name=message]", "This laptop is locked until its disk is encrypted. Call IT: 0800 123 456.")
    shot(page, WHO, "06-bulk-lock-confirm")
    page.get_by_role("button", name="Lock 2 devices").click()
    page.wait_for_url(re.compile(r"/admin/devices/devicecommand/batch/"))
    batch_url = page.url.split("?")[0]
    locks = DeviceCommand.objects.filter(command_type="lock", device__in=enrolled)
    wait_until(
        lambda: locks.count() == 2 and not locks.filter(status=CommandStatus.QUEUED).exists(),
        timeout=WAIT,
        what="the worker to queue the locks and the laptops to answer them",
    )
    progress = poll_page(
        page, batch_url, lambda text: "100%" in text, timeout=WAIT, what="the progress page to show every answer"
    )
    assert "Lock for 2 devices" in progress
    shot(page, WHO, "07-bulk-lock-progress")

    # Retire one laptop from its page, follow the request and open the proof of removal.
    device = enrolled.filter(compliance_state="noncompliant").order_by("name").first()
    page.goto(f"{base}/admin/devices/device/{device.pk}/change/")
    page.click("a:has-text('Retire / wipe this device')")
    page.check("input[name=action][value=retire]")
    page.fill("textarea[name=reason]", "Lost on a train; the replacement is on its way.")
    shot(page, WHO, "08-retire-form")
    page.get_by_role("button", name="Send to the device").click()
    page.wait_for_url(re.compile(r"/admin/retirement/retirementrequest/\d+/change/"))
    request_url = page.url
    record = poll_page(
        page,
        request_url,
        lambda text: "Unenrolled (verified)" in text,
        timeout=WAIT,
        what="the laptop to carry out the retire and the portal to verify it",
    )
    assert "Printable proof of removal" in record
    shot(page, WHO, "09-retirement-request")
    page.click("a:has-text('Printable proof of removal')")
    page.wait_for_load_state()
    proof = page.inner_text("#content")
    assert device.name in proof and "Unenrolled (verified)" in proof
    # The device's report after the retire lists nothing left, which is not the same as no report.
    assert "No report from the device" not in proof
    assert "The device's report lists nothing left" in proof
    shot(page, WHO, "10-proof-of-removal")
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRED
    assert fleet.running()  # the other laptops keep checking in


def _tile(text: str, label: str) -> int | None:
    """The number on a dashboard tile: the line before its label."""
    match = re.search(rf"(\d+)\s*\n\s*{label}\s*\n", text)
    return int(match.group(1)) if match else None
