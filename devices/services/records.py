"""Writes to devices and device groups. Every function audits in its own transaction."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record, model_changes
from mdm_portal.core.models import Scope, User

from .. import lifecycle
from ..choices import (
    ComplianceState,
    EnrollmentMethod,
    EnrollmentTransport,
    GroupMembershipType,
    LifecycleState,
    Ownership,
    Platform,
)
from ..models import Device, DeviceGroup, DeviceGroupRule
from ..rules import rule_validate
from ..signals import device_group_changed
from ..versions import version_key

DEVICE_EDITABLE_FIELDS = ("name", "ownership", "scope", "primary_user")


def _check_choice(value: str, choices, label: str) -> None:
    if value not in choices.values:
        raise ValidationError(f"{label} must be one of: {', '.join(choices.values)} (got {value!r}).")


def _check_identifiers_free(device: Device) -> None:
    """A serial number or IMEI belongs to one live (not retired) device at a time."""
    live = Device.objects.exclude(lifecycle_state=LifecycleState.RETIRED).exclude(pk=device.pk)
    for field, label in (("serial_number", "serial number"), ("imei", "IMEI")):
        value = getattr(device, field)
        holder = live.filter(**{field: value}).only("name").first() if value else None
        if holder is not None:
            raise ValidationError(
                {
                    field: f"The {label} {value} already belongs to the device '{holder.name}'. "
                    "Retire that device first, or correct the number."
                }
            )


@transaction.atomic
def device_register(
    *,
    actor: Actor,
    name: str,
    platform: str,
    ownership: str,
    scope: Scope,
    enrollment_method: str,
    enrollment_transport: str = EnrollmentTransport.OVER_THE_AIR,
    primary_user: User | None = None,
    os_version: str = "",
    model: str = "",
    manufacturer: str = "",
    serial_number: str = "",
    imei: str = "",
) -> Device:
    """Create a device record in the ``pending`` state; ``lifecycle.enroll`` makes it enrolled."""
    _check_choice(platform, Platform, "Platform")
    _check_choice(ownership, Ownership, "Ownership")
    _check_choice(enrollment_method, EnrollmentMethod, "Enrolment method")
    _check_choice(enrollment_transport, EnrollmentTransport, "Enrolment transport")
    device = Device(
        name=name.strip() or serial_number or "Unnamed device",
        platform=platform,
        ownership=ownership,
        scope=scope,
        enrollment_method=enrollment_method,
        enrollment_transport=enrollment_transport,
        primary_user=primary_user,
        os_version=os_version,
        os_version_key=version_key(os_version),
        model=model,
        manufacturer=manufacturer,
        serial_number=serial_number.strip().upper(),
        imei=imei.strip(),
    )
    device.full_clean(exclude=["uuid"], validate_unique=False, validate_constraints=False)
    _check_identifiers_free(device)
    try:
        with transaction.atomic():
            device.save()
    except IntegrityError as exc:
        # Lost a race with a concurrent registration of the same identifiers.
        _check_identifiers_free(device)
        raise ValidationError("This device's serial number or IMEI is already registered.") from exc
    audit_record(
        actor=actor,
        verb="device.register",
        target=device,
        changes=model_changes(
            device, ("name", "platform", "ownership", "scope", "primary_user", "serial_number", "imei")
        ),
    )
    return device


@transaction.atomic
def device_update(*, actor: Actor, device: Device, data: dict) -> Device:
    """Change what IT may edit on a device: name, ownership, scope, primary user."""
    unknown = set(data) - set(DEVICE_EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    if "ownership" in data:
        _check_choice(data["ownership"], Ownership, "Ownership")
    before = model_changes(device, DEVICE_EDITABLE_FIELDS)
    for field, value in data.items():
        setattr(device, field, value)
    device.full_clean(exclude=["uuid"], validate_unique=False, validate_constraints=False)
    device.save(update_fields=[*data.keys(), "updated_at"])
    after = model_changes(device, DEVICE_EDITABLE_FIELDS)
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changed:
        audit_record(actor=actor, verb="device.update", target=device, changes=changed)
    return device


def device_checkin_touch(*, device: Device, at: datetime | None = None) -> None:
    """Record that the device checked in. Not audited: it is not a change anyone made."""
    at = at or timezone.now()
    Device.objects.filter(pk=device.pk).update(last_checkin_at=at)
    device.last_checkin_at = at


@transaction.atomic
def device_compliance_set(*, actor: Actor, device: Device, state: str) -> Device:
    """Set the compliance state (the policies app decides it; this records it)."""
    _check_choice(state, ComplianceState, "Compliance state")
    if device.compliance_state != state:
        before = device.compliance_state
        Device.objects.filter(pk=device.pk).update(compliance_state=state, updated_at=timezone.now())
        device.compliance_state = state
        audit_record(
            actor=actor, verb="device.compliance_change", target=device, changes={"compliance_state": [before, state]}
        )
    return device


def device_enroll(*, actor: Actor, device: Device) -> Device:
    return lifecycle.enroll(device, actor=actor)


# Device groups ---------------------------------------------------------------------------------

GROUP_FIELDS = ("name", "description", "scope", "membership_type", "match_all")


@transaction.atomic
def device_group_save(
    *,
    actor: Actor,
    group: DeviceGroup | None = None,
    name: str,
    scope: Scope | None,
    description: str = "",
    membership_type: str = GroupMembershipType.STATIC,
    match_all: bool = True,
    static_members: list[Device] | None = None,
) -> DeviceGroup:
    """Create or update a device group; a static group's members are replaced when given."""
    _check_choice(membership_type, GroupMembershipType, "Membership type")
    if membership_type == GroupMembershipType.DYNAMIC and static_members:
        raise ValidationError("A rule-based group cannot have hand-picked members; use a static group.")
    if scope is not None and static_members:
        outside = [d.name for d in static_members if d.scope_id != scope.pk]
        if outside:
            raise ValidationError(
                {
                    "static_members": f"These devices are not in the scope {scope.name}: {', '.join(outside[:10])}. "
                    "A group in a scope holds only that scope's devices."
                }
            )
    group = group or DeviceGroup()
    created = group._state.adding
    group.name, group.description, group.scope = name, description, scope
    group.membership_type, group.match_all = membership_type, match_all
    group.full_clean()
    group.save()
    changes = model_changes(group, GROUP_FIELDS)
    if membership_type == GroupMembershipType.DYNAMIC:
        group.static_members.clear()
    elif static_members is not None:
        group.static_members.set(static_members)
        changes["static_members"] = sorted(str(d.uuid) for d in static_members)
    audit_record(
        actor=actor, verb="device_group.create" if created else "device_group.update", target=group, changes=changes
    )
    device_group_changed.send(sender=DeviceGroup, group=group)
    return group


