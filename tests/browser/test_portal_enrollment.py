"""Self-enrolment on a phone, in a real browser: code, QR code, the agent enrols, the page notices."""

import plistlib
from pathlib import Path

import pytest

from agent.client import AgentClient
from devices.models import Device
from tests.factories import PASSWORD
from tests.specs import apple as apple_spec

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE_WIDTH = 390


def _login(page, base_url, username="employee"):
    page.goto(f"{base_url}/portal/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('My devices')")


def _fits_the_phone(page):
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH, f"{page.url} is wider than a phone"


def _shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.tmp.png"), full_page=True)


def _choose(page, platform, ownership):
    page.click("a:has-text('Enrol a device')")
    page.wait_for_selector("h1:has-text('Enrol a device')")
    page.check(f"input[name=platform][value={platform}]")
    page.check(f"input[name=ownership][value={ownership}]")


def test_employee_enrols_a_linux_host_from_a_phone(phone_page, live_server, people):
    page = phone_page
    _login(page, live_server.url)
    _choose(page, "linux", "personal")
    _fits_the_phone(page)
    _shot(page, "portal-enrol-form")
    page.click("button:has-text('Get my enrolment code')")

    page.wait_for_selector("h1:has-text('Your enrolment code')")
    code = page.inner_text("#enrol-code").strip()
    assert len(code) == 11 and code[5] == "-"
    assert page.locator("figure.qr svg").is_visible()
    assert page.locator("figure.qr svg").bounding_box()["width"] >= 150  # big enough to scan from a screen
    command = page.inner_text("#agent-command")
    assert command == f"python3 -m agent enroll --server {live_server.url} --code {code}"
    assert "Waiting for your device" in page.inner_text("#enrol-status")
    _fits_the_phone(page)
    _shot(page, "portal-enrol-code")

    # The device agent, on the Linux host, enrols with the code shown.
    with AgentClient(live_server.url) as agent:
        reply = agent.enroll(
            code=code,
            device={"platform": "linux", "name": "build-host-07", "serial_number": "PF3ABC12", "os_version": "12.8"},
            inventory={"os_version": "12.8", "encrypted": True},
        )
    device = Device.objects.get(uuid=reply["device_id"])

    # The waiting element turns into a link to the new device (the page polls every few seconds).
    link = page.wait_for_selector("#enrolled-device-link", timeout=15_000)
    assert link.inner_text() == "build-host-07"
    assert "Enrolled" in page.inner_text("#enrol-status")
    _shot(page, "portal-enrol-done")

    link.click()
    page.wait_for_selector("h1:has-text('build-host-07')")
    assert page.url.endswith(f"/portal/devices/{device.uuid}/")
    page.click("button:has-text('Sync now')")
    page.wait_for_selector(".messages li.success")
    assert "Sync requested." in page.inner_text(".messages")
    assert "Queued" in page.inner_text(".commands")
    _fits_the_phone(page)
    _shot(page, "portal-device-actions")

    page.click("a:has-text('Lock this device')")
    page.wait_for_selector("h1:has-text('Lock build-host-07?')")
    _fits_the_phone(page)
    _shot(page, "portal-device-lock")
    page.click("button:has-text('Lock build-host-07')")
    page.wait_for_selector(".messages li.success")
    assert "Lock requested." in page.inner_text(".messages")

    page.click("a:has-text('My devices')")
    cards = page.locator("li.device")
    assert cards.count() == 2
    assert "build-host-07" in page.inner_text(".cards")
    _fits_the_phone(page)
    _shot(page, "portal-enrol-my-devices")


def test_an_iphone_downloads_a_valid_enrolment_profile(phone_page, live_server, people):
    apple_spec.require_specs()
    page = phone_page
    _login(page, live_server.url)
    _choose(page, "ios", "personal")
    page.click("button:has-text('Get my enrolment code')")
    page.wait_for_selector("h1:has-text('Your enrolment code')")
    code = page.inner_text("#enrol-code").strip()
    _shot(page, "portal-enrol-code-ios")

    with page.expect_download() as download_info:
        page.click("button:has-text('Download enrolment profile')")
    download = download_info.value
    assert download.suggested_filename == "company-portal-enrolment.mobileconfig"
    profile = plistlib.loads(Path(download.path()).read_bytes())
    assert apple_spec.validate_profile(profile, os="iOS") == []
    assert code in profile["PayloadContent"][0]["URL"]
    # The page is still there, code and all: the download did not navigate away.
    assert page.inner_text("#enrol-code").strip() == code
