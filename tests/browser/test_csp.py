"""The Content Security Policy breaks no page: Chromium reports no violation on the console's and
the Company Portal's pages, including those with a nonce'd inline script, and the API docs.

Neither scripts nor styles may be inline without the response's nonce (``style-src 'self' 'nonce-…'``), so the
pages that used to carry ``<style>`` blocks or ``style="…"`` attributes are visited with data that makes them
draw their styled parts: state cards, badges, progress bars, leftover rows. ``CSP_SCREENSHOTS=/some/dir``
saves a screenshot of a few of them, to compare the look before and after a style change.
"""

import os
import uuid
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from apps.choices import InstallState
from apps.models import AppInstall
from devices.choices import CommandStatus, Platform
from devices.models import Device, DeviceCommand, EnrollmentFailure, IdentifierImport
from devices.services import device_command_queue_bulk, device_command_results_record
from mdm_portal.core.audit import Actor
from policies.models import CompliancePolicy, ProfileDelivery
from retirement.choices import CleanupAction, RetirementAction, RetirementSource, RetirementStatus
from retirement.models import CleanupRule, RetirementRequest
from retirement.services import cleanup_rule_save, retirement_request, retirement_request_bulk
from tests.factories import PASSWORD, SYSTEM, DeviceFactory
from tests.retirement.conftest import clean_report, give_managed_set

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("CSP_SCREENSHOTS")


def _violations(page) -> list[str]:
    seen: list[str] = []

    def console(msg):
        if "Content Security Policy" in msg.text:
            seen.append(f"{page.url} ({msg.location.get('url')}:{msg.location.get('lineNumber')}): {msg.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: seen.append(f"{page.url}: {error}"))
    return seen


def _login(page, url, username):
    page.goto(url)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state("networkidle")


def _visit(page, url, shot: str = ""):
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert response.status < 400, f"{url}: {response.status}"
    if SHOTS and shot:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{shot}.png"), full_page=True)


def _answer(device, request, data):
    request.refresh_from_db()
    device_command_results_record(
        device=device, results=[{"id": str(request.command.uuid), "status": "acknowledged", "data": data, "error": ""}]
    )
    request.refresh_from_db()
    return request


@pytest.fixture
def styled(people):
    """Data that makes the console's styled parts show: badges, progress, leftovers, state cards."""
    admin = Actor.for_user(people.global_admin)
    fleet = [DeviceFactory(name=f"EMEA-IPHONE-{n:04d}", scope=people.scope_a) for n in range(4)]
    batch = uuid.UUID(
        retirement_request_bulk(
            actor=admin, devices=Device.objects.filter(pk__in=[d.pk for d in fleet]), action=RetirementAction.RETIRE
        )["batch"]
    )
    made = list(RetirementRequest.objects.filter(batch=batch).order_by("pk"))
    for request, status in zip(
        made, (RetirementStatus.UNENROLLED, RetirementStatus.ACKNOWLEDGED, RetirementStatus.FAILED), strict=False
    ):
        RetirementRequest.objects.filter(pk=request.pk).update(status=status)

    # A failed removal (a managed app still there) and a verified one.
    leftover_device = DeviceFactory(name="EMEA-PHONE-8", scope=people.scope_a)
    app, _ = give_managed_set(leftover_device)
    failed = _answer(
        leftover_device,
        retirement_request(
            actor=admin, device=leftover_device, action=RetirementAction.RETIRE, source=RetirementSource.ADMIN
        ),
        {"installed_apps": [{"identifier": app.identifier, "name": "Outlook"}], "profiles": [], "corporate_data": {}},
    )
    clean_device = DeviceFactory(name="EMEA-PHONE-9", scope=people.scope_a, platform=Platform.ANDROID, os_version="14")
    give_managed_set(clean_device)
    verified = _answer(
        clean_device,
        retirement_request(
            actor=admin,
            device=clean_device,
            action=RetirementAction.RETIRE,
            source=RetirementSource.ADMIN,
            reason="Leaver",
        ),
        clean_report(),
    )
    AppInstall.objects.create(device=people.device_a, app=app, state=InstallState.FAILED)

    # A device-command batch: one acknowledged, one error, the rest queued.
    command_batch = uuid.uuid4()
    tablets = [DeviceFactory(name=f"EMEA-TABLET-{n:04d}", scope=people.scope_a) for n in range(3)]
    device_command_queue_bulk(
        actor=admin,
        devices=Device.objects.filter(pk__in=[d.pk for d in tablets]),
        command_type="sync",
        batch=command_batch,
    )
    commands = list(DeviceCommand.objects.filter(batch=command_batch).order_by("pk"))
    DeviceCommand.objects.filter(pk=commands[0].pk).update(status=CommandStatus.ACKNOWLEDGED)
    DeviceCommand.objects.filter(pk=commands[1].pk).update(status=CommandStatus.ERROR)

    identifier_import = IdentifierImport.objects.create(
        file=ContentFile(b"serial_number\nC02XYZ\n", name="identifiers.csv"),
        original_name="identifiers.csv",
        total_rows=10,
        processed_rows=4,
        created_by=people.global_admin,
    )
    EnrollmentFailure.objects.create(
        user=people.employee, platform="android", device_name="Anna's Pixel", reason_code="enrollment_refused",
        message="Android devices may not be enrolled: the enrolment restriction 'Apple only' allows only iOS devices.",
    )  # fmt: skip
    rule = cleanup_rule_save(
        actor=SYSTEM, rule=CleanupRule(platform=Platform.IOS, days=90, action=CleanupAction.RETIRE, enabled=True)
    )
    policy = CompliancePolicy.objects.create(name="Passcode", platform=Platform.IOS)
    return {
        "batch": batch,
        "command_batch": command_batch,
        "failed": failed,
        "verified": verified,
        "app": app,
        "import": identifier_import,
        "rule": rule,
        "policy": policy,
        "fleet": fleet,
    }


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
        # DRF's browsable API (templates/rest_framework/: classes instead of its style attributes)
        "/api/v1/devices/",
        f"/api/v1/devices/{people.device_a.uuid}/",
        "/api/docs/",
    ):
        _visit(page, f"{live_server.url}{path}")
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .information-container", timeout=15000)
    assert seen == []


