"""On a phone, in a real browser: why my device is not compliant, how to fix it, Check again, the page updates."""

import pytest

from devices.choices import CommandStatus, CommandType
from devices.models import DeviceCommand
from devices.services.checkin import device_inventory_store, inventory_digest
from policies.services.compliance import device_compliance_evaluate
from policies.services.policies import policy_save
from tests.browser.test_portal_enrollment import _fits_the_phone, _login
from tests.factories import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _report(device, **inventory):
    device_inventory_store(device=device, inventory=inventory, digest=inventory_digest(inventory))
    return device_compliance_evaluate(device)


def test_employee_sees_what_to_fix_checks_again_and_the_page_updates(phone_page, live_server, people):
    policy_save(
        actor=SYSTEM,
        data={"name": "iOS baseline", "platform": "ios", "encryption_required": True, "passcode_required": True},
        actions=[{"action": "mark_noncompliant", "days_after": 1}, {"action": "email", "days_after": 0}],
        assignments=[{"target": "all_devices"}],
    )
    device = people.device_a
    assert _report(device, encrypted=False, passcode_set=False, passcode_quality="none", passcode_length=0) == (
        "in_grace"
    )
    page = phone_page
    _login(page, live_server.url)

    card = page.locator("li.card.device", has_text=device.name)
    assert "In grace period" in card.inner_text()
    card.get_by_role("link", name=f"See what to fix on {device.name}").click()
    page.wait_for_selector("h2:has-text('What to fix (2)')")
    assert page.get_by_role("heading", name="Passcode required").is_visible()
    assert page.get_by_role("heading", name="How to fix it on your iPhone").first.is_visible()
    assert "Fix by" in page.inner_text(".compliance-state")
    _fits_the_phone(page)

    page.get_by_role("button", name="Check again").click()
    page.wait_for_selector("text=Your device was asked to check in; this page updates when it has.")
    assert "Waiting for your iPhone to check in" in page.inner_text("#check-status")
    assert DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC).count() == 1

    # The person set a passcode; the device checks in, is evaluated and answers the sync.
    assert _report(device, encrypted=True, passcode_set=True, passcode_quality="numeric", passcode_length=6) == (
        "compliant"
    )
    DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC).update(status=CommandStatus.ACKNOWLEDGED)

    page.wait_for_url("**/compliance/?checked=1", timeout=20000)
    page.wait_for_selector("text=has just checked in")
    assert "Compliant" in page.inner_text(".compliance-state")
    assert page.locator("h2:has-text('What to fix')").count() == 0
    _fits_the_phone(page)
