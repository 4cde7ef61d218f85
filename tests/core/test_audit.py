"""The audit trail: every service mutation writes one event, secrets never reach it, and it is append-only."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from devices import lifecycle
from devices import services as device_services
from devices.choices import EnrollmentMethod, GroupMembershipType, LifecycleState, Ownership, Platform
from devices.models import Device
from mdm_portal.core import services
from mdm_portal.core.audit import REDACTED, Actor, redact
from mdm_portal.core.choices import ActorType
from mdm_portal.core.models import AuditEvent, Role
from tests.factories import DeviceFactory, ScopeFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

SOURCE_IP = "198.51.100.23"


@pytest.fixture
def operator(db):
    return StaffFactory(username="auditor-under-test")


@pytest.fixture
def actor(operator):
    return Actor.for_user(operator, source_ip=SOURCE_IP)


def last_event(verb: str, target) -> AuditEvent:
    events = AuditEvent.objects.filter(
        verb=verb, target_type=ContentType.objects.get_for_model(target), target_id=str(target.pk)
    )
    assert events.count() == 1, f"expected one {verb} event for {target!r}, found {events.count()}"
    return events.get()


def assert_by(event: AuditEvent, operator) -> None:
    assert event.actor_type == ActorType.USER
    assert event.actor_user_id == operator.pk
    assert event.actor_label == operator.username
    assert event.source_ip == SOURCE_IP


# Every service mutation audits itself -----------------------------------------------------------


def test_device_register(actor, operator, scope_a):
    owner = UserFactory(username="owner")
    device = device_services.device_register(
        actor=actor,
        name="Audit phone",
        platform=Platform.IOS,
        ownership=Ownership.CORPORATE,
        scope=scope_a,
        enrollment_method=EnrollmentMethod.MANUAL,
        primary_user=owner,
        serial_number="audit1",
    )
    event = last_event("device.register", device)
    assert_by(event, operator)
    assert event.scope_id == scope_a.pk
    assert event.target_repr == "Audit phone"
    assert event.changes["name"] == "Audit phone"
    assert event.changes["platform"] == "ios"
    assert event.changes["serial_number"] == "AUDIT1"
    assert event.changes["primary_user"] == owner.pk
    assert event.changes["scope"] == scope_a.pk


def test_device_update(actor, operator, scope_a, scope_b):
    device = DeviceFactory(name="Before", scope=scope_a, ownership=Ownership.CORPORATE)
    device_services.device_update(
        actor=actor, device=device, data={"name": "After", "ownership": Ownership.PERSONAL, "scope": scope_b}
    )
    event = last_event("device.update", device)
    assert_by(event, operator)
    assert event.changes == {
        "name": ["Before", "After"],
        "ownership": ["corporate", "personal"],
        "scope": [scope_a.pk, scope_b.pk],
    }


def test_device_update_without_change_writes_nothing(actor, scope_a):
    device = DeviceFactory(name="Same", scope=scope_a)
    count = AuditEvent.objects.count()
    device_services.device_update(actor=actor, device=device, data={"name": "Same"})
    assert AuditEvent.objects.count() == count


@pytest.mark.parametrize(
    "steps, verbs",
    [
        (["enroll"], ["device.enroll"]),
        (["enroll", "start_retirement"], ["device.enroll", "device.start_retirement"]),
        (
            ["enroll", "start_retirement", "cancel_retirement"],
            ["device.enroll", "device.start_retirement", "device.cancel_retirement"],
        ),
        (
            ["enroll", "start_retirement", "finish_retirement"],
            ["device.enroll", "device.start_retirement", "device.finish_retirement"],
        ),
        (["discard"], ["device.discard"]),
    ],
)
def test_lifecycle_transitions(actor, operator, scope_a, steps, verbs):
    device = DeviceFactory(scope=scope_a, state=LifecycleState.PENDING)
    for step in steps:
        kwargs = {} if step == "enroll" else {"reason": f"because {step}"}
        getattr(lifecycle, step)(device, actor=actor, **kwargs)
    events = AuditEvent.objects.filter(
        target_type=ContentType.objects.get_for_model(Device), target_id=str(device.pk), actor_user=operator
    ).order_by("id")
    assert [e.verb for e in events] == verbs
    for event in events:
        assert_by(event, operator)
        assert event.scope_id == scope_a.pk
        before, after = event.changes["lifecycle_state"]
        assert before != after
    last = events.last()
    assert last.changes["lifecycle_state"][1] == Device.objects.get(pk=device.pk).lifecycle_state
    if steps[-1] != "enroll":
        assert last.changes["reason"] == f"because {steps[-1]}"


def test_device_group_save_and_rules_set(actor, operator, scope_a):
    device = DeviceFactory(scope=scope_a)
    group = device_services.device_group_save(actor=actor, name="Hand-picked", scope=scope_a, static_members=[device])
    event = last_event("device_group.create", group)
    assert_by(event, operator)
    assert event.changes["name"] == "Hand-picked"
    assert event.changes["static_members"] == [str(device.uuid)]

    device_services.device_group_save(
        actor=actor, group=group, name="Rules", scope=scope_a, membership_type=GroupMembershipType.DYNAMIC
    )
    event = last_event("device_group.update", group)
    assert_by(event, operator)
    assert event.changes["membership_type"] == "dynamic"

    device_services.device_group_rules_set(actor=actor, group=group, rules=[("platform", "iOS, android")])
    event = last_event("device_group.rules_set", group)
    assert_by(event, operator)
    assert event.changes == {"rules": [[], ["platform ios,android"]]}


def test_scope_create(actor, operator):
    scope = services.scope_create(actor=actor, name="APAC", slug="apac")
    event = last_event("scope.create", scope)
    assert_by(event, operator)
    assert event.changes == {"name": "APAC", "slug": "apac"}


def test_user_group_save(actor, operator):
    alice = UserFactory(username="alice")
    group = services.user_group_save(actor=actor, name="Sales", members=[alice])
    event = last_event("user_group.create", group)
    assert_by(event, operator)
    assert event.changes["name"] == "Sales"
    assert event.changes["members"] == [str(alice)]

    services.user_group_save(actor=actor, group=group, name="Sales EMEA", members=[])
    event = last_event("user_group.update", group)
    assert event.changes["name"] == "Sales EMEA"
    assert event.changes["members"] == []


def test_role_save(actor, operator):
    view = Permission.objects.get(content_type__app_label="devices", codename="view_device")
    lock = Permission.objects.get(content_type__app_label="devices", codename="lock_device")
    role = services.role_save(actor=actor, name="Lockers", permissions=[view])
    event = last_event("role.create", role)
    assert_by(event, operator)
    assert event.changes == {"name": "Lockers", "permissions": ["devices.view_device"]}

    services.role_save(actor=actor, role=role, name="Lockers", permissions=[view, lock])
    event = last_event("role.update", role)
    assert event.changes["permissions"] == ["devices.lock_device", "devices.view_device"]


def test_role_assignment_save_and_delete(actor, operator, scope_a, scope_b):
    person = StaffFactory(username="assigned-person")
    role = Role.objects.get(name="Helpdesk operator")
    assignment = services.role_assignment_save(
        actor=actor,
        name="Helpdesk EMEA",
        role=role,
        users=[person],
        user_groups=[],
        all_scopes=False,
        scopes=[scope_a],
    )
    event = last_event("role_assignment.create", assignment)
    assert_by(event, operator)
    assert event.changes["role"] == role.pk
    assert event.changes["users"] == [str(person)]
    assert event.changes["scopes"] == ["EMEA"]
    assert event.changes["all_scopes"] is False

    services.role_assignment_save(
        actor=actor,
        assignment=assignment,
        name="Helpdesk Americas",
        role=role,
        users=[person],
        user_groups=[],
        all_scopes=False,
        scopes=[scope_b],
    )
    event = last_event("role_assignment.update", assignment)
    assert event.changes["scopes"] == ["Americas"]

    pk = assignment.pk
    services.role_assignment_delete(actor=actor, assignment=assignment)
    event = AuditEvent.objects.get(verb="role_assignment.delete", target_id=str(pk))
    assert_by(event, operator)
    assert event.changes["name"] == "Helpdesk Americas"
    assert event.target_repr == "Helpdesk Americas"


def test_api_token_create_and_revoke_never_store_the_token(actor, operator):
    owner = operator  # people issue tokens for their own account (see tests/security/test_api_tokens.py)
    token, plaintext = services.api_token_create(actor=actor, user=owner, name="HR offboarding")
    event = last_event("api_token.create", token)
    assert_by(event, operator)
    assert event.changes == {"user": owner.pk, "name": "HR offboarding"}

    services.api_token_revoke(actor=actor, token=token)
    event = last_event("api_token.revoke", token)
    assert_by(event, operator)

    # Revoking twice is not a second change.
    services.api_token_revoke(actor=actor, token=token)
    assert AuditEvent.objects.filter(verb="api_token.revoke").count() == 1

    secret_part = plaintext.split("_", 2)[2]
    for event in AuditEvent.objects.all():
        dumped = json.dumps(event.changes) + event.target_repr + event.actor_label
        assert plaintext not in dumped
        assert secret_part not in dumped
        assert token.key_hash not in dumped


def test_token_actor_is_recorded_as_the_token_and_its_owner(scope_a):
    owner = StaffFactory(username="script-owner")
    token, _ = services.api_token_create(actor=Actor.system("tests"), user=owner, name="script")
    device = DeviceFactory(scope=scope_a, name="Renamed by script")
    device_services.device_update(
        actor=Actor.for_api_token(token, source_ip=SOURCE_IP), device=device, data={"name": "Renamed"}
    )
    event = last_event("device.update", device)
    assert event.actor_type == ActorType.API_TOKEN
    assert event.actor_user_id == owner.pk
    assert token.prefix in event.actor_label
    assert event.source_ip == SOURCE_IP


# Redaction -------------------------------------------------------------------------------------


def test_redact_nested_dict():
    changes = {
        "name": "Laptop",
        "password": "hunter2",
        "settings": {
            "wifi": {"ssid": "corp", "PreSharedKey": "k", "client_secret": "s"},
            "recovery_key": "123-456",
            "label": "keep me",
        },
        "api_token": "mdm_x_y",
        "key_hash": "abc",
        "passcode": "0000",
        "private_key": "-----BEGIN",
    }
    clean = redact(changes)
    assert clean["name"] == "Laptop"
    assert clean["settings"]["wifi"]["ssid"] == "corp"
    assert clean["settings"]["label"] == "keep me"
    for secret in (
        clean["password"],
        clean["settings"]["wifi"]["client_secret"],
        clean["settings"]["recovery_key"],
        clean["api_token"],
        clean["key_hash"],
        clean["passcode"],
        clean["private_key"],
    ):
        assert secret == REDACTED
    # The input is not modified: the caller may still need the values.
    assert changes["password"] == "hunter2"
    assert changes["settings"]["recovery_key"] == "123-456"


def test_redact_reaches_dicts_inside_lists():
    clean = redact({"profiles": [{"name": "wifi", "password": "p"}, [{"secret": "s"}], "plain"]})
    assert clean == {"profiles": [{"name": "wifi", "password": REDACTED}, [{"secret": REDACTED}], "plain"]}


def test_audit_record_redacts_before_storing(actor, scope_a):
    from mdm_portal.core.audit import audit_record

    event = audit_record(
        actor=actor, verb="test.secret", target=scope_a, changes={"payload": {"unlock_token": "T0P-SECRET"}}
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.changes == {"payload": {"unlock_token": REDACTED}}
    assert "T0P-SECRET" not in json.dumps(stored.changes)


# Failures write nothing -----------------------------------------------------------------------


def test_failing_service_writes_neither_change_nor_event(actor, scope_a):
    device = DeviceFactory(name="Unchanged", scope=scope_a, ownership=Ownership.CORPORATE)
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="Ownership must be one of"):
        device_services.device_update(actor=actor, device=device, data={"name": "Renamed", "ownership": "leased"})
    stored = Device.objects.get(pk=device.pk)
    assert (stored.name, stored.ownership) == ("Unchanged", Ownership.CORPORATE)
    assert AuditEvent.objects.count() == count


def test_failing_audit_rolls_back_the_change(actor, scope_a, monkeypatch):
    """The mutation and its audit event share one transaction: no event, no change."""
    device = DeviceFactory(name="Unchanged", scope=scope_a)
    count = AuditEvent.objects.count()

    def broken(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr("devices.services.records.audit_record", broken)
    with pytest.raises(RuntimeError):
        device_services.device_update(actor=actor, device=device, data={"name": "Renamed"})
    assert Device.objects.get(pk=device.pk).name == "Unchanged"
    assert AuditEvent.objects.count() == count


def test_failing_rules_set_writes_nothing(actor, scope_a):
    group = device_services.device_group_save(
        actor=actor, name="Rules", scope=scope_a, membership_type=GroupMembershipType.DYNAMIC
    )
    device_services.device_group_rules_set(actor=actor, group=group, rules=[("platform", "ios")])
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        device_services.device_group_rules_set(
            actor=actor, group=group, rules=[("platform", "android"), ("ownership", "leased")]
        )
    assert list(group.rules.values_list("field", "value")) == [("platform", "ios")]
    assert AuditEvent.objects.count() == count


# Append-only -----------------------------------------------------------------------------------


@pytest.fixture
def event(actor, scope_a):
    services.scope_create(actor=actor, name="Audited", slug="audited")
    return AuditEvent.objects.get(verb="scope.create", target_repr="Audited")


def test_saved_event_cannot_be_changed(event):
    event.verb = "scope.tampered"
    with pytest.raises(PermissionError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).verb == "scope.create"


def test_event_cannot_be_deleted(event):
    with pytest.raises(PermissionError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_queryset_update_and_delete_refused(event):
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(verb="scope.tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    event.verb = "scope.tampered"
    # bulk_update joins the caller's transaction; a savepoint keeps the test's usable afterwards.
    with pytest.raises(PermissionError), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["verb"])
    assert AuditEvent.objects.get(pk=event.pk).verb == "scope.create"


@pytest.mark.postgres
def test_database_trigger_refuses_raw_update_and_delete(event):
    table = AuditEvent._meta.db_table
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET verb = %s WHERE id = %s", ["scope.tampered", event.pk])  # noqa: S608
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [event.pk])  # noqa: S608
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.verb == "scope.create"


@pytest.mark.postgres
def test_database_still_accepts_new_events(actor):
    """The trigger guards updates and deletes only; inserts go through."""
    services.scope_create(actor=actor, name="Still writable", slug="still-writable")
    assert AuditEvent.objects.filter(verb="scope.create", target_repr="Still writable").exists()


# Admin -----------------------------------------------------------------------------------------


def test_admin_event_change_page_is_read_only(client, people, event):
    client.force_login(people.global_admin)
    url = reverse("admin:core_auditevent_change", args=[event.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b"deletelink" not in page.content
    assert event.verb.encode() in page.content

    refused = client.post(url, {"verb": "scope.tampered", "actor_label": "someone else"})
    assert refused.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).verb == "scope.create"


def test_admin_event_add_and_delete_refused(client, people, event):
    client.force_login(people.global_admin)
    count = AuditEvent.objects.count()
    assert client.get(reverse("admin:core_auditevent_add")).status_code == 403
    assert client.post(reverse("admin:core_auditevent_add"), {"verb": "forged"}).status_code == 403
    delete_url = reverse("admin:core_auditevent_delete", args=[event.pk])
    assert client.get(delete_url).status_code == 403
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert AuditEvent.objects.count() == count


def test_admin_event_changelist_offers_no_delete(client, people, event):
    client.force_login(people.global_admin)
    changelist = reverse("admin:core_auditevent_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert b"delete_selected" not in page.content
    response = client.post(changelist, {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (200, 302)
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_admin_device_edit_is_audited_with_actor_and_ip(client, people):
    device = people.device_a
    client.force_login(people.global_admin)
    url = reverse("admin:devices_device_change", args=[device.pk])
    response = client.post(
        url,
        {
            "name": "EMEA-PHONE-RENAMED",
            "ownership": Ownership.PERSONAL,
            "scope": people.scope_b.pk,
            "primary_user": people.employee.pk,
        },
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    stored = Device.objects.get(pk=device.pk)
    assert (stored.name, stored.ownership, stored.scope_id) == (
        "EMEA-PHONE-RENAMED",
        Ownership.PERSONAL,
        people.scope_b.pk,
    )
    event = last_event("device.update", device)
    assert event.actor_type == ActorType.USER
    assert event.actor_label == "global-admin"
    assert event.actor_user_id == people.global_admin.pk
    assert event.source_ip == "203.0.113.7"
    assert event.changes == {
        "name": ["EMEA-PHONE-1", "EMEA-PHONE-RENAMED"],
        "ownership": ["corporate", "personal"],
        "scope": [people.scope_a.pk, people.scope_b.pk],
    }


def test_admin_device_edit_out_of_scope_writes_nothing(client, people):
    client.force_login(people.helpdesk_a)
    count = AuditEvent.objects.count()
    url = reverse("admin:devices_device_change", args=[people.device_a.pk])
    response = client.post(
        url, {"name": "HIJACK", "ownership": Ownership.CORPORATE, "scope": people.scope_a.pk, "primary_user": ""}
    )
    assert response.status_code == 403  # helpdesk views devices but cannot change them
    assert Device.objects.get(pk=people.device_a.pk).name == "EMEA-PHONE-1"
    assert AuditEvent.objects.count() == count


def test_scope_factory_is_audited_as_system():
    """Factories go through services, so fixtures leave the same trail as production code."""
    scope = ScopeFactory(name="Factory made", slug="factory-made")
    event = last_event("scope.create", scope)
    assert event.actor_type == ActorType.SYSTEM
    assert event.actor_user_id is None
    assert event.actor_label == "system:tests"
