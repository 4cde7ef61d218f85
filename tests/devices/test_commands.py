"""Device actions: eligibility, input validation, bulk queueing, secrets kept out of the audit trail."""

import pytest
from django.core.exceptions import ValidationError

from devices.choices import CommandStatus, LifecycleState, Ownership, Platform
from devices.models import DeviceCommand
from devices.selectors import device_list
from devices.services import device_command_cancel, device_command_queue, device_command_queue_bulk
from devices.services.commands import device_command_results_record
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory

pytestmark = pytest.mark.django_db


def test_unknown_command_is_refused_with_the_list(scope_a):
    device = DeviceFactory(scope=scope_a)
    with pytest.raises(ValidationError, match="Use one of: lock, rename, reset_passcode, restart, sync"):
        device_command_queue(actor=SYSTEM, device=device, command_type="selfdestruct")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"message": "x" * 201}, "at most 200"),
        ({"phone_number": "call me"}, "only digits"),
        ({"colour": "red"}, "does not take colour"),
    ],
)
def test_lock_input_is_validated(scope_a, params, message):
    device = DeviceFactory(scope=scope_a)
    with pytest.raises(ValidationError, match=message):
        device_command_queue(actor=SYSTEM, device=device, command_type="lock", params=params)
    assert not DeviceCommand.objects.exists()


def test_pending_and_retired_devices_get_no_commands(scope_a):
    for state in (LifecycleState.PENDING, LifecycleState.RETIRED):
        device = DeviceFactory(scope=scope_a, state=state)
        with pytest.raises(ValidationError, match="not enrolled"):
            device_command_queue(actor=SYSTEM, device=device, command_type="sync")


def test_restart_on_a_personal_iphone_is_not_available(scope_a):
    device = DeviceFactory(scope=scope_a, platform=Platform.IOS, ownership=Ownership.PERSONAL)
    with pytest.raises(ValidationError, match="only on corporate"):
        device_command_queue(actor=SYSTEM, device=device, command_type="restart")


def test_reset_passcode_is_not_offered_on_linux(scope_a):
    device = DeviceFactory(scope=scope_a, platform=Platform.LINUX, os_version="12")
    with pytest.raises(ValidationError, match="not available on Linux"):
        device_command_queue(actor=SYSTEM, device=device, command_type="reset_passcode")


def test_new_passcode_never_reaches_the_audit_trail_and_is_cleared_when_done(scope_a):
    device = DeviceFactory(scope=scope_a, platform=Platform.ANDROID)
    command = device_command_queue(
        actor=SYSTEM, device=device, command_type="reset_passcode", params={"new_passcode": "482913"}
    )
    assert command.payload == {"new_passcode": "482913"}
    assert not AuditEvent.objects.filter(changes__icontains="482913").exists()
    device_command_results_record(device=device, results=[{"id": str(command.uuid), "status": "acknowledged"}])
    command.refresh_from_db()
    assert command.payload == {}
    assert command.status == CommandStatus.ACKNOWLEDGED


def test_iphone_passcode_reset_clears_the_passcode(scope_a):
    device = DeviceFactory(scope=scope_a, platform=Platform.IOS)
    command = device_command_queue(actor=SYSTEM, device=device, command_type="reset_passcode")
    assert command.payload == {"clear": True}


def test_bulk_queue_is_set_based_and_skips_ineligible_devices(scope_a, scope_b, people, django_assert_max_num_queries):
    for n in range(30):
        DeviceFactory(
            scope=scope_a, platform=Platform.IOS, ownership=Ownership.PERSONAL if n % 3 == 0 else Ownership.CORPORATE
        )
    DeviceFactory(scope=scope_b)
    events = AuditEvent.objects.count()
    devices = device_list(user=people.helpdesk_a)  # scope A only: 30 + the people fixture's one
    with django_assert_max_num_queries(8):
        outcome = device_command_queue_bulk(actor=SYSTEM, devices=devices, command_type="restart")
    assert {k: outcome[k] for k in ("queued", "skipped")} == {"queued": 21, "skipped": 10}
    assert DeviceCommand.objects.filter(batch=outcome["batch"]).count() == 21
    assert DeviceCommand.objects.filter(device__scope=scope_b).count() == 0
    assert AuditEvent.objects.count() == events + 1


def test_only_a_queued_command_can_be_cancelled(scope_a):
    device = DeviceFactory(scope=scope_a)
    command = device_command_queue(actor=SYSTEM, device=device, command_type="sync")
    device_command_cancel(actor=SYSTEM, command=command)
    assert DeviceCommand.objects.get(pk=command.pk).status == CommandStatus.CANCELLED
    with pytest.raises(ValidationError, match="only a queued command"):
        device_command_cancel(actor=SYSTEM, command=command)


def test_the_expiry_task_is_scheduled_and_expires(scope_a):
    from datetime import timedelta

    from django.utils import timezone

    from devices.tasks import commands_expire
    from mdm_portal.schedules import SCHEDULES

    assert "devices.tasks.commands_expire" in {s.task for s in SCHEDULES}
    device = DeviceFactory(scope=scope_a)
    command = device_command_queue(actor=SYSTEM, device=device, command_type="sync")
    DeviceCommand.objects.filter(pk=command.pk).update(deadline_at=timezone.now() - timedelta(minutes=1))
    assert commands_expire.apply().get() == 1
    assert DeviceCommand.objects.get(pk=command.pk).status == CommandStatus.EXPIRED