def test_styled_console_pages_have_no_csp_violation(page, live_server, people, styled):
    """Every page that had a ``<style>`` block or a ``style`` attribute, drawing its styled parts."""
    seen = _violations(page)
    _login(page, f"{live_server.url}/admin/login/", "global-admin")
    failed, verified, app = styled["failed"], styled["verified"], styled["app"]
    profile = ProfileDelivery.objects.filter(device=verified.device).first().profile
    pages = [
        # policies: the dashboard's styles, the editor's styles and the state cards' colours
        (reverse("admin:policies_compliance_dashboard"), "compliance-dashboard"),
        (reverse("admin:policies_compliance_without_policy"), ""),
        (reverse("admin:policies_configurationprofile_deliveries", args=[profile.pk]), "profile-deliveries"),
        (reverse("admin:policies_effective_device", args=[verified.device.pk]), ""),
        (reverse("admin:policies_effective_user", args=[people.employee.pk]), ""),
        (reverse("admin:policies_configurationprofile_add"), ""),
        (reverse("admin:policies_compliancepolicy_change", args=[styled["policy"].pk]), ""),
        (reverse("admin:policies_compliancepolicy_delete", args=[styled["policy"].pk]), ""),
        # apps
        (reverse("admin:apps_app_changelist"), ""),
        (reverse("admin:apps_app_change", args=[app.pk]), ""),
        (reverse("admin:apps_app_installs", args=[app.pk]), "app-installs"),
        (reverse("admin:apps_app_versions", args=[app.pk]), ""),
        (reverse("admin:apps_appinstall_device", args=[people.device_a.pk]), ""),
        (reverse("admin:apps_appinstall_changelist"), ""),
        # retirement
        (reverse("admin:retirement_retirementrequest_changelist"), "retirement-requests"),
        (reverse("admin:retirement_retirementrequest_change", args=[failed.pk]), "retirement-request-failed"),
        (reverse("admin:retirement_retirementrequest_proof", args=[failed.pk]), "proof-failed"),
        (reverse("admin:retirement_retirementrequest_proof", args=[verified.pk]), "proof-verified"),
        (reverse("admin:retirement_retirementrequest_request", args=[people.device_b.pk]), ""),
        (reverse("admin:retirement_bulk_progress", args=[styled["batch"]]), "retirement-bulk-progress"),
        (reverse("admin:retirement_report"), "retirement-report"),
        (reverse("admin:retirement_offboarding_start", args=[people.employee.pk]), ""),
        (reverse("admin:retirement_offboarding_changelist"), ""),
        (reverse("admin:retirement_cleanuprule_preview", args=[styled["rule"].pk]), ""),
        # devices
        (reverse("admin:devices_device_change", args=[people.device_a.pk]), "device-change"),
        (reverse("admin:devices_device_action", args=[people.device_a.pk, "lock"]), ""),
        (reverse("admin:devices_devicecommand_batch", args=[styled["command_batch"]]), "command-batch-progress"),
        (reverse("admin:devices_identifierimport_change", args=[styled["import"].pk]), "identifier-import"),
        (reverse("admin:devices_enrollmentfailure_changelist"), "enrollment-failures"),
    ]
    for path, shot in pages:
        _visit(page, f"{live_server.url}{path}", shot)

    # The bulk confirmation pages answer a changelist action (a POST).
    for action, shot in (("queue_lock", "bulk-lock-preview"), ("retirement_retire_selected", "bulk-retire-preview")):
        _visit(page, f"{live_server.url}{reverse('admin:devices_device_changelist')}?q=EMEA-PHONE-1")
        page.check("input.action-select")
        page.select_option("select[name=action]", action)
        page.click("button[name=index]")
        page.wait_for_load_state("networkidle")
        assert page.locator("#bulk-summary").count() == 1, page.url
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"{shot}.png"), full_page=True)

    # Django's own 404 page is ours (templates/404.html).
    response = page.goto(f"{live_server.url}/no-such-page/")
    assert response.status == 404
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


def test_portal_pages_on_a_phone_have_no_csp_violation(phone_page, live_server, people, styled):
    seen = _violations(phone_page)
    _login(phone_page, f"{live_server.url}/portal/login/", "employee")
    device = people.device_a.uuid
    for path, shot in (
        ("/portal/devices/", "portal-my-devices"),
        (f"/portal/devices/{device}/", "portal-device"),
        (f"/portal/devices/{device}/compliance/", "portal-compliance"),
        (f"/portal/devices/{device}/apps/", "portal-apps"),
        (f"/portal/devices/{device}/remove/", ""),
        ("/portal/enroll/", ""),
    ):
        _visit(phone_page, f"{live_server.url}{path}", shot)
    assert seen == []
