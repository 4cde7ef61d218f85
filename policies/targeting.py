"""Who a profile or policy applies to, as one SQL filter over ``Device``: never stored per device.

A device is targeted when it is enrolled, in the profile's or policy's scope (if it has one), of a
platform it is for, matched by some include assignment and by no exclude assignment. Each
assignment is a target (all devices, a user group's members' devices, a device group) narrowed by
its filters (platforms, ownership, OS range).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from devices.choices import GroupMembershipType, GroupRuleField, LifecycleState
from devices.models import Device, DeviceGroup
from devices.rules import rule_q
from devices.selectors import device_group_q
from mdm_portal.core.models import UserGroup

from .choices import AssignmentMode, AssignmentTarget
from .models import AssignmentBase, CompliancePolicy, ConfigurationProfile

NOTHING = Q(pk__in=[])


def _target_q(assignment: AssignmentBase) -> Q:
    if assignment.target == AssignmentTarget.ALL_DEVICES:
        return Q(pk__isnull=False)  # always true, and usable where an empty Q() is not (When)
    if assignment.target == AssignmentTarget.USER_GROUP:
        if assignment.user_group_id is None:
            return NOTHING
        members = UserGroup.members.through.objects.filter(usergroup_id=assignment.user_group_id)
        return Q(primary_user_id__in=members.values("user_id"))
    if assignment.target == AssignmentTarget.DEVICE_GROUP:
        group = assignment.device_group
        if group is None:
            return NOTHING
        if group.membership_type == GroupMembershipType.DYNAMIC:
            # Rules are conditions on the device's own row: checked inline, no scan of the fleet.
            return device_group_q(group)
        # A subquery, so a static group's join never multiplies rows when ORed with other targets.
        return Q(pk__in=Device.objects.filter(device_group_q(group)).values("pk"))
    return NOTHING


def assignment_q(assignment: AssignmentBase) -> Q:
    """One assignment (target and filters) as a filter on ``Device``."""
    q = _target_q(assignment)
    if assignment.filter_platforms:
        q &= Q(platform__in=assignment.filter_platforms)
    if assignment.filter_ownership:
        q &= Q(ownership=assignment.filter_ownership)
    if assignment.filter_os_min:
        q &= rule_q(GroupRuleField.OS_VERSION_MIN, assignment.filter_os_min)
    if assignment.filter_os_max:
        q &= rule_q(GroupRuleField.OS_VERSION_MAX, assignment.filter_os_max)
    return q


def assignments_q(assignments: Iterable[AssignmentBase]) -> Q:
    """Includes ORed, minus excludes. No include: nobody."""
    include, exclude = NOTHING, None
    for assignment in assignments:
        q = assignment_q(assignment)
        if assignment.mode == AssignmentMode.INCLUDE:
            include = q if include is NOTHING else include | q
        else:
            exclude = q if exclude is None else exclude | q
    return include & ~exclude if exclude is not None else include


def _prefetched(obj) -> list[AssignmentBase]:
    return list(obj.assignments.select_related("user_group", "device_group"))


def _base(obj: ConfigurationProfile | CompliancePolicy) -> QuerySet[Device]:
    devices = Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED)
    if obj.scope_id is not None:
        devices = devices.filter(scope_id=obj.scope_id)
    if isinstance(obj, CompliancePolicy):
        devices = devices.filter(platform=obj.platform)
    elif obj.platforms:
        devices = devices.filter(platform__in=obj.platforms)
    return devices


def targeted_devices(
    obj: ConfigurationProfile | CompliancePolicy, assignments: Iterable[AssignmentBase] | None = None
) -> QuerySet[Device]:
    """Every device ``obj`` applies to, given its saved ``assignments`` or proposed ones (a preview)."""
    rows = _prefetched(obj) if assignments is None else list(assignments)
    return _base(obj).filter(assignments_q(rows))


def device_group_usable(group: DeviceGroup, obj: ConfigurationProfile | CompliancePolicy) -> bool:
    """A scoped profile or policy may target a group of its own scope; an organisation-wide one any group."""
    return obj.scope_id is None or group.scope_id == obj.scope_id


def candidates_for(model, device: Device) -> QuerySet:
    """Profiles or policies that could apply to ``device`` (its scope or organisation-wide), assignments loaded."""
    rows = model.objects.filter(Q(scope__isnull=True) | Q(scope_id=device.scope_id)).prefetch_related(
        "assignments__user_group", "assignments__device_group"
    )
    return rows.filter(platform=device.platform) if model is CompliancePolicy else rows


def device_matches(device: Device, objs: Iterable[ConfigurationProfile | CompliancePolicy]) -> set[int]:
    """The ids of ``objs`` (assignments prefetched) that target ``device``: one query for all of them."""
    from django.db.models import BooleanField, Case, Value, When

    objs = list(objs)
    if not objs or device.lifecycle_state != LifecycleState.ENROLLED:
        return set()
    annotations = {}
    for obj in objs:
        if obj.scope_id is not None and obj.scope_id != device.scope_id:
            continue
        if isinstance(obj, ConfigurationProfile) and obj.platforms and device.platform not in obj.platforms:
            continue
        if isinstance(obj, CompliancePolicy) and obj.platform != device.platform:
            continue
        q = assignments_q(obj.assignments.all())
        annotations[f"m{obj.pk}"] = Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())
    if not annotations:
        return set()
    row = Device.objects.filter(pk=device.pk).values(**annotations).first() or {}
    return {int(key[1:]) for key, matched in row.items() if matched}
