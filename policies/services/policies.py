"""Compliance policies: save (rules, noncompliance schedule, assignments) and delete.

Every save or delete schedules ONE re-evaluation task for the policy once committed; the task
walks the affected devices in id batches (``compliance.policy_reevaluate``), never one message per
device.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from devices.versions import InvalidVersion, parse_version
from mdm_portal.core.audit import Actor, audit_record

from ..choices import NoncomplianceActionType
from ..compliance import os_max_key
from ..models import CompliancePolicy, NoncomplianceAction
from .assignments import assignments_replace
from .compliance import reevaluate_schedule

RULE_FIELDS = (
    "platform",
    "os_min",
    "os_max",
    "passcode_required",
    "passcode_min_length",
    "passcode_min_quality",
    "encryption_required",
    "jailbreak_blocked",
    "checkin_max_days",
    "blocked_apps",
    "provisioning_on_time",
)
FIELDS = ("name", "description", "scope", *RULE_FIELDS)
NULLABLE_NUMBERS = ("passcode_min_length", "checkin_max_days")
BOOLEANS = ("passcode_required", "encryption_required", "jailbreak_blocked", "provisioning_on_time")
# Bundle ids (com.example.App), Android package names, Windows package family names
# (Microsoft.App_8wekyb3d8bbwe), Linux package, snap and flatpak names.
APP_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,254}")
MAX_BLOCKED_APPS = 500
MAX_MESSAGE = {NoncomplianceActionType.LOCK: 200}
DEFAULT_MAX_MESSAGE = 1000


def _blocked_apps(value: Any) -> tuple[list[str], str]:
    """The identifiers (order kept, duplicates dropped) and, if any is wrong, a sentence saying so."""
    if value in (None, ""):
        return [], ""
    if isinstance(value, str):
        items = re.split(r"[\s,;]+", value)
    elif isinstance(value, list | tuple):
        items = [str(item) for item in value]
    else:
        return [], "List the blocked apps as identifiers, one per line or separated by commas."
    seen: dict[str, str] = {}
    for item in (i.strip() for i in items):
        if item and item.casefold() not in seen:
            seen[item.casefold()] = item
    wrong = [item for item in seen.values() if not APP_IDENTIFIER.fullmatch(item)]
    if wrong:
        return [], (
            f"These are not app identifiers: {', '.join(wrong[:5])}. Use the bundle id or package name, "
            "for example com.example.game or com.whatsapp."
        )
    if len(seen) > MAX_BLOCKED_APPS:
        return [], f"A policy can block at most {MAX_BLOCKED_APPS} apps; split the list across policies."
    return list(seen.values()), ""


def _rules_clean(policy: CompliancePolicy, data: dict[str, Any]) -> dict[str, str]:
    """Apply ``data`` to ``policy`` with normalisation; return the problems by field."""
    errors: dict[str, str] = {}
    for field in FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field in ("os_min", "os_max", "name", "description", "passcode_min_quality"):
            value = str(value or "").strip()
        elif field in NULLABLE_NUMBERS:
            if value in (None, ""):
                value = None
            else:
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    errors[field] = "Enter a whole number, or leave it empty to not check this rule."
                    continue
        elif field in BOOLEANS:
            value = bool(value)
        elif field == "blocked_apps":
            value, problem = _blocked_apps(value)
            if problem:
                errors[field] = problem
                continue
        elif field == "scope" and not (value is None or hasattr(value, "pk")):
            try:
                policy.scope_id = int(value) if value != "" else None
            except (TypeError, ValueError):
                errors[field] = "Choose a scope from the list, or none for the whole organisation."
            continue
        setattr(policy, field, value)
    for field in ("os_min", "os_max"):
        if getattr(policy, field):
            try:
                parse_version(getattr(policy, field))
            except InvalidVersion as exc:
                errors[field] = str(exc)
    both = policy.os_min and policy.os_max and not errors.keys() & {"os_min", "os_max"}
    if both and parse_version(policy.os_min) > os_max_key(policy.os_max):
        errors["os_max"] = (
            f"The maximum OS version {policy.os_max} is below the minimum {policy.os_min}: no device could comply. "
            "Raise the maximum or lower the minimum."
        )
    return errors


def _actions_clean(rows: list[dict[str, Any]]) -> list[NoncomplianceAction]:
    cleaned: list[NoncomplianceAction] = []
    problems: list[str] = []
    seen: set[tuple[str, int]] = set()
    for index, row in enumerate(rows, start=1):
        action = row.get("action")
        if action not in NoncomplianceActionType.values:
            problems.append(f"Action {index}: choose one of {', '.join(NoncomplianceActionType.values)}.")
            continue
        try:
            days = int(row.get("days_after") or 0)
        except (TypeError, ValueError):
            days = -1
        if not 0 <= days <= 365:
            problems.append(f"Action {index}: the number of days must be a whole number from 0 to 365.")
            continue
        message = str(row.get("message") or "").strip()
        limit = MAX_MESSAGE.get(action, DEFAULT_MAX_MESSAGE)
        if len(message) > limit:
            problems.append(f"Action {index}: the message can be at most {limit} characters long for this action.")
            continue
        if (action, days) in seen:
            problems.append(f"Action {index}: the same action after {days} days is already in the schedule.")
            continue
        seen.add((action, days))
        cleaned.append(NoncomplianceAction(action=action, days_after=days, message=message))
    marks = [a for a in cleaned if a.action == NoncomplianceActionType.MARK_NONCOMPLIANT]
    if len(marks) > 1:
        problems.append("A policy has one grace period: keep a single 'mark noncompliant' action.")
    if problems:
        raise ValidationError({"actions": problems})
    return cleaned


def _describe(actions) -> list[dict[str, Any]]:
    return [{"action": a.action, "days_after": a.days_after, "message": a.message} for a in actions]


def _actions_replace(policy: CompliancePolicy, wanted: list[NoncomplianceAction]) -> None:
    """Keep the rows that stay (so their run history holds and nobody is emailed twice), change the rest."""
    existing = {(a.action, a.days_after): a for a in policy.actions.all()}
    keys = {(a.action, a.days_after) for a in wanted}
    NoncomplianceAction.objects.filter(pk__in=[a.pk for key, a in existing.items() if key not in keys]).delete()
    for action in wanted:
        current = existing.get((action.action, action.days_after))
        if current is None:
            action.policy = policy
            action.save()
        elif current.message != action.message:
            current.message = action.message
            current.save(update_fields=["message"])


@transaction.atomic
def policy_save(
    *,
    actor: Actor,
    policy: CompliancePolicy | None = None,
    data: dict[str, Any],
    actions: list[dict[str, Any]] | None = None,
    assignments: list[dict[str, Any]] | None = None,
    user=None,
) -> CompliancePolicy:
    """Create (``policy`` None) or change a compliance policy, its schedule and its assignments.

    Nothing is written when anything is wrong (``ValidationError`` by field, in sentences). A new
    policy without a schedule gets "mark noncompliant after 0 days". A change of a rule bumps
    ``version``. Audited; then one re-evaluation task for the policy once committed.
    """
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValidationError(f"Unknown policy field(s): {', '.join(unknown)}.")
    creating = policy is None
    policy = policy or CompliancePolicy()
    before = {field: getattr(policy, field if field != "scope" else "scope_id") for field in FIELDS}
    errors: dict[str, Any] = _rules_clean(policy, data)
    try:
        policy.full_clean(exclude=list(errors))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, " ".join(messages))
    cleaned_actions = None
    if actions is not None:
        try:
            cleaned_actions = _actions_clean(actions)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    after = {field: getattr(policy, field if field != "scope" else "scope_id") for field in FIELDS}
    changed = {field: [before[field], after[field]] for field in FIELDS if before[field] != after[field]}
    if not creating and any(field in changed for field in RULE_FIELDS):
        policy.version += 1
    policy.save()
    actions_before = [] if creating else _describe(policy.actions.all())
    if creating and not cleaned_actions:
        cleaned_actions = [NoncomplianceAction(action=NoncomplianceActionType.MARK_NONCOMPLIANT, days_after=0)]
    if cleaned_actions is not None:
        _actions_replace(policy, cleaned_actions)
    actions_after = _describe(policy.actions.all())
    audit_changes: dict[str, Any] = {"version": policy.version}
    if creating:
        audit_changes["values"] = after
        audit_changes["actions"] = actions_after
    else:
        audit_changes["changed"] = changed
        if actions_after != actions_before:
            audit_changes["actions"] = {"before": actions_before, "after": actions_after}
    if creating or changed or "actions" in audit_changes:
        verb = "policy.create" if creating else "policy.change"
        audit_record(actor=actor, verb=verb, target=policy, changes=audit_changes)
    if assignments is not None:
        assignments_replace(actor=actor, obj=policy, rows=assignments, user=user)
    reevaluate_schedule(policy.pk)
    return policy


@transaction.atomic
def policy_delete(*, actor: Actor, policy: CompliancePolicy) -> None:
    """Delete a policy (its failures and schedule go with it); the devices it applied to are re-evaluated."""
    pk, platform, scope_id = policy.pk, policy.platform, policy.scope_id
    audit_record(
        actor=actor,
        verb="policy.delete",
        target=policy,
        changes={"name": policy.name, "platform": platform, "version": policy.version},
    )
    policy.delete()
    reevaluate_schedule(pk, platform=platform, scope_id=scope_id)
