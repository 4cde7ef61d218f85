"""Assignments of profiles and policies: validation of what a person asks for, and replacement.

An assignment set is always replaced as a whole (the admin's inline editor and the API both send
the full list), audited as one event with before and after, and followed by one fan-out task.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from devices.choices import Ownership, Platform
from devices.models import DeviceGroup
from devices.versions import InvalidVersion, parse_version
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.models import UserGroup

from ..choices import AssignmentMode, AssignmentTarget
from ..models import AssignmentBase, CompliancePolicy, ConfigurationProfile, PolicyAssignment, ProfileAssignment
from ..targeting import device_group_usable

FIELDS = (
    "mode",
    "target",
    "user_group",
    "device_group",
    "filter_platforms",
    "filter_ownership",
    "filter_os_min",
    "filter_os_max",
)


def assignment_model(obj: ConfigurationProfile | CompliancePolicy) -> type[AssignmentBase]:
    return ProfileAssignment if isinstance(obj, ConfigurationProfile) else PolicyAssignment


def assignment_describe(assignment: AssignmentBase) -> dict[str, Any]:
    """A JSON-able description (the audit trail's before/after)."""
    return {
        "mode": assignment.mode,
        "target": assignment.target,
        "user_group": assignment.user_group.name if assignment.user_group_id else None,
        "device_group": assignment.device_group.name if assignment.device_group_id else None,
        "filter_platforms": list(assignment.filter_platforms or []),
        "filter_ownership": assignment.filter_ownership,
        "filter_os_min": assignment.filter_os_min,
        "filter_os_max": assignment.filter_os_max,
    }


def assignment_clean(obj, row: dict[str, Any], *, user=None) -> AssignmentBase:
    """One assignment from a dict (model instances or ids for the groups); ``ValidationError`` by field.

    ``user``: the person assigning: a device group they cannot view is refused as if it did not exist.
    """
    errors: dict[str, str] = {}
    mode = row.get("mode") or AssignmentMode.INCLUDE
    if mode not in AssignmentMode.values:
        errors["mode"] = f"Mode must be one of: {', '.join(AssignmentMode.values)}."
    target = row.get("target")
    if target not in AssignmentTarget.values:
        errors["target"] = f"Target must be one of: {', '.join(AssignmentTarget.values)}."
    user_group = _resolve(UserGroup, row.get("user_group"))
    device_group = _resolve(DeviceGroup, row.get("device_group"))
    if target == AssignmentTarget.USER_GROUP and user_group is None:
        errors["user_group"] = "Choose the user group whose members' devices it applies to."
    if target == AssignmentTarget.DEVICE_GROUP:
        if device_group is None or (user is not None and not authz.can(user, "devices.view_devicegroup", device_group)):
            errors["device_group"] = "Choose a device group you can see."
        elif not device_group_usable(device_group, obj):
            errors["device_group"] = (
                f"{device_group} belongs to another scope; a profile or policy of {obj.scope} "
                "can only target that scope's groups or organisation-wide ones."
            )
    if target != AssignmentTarget.USER_GROUP:
        user_group = None
    if target != AssignmentTarget.DEVICE_GROUP:
        device_group = None
    platforms = row.get("filter_platforms") or []
    if isinstance(platforms, str):
        platforms = [p.strip() for p in platforms.split(",") if p.strip()]
    unknown = [p for p in platforms if p not in Platform.values]
    if unknown:
        errors["filter_platforms"] = (
            f"Unknown platform {', '.join(map(str, unknown))}; use {', '.join(Platform.values)}."
        )
    ownership = row.get("filter_ownership") or ""
    if ownership and ownership not in Ownership.values:
        errors["filter_ownership"] = f"Ownership must be one of: {', '.join(Ownership.values)}."
    os_range = {}
    for name in ("filter_os_min", "filter_os_max"):
        value = str(row.get(name) or "").strip()
        if value:
            try:
                parse_version(value)
            except InvalidVersion as exc:
                errors[name] = str(exc)
        os_range[name] = value
    if errors:
        raise ValidationError(errors)
    return assignment_model(obj)(
        mode=mode,
        target=target,
        user_group=user_group,
        device_group=device_group,
        filter_platforms=sorted(set(platforms)),
        filter_ownership=ownership,
        **os_range,
    )


def _resolve(model, value):
    if value is None or value == "":
        return None
    if isinstance(value, model):
        return value
    try:
        return model.objects.filter(pk=int(value)).first()
    except (TypeError, ValueError):
        return None


def assignments_replace(
    *, actor: Actor, obj: ConfigurationProfile | CompliancePolicy, rows: list[dict[str, Any]], user=None
) -> list[AssignmentBase]:
    """Replace every assignment of ``obj`` (validated first: nothing is written if one is wrong).

    Errors are raised as ``ValidationError({"assignments": [..., {field: message}, ...]})`` by row.
    The caller's transaction also schedules the fan-out.
    """
    cleaned, problems = [], []
    for index, row in enumerate(rows):
        try:
            cleaned.append(assignment_clean(obj, row, user=user))
        except ValidationError as exc:
            problems.append(
                f"Assignment {index + 1}: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            )
    if problems:
        raise ValidationError({"assignments": problems})
    model = assignment_model(obj)
    before = [assignment_describe(a) for a in obj.assignments.select_related("user_group", "device_group")]
    obj.assignments.all().delete()
    for assignment in cleaned:
        setattr(assignment, "profile" if model is ProfileAssignment else "policy", obj)
    model.objects.bulk_create(cleaned)
    after = [assignment_describe(a) for a in cleaned]
    if before != after:
        audit_record(
            actor=actor,
            verb=f"{'profile' if model is ProfileAssignment else 'policy'}.assignments",
            target=obj,
            changes={"before": before, "after": after},
        )
    return cleaned
