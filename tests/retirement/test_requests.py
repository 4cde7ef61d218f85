"""Retire and wipe requests: eligibility, approval by a second person, one open request, offline devices."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from devices.choices import CommandStatus, CommandType, LifecycleState, Ownership, Platform
from devices.models import DeviceCommand
from devices.services import device_command_results_record
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest
from retirement.services import (
    retirement_approve,
    retirement_cancel,
    retirement_force,
    retirement_request,
    retirement_timeouts_flag,
    retirement_unenroll,
)
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant

from .conftest import clean_report, give_managed_set

pytestmark = pytest.mark.django_db
Status = RetirementStatus


def ask(admin, device, action=RetirementAction.RETIRE, **kwargs):
    return retirement_request(
        actor=Actor.for_user(admin), device=device, action=action, source=RetirementSource.ADMIN, **kwargs
    )


def answer(device, request, status="acknowledged", data=None, error=""):
    request.refresh_from_db()
    return device_command_results_record(
        device=device,
        results=[{"id": str(request.command.uuid), "status": status, "data": data or {}, "error": error}],
    )


# Eligibility ----------------------------------------------------------------------------------------


def test_personal_device_refuses_a_full_wipe_unless_allowed(admins, retirement_settings):
    device = DeviceFactory(ownership=Ownership.PERSONAL)
    with pytest.raises(ValidationError, match=r"personal device.*does not allow a full wipe"):
        ask(admins[0], device, RetirementAction.WIPE)
    assert not RetirementRequest.objects.exists()
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.ENROLLED

    retirement_settings.allow_personal_full_wipe = True
    retirement_settings.save()
    request = ask(admins[0], device, RetirementAction.WIPE, keep_enrollment=True)
    assert request.status == Status.COMMAND_SENT
    assert request.command.command_type == CommandType.WIPE
    assert request.command.payload == {"request": str(request.uuid), "keep_enrollment": True}


def test_corporate_device_can_be_wiped_but_linux_cannot(admins):
    assert ask(admins[0], DeviceFactory(ownership=Ownership.CORPORATE), RetirementAction.WIPE).command
    linux = DeviceFactory(platform=Platform.LINUX, manufacturer="Dell", model="XPS")
    with pytest.raises(ValidationError, match="not available on Linux"):
        ask(admins[0], linux, RetirementAction.WIPE)
    assert ask(admins[0], linux, RetirementAction.RETIRE).status == Status.COMMAND_SENT


def test_helpdesk_cannot_retire(scope_a):
    helpdesk = StaffFactory(username="helpdesk")
    grant(helpdesk, "Helpdesk operator", [scope_a])
    with pytest.raises(PermissionDenied, match="permission to retire"):
        ask(helpdesk, DeviceFactory(scope=scope_a))


def test_a_second_request_while_one_is_open_is_refused(admins):
    device = DeviceFactory()
    first = ask(admins[0], device)
    with pytest.raises(ValidationError, match=rf"{device.name} already has an open request.*admin-one"):
        ask(admins[1], device, RetirementAction.DELETE)
    assert list(RetirementRequest.objects.values_list("pk", flat=True)) == [first.pk]


def test_request_snapshots_identity_and_the_managed_set(admins):
    device = DeviceFactory(serial_number="C02XYZ")
    app, profile_identifier = give_managed_set(device)
    request = ask(admins[0], device, reason="Left the company")
    assert (request.device_name, request.device_serial, request.device_platform) == (device.name, "C02XYZ", "ios")
    before = request.before_inventory
    assert before["managed_apps"] == [{"identifier": app.identifier, "name": "Outlook", "state": "installed"}]
    assert [p["identifier"] for p in before["managed_profiles"]] == [profile_identifier]
    assert {a["identifier"] for a in before["installed_apps"]} == {app.identifier, "com.spotify.client"}
    # The device is told what the portal installed, so it removes exactly that.
    assert request.command.payload == {
        "request": str(request.uuid),
        "apps": [app.identifier],
        "profiles": [profile_identifier],
    }
    assert request.command.subject == f"retirement:{request.uuid}"
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRING
    assert AuditEvent.objects.filter(verb="retirement.request", actor_user=admins[0]).exists()


# Approval -------------------------------------------------------------------------------------------


def test_approval_needs_a_second_administrator(admins, retirement_settings):
    retirement_settings.require_approval = True
    retirement_settings.save()
    requester, approver = admins
    device = DeviceFactory()
    request = ask(requester, device)
    assert request.status == Status.AWAITING_APPROVAL and request.command is None
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.ENROLLED

    with pytest.raises(PermissionDenied, match="a different administrator must approve it"):
        retirement_approve(actor=Actor.for_user(requester), request=request)
    request.refresh_from_db()
    assert request.status == Status.AWAITING_APPROVAL

    retirement_approve(actor=Actor.for_user(approver), request=request)
    request.refresh_from_db()
    assert (request.status, request.approved_by) == (Status.COMMAND_SENT, approver)
    assert request.command.command_type == CommandType.RETIRE
    assert AuditEvent.objects.filter(verb="retirement.approve", actor_user=approver).exists()


def test_an_approver_needs_the_permissions(admins, retirement_settings, scope_a):
    retirement_settings.require_approval = True
    retirement_settings.save()
    helpdesk = StaffFactory(username="helpdesk")
    grant(helpdesk, "Helpdesk operator", [scope_a])
    request = ask(admins[0], DeviceFactory(scope=scope_a))
    with pytest.raises(PermissionDenied, match="permission to approve"):
        retirement_approve(actor=Actor.for_user(helpdesk), request=request)


def test_employee_removal_from_the_portal_needs_no_approval(retirement_settings, people):
    retirement_settings.require_approval = True
    retirement_settings.save()
    request = retirement_request(
        actor=Actor.for_user(people.employee),
        device=people.device_a,
        action=RetirementAction.RETIRE,
        source=RetirementSource.PORTAL,
    )
    assert request.status == Status.COMMAND_SENT
    with pytest.raises(PermissionDenied, match="only remove your own"):
        retirement_request(
            actor=Actor.for_user(people.employee),
            device=people.device_b,
            action=RetirementAction.RETIRE,
            source=RetirementSource.PORTAL,
        )


def test_cancel_returns_the_device_to_enrolled(admins):
    device = DeviceFactory()
    request = retirement_cancel(actor=Actor.for_user(admins[1]), request=ask(admins[0], device), reason="Wrong device")
    assert request.status == Status.CANCELLED
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.ENROLLED
    assert DeviceCommand.objects.get(pk=request.command_id).status == CommandStatus.CANCELLED
    # A new request can be made.
    assert ask(admins[0], device).status == Status.COMMAND_SENT


def test_installs_still_queued_are_withdrawn_when_the_retirement_is_dispatched(admins):
    from devices.services import desired_state_commands_queue

    device = DeviceFactory()
    [install] = desired_state_commands_queue(
        commands=[
            DeviceCommand(device=device, command_type=CommandType.INSTALL_APP, payload={"app": "x", "version": "1"},
                          subject="app:x", requested_by_label="tests")
        ]
    )  # fmt: skip
    request = ask(admins[0], device)
    install.refresh_from_db()
    assert install.status == CommandStatus.CANCELLED
    assert DeviceCommand.objects.get(pk=request.command_id).status == CommandStatus.QUEUED


# The device's answer --------------------------------------------------------------------------------


def test_a_clean_report_verifies_and_unenrols(admins):
    device = DeviceFactory()
    give_managed_set(device)
    request = ask(admins[0], device)
    answer(device, request, data=clean_report())
    request.refresh_from_db()
    device.refresh_from_db()
    assert request.status == Status.UNENROLLED
    assert request.verified_at and request.unenrolled_at and request.leftovers == []
    assert request.after_inventory["installed_apps"] == [{"identifier": "com.spotify.client", "name": "Spotify"}]
    assert device.lifecycle_state == LifecycleState.RETIRED


def test_leftovers_fail_the_request_and_are_named(admins):
    device = DeviceFactory()
    app, _ = give_managed_set(device)
    request = ask(admins[0], device)
    answer(
        device,
        request,
        data={"installed_apps": [{"identifier": app.identifier}], "profiles": [], "corporate_data": {"accounts": True}},
    )
    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.leftovers == [
        {"kind": "app", "identifier": app.identifier, "name": "Outlook"},
        {"kind": "corporate_data", "identifier": "accounts", "name": "Corporate e-mail and accounts"},
    ]
    assert "Outlook (app)" in request.failure_reason
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.ENROLLED


def test_without_auto_unenrol_it_waits_for_it(admins, retirement_settings):
    retirement_settings.auto_unenroll = False
    retirement_settings.save()
    device = DeviceFactory()
    request = ask(admins[0], device)
    answer(device, request, data=clean_report())
    request.refresh_from_db()
    device.refresh_from_db()
    assert (request.status, device.lifecycle_state) == (Status.VERIFIED, LifecycleState.RETIRING)
    retirement_unenroll(actor=Actor.for_user(admins[1]), request=request)
    request.refresh_from_db()
    device.refresh_from_db()
    assert (request.status, device.lifecycle_state) == (Status.UNENROLLED, LifecycleState.RETIRED)


def test_an_error_answer_fails_with_the_devices_reason(admins):
    device = DeviceFactory()
    request = ask(admins[0], device)
    answer(device, request, status="error", error="The user removed device administrator rights.")
    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.failure_reason == "The device reported: The user removed device administrator rights."


# Offline devices ------------------------------------------------------------------------------------


def test_offline_timeout_then_forced_unenrolment(admins, retirement_settings, scope_a):
    retirement_settings.offline_timeout_days = 7
    retirement_settings.save()
    device = DeviceFactory(scope=scope_a)
    request = ask(admins[0], device)
    with time_machine.travel(timezone.now() + timedelta(days=6)):
        assert retirement_timeouts_flag() == 0
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert retirement_timeouts_flag() == 1
        assert retirement_timeouts_flag() == 0
    request.refresh_from_db()
    assert request.status == Status.TIMED_OUT and request.timed_out_at
    assert AuditEvent.objects.filter(verb="retirement.timed_out", changes__requests=[str(request.uuid)]).exists()

    helpdesk = StaffFactory(username="helpdesk")
    grant(helpdesk, "Helpdesk operator", [scope_a])
    with pytest.raises(PermissionDenied):
        retirement_force(actor=Actor.for_user(helpdesk), request=request, reason="Lost")
    with pytest.raises(ValidationError, match="Say why"):
        retirement_force(actor=Actor.for_user(admins[1]), request=request, reason=" ")

    retirement_force(actor=Actor.for_user(admins[1]), request=request, reason="Laptop stolen, police report 42")
    request.refresh_from_db()
    device.refresh_from_db()
    assert (request.status, request.forced_by, request.forced_reason) == (
        Status.FORCED,
        admins[1],
        "Laptop stolen, police report 42",
    )
    assert request.verified_at is None and request.unenrolled_at
    assert device.lifecycle_state == LifecycleState.RETIRED
    assert DeviceCommand.objects.get(pk=request.command_id).status == CommandStatus.CANCELLED
    # The device answers later: the closed request keeps its forced state.
    answer(device, request, data=clean_report())
    request.refresh_from_db()
    assert request.status == Status.FORCED


def test_a_late_answer_after_the_timeout_still_verifies(admins):
    device = DeviceFactory()
    request = ask(admins[0], device)
    with time_machine.travel(timezone.now() + timedelta(days=30)):
        retirement_timeouts_flag()
        answer(device, request, data=clean_report())
    request.refresh_from_db()
    assert request.status == Status.UNENROLLED


def test_system_sources_act_without_a_person(db):
    device = DeviceFactory()
    request = retirement_request(
        actor=SYSTEM, device=device, action=RetirementAction.RETIRE, source=RetirementSource.CLEANUP
    )
    assert request.status == Status.COMMAND_SENT and request.requested_by is None
