"""The admin console as a scoped helpdesk operator, and My devices on a phone, in a real browser."""

from pathlib import Path

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _login(page, url, username):
    page.goto(url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")


def test_helpdesk_operator_sees_only_their_scope_in_the_console(page, live_server, people):
    _login(page, f"{live_server.url}/admin/login/?next=/admin/devices/device/", "helpdesk-a")
    page.wait_for_selector("#result_list")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "EMEA-PHONE-1" in rows.first.inner_text()
    assert "AMER-PHONE-1" not in page.content()
    # The scope filter offers only the operator's scope.
    assert "Americas" not in page.locator("#changelist-filter").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-devices-helpdesk.tmp.png"), full_page=True)

    response = page.goto(f"{live_server.url}/admin/devices/device/{people.device_b.pk}/change/")
    assert response.status == 404


def test_employee_sees_own_devices_on_a_phone(phone_page, live_server, people):
    _login(phone_page, f"{live_server.url}/portal/login/", "employee")
    phone_page.wait_for_selector("h1:has-text('My devices')")
    cards = phone_page.locator("li.device")
    assert cards.count() == 1
    assert "EMEA-PHONE-1" in cards.first.inner_text()
    # Usable on a phone: nothing wider than the screen.
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 390
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone_page.screenshot(path=str(SCREENSHOTS / "portal-my-devices-phone.tmp.png"), full_page=True)

    response = phone_page.goto(f"{live_server.url}/portal/devices/{people.device_b.uuid}/")
    assert response.status == 404
