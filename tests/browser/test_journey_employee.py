"""Journey of an employee in the Company Portal on a phone, with a simulated laptop and a real Celery worker.

Sign in, get an enrolment code, the simulated laptop enrols with it and appears in My devices; it turns
its disk encryption off, so the portal shows what to fix and how; install an available app and watch it
become installed when the laptop reports it; remove the laptop and see it go. Screenshots:
``docs/screenshots/journey-employee-*.png``.
"""

import re

import pytest

from apps.services import app_save, app_version_add
from devices.choices import LifecycleState
from devices.models import Device
from mdm_portal.core import services as core_services
from policies.services.policies import policy_save
from tests.browser.journeys import shot, wait_until
from tests.browser.test_portal_enrollment import _fits_the_phone, _login
from tests.factories import SYSTEM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WHO = "employee"
WAIT = 45  # seconds for anything the simulated laptop or the worker does
APP_NAME = "Contoso Expenses"


def test_employee_journey(phone_page, live_server, people, celery_worker, simulators):
    # The organisation: Windows devices must have an encrypted disk (a day's grace), and employees may
    # install Contoso Expenses from the Company Portal.
    policy_save(
        actor=SYSTEM,
        data={"name": "Windows baseline", "platform": "windows", "encryption_required": True},
        actions=[{"action": "mark_noncompliant", "days_after": 1}],
        assignments=[{"target": "all_devices"}],
    )
    employees = core_services.user_group_save(actor=SYSTEM, name="All employees", members=[people.employee])
    app = app_save(
        actor=SYSTEM,
        data={
            "name": APP_NAME,
            "publisher": "Contoso",
            "description": "Submit receipts and travel expenses.",
            "kind": "store",
            "platform": "windows",
            "identifier": "Contoso.Expenses",
        },
        assignments=[{"target": "user_group", "user_group": employees, "intent": "available"}],
    )
    app_version_add(actor=SYSTEM, app=app, version="3.2.1")

    page = phone_page
    base = live_server.url
    _login(page, base)
    _fits_the_phone(page)
    shot(page, WHO, "01-my-devices")

    # Enrol a device: the portal gives a one-time code; the simulated laptop enrols with it.
    page.click("a:has-text('Enrol a device')")
    page.check("input[name=platform][value=windows]")
    page.check("input[name=ownership][value=personal]")
    page.click("button:has-text('Get my enrolment code')")
    page.wait_for_selector("h1:has-text('Your enrolment code')")
    code = page.inner_text("#enrol-code").strip()
    _fits_the_phone(page)
    shot(page, WHO, "02-enrolment-code")
    laptop = simulators(
        name="employee-laptop", code=code, platform_mix="windows=1", seed=7, drift=["0:encryption_off@2"]
    )
    link = page.wait_for_selector("#enrolled-device-link", timeout=WAIT * 1000)
    name = link.inner_text().strip()
    device = Device.objects.get(name=name, primary_user=people.employee)
    shot(page, WHO, "03-enrolled")

    # It appears in My devices.
    page.click("a:has-text('My devices')")
    page.wait_for_selector("h1:has-text('My devices')")
    assert name in page.inner_text(".cards")

    # At its second check-in it turns encryption off: the card says so, the compliance page says how to fix it.
    card = page.locator("li.card.device", has_text=name)
    wait_until(
        lambda: _reload(page) and "In grace period" in card.inner_text(),
        timeout=WAIT,
        what="My devices to show the laptop in its grace period",
    )
    _fits_the_phone(page)
    shot(page, WHO, "04-my-devices-in-grace")
    card.get_by_role("link", name=f"See what to fix on {name}").click()
    page.wait_for_selector("h2:has-text('What to fix (1)')")
    assert page.get_by_role("heading", name="Encryption required").is_visible()
    assert page.get_by_role("heading", name=re.compile("How to fix it on your")).first.is_visible()
    assert "BitLocker" in page.inner_text("main") or "encrypt" in page.inner_text("main").lower()
    _fits_the_phone(page)
    shot(page, WHO, "05-what-to-fix")

    # Install an available app; the laptop installs it at its next check-in and reports it.
    page.goto(f"{base}/portal/devices/{device.uuid}/apps/")
    page.wait_for_selector("h1:has-text('Apps')")
    page.get_by_role("button", name=f"Install {APP_NAME}").click()
    page.wait_for_selector("text=Installing")
    _fits_the_phone(page)
    shot(page, WHO, "06-app-installing")
    page.wait_for_selector("text=Installed (version 3.2.1).", timeout=WAIT * 1000)
    assert page.locator(f"#app-{app.uuid} .spinner").count() == 0
    page.wait_for_url(re.compile(r"\?updated="))  # the page reloads to show the app's new buttons
    page.wait_for_selector(f"#app-{app.uuid}.just-updated")
    assert page.get_by_role("button", name=f"Uninstall {APP_NAME}").is_visible()
    _fits_the_phone(page)
    shot(page, WHO, "07-app-installed")

    # Remove the laptop: the portal sends a retire, the laptop carries it out and reports, the portal verifies.
    page.goto(f"{base}/portal/devices/{device.uuid}/")
    page.click("a:has-text('Remove this device')")
    page.wait_for_selector(f"h1:has-text('Remove {name}?')")
    _fits_the_phone(page)
    shot(page, WHO, "08-remove-confirm")
    page.get_by_role("button", name=f"Remove {name}").click()
    page.wait_for_selector(f"h1:has-text('Removing {name}')")
    page.wait_for_selector("text=Removed. This device no longer appears in My devices.", timeout=WAIT * 1000)
    page.wait_for_selector("a:has-text('Back to My devices')")  # the page reloads once the removal is finished
    _fits_the_phone(page)
    shot(page, WHO, "09-removed")
    page.click("a:has-text('Back to My devices')")
    page.wait_for_selector("h1:has-text('My devices')")
    assert name not in page.inner_text("main")
    _fits_the_phone(page)
    shot(page, WHO, "10-my-devices-after")
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRED
    wait_until(lambda: not laptop.running(), timeout=WAIT, what="the retired laptop's simulator to stop")


def _reload(page) -> bool:
    page.reload()
    page.wait_for_selector("h1:has-text('My devices')")
    return True
