"""The Content Security Policy breaks no page: Chromium reports no violation on the console's and
the Company Portal's pages, including those with a nonce'd inline script, and the API docs."""

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _violations(page) -> list[str]:
    seen: list[str] = []
    page.on("console", lambda msg: seen.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def _login(page, url, username):
    page.goto(url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("networkidle")


def _visit(page, url):
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert response.status < 400, f"{url}: {response.status}"


def test_console_pages_have_no_csp_violation(page, live_server, people):
    seen = _violations(page)
    _login(page, f"{live_server.url}/admin/login/", "global-admin")
    for path in (
        "/admin/",
        "/admin/devices/device/",
        f"/admin/devices/device/{people.device_a.pk}/change/",
        "/admin/policies/compliancepolicy/add/",
        "/admin/apps/app/add/",
        "/admin/core/user/",
        "/admin/two-factor/",
        "/api/docs/",
    ):
        _visit(page, f"{live_server.url}{path}")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .information-container", timeout=15000)
    assert seen == []


def test_portal_pages_have_no_csp_violation(page, live_server, people):
    seen = _violations(page)
    _login(page, f"{live_server.url}/portal/login/", "employee")
    device = people.device_a.uuid
    for path in (
        "/portal/devices/",
        f"/portal/devices/{device}/",
        f"/portal/devices/{device}/compliance/",
        f"/portal/devices/{device}/apps/",
        "/portal/enroll/",
    ):
        _visit(page, f"{live_server.url}{path}")
    assert seen == []
