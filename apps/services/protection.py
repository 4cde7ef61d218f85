"""Saving and deleting app protection (MAM) policies.

A policy is validated as a whole (its fields, its apps, its user-group rows) before anything is
written. Any change of a setting, of its apps or of whom it targets bumps ``version``; the
effective policy an app instance receives is recomputed at its next check-in (``apps.mam``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.models import UserGroup
from mdm_portal.core.selectors import assignable_user_groups

from ..models import App, AppProtectionAssignment, AppProtectionPolicy

SETTING_FIELDS = (
    "name",
    "description",
    "scope",
    "platform",
    "data_isolation",
    "clipboard",
    "block_backup",
    "block_save_as",
    "sharing",
    "managed_browser_required",
    "allowed_urls",
    "blocked_urls",
    "pin_required",
    "pin_length",
    "pin_recheck_minutes",
    "offline_block_minutes",
    "offline_wipe_days",
    "min_app_version",
    "min_os_version",
)


def _snapshot(policy: AppProtectionPolicy) -> dict[str, Any]:
    return {name: getattr(policy, "scope_id" if name == "scope" else name) for name in SETTING_FIELDS}


def _clean_apps(policy: AppProtectionPolicy, apps: list[App]) -> list[App]:
    wrong = [a for a in apps if a.platform != policy.platform]
    if wrong:
        raise ValidationError(
            {
                "apps": (
                    f"{', '.join(a.name for a in wrong)} {'is' if len(wrong) == 1 else 'are'} not for "
                    f"{policy.get_platform_display()}; choose apps of the policy's platform."
                )
            }
        )
    if policy.scope_id is not None:
        outside = [a for a in apps if a.scope_id not in (None, policy.scope_id)]
        if outside:
            raise ValidationError(
                {
                    "apps": (
                        f"{', '.join(a.name for a in outside)} belong{'s' if len(outside) == 1 else ''} to "
                        f"another scope; a policy of {policy.scope} protects that scope's apps or "
                        "organisation-wide ones."
                    )
                }
            )
    return sorted(set(apps), key=lambda a: a.pk)


def _clean_rows(rows: list[dict[str, Any]]) -> list[tuple[UserGroup, bool]]:
    cleaned, problems, seen = [], [], set()
    for index, row in enumerate(rows, start=1):
        group = row.get("user_group")
        if group is not None and not isinstance(group, UserGroup):
            group = UserGroup.objects.filter(pk=group).first()
        if group is None:
            problems.append(f"Row {index}: choose the user group whose members it applies to.")
            continue
        if group.pk in seen:
            problems.append(f"Row {index}: {group} is already in another row; keep one row per group.")
            continue
        seen.add(group.pk)
        cleaned.append((group, bool(row.get("exclude"))))
    if cleaned and all(exclude for _, exclude in cleaned):
        problems.append("Only exclusions: nobody would receive it. Add an include row.")
    if problems:
        raise ValidationError({"assignments": problems})
    return cleaned


def _describe(rows) -> list[str]:
    return sorted(f"{'exclude' if exclude else 'include'} {group.name}" for group, exclude in rows)


@transaction.atomic
def protection_policy_save(
    *,
    actor: Actor,
    policy: AppProtectionPolicy | None = None,
    data: dict[str, Any],
    apps: list[App],
    assignments: list[dict[str, Any]],
    user=None,
) -> AppProtectionPolicy:
    """Create (``policy`` None) or change a protection policy with its apps and user-group rows.

    ``assignments``: ``[{"user_group": UserGroup or id, "exclude": bool}]``, replacing the stored
    rows. ``user``: the person editing; a user group they may not view is refused unless the policy
    already targets it. Nothing is written when anything is wrong.
    """
    creating = policy is None
    policy = policy or AppProtectionPolicy()
    before = _snapshot(policy) if not creating else {}
    before_apps = sorted(policy.apps.values_list("pk", flat=True)) if not creating else []
    before_rows = (
        _describe([(a.user_group, a.exclude) for a in policy.assignments.select_related("user_group")])
        if not creating
        else []
    )
    for name in SETTING_FIELDS:
        if name in data:
            setattr(policy, name, data[name])
    policy.allowed_urls = list(policy.allowed_urls or [])
    policy.blocked_urls = list(policy.blocked_urls or [])
    errors: dict[str, list[str]] = {}
    try:
        policy.full_clean(exclude=["apps"], validate_unique=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    try:
        cleaned_apps = _clean_apps(policy, list(apps))
    except ValidationError as exc:
        errors.update(exc.message_dict)
        cleaned_apps = []
    try:
        rows = _clean_rows(list(assignments))
    except ValidationError as exc:
        errors.update(exc.message_dict)
        rows = []
    if user is not None and rows:
        stored = {a.user_group_id for a in policy.assignments.all()} if not creating else set()
        assignable = set(assignable_user_groups(user=user).values_list("pk", flat=True))
        hidden = [g for g, _ in rows if g.pk not in stored and g.pk not in assignable]
        if hidden:
            errors.setdefault("assignments", []).append(
                f"Choose user groups you can see; {', '.join(g.name for g in hidden)} is not one of them."
            )
    if errors:
        raise ValidationError(errors)

    after_rows = _describe(rows)
    changed = (
        creating
        or _snapshot(policy) != before
        or [a.pk for a in cleaned_apps] != before_apps
        or after_rows != before_rows
    )
    if changed and not creating:
        policy.version += 1
    policy.save()
    policy.apps.set(cleaned_apps)
    policy.assignments.all().delete()
    AppProtectionAssignment.objects.bulk_create(
        [AppProtectionAssignment(policy=policy, user_group=group, exclude=exclude) for group, exclude in rows]
    )
    if changed:
        changes: dict[str, Any] = {
            "version": policy.version,
            "apps": [str(a) for a in cleaned_apps],
            "assignments": after_rows,
        }
        if not creating:
            changes["before"] = {k: v for k, v in before.items() if _snapshot(policy).get(k) != v} | (
                {"assignments": before_rows} if before_rows != after_rows else {}
            )
        audit_record(
            actor=actor,
            verb="protection_policy.create" if creating else "protection_policy.change",
            target=policy,
            changes=changes,
        )
    return policy


@transaction.atomic
def protection_policy_delete(*, actor: Actor, policy: AppProtectionPolicy) -> None:
    """Delete a protection policy; the apps it protected get what remains at their next check-in."""
    audit_record(
        actor=actor,
        verb="protection_policy.delete",
        target=policy,
        changes={"name": policy.name, "platform": policy.platform, "version": policy.version},
    )
    policy.delete()
