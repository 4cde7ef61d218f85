"""The profile fan-out: targeting, deliveries, desired-state commands, conflicts, removal, secrets."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import CommandStatus, CommandType, LifecycleState, Ownership, Platform
from devices.models import DeviceCommand
from devices.services import device_command_results_record, device_commands_deliver
from mdm_portal.core.models import AuditEvent, UserGroup
from policies.choices import DeliveryState, ProfileKind
from policies.models import ProfileDelivery
from policies.services import profiles as profile_services
from policies.services.profiles import device_profiles_sync, profile_fanout, profile_resend_failed, profile_save
from tests.factories import SYSTEM, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

WIFI_PASSWORD = "correct horse battery"


def group_with(*users, name="Sales"):
    group = UserGroup.objects.create(name=name)
    group.members.add(*users)
    return group


def passcode(name="Passcode", min_length=6, scope=None, assignments=(), **data):
    return profile_save(
        actor=SYSTEM,
        data={"name": name, "kind": ProfileKind.PASSCODE, "scope": scope, **data},
        settings={"require_passcode": True, "min_length": min_length},
        assignments=list(assignments),
    )


def deliveries(profile):
    return {d.device_id: d for d in ProfileDelivery.objects.filter(profile=profile)}


def open_commands(device, command_type=CommandType.INSTALL_PROFILE):
    return list(
        DeviceCommand.objects.filter(
            device=device, command_type=command_type, status__in=[CommandStatus.QUEUED, CommandStatus.SENT]
        )
    )


def ack(device, command, ok=True, error=""):
    device.refresh_from_db()
    device_commands_deliver(device=device)
    result = {"id": str(command.uuid), "status": "acknowledged" if ok else "error"}
    if error:
        result["error"] = error
    device_command_results_record(device=device, results=[result])


@pytest.fixture
def fleet(scope_a, scope_b):
    alice, bob, carol = UserFactory(scope=scope_a), UserFactory(scope=scope_a), UserFactory(scope=scope_b)
    return {
        "alice_ios": DeviceFactory(scope=scope_a, primary_user=alice, platform=Platform.IOS),
        "alice_android": DeviceFactory(scope=scope_a, primary_user=alice, platform=Platform.ANDROID, os_version="14"),
        "bob_ios": DeviceFactory(scope=scope_a, primary_user=bob, platform=Platform.IOS),
        "bob_pending": DeviceFactory(scope=scope_a, primary_user=bob, state=LifecycleState.PENDING),
        "carol_ios": DeviceFactory(scope=scope_b, primary_user=carol, platform=Platform.IOS),
        "users": (alice, bob, carol),
    }


def test_user_group_include_reaches_enrolled_members_devices_in_the_profiles_scope(fleet, scope_a):
    alice, bob, carol = fleet["users"]
    group = group_with(alice, bob, carol)
    profile = passcode(scope=scope_a, assignments=[{"target": "user_group", "user_group": group.pk}])
    profile_fanout(profile.pk)
    got = deliveries(profile)
    # Carol's device is in scope B, Bob's pending one is not enrolled: neither receives it.
    assert set(got) == {fleet["alice_ios"].pk, fleet["alice_android"].pk, fleet["bob_ios"].pk}
    assert {d.state for d in got.values()} == {DeliveryState.PENDING}
    for device_id, delivery in got.items():
        (command,) = DeviceCommand.objects.filter(device_id=device_id, command_type=CommandType.INSTALL_PROFILE)
        assert delivery.command_id == command.pk
        assert command.payload == {"profile": str(profile.uuid), "version": 1}
        assert command.subject == f"profile:{profile.uuid}"


def test_exclude_and_filters_narrow_the_include(fleet):
    _, bob, _ = fleet["users"]
    profile = passcode(
        assignments=[
            {"target": "all_devices", "filter_platforms": ["ios"]},
            {"mode": "exclude", "target": "user_group", "user_group": group_with(bob, name="Exec").pk},
        ]
    )
    profile_fanout(profile.pk)
    assert set(deliveries(profile)) == {fleet["alice_ios"].pk, fleet["carol_ios"].pk}


def test_no_include_targets_nobody(fleet):
    profile = passcode(assignments=[{"mode": "exclude", "target": "all_devices"}])
    profile_fanout(profile.pk)
    assert deliveries(profile) == {}


def test_bad_assignment_row_writes_nothing(fleet):
    with pytest.raises(ValidationError) as exc:
        passcode(assignments=[{"target": "all_devices"}, {"target": "user_group"}, {"target": "nonsense"}])
    messages = exc.value.message_dict["assignments"]
    assert any(m.startswith("Assignment 2: user_group") for m in messages)
    assert any(m.startswith("Assignment 3: target") for m in messages)
    assert not ProfileDelivery.objects.exists()
    from policies.models import ConfigurationProfile

    assert not ConfigurationProfile.objects.exists()


def test_device_acknowledges_then_a_settings_change_replaces_the_open_command(fleet):
    device = fleet["alice_ios"]
    profile = passcode(assignments=[{"target": "all_devices"}])
    profile_fanout(profile.pk)
    (first,) = open_commands(device)
    ack(device, first)
    assert deliveries(profile)[device.pk].state == DeliveryState.SUCCEEDED

    other = fleet["bob_ios"]
    (unsent,) = open_commands(other)
    profile = profile_save(actor=SYSTEM, profile=profile, data={}, settings={"require_passcode": True, "min_length": 8})
    assert profile.version == 2
    profile_fanout(profile.pk)
    # Every device gets version 2; Bob's never-picked-up version 1 is cancelled, not sent after it.
    unsent.refresh_from_db()
    assert unsent.status == CommandStatus.CANCELLED
    for d in (device, other):
        (command,) = open_commands(d)
        assert command.payload["version"] == 2
        assert deliveries(profile)[d.pk].state == DeliveryState.PENDING


def test_unchanged_fanout_queues_nothing_twice(fleet):
    profile = passcode(assignments=[{"target": "all_devices"}])
    profile_fanout(profile.pk)
    before = DeviceCommand.objects.count()
    counts = profile_fanout(profile.pk, reason="again")
    assert DeviceCommand.objects.count() == before
    assert counts.get("pending", 0) == 0


def test_error_is_recorded_with_the_devices_reason_and_resend_failed_requeues(fleet):
    device = fleet["alice_ios"]
    profile = passcode(assignments=[{"target": "all_devices"}])
    profile_fanout(profile.pk)
    (command,) = open_commands(device)
    ack(device, command, ok=False, error="The passcode policy conflicts with an Exchange policy.")
    delivery = deliveries(profile)[device.pk]
    assert delivery.state == DeliveryState.ERROR
    assert delivery.reason == "The passcode policy conflicts with an Exchange policy."
    assert profile_resend_failed(actor=SYSTEM, profile=profile) == 1
    (again,) = open_commands(device)
    assert again.pk != command.pk
    delivery.refresh_from_db()
    assert (delivery.state, delivery.command_id) == (DeliveryState.PENDING, again.pk)


def test_a_late_answer_to_a_replaced_command_does_not_overwrite_the_delivery(fleet):
    device = fleet["alice_ios"]
    profile = passcode(assignments=[{"target": "all_devices"}])
    profile_fanout(profile.pk)
    (old,) = open_commands(device)
    device.refresh_from_db()
    device_commands_deliver(device=device)  # version 1 is on its way
    profile = profile_save(actor=SYSTEM, profile=profile, data={}, settings={"require_passcode": True, "min_length": 9})
    profile_fanout(profile.pk)
    device_command_results_record(device=device, results=[{"id": str(old.uuid), "status": "error", "error": "late"}])
    assert deliveries(profile)[device.pk].state == DeliveryState.PENDING


def test_unassigning_removes_the_profile_from_devices_that_hold_it(fleet):
    device, other = fleet["alice_ios"], fleet["bob_ios"]
    profile = passcode(assignments=[{"target": "all_devices"}])
    profile_fanout(profile.pk)
    (command,) = open_commands(device)
    ack(device, command)
    profile_services.profile_assignments_set(
        actor=SYSTEM, profile=profile, rows=[{"target": "all_devices", "filter_platforms": ["android"]}]
    )
    profile_fanout(profile.pk)
    assert set(deliveries(profile)) == {fleet["alice_android"].pk}
    (removal,) = open_commands(device, CommandType.REMOVE_PROFILE)
    assert removal.payload["profile"] == str(profile.uuid)
    # Bob's device never acknowledged: its open install is replaced by the removal, not left to run.
    assert open_commands(other) == []
    assert len(open_commands(other, CommandType.REMOVE_PROFILE)) == 1


def test_two_profiles_setting_one_setting_differently_conflict_and_both_say_so(fleet):
    device = fleet["alice_ios"]
    first = passcode("Passcode six", min_length=6, assignments=[{"target": "all_devices", "filter_platforms": ["ios"]}])
    profile_fanout(first.pk)
    ack(device, open_commands(device)[0])
    second = passcode(
        "Passcode ten",
        min_length=10,
        assignments=[{"target": "user_group", "user_group": group_with(fleet["users"][0]).pk}],
    )
    profile_fanout(second.pk)
    mine = deliveries(second)[device.pk]
    assert mine.state == DeliveryState.CONFLICT
    assert "'Passcode six'" in mine.reason and "Minimum length" in mine.reason
    assert deliveries(first)[device.pk].state == DeliveryState.CONFLICT
    # The conflicting profile is not sent; devices only the first profile reaches are untouched.
    assert [c.payload["profile"] for c in open_commands(device)] == []
    assert deliveries(first)[fleet["bob_ios"].pk].state == DeliveryState.PENDING

    # Agreeing on the value resolves it for both, without anyone resolving it by hand.
    profile_save(actor=SYSTEM, profile=second, data={}, settings={"require_passcode": True, "min_length": 6})
    profile_fanout(second.pk)
    assert deliveries(second)[device.pk].state == DeliveryState.PENDING
    assert deliveries(first)[device.pk].state == DeliveryState.PENDING


def test_wifi_profiles_for_different_networks_do_not_conflict(fleet):
    device = fleet["alice_ios"]
    for ssid in ("Office", "Warehouse"):
        profile = profile_save(
            actor=SYSTEM,
            data={"name": ssid, "kind": ProfileKind.WIFI},
            settings={"ssid": ssid, "security": "wpa2", "password": WIFI_PASSWORD},
            assignments=[{"target": "all_devices"}],
        )
        profile_fanout(profile.pk)
    assert set(ProfileDelivery.objects.filter(device=device).values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_a_profile_nothing_of_which_the_platform_can_express_is_not_applicable(fleet):
    profile = profile_save(
        actor=SYSTEM,
        data={"name": "Mail", "kind": ProfileKind.EMAIL},
        settings={"account_type": "imap", "account_name": "Mail", "host": "imap.example.com"},
        assignments=[{"target": "all_devices", "filter_platforms": ["android"]}],
    )
    profile_fanout(profile.pk)
    delivery = deliveries(profile)[fleet["alice_android"].pk]
    assert delivery.state == DeliveryState.NOT_APPLICABLE
    assert delivery.not_applicable and all(item["reason"] for item in delivery.not_applicable)
    assert open_commands(fleet["alice_android"]) == []


def test_wifi_password_reaches_the_device_and_nothing_else(fleet, client):
    device = fleet["alice_ios"]
    profile = profile_save(
        actor=SYSTEM,
        data={"name": "Office Wi-Fi", "kind": ProfileKind.WIFI},
        settings={"ssid": "Office", "security": "wpa2", "password": WIFI_PASSWORD},
        assignments=[{"target": "all_devices"}],
    )
    profile_fanout(profile.pk)
    assert WIFI_PASSWORD not in profile.secret_settings
    assert WIFI_PASSWORD not in json.dumps(list(DeviceCommand.objects.values("payload")))
    assert WIFI_PASSWORD not in json.dumps(list(AuditEvent.objects.values("changes")), default=str)
    device.refresh_from_db()
    (delivered,) = [c for c in device_commands_deliver(device=device) if c["type"] == CommandType.INSTALL_PROFILE]
    assert delivered["payload"]["format"] == "apple-mobileconfig"
    assert WIFI_PASSWORD in delivered["payload"]["content"]
    assert "password" not in delivered["payload"]["settings"]


def test_a_blank_secret_keeps_the_stored_one(fleet):
    profile = profile_save(
        actor=SYSTEM,
        data={"name": "Office Wi-Fi", "kind": ProfileKind.WIFI},
        settings={"ssid": "Office", "security": "wpa2", "password": WIFI_PASSWORD},
    )
    profile = profile_save(
        actor=SYSTEM, profile=profile, data={}, settings={"ssid": "Office", "security": "wpa2", "password": ""}
    )
    assert profile.version == 1  # nothing changed
    assert profile_services.profile_spec(profile).secrets == {"password": WIFI_PASSWORD}


def test_a_device_enrolling_receives_its_profiles_in_the_enrolment_reply(fleet, scope_a):
    alice = fleet["users"][0]
    profile = passcode(assignments=[{"target": "user_group", "user_group": group_with(alice).pk}])
    new = DeviceFactory(scope=scope_a, primary_user=alice, platform=Platform.IOS, state=LifecycleState.ENROLLED)
    (command,) = open_commands(new)
    assert command.payload["profile"] == str(profile.uuid)
    new.refresh_from_db()
    assert [c["payload"]["name"] for c in device_commands_deliver(device=new)] == ["Passcode"]
    assert device_profiles_sync(new) == 1  # idempotent: already pending, nothing queued again
    assert len(open_commands(new)) == 1


def test_corporate_only_filter(fleet, scope_a):
    personal = DeviceFactory(scope=scope_a, ownership=Ownership.PERSONAL, platform=Platform.IOS)
    profile = passcode(assignments=[{"target": "all_devices", "filter_ownership": "corporate"}])
    profile_fanout(profile.pk)
    assert personal.pk not in deliveries(profile)
    assert fleet["alice_ios"].pk in deliveries(profile)


def _fanout_queries(scope, n_devices, monkeypatch):
    from devices.models import Device

    Device.objects.all().delete()
    for i in range(n_devices):
        DeviceFactory(scope=scope, platform=Platform.IOS if i % 2 else Platform.ANDROID)
    monkeypatch.setattr(profile_services, "FANOUT_BATCH", 5)
    profile = passcode(name=f"P{n_devices}", assignments=[{"target": "all_devices"}])
    with CaptureQueriesContext(connection) as ctx:
        profile_fanout(profile.pk, recheck_related=False)
    assert ProfileDelivery.objects.filter(profile=profile).count() == n_devices
    return len(ctx.captured_queries)


def test_fanout_queries_grow_with_batches_not_devices(scope_a, monkeypatch):
    # From the second profile on, each run also loads the other profiles it could conflict with, once.
    _fanout_queries(scope_a, 5, monkeypatch)
    three, five, seven = (_fanout_queries(scope_a, n, monkeypatch) for n in (15, 25, 35))
    assert seven - five == five - three  # the same cost for every batch of 5 devices, whatever the fleet
    assert (five - three) / 2 <= 12


def test_a_user_joining_a_targeted_group_receives_the_profile(fleet, django_capture_on_commit_callbacks):
    from mdm_portal.core.services import user_group_save

    alice, bob, _ = fleet["users"]
    group = group_with(alice)
    profile = passcode(assignments=[{"target": "user_group", "user_group": group.pk}])
    profile_fanout(profile.pk)
    assert fleet["bob_ios"].pk not in deliveries(profile)
    with django_capture_on_commit_callbacks(execute=True):
        user_group_save(actor=SYSTEM, group=group, name=group.name, members=[alice, bob])
    assert deliveries(profile)[fleet["bob_ios"].pk].state == DeliveryState.PENDING


def test_a_device_group_rule_change_retargets(fleet, scope_a, django_capture_on_commit_callbacks):
    from devices.choices import GroupMembershipType
    from devices.services import device_group_rules_set, device_group_save

    group = device_group_save(actor=SYSTEM, name="Androids", scope=scope_a, membership_type=GroupMembershipType.DYNAMIC)
    device_group_rules_set(actor=SYSTEM, group=group, rules=[("platform", "android")])
    profile = passcode(assignments=[{"target": "device_group", "device_group": group.pk}])
    profile_fanout(profile.pk)
    assert set(deliveries(profile)) == {fleet["alice_android"].pk}
    with django_capture_on_commit_callbacks(execute=True):
        device_group_rules_set(actor=SYSTEM, group=group, rules=[("platform", "ios")])
    assert set(deliveries(profile)) == {fleet["alice_ios"].pk, fleet["bob_ios"].pk}