@transaction.atomic
def device_group_rules_set(*, actor: Actor, group: DeviceGroup, rules: list[tuple[str, str]]) -> DeviceGroup:
    """Replace a rule-based group's rules. Every rule is checked; none is saved if one is wrong."""
    if rules and group.membership_type != GroupMembershipType.DYNAMIC:
        raise ValidationError("A static group has no rules; make it rule-based to use rules.")
    errors, clean_rules = [], []
    for index, (field, value) in enumerate(rules, start=1):
        try:
            clean_rules.append((field, rule_validate(field, value)))
        except ValidationError as exc:
            errors.append(f"Rule {index}: {' '.join(exc.messages)}")
    if errors:
        raise ValidationError(errors)
    before = [f"{f} {v}" for f, v in group.rules.values_list("field", "value")]
    after = [f"{f} {v}" for f, v in clean_rules]
    if before != after:
        group.rules.all().delete()
        DeviceGroupRule.objects.bulk_create([DeviceGroupRule(group=group, field=f, value=v) for f, v in clean_rules])
        audit_record(actor=actor, verb="device_group.rules_set", target=group, changes={"rules": [before, after]})
        device_group_changed.send(sender=DeviceGroup, group=group)
    return group


@transaction.atomic
def device_group_delete(*, actor: Actor, group: DeviceGroup) -> None:
    audit_record(actor=actor, verb="device_group.delete", target=group, changes=model_changes(group, GROUP_FIELDS))
    device_group_changed.send(sender=DeviceGroup, group=group)  # before: receivers read who used it
    group.delete()


REPORTED_FIELDS = ("name", "os_version", "model", "manufacturer")


def device_apply_reported(*, device: Device, actor: Actor, data: dict) -> Device:
    """Store what the device itself reported or confirmed (its name after a rename, its OS version).

    Audits only a real change of name; an OS update is inventory, not a decision anyone made.
    """
    changes = {k: v for k, v in data.items() if k in REPORTED_FIELDS and v and getattr(device, k) != v}
    if not changes:
        return device
    if "os_version" in changes:
        changes["os_version_key"] = version_key(changes["os_version"])
    before_name = device.name
    Device.objects.filter(pk=device.pk).update(**changes, updated_at=timezone.now())
    for field, value in changes.items():
        setattr(device, field, value)
    if "name" in changes:
        audit_record(actor=actor, verb="device.renamed", target=device, changes={"name": [before_name, device.name]})
    return device
