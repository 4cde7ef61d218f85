"""The agent protocol over real HTTP, with the agent's own client code as the device."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agent.client import DeviceRetired, ProtocolError
from devices import lifecycle
from devices.choices import CommandStatus, EnrollmentMethod, LifecycleState, Ownership
from devices.models import Device, DeviceCommand, DeviceInventory
from devices.services import device_command_queue, device_commands_expire
from devices.services.commands import RESEND_AFTER, device_commands_resend_due
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM

from .conftest import identity, inventory

pytestmark = pytest.mark.django_db(transaction=True)


def test_enrol_with_a_bulk_token_applies_the_profile_defaults(agent, token, profile_and_token, scope_a):
    profile = profile_and_token[0]
    client = agent()
    reply = client.enroll(token, device=identity(), inventory=inventory())
    assert reply["checkin_interval_seconds"] == 900
    assert reply["device_secret"].startswith("dsk_")
    device = Device.objects.get(uuid=reply["device_id"])
    assert device.lifecycle_state == LifecycleState.ENROLLED
    assert (device.scope, device.ownership, device.enrollment_method) == (
        scope_a,
        Ownership.CORPORATE,
        EnrollmentMethod.ADMIN_BULK,
    )
    assert device.enrollment_profile == profile
    assert device.agent_secret_hash and reply["device_secret"] not in device.agent_secret_hash
    assert DeviceInventory.objects.get(device=device).installed_apps[0]["identifier"] == "com.microsoft.teams"
    profile.refresh_from_db()
    assert profile.use_count == 1
    assert AuditEvent.objects.filter(verb="device.enroll", target_id=str(device.pk)).exists()
    # The secret appears in no audit record.
    assert not AuditEvent.objects.filter(changes__icontains=reply["device_secret"][-20:]).exists()


def test_checkin_without_change_writes_only_the_checkin_time(agent, token):
    client = agent()
    reply = client.enroll(token, device=identity(), inventory=inventory())
    device = Device.objects.get(uuid=reply["device_id"])
    stored = DeviceInventory.objects.get(device=device)
    first_checkin = device.last_checkin_at

    assert client.checkin(inventory()) == {"checkin_interval_seconds": 900, "commands": []}
    device.refresh_from_db()
    assert device.last_checkin_at > first_checkin
    assert DeviceInventory.objects.get(device=device).reported_at == stored.reported_at

    client.checkin(inventory(os_version="15", encrypted=False))
    device.refresh_from_db()
    assert device.os_version == "15"
    changed = DeviceInventory.objects.get(device=device)
    assert changed.encrypted is False
    assert changed.reported_at > stored.reported_at


def test_commands_are_delivered_in_priority_order_and_acknowledged_once(agent, token):
    client = agent()
    reply = client.enroll(token, device=identity(), inventory=inventory())
    device = Device.objects.get(uuid=reply["device_id"])
    sync = device_command_queue(actor=SYSTEM, device=device, command_type="sync")
    lock = device_command_queue(actor=SYSTEM, device=device, command_type="lock", params={"message": "Lost?"})
    rename = device_command_queue(actor=SYSTEM, device=device, command_type="rename", params={"name": "SCANNER-99"})

    commands = client.checkin(inventory())["commands"]
    assert [c["type"] for c in commands] == ["lock", "sync", "rename"]
    assert commands[0]["payload"] == {"message": "Lost?", "phone_number": ""}
    # Sent, not answered: not handed out again on the next check-in.
    assert client.checkin(inventory())["commands"] == []

    results = [
        {"id": str(lock.uuid), "status": "acknowledged"},
        {"id": str(sync.uuid), "status": "error", "error": "Busy installing an update."},
        {"id": str(rename.uuid), "status": "acknowledged"},
        {"id": "00000000-0000-4000-8000-000000000000", "status": "acknowledged"},
    ]
    answer = client.report_results(results)
    assert sorted(answer["accepted"]) == sorted([str(lock.uuid), str(sync.uuid), str(rename.uuid)])
    assert answer["unknown"] == ["00000000-0000-4000-8000-000000000000"]
    # Reporting again is harmless: the first answer stands.
    client.report_results([{"id": str(sync.uuid), "status": "acknowledged"}])
    statuses = dict(DeviceCommand.objects.values_list("command_type", "status"))
    assert statuses == {"lock": "acknowledged", "sync": "error", "rename": "acknowledged"}
    assert DeviceCommand.objects.get(pk=sync.pk).error == "Busy installing an update."
    device.refresh_from_db()
    assert device.name == "SCANNER-99"


def test_unanswered_command_is_sent_again_then_expires(agent, token):
    client = agent()
    device = Device.objects.get(uuid=client.enroll(token, device=identity(), inventory=inventory())["device_id"])
    command = device_command_queue(actor=SYSTEM, device=device, command_type="sync")
    assert len(client.checkin(inventory())["commands"]) == 1
    DeviceCommand.objects.filter(pk=command.pk).update(sent_at=timezone.now() - RESEND_AFTER - timedelta(seconds=1))
    assert client.checkin(inventory())["commands"] == []  # not before the resend sweep lines it up
    assert device_commands_resend_due() == 1
    again = client.checkin(inventory())["commands"]
    assert [c["id"] for c in again] == [str(command.uuid)]
    assert DeviceCommand.objects.get(pk=command.pk).send_count == 2

    DeviceCommand.objects.filter(pk=command.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    assert device_commands_expire() == 1
    assert DeviceCommand.objects.get(pk=command.pk).status == CommandStatus.EXPIRED
    assert client.checkin(inventory())["commands"] == []


def test_not_now_is_sent_again_at_the_next_checkin(agent, token):
    client = agent()
    device = Device.objects.get(uuid=client.enroll(token, device=identity(), inventory=inventory())["device_id"])
    command = device_command_queue(actor=SYSTEM, device=device, command_type="restart")
    client.checkin(inventory())
    client.report_results([{"id": str(command.uuid), "status": "not_now", "error": "On a call."}])
    assert [c["id"] for c in client.checkin(inventory())["commands"]] == [str(command.uuid)]


def test_secret_rotation_retires_the_old_secret_at_once(agent, token):
    client = agent()
    client.enroll(token, device=identity(), inventory=inventory())
    old = client.secret
    new = client.rotate_secret()
    assert new != old
    assert client.checkin(inventory())["commands"] == []
    stale = agent(secret=old)
    with pytest.raises(ProtocolError) as refused:
        stale.checkin(inventory())
    assert (refused.value.status, refused.value.code) == (401, "invalid_credentials")


def test_a_retired_device_is_told_so(agent, token):
    client = agent()
    device = Device.objects.get(uuid=client.enroll(token, device=identity(), inventory=inventory())["device_id"])
    lifecycle.start_retirement(device, actor=SYSTEM)
    lifecycle.finish_retirement(device, actor=SYSTEM)
    with pytest.raises(DeviceRetired) as retired:
        client.checkin(inventory())
    assert retired.value.status == 410
    assert "retired" in retired.value.message


def test_device_actor_is_recorded_for_results(agent, token):
    client = agent()
    device = Device.objects.get(uuid=client.enroll(token, device=identity(), inventory=inventory())["device_id"])
    command = device_command_queue(actor=Actor.system("test"), device=device, command_type="sync")
    client.checkin(inventory())
    client.report_results([{"id": str(command.uuid), "status": "acknowledged"}])
    event = AuditEvent.objects.get(verb="device.command.sync.acknowledged")
    assert event.actor_type == "device"
    assert str(device.uuid) in event.actor_label
