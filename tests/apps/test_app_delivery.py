"""App delivery: targeting, the conflict rule, commands, results, supersedence, inventory reconciliation,
blocked apps in compliance, the Company Portal requests, and the fan-out's cost.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.choices import AppIntent, AppKind, InstallState
from apps.models import App, AppInstall
from apps.services import (
    app_assignments_set,
    app_delete,
    app_fanout,
    app_install_request,
    app_installs_retry_failed,
    app_save,
    app_uninstall_request,
    app_version_add,
    delivery,
    installs,
)
from apps.targeting import resolve
from devices.choices import CommandStatus, CommandType, ComplianceState, LifecycleState, Platform
from devices.models import Device, DeviceCommand
from devices.services import device_command_results_record, device_commands_deliver
from devices.services.checkin import device_checkin, inventory_digest
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import UserGroup
from policies.choices import ComplianceRule
from policies.models import ComplianceFailure
from tests.factories import SYSTEM, DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

TEAMS = "com.microsoft.teams"


def group_with(*users, name="Sales"):
    group = UserGroup.objects.create(name=name)
    group.members.add(*users)
    return group


def store_app(name="Teams", identifier=TEAMS, platform=Platform.IOS, assignments=(), version="1.0", **data):
    app = app_save(
        actor=SYSTEM,
        data={"name": name, "kind": AppKind.STORE, "platform": platform, "identifier": identifier, **data},
        assignments=list(assignments),
    )
    if version:
        app_version_add(actor=SYSTEM, app=app, version=version)
        app.refresh_from_db()
    return app


def rows(app):
    return {row.device_id: row for row in AppInstall.objects.filter(app=app)}


def open_commands(device, command_type=CommandType.INSTALL_APP):
    return list(
        DeviceCommand.objects.filter(
            device=device,
            command_type=command_type,
            status__in=[CommandStatus.QUEUED, CommandStatus.SENT, CommandStatus.NOT_NOW],
        )
    )


def answer(device, command, ok=True, error="", data=None):
    device.refresh_from_db()
    device_commands_deliver(device=device)
    result = {"id": str(command.uuid), "status": "acknowledged" if ok else "error"}
    if error:
        result["error"] = error
    if data:
        result["data"] = data
    device_command_results_record(device=device, results=[result])


def report(device, apps, **facts):
    """A check-in with this list of installed apps; returns the commands of the reply."""
    inventory = {"os_version": device.os_version, "encrypted": True, "installed_apps": apps, **facts}
    device.refresh_from_db()
    reply = device_checkin(device=device, inventory=inventory, digest=inventory_digest(inventory))
    return reply["commands"]


def app_entry(identifier=TEAMS, version="1.0"):
    return {"identifier": identifier, "name": identifier, "version": version}


OTHER_APP = app_entry("com.example.other", "3.1")


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


# -- required, exclude, uninstall, available ----------------------------------------------------------


def test_a_required_app_lands_on_every_targeted_device(fleet, scope_a):
    alice, bob, carol = fleet["users"]
    group = group_with(alice, bob, carol)
    app = store_app(
        scope=scope_a,
        store_id="1113153706",
        assignments=[{"target": "user_group", "user_group": group.pk, "intent": "required"}],
    )
    counts = app_fanout(app.pk)
    got = rows(app)
    # Carol's device is in scope B, Bob's pending one is not enrolled, Alice's Android is another platform.
    assert set(got) == {fleet["alice_ios"].pk, fleet["bob_ios"].pk}
    assert counts == {"pending": 2, "install_app_queued": 2}
    for device_id, row in got.items():
        (command,) = DeviceCommand.objects.filter(device_id=device_id, command_type=CommandType.INSTALL_APP)
        assert (row.state, row.intent, row.desired_version, row.command_id) == (
            InstallState.PENDING,
            AppIntent.REQUIRED,
            "1.0",
            command.pk,
        )
        assert command.payload == {"app": str(app.uuid), "version": "1.0"}
        assert command.subject == f"app:{app.uuid}"
    device = fleet["alice_ios"]
    device.refresh_from_db()
    (delivered,) = device_commands_deliver(device=device)
    assert delivered["payload"] == {
        "app": str(app.uuid),
        "name": "Teams",
        "kind": "store",
        "platform": "ios",
        "identifier": TEAMS,
        "version": "1.0",
        "store_id": "1113153706",
        "itunes_store_id": 1113153706,
    }
    # The answer makes it installed at the version the device reports.
    answer(device, open_commands(device)[0], data={"version": "1.0.1"})
    row = rows(app)[device.pk]
    assert (row.state, row.installed_version) == (InstallState.INSTALLED, "1.0.1")
    # Nothing changed: a second fan-out queues nothing.
    assert app_fanout(app.pk) == {}


def test_exclude_applies_to_every_intent(fleet):
    _, bob, _ = fleet["users"]
    app = store_app(
        assignments=[
            {"target": "all_devices", "intent": "required"},
            {"target": "all_devices", "intent": "available", "filter_ownership": "corporate"},
            {"mode": "exclude", "target": "user_group", "user_group": group_with(bob, name="Exec").pk},
        ]
    )
    app_fanout(app.pk)
    assert set(rows(app)) == {fleet["alice_ios"].pk, fleet["carol_ios"].pk}


def test_uninstall_removes_where_the_inventory_lists_it_or_where_apps_were_never_reported(fleet):
    has_it, lacks_it, silent = fleet["alice_ios"], fleet["bob_ios"], fleet["carol_ios"]
    report(has_it, [app_entry(version="0.9"), OTHER_APP])
    report(lacks_it, [OTHER_APP])
    app = store_app(assignments=[{"target": "all_devices", "intent": "uninstall"}])
    app_fanout(app.pk)
    got = rows(app)
    assert got[has_it.pk].state == InstallState.PENDING
    assert got[lacks_it.pk].state == InstallState.NOT_INSTALLED
    assert got[silent.pk].state == InstallState.PENDING  # never reported its apps: removal is harmless
    (removal,) = open_commands(has_it, CommandType.REMOVE_APP)
    assert removal.payload == {"app": str(app.uuid), "name": "Teams", "kind": "store", "identifier": TEAMS, "url": ""}
    assert open_commands(lacks_it, CommandType.REMOVE_APP) == []
    answer(has_it, removal)
    assert rows(app)[has_it.pk].state == InstallState.NOT_INSTALLED


def test_an_available_app_has_rows_only_once_the_owner_asks(fleet):
    alice = fleet["users"][0]
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "available"}])
    app_fanout(app.pk)
    assert rows(app) == {}
    owner = Actor.for_user(alice)

    with pytest.raises(ValidationError, match="Only the person this device belongs to"):
        app_install_request(actor=Actor.for_user(fleet["users"][1]), device=device, app=app)
    row = app_install_request(actor=owner, device=device, app=app)
    assert (row.state, row.intent, row.requested_by_user) == (InstallState.PENDING, AppIntent.AVAILABLE, True)
    (command,) = open_commands(device)
    # Asking twice while it is on its way queues nothing more.
    app_install_request(actor=owner, device=device, app=app)
    assert open_commands(device) == [command]
    answer(device, command)
    assert rows(app)[device.pk].state == InstallState.INSTALLED
    with pytest.raises(ValidationError, match="already installed"):
        app_install_request(actor=owner, device=device, app=app)

    app_uninstall_request(actor=owner, device=device, app=app)
    (removal,) = open_commands(device, CommandType.REMOVE_APP)
    answer(device, removal)
    row = rows(app)[device.pk]
    assert (row.state, row.requested_by_user) == (InstallState.NOT_INSTALLED, False)
    app_fanout(app.pk)  # the owner removed it: not reinstalled
    assert open_commands(device) == []


def test_the_portal_refuses_apps_that_are_not_available_with_a_sentence(fleet):
    alice = fleet["users"][0]
    owner = Actor.for_user(alice)
    required = store_app(
        "Outlook", "com.microsoft.outlook", assignments=[{"target": "all_devices", "intent": "required"}]
    )
    blocked = store_app("Game", "com.example.game", assignments=[{"target": "all_devices", "intent": "blocked"}])
    unassigned = store_app("Notes", "com.example.notes")
    android = store_app("Teams Android", TEAMS, platform=Platform.ANDROID)
    cases = [
        (required, fleet["alice_ios"], "is required on"),
        (blocked, fleet["alice_ios"], "is not allowed on"),
        (unassigned, fleet["alice_ios"], "is not offered"),
        (android, fleet["alice_ios"], "is for Android"),
    ]
    for app, device, sentence in cases:
        with pytest.raises(ValidationError, match=sentence):
            app_install_request(actor=owner, device=device, app=app)
    assert not AppInstall.objects.filter(requested_by_user=True).exists()


# -- the conflict rule -------------------------------------------------------------------------------

I = AppIntent  # noqa: E741
# (intent of assignment 1, intent of assignment 2) -> effective intent, or "conflict".
CONFLICT_TABLE = {
    (I.REQUIRED, I.REQUIRED): I.REQUIRED,
    (I.REQUIRED, I.AVAILABLE): I.REQUIRED,
    (I.REQUIRED, I.UNINSTALL): "conflict",
    (I.REQUIRED, I.BLOCKED): "conflict",
    (I.AVAILABLE, I.AVAILABLE): I.AVAILABLE,
    (I.AVAILABLE, I.UNINSTALL): I.UNINSTALL,
    (I.AVAILABLE, I.BLOCKED): I.BLOCKED,
    (I.UNINSTALL, I.UNINSTALL): I.UNINSTALL,
    (I.UNINSTALL, I.BLOCKED): I.BLOCKED,
    (I.BLOCKED, I.BLOCKED): I.BLOCKED,
}


def test_the_table_covers_every_pair_of_intents():
    pairs = {tuple(sorted((a, b))) for a in I.values for b in I.values}
    assert {tuple(sorted(pair)) for pair in CONFLICT_TABLE} == pairs


@pytest.mark.parametrize(("first", "second"), sorted(CONFLICT_TABLE))
def test_two_assignments_of_one_app_to_one_device(fleet, first, second):
    expected = CONFLICT_TABLE[(first, second)]
    assert resolve({first, second}) == ((None, True) if expected == "conflict" else (expected, False))
    assert resolve({second, first}) == resolve({first, second})  # order never matters
    device = fleet["alice_ios"]
    report(device, [app_entry()])
    app = store_app(
        assignments=[
            {
                "target": "user_group",
                "user_group": group_with(fleet["users"][0], name="Field staff").pk,
                "intent": first,
            },
            {"target": "all_devices", "filter_platforms": ["ios"], "intent": second},
        ]
    )
    app_fanout(app.pk)
    row = rows(app).get(device.pk)
    if expected == "conflict":
        assert (row.state, row.intent) == (InstallState.CONFLICT, "")
        gone = "uninstall" if I.UNINSTALL in (first, second) else "blocked"
        assert "required by user group 'Field staff'" in row.reason and f"{gone} by all devices" in row.reason
        assert "change one of these assignments" in row.reason
        assert open_commands(device) == open_commands(device, CommandType.REMOVE_APP) == []
    elif expected == I.AVAILABLE:
        assert row is None
    else:
        assert row.intent == expected
        wanted = InstallState.INSTALLED if expected == I.REQUIRED else InstallState.PENDING
        assert row.state == wanted  # the inventory lists it: kept, or removed


def test_a_conflict_names_both_assignments_and_clears_when_one_is_fixed(fleet):
    device = fleet["alice_ios"]
    group = group_with(fleet["users"][0], name="Contractors")
    app = store_app(
        assignments=[
            {"target": "all_devices", "intent": "required"},
            {"target": "user_group", "user_group": group.pk, "intent": "blocked"},
        ]
    )
    app_fanout(app.pk)
    row = rows(app)[device.pk]
    assert row.reason.startswith(
        "Conflicting assignments: blocked by user group 'Contractors'; required by all devices."
    )
    assert rows(app)[fleet["bob_ios"].pk].state == InstallState.PENDING
    app_assignments_set(actor=SYSTEM, app=app, rows=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    assert rows(app)[device.pk].state == InstallState.PENDING
    assert len(open_commands(device)) == 1


# -- supersedence, applicability, retries -------------------------------------------------------------


def test_a_new_version_updates_only_the_devices_that_have_an_older_one(fleet):
    old, current, available_only = fleet["alice_ios"], fleet["bob_ios"], fleet["carol_ios"]
    app = store_app(
        assignments=[
            {"target": "all_devices", "intent": "required", "filter_ownership": "corporate"},
        ]
    )
    app_fanout(app.pk)
    for device in (old, current, available_only):
        answer(device, open_commands(device)[0])
    report(old, [app_entry(version="1.0")])
    report(current, [app_entry(version="2.0")])  # already updated through the store
    before = DeviceCommand.objects.count()

    app_version_add(actor=SYSTEM, app=app, version="2.0")
    counts = app_fanout(app.pk)
    assert DeviceCommand.objects.count() == before + 2  # the old one and the one that never reported apps
    (update,) = open_commands(old)
    assert update.payload == {"app": str(app.uuid), "version": "2.0"}
    row = rows(app)[old.pk]
    assert (row.state, row.reason) == (InstallState.PENDING, "Updating from 1.0 to 2.0.")
    assert open_commands(current) == []
    assert rows(app)[current.pk].state == InstallState.INSTALLED
    assert counts["install_app_queued"] == 2
    with pytest.raises(ValidationError, match=r"not newer than the current version 2\.0"):
        app_version_add(actor=SYSTEM, app=app, version="1.5")


def test_an_older_os_than_the_versions_minimum_is_not_applicable(fleet):
    device = fleet["alice_ios"]
    app = store_app(version="", assignments=[{"target": "all_devices", "intent": "required"}])
    app_version_add(actor=SYSTEM, app=app, version="5.0", min_os_version="18.0")
    app_fanout(app.pk)
    row = rows(app)[device.pk]
    assert row.state == InstallState.NOT_APPLICABLE
    assert row.reason == "Version 5.0 needs iOS 18.0 or later; this device runs 17.4."
    assert open_commands(device) == []
    report(device, [OTHER_APP], os_version="18.1")  # the device updated its OS: queued at that check-in
    assert rows(app)[device.pk].state == InstallState.PENDING
    assert len(open_commands(device)) == 1


def test_failed_installs_keep_the_devices_reason_until_retried(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    (command,) = open_commands(device)
    answer(device, command, ok=False, error="Not enough storage to install Teams.")
    row = rows(app)[device.pk]
    assert (row.state, row.reason) == (InstallState.FAILED, "Not enough storage to install Teams.")
    app_fanout(app.pk)
    assert open_commands(device) == []  # a failed version is not retried on its own

    assert app_installs_retry_failed(actor=SYSTEM, installs=AppInstall.objects.filter(app=app)) == 1
    (again,) = open_commands(device)
    row.refresh_from_db()
    assert (row.state, row.reason, row.command_id) == (InstallState.PENDING, "", again.pk)


def test_an_expired_command_is_queued_again_by_the_fan_out(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    DeviceCommand.objects.filter(device=device).update(status=CommandStatus.EXPIRED)
    app_fanout(app.pk)
    assert len(open_commands(device)) == 1


def test_a_late_answer_to_a_replaced_command_changes_nothing(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    (old,) = open_commands(device)
    device.refresh_from_db()
    device_commands_deliver(device=device)
    app_version_add(actor=SYSTEM, app=app, version="2.0")
    app_fanout(app.pk)
    old.refresh_from_db()
    assert old.status == CommandStatus.CANCELLED  # was sent; replaced by the newer one
    device_command_results_record(device=device, results=[{"id": str(old.uuid), "status": "error", "error": "late"}])
    assert rows(app)[device.pk].state == InstallState.PENDING


# -- reconciliation with the inventory ----------------------------------------------------------------


def test_a_required_app_the_user_removed_is_queued_again_at_the_check_in(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    answer(device, open_commands(device)[0])
    report(device, [app_entry(), OTHER_APP])
    assert rows(app)[device.pk].state == InstallState.INSTALLED

    reply = report(device, [OTHER_APP])  # the user deleted it
    row = rows(app)[device.pk]
    assert (row.state, row.reason) == (InstallState.PENDING, "It was removed on the device; installing it again.")
    (again,) = open_commands(device)
    assert row.command_id == again.pk
    # The new install goes out in the reply of that very check-in.
    assert [c["id"] for c in reply] == [str(again.uuid)]


def test_an_available_app_removed_on_the_device_becomes_not_installed_and_back(fleet):
    alice = fleet["users"][0]
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "available"}])
    app_install_request(actor=Actor.for_user(alice), device=device, app=app)
    answer(device, open_commands(device)[0])
    report(device, [app_entry()])
    assert rows(app)[device.pk].state == InstallState.INSTALLED
    report(device, [OTHER_APP])
    row = rows(app)[device.pk]
    assert (row.state, row.requested_by_user) == (InstallState.NOT_INSTALLED, False)
    assert open_commands(device) == []
    report(device, [app_entry(version="1.2")])  # installed again by hand
    row = rows(app)[device.pk]
    assert (row.state, row.installed_version) == (InstallState.INSTALLED, "1.2")


def test_an_unchanged_inventory_does_not_reconcile(fleet, django_assert_num_queries):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    from apps.receivers import on_device_checked_in

    with django_assert_num_queries(0):
        on_device_checked_in(sender=Device, device=device, inventory_changed=False, first=False)


def test_reconciliation_reads_a_bounded_number_of_queries(fleet):
    device = fleet["alice_ios"]
    apps = [
        store_app(f"App {i}", f"com.example.app{i}", assignments=[{"target": "all_devices", "intent": "required"}])
        for i in range(6)
    ]
    for app in apps:
        app_fanout(app.pk)
    for command in open_commands(device):
        answer(device, command)
    report(device, [app_entry(f"com.example.app{i}") for i in range(6)])
    device.refresh_from_db()
    with CaptureQueriesContext(connection) as ctx:
        changed = installs.device_apps_reconcile(device)
    assert changed == 0
    assert len(ctx.captured_queries) == 2  # the device's rows, its inventory


# -- blocked apps and compliance ----------------------------------------------------------------------


def test_a_blocked_app_on_the_device_is_a_compliance_failure_through_the_real_engine(fleet):
    device = fleet["alice_ios"]
    report(device, [OTHER_APP])
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.COMPLIANT  # no policy: compliant by the settings
    app = store_app("Game", "com.example.Game", assignments=[{"target": "all_devices", "intent": "blocked"}])
    app_fanout(app.pk)
    assert rows(app)[device.pk].state == InstallState.NOT_INSTALLED

    report(device, [OTHER_APP, app_entry("com.example.game", "2.0")])  # installed outside the portal
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.NONCOMPLIANT
    failure = ComplianceFailure.objects.get(device=device)
    assert (failure.rule, failure.policy, failure.actual) == (ComplianceRule.BLOCKED_APPS, None, "com.example.Game")
    assert failure.expected == "none of: com.example.Game"
    assert rows(app)[device.pk].state == InstallState.PENDING  # and its removal is on its way
    assert len(open_commands(device, CommandType.REMOVE_APP)) == 1

    report(device, [OTHER_APP])
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.COMPLIANT
    assert not ComplianceFailure.objects.filter(device=device).exists()


def test_blocking_an_app_already_on_the_device_fails_compliance_at_once_and_unblocking_clears_it(fleet):
    device = fleet["alice_ios"]
    report(device, [app_entry("com.example.game")])
    app = store_app("Game", "com.example.game", assignments=[{"target": "all_devices", "intent": "blocked"}])
    app_fanout(app.pk)
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.NONCOMPLIANT
    app_assignments_set(actor=SYSTEM, app=app, rows=[])
    app_fanout(app.pk)
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.COMPLIANT


# -- enrolment, groups, deletion ----------------------------------------------------------------------


def test_a_device_enrolling_receives_its_required_apps(fleet, scope_a):
    alice = fleet["users"][0]
    app = store_app(assignments=[{"target": "user_group", "user_group": group_with(alice).pk, "intent": "required"}])
    app_fanout(app.pk)
    new = DeviceFactory(scope=scope_a, primary_user=alice, platform=Platform.IOS)
    (command,) = open_commands(new)
    assert command.payload["app"] == str(app.uuid)
    assert delivery.device_apps_sync(new) == 1  # idempotent: already on its way
    assert len(open_commands(new)) == 1


def test_a_user_joining_a_targeted_group_receives_the_app(fleet, django_capture_on_commit_callbacks):
    from mdm_portal.core.services import user_group_save

    alice, bob, _ = fleet["users"]
    group = group_with(alice)
    app = store_app(assignments=[{"target": "user_group", "user_group": group.pk, "intent": "required"}])
    app_fanout(app.pk)
    assert fleet["bob_ios"].pk not in rows(app)
    with django_capture_on_commit_callbacks(execute=True):
        user_group_save(actor=SYSTEM, group=group, name=group.name, members=[alice, bob])
    assert rows(app)[fleet["bob_ios"].pk].state == InstallState.PENDING


def test_a_device_leaving_the_target_loses_its_row_but_keeps_the_app(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    answer(device, open_commands(device)[0])
    app_assignments_set(
        actor=SYSTEM, app=app, rows=[{"target": "all_devices", "intent": "required", "filter_ownership": "personal"}]
    )
    counts = app_fanout(app.pk)
    assert counts["untargeted"] == 3
    assert rows(app) == {}
    assert open_commands(device, CommandType.REMOVE_APP) == []


def test_an_install_still_queued_for_a_device_that_leaves_the_target_is_withdrawn(fleet):
    device, other = fleet["alice_ios"], fleet["bob_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    answer(device, open_commands(device)[0])
    (queued,) = open_commands(other)
    app_assignments_set(
        actor=SYSTEM, app=app, rows=[{"target": "all_devices", "intent": "required", "filter_ownership": "personal"}]
    )
    app_fanout(app.pk)
    queued.refresh_from_db()
    assert queued.status == CommandStatus.CANCELLED
    assert open_commands(other) == []


def test_deleting_an_app_removes_it_where_it_was_required(fleet):
    device, other = fleet["alice_ios"], fleet["bob_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    answer(device, open_commands(device)[0])
    uuid = str(app.uuid)
    assert app_delete(actor=SYSTEM, app=app) == 3
    assert not App.objects.filter(pk=app.pk).exists()
    (removal,) = open_commands(device, CommandType.REMOVE_APP)
    # The removal carries what the device needs: the app itself is gone.
    device.refresh_from_db()
    delivered = {c["id"]: c for c in device_commands_deliver(device=device)}[str(removal.uuid)]
    assert delivered["payload"]["identifier"] == TEAMS and delivered["payload"]["app"] == uuid
    # Bob's install never ran: the removal replaced it.
    assert open_commands(other) == [] and len(open_commands(other, CommandType.REMOVE_APP)) == 1


def test_app_save_refuses_what_cannot_be_delivered(fleet):
    with pytest.raises(ValidationError) as exc:
        app_save(actor=SYSTEM, data={"name": "X", "kind": AppKind.STORE, "platform": Platform.IOS, "store_id": "abc"})
    assert set(exc.value.message_dict) == {"identifier", "store_id"}
    with pytest.raises(ValidationError) as exc:
        app_save(actor=SYSTEM, data={"name": "Intranet", "kind": AppKind.WEB, "platform": Platform.IOS})
    assert "url" in exc.value.message_dict
    store_app()
    with pytest.raises(ValidationError, match="already uses the identifier"):
        store_app("Teams again")
    with pytest.raises(ValidationError, match="intent"):
        store_app("Other", "com.other", assignments=[{"target": "all_devices", "intent": "sometimes"}])
    assert App.objects.count() == 1


def test_a_web_link_is_delivered_with_its_address(fleet):
    device = fleet["alice_ios"]
    app = app_save(
        actor=SYSTEM,
        data={"name": "Intranet", "kind": AppKind.WEB, "platform": Platform.IOS, "url": "https://intranet.example.com"},
        assignments=[{"target": "all_devices", "intent": "required"}],
    )
    app_fanout(app.pk)
    device.refresh_from_db()
    (delivered,) = device_commands_deliver(device=device)
    assert delivered["payload"]["url"] == "https://intranet.example.com"
    assert delivered["payload"]["kind"] == "web"


# -- the fan-out's cost ------------------------------------------------------------------------------


def _fanout_queries(scope, n_devices, monkeypatch):
    Device.objects.all().delete()
    for i in range(n_devices):
        device = DeviceFactory(scope=scope, platform=Platform.IOS)
        if i % 2:
            report(device, [app_entry(version="0.9"), OTHER_APP])
    monkeypatch.setattr(delivery, "FANOUT_BATCH", 5)
    app = store_app(
        f"App {n_devices}", f"com.example.n{n_devices}", assignments=[{"target": "all_devices", "intent": "required"}]
    )
    with CaptureQueriesContext(connection) as ctx:
        app_fanout(app.pk)
    assert AppInstall.objects.filter(app=app).count() == n_devices
    # Each batch's transaction is a savepoint inside the test's transaction (BEGIN/COMMIT in production).
    return sum(1 for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))


def test_fanout_queries_grow_with_batches_not_devices(scope_a, monkeypatch):
    _fanout_queries(scope_a, 5, monkeypatch)
    three, five, seven = (_fanout_queries(scope_a, n, monkeypatch) for n in (15, 25, 35))
    assert seven - five == five - three  # the same cost for every batch of 5 devices, whatever the fleet
    # Per batch: read the devices (one flag per assignment), their rows, the app's entry of their
    # inventories; lock the devices, cancel older open commands, insert the commands, tell the
    # devices; upsert the rows.
    assert (five - three) / 2 == 8


def test_the_hourly_reconcile_runs_every_assigned_app(fleet):
    from apps.tasks import apps_reconcile

    store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    store_app("Unassigned", "com.example.unassigned")
    assert apps_reconcile() == 1
    assert AppInstall.objects.count() == 3


def test_the_reconciliation_runs_every_hour():
    from mdm_portal.schedules import SCHEDULES

    assert any(s.task == "apps.tasks.apps_reconcile" and s.every_seconds == 3600 for s in SCHEDULES)


def test_the_not_now_answer_leaves_the_install_pending(fleet):
    device = fleet["alice_ios"]
    app = store_app(assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    (command,) = open_commands(device)
    device.refresh_from_db()
    device_commands_deliver(device=device)
    device_command_results_record(device=device, results=[{"id": str(command.uuid), "status": "not_now"}])
    assert rows(app)[device.pk].state == InstallState.PENDING
    assert app_fanout(app.pk) == {}  # still on its way: nothing queued again
    command.refresh_from_db()
    assert command.deadline_at > timezone.now() + timedelta(days=13)


def test_the_assigned_blocked_apps_rule_is_organisation_wide_and_reports_an_unreadable_list():
    from policies.compliance import DeviceFacts as Facts
    from policies.compliance import device_state, evaluate, merge_rules

    now = timezone.now()
    facts = Facts(
        platform="ios",
        inventory_reported_at=now,
        installed_apps=frozenset({"com.example.game"}),
        assigned_blocked_apps=("com.x", "com.example.Game"),
    )
    (failure,) = evaluate(facts, merge_rules([]), now, None)
    assert (failure.rule, failure.policy, failure.expected, failure.actual) == (
        ComplianceRule.BLOCKED_APPS,
        None,
        "none of: com.example.Game, com.x",
        "com.example.Game",
    )
    assert device_state(facts, [(failure, now)], {}, now).state == ComplianceState.NONCOMPLIANT  # no grace
    unreadable = Facts(platform="ios", inventory_reported_at=now, apps_error="the list", assigned_blocked_apps=("a",))
    (error,) = evaluate(unreadable, merge_rules([]), now, None)
    assert device_state(unreadable, [(error, now)], {}, now).state == ComplianceState.ERROR
    assert evaluate(Facts(platform="ios", inventory_reported_at=now, assigned_blocked_apps=("a",)), {}, now, None) == []


def test_a_wave_of_devices_reads_the_install_payload_once(fleet):
    app = store_app(assignments=[{"target": "all_devices", "intent": "required", "filter_platforms": ["ios"]}])
    app_fanout(app.pk)
    first, second = fleet["alice_ios"], fleet["bob_ios"]
    for device in (first, second):
        device.refresh_from_db()
    (one,) = device_commands_deliver(device=first)
    with CaptureQueriesContext(connection) as ctx:
        (two,) = device_commands_deliver(device=second)
    assert one["payload"] == two["payload"]
    assert not [q for q in ctx.captured_queries if '"apps_app"' in q["sql"]]


@pytest.mark.parametrize("intents", [frozenset(s) for s in itertools.chain.from_iterable(
    itertools.combinations(AppIntent.values, k) for k in range(1, 5))])  # fmt: skip
def test_the_sql_form_of_the_rule_agrees_with_resolve(fleet, intents):
    """The admin preview counts with ``effective_intent_q``; delivery decides with ``resolve``: one rule."""
    from apps.targeting import effective_intent_q

    device = fleet["alice_ios"]
    includes = {intent: Q(pk=device.pk) for intent in intents}
    matched = [
        name for name, q in effective_intent_q(includes).items() if Device.objects.filter(q, pk=device.pk).exists()
    ]
    intent, conflict = resolve(set(intents))
    assert matched == ["conflict" if conflict else intent]
