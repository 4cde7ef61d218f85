"""Regressions found in review: bounded resend, quiet no-op fan-outs, one open command per subject."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import CommandStatus, CommandType, Platform
from devices.models import DeviceCommand
from devices.services import device_command_results_record, device_commands_deliver
from mdm_portal.core.models import AuditEvent
from policies.choices import ProfileKind
from policies.services.profiles import profile_fanout, profile_resend_failed, profile_save
from tests.factories import SYSTEM, DeviceFactory

pytestmark = pytest.mark.django_db


def passcode():
    return profile_save(
        actor=SYSTEM,
        data={"name": "Passcode", "kind": ProfileKind.PASSCODE},
        settings={"require_passcode": True, "min_length": 6},
        assignments=[{"target": "all_devices"}],
    )


def fail_everywhere(profile, devices):
    for device in devices:
        device.refresh_from_db()
        device_commands_deliver(device=device)
        (command,) = DeviceCommand.objects.filter(device=device, command_type=CommandType.INSTALL_PROFILE)
        device_command_results_record(
            device=device, results=[{"id": str(command.uuid), "status": "error", "error": "no"}]
        )


def resend_queries(scope, n):
    devices = [DeviceFactory(scope=scope, platform=Platform.IOS) for _ in range(n)]
    profile = passcode()
    profile_fanout(profile.pk)
    fail_everywhere(profile, devices)
    with CaptureQueriesContext(connection) as ctx:
        assert profile_resend_failed(actor=SYSTEM, profile=profile) == n
    profile.delete()
    return len(ctx.captured_queries)


def test_resend_failed_costs_the_same_for_2_and_20_devices(scope_a):
    assert resend_queries(scope_a, 2) == resend_queries(scope_a, 20)


def test_a_fanout_that_changes_nothing_writes_no_audit_event(scope_a):
    DeviceFactory(scope=scope_a)
    profile = passcode()
    profile_fanout(profile.pk)
    before = AuditEvent.objects.filter(verb="profile.fanout").count()
    assert profile_fanout(profile.pk, reason="hourly") == {}
    assert AuditEvent.objects.filter(verb="profile.fanout").count() == before


def test_queueing_the_same_subject_twice_leaves_one_open_command(scope_a):
    from devices.services import desired_state_commands_queue

    device = DeviceFactory(scope=scope_a)
    for _ in range(2):
        desired_state_commands_queue(
            commands=[
                DeviceCommand(
                    device=device, command_type=CommandType.NOTIFY, payload={"message": "hi"}, subject="test:1",
                    requested_by_label="tests",
                )
            ]
        )  # fmt: skip
    states = list(DeviceCommand.objects.filter(device=device, subject="test:1").values_list("status", flat=True))
    assert sorted(states) == sorted([CommandStatus.QUEUED, CommandStatus.CANCELLED])


def test_an_app_of_another_scopes_catalog_cannot_be_registered_for_protection(scope_a, scope_b):
    from apps.choices import AppKind
    from apps.services import app_save
    from apps.services.mam import MamError, app_instance_register
    from tests.factories import UserFactory

    app_save(
        actor=SYSTEM,
        data={"name": "Outlook", "kind": AppKind.STORE, "platform": Platform.IOS, "scope": scope_a,
              "identifier": "com.microsoft.Office.Outlook"},
    )  # fmt: skip
    with pytest.raises(MamError) as refused:
        app_instance_register(
            user=UserFactory(scope=scope_b), app_identifier="com.microsoft.Office.Outlook", platform=Platform.IOS
        )
    assert refused.value.code == "app_not_managed"
    instance, _ = app_instance_register(
        user=UserFactory(scope=scope_a), app_identifier="com.microsoft.Office.Outlook", platform=Platform.IOS
    )
    assert instance.app.scope_id == scope_a.pk
