"""Compliance evaluation: one device at check-in, the whole fleet in the beat sweep.

The rules themselves are pure functions (``policies.compliance``); the engine
(``compliance_engine``) feeds them ``values()`` rows; this module drives it and writes the outcome
set-based:

* ``ComplianceFailure`` rows are diffed: new failures inserted, fixed ones deleted, unchanged ones
  untouched (so ``since`` survives and an unchanged device costs no write at all);
* ``Device.compliance_state`` is updated with one UPDATE per new state per batch;
* ``ComplianceActionRun`` rows of devices that comply with a policy again are cleared, so the next
  failing spell runs that policy's schedule afresh.

Check-in fast path: a check-in whose inventory did not change, of a device already compliant,
adds no query. Nothing a check-in brings can make such a device fail: its facts are unchanged and
its fresh check-in time can only satisfy the time rules. Everything else that can change an
evaluation schedules its own re-evaluation: a policy or assignment change
(``policy_reevaluate_task``), a settings change (a sweep), the passing of time and group or
ownership changes (the hourly sweep).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from devices.choices import ComplianceState, LifecycleState
from devices.models import Device
from devices.services import device_compliance_set
from mdm_portal.core import outbox
from mdm_portal.core.audit import Actor, audit_record

from ..models import ComplianceFailure, CompliancePolicy, ComplianceSettings, ComplianceSnapshot
from .compliance_engine import (
    SETTINGS_FIELDS,
    Engine,
    compliance_states_write,
    device_policy_candidates,
    grace_days,
    policies_loaded,
)

logger = logging.getLogger(__name__)

SWEEP_BATCH = 2000
SWEEP_JOB = "compliance_sweep"
EVALUATION_JOB = "compliance_evaluation"
# States in which the engine leaves no failure row behind, so evaluating such a device needs no
# read of its failures.
CLEAN_STATES = frozenset({ComplianceState.COMPLIANT, ComplianceState.NOT_EVALUATED})
STATE_ORDER = tuple(ComplianceState.values)


# -- one device -----------------------------------------------------------------------------------


def device_compliance_on_checkin(*, device: Device, inventory_changed: bool, first: bool) -> None:
    """Evaluate a device at check-in; free when nothing it reported changed and it complies (see module doc)."""
    if not inventory_changed and not first and device.compliance_state == ComplianceState.COMPLIANT:
        return
    device_compliance_evaluate(device)


def device_compliance_evaluate(device: Device, *, actor: Actor | None = None) -> str:
    """Evaluate one enrolled device now, store its failures and state (a change audited for the device).

    Bounded whatever the fleet size: the policies of its scope and platform and their assignments
    (two queries, one without policies), the device with its inventory, the settings and its policy
    matches (one query), its failures (only if it had some), the grace periods (only if it fails
    something); writes, in one transaction, only when something changed. Returns the state.
    """
    if device.lifecycle_state != LifecycleState.ENROLLED:
        return device.compliance_state
    engine = Engine(policies_loaded(device_policy_candidates(device)))
    rows = engine.rows(Device.objects.filter(pk=device.pk))
    if not rows:
        return device.compliance_state
    # The device read at the start of the request may be stale; the row is what was evaluated.
    device.compliance_state = rows[0]["compliance_state"]
    plan = engine.plan(rows, read_failures=device.compliance_state not in CLEAN_STATES)
    _before, after = plan.outcomes[device.pk]
    if plan.writes:
        with transaction.atomic():
            plan.write_failures()
            if after != device.compliance_state:
                device_compliance_set(actor=actor or Actor.system(EVALUATION_JOB), device=device, state=after)
    return after


# -- many devices ---------------------------------------------------------------------------------


def compliance_evaluate_devices(
    devices: QuerySet[Device], *, actor: Actor, batch: int = SWEEP_BATCH, engine: Engine | None = None
) -> dict[str, Any]:
    """Evaluate every enrolled device of ``devices`` in id batches (keyset), each batch in its own transaction.

    Per batch, whatever the number of devices and policies: one read of the devices (inventory
    and policy matches joined), one read of their failures, then only writes of what changed
    (insert, delete, one UPDATE per new state, one bulk audit insert, one clearing of action runs).
    Returns ``{"devices", "changed", "batches", "states": {(scope id, state): count}}``.
    """
    if batch < 1:
        raise ValidationError("The batch size must be at least 1.")
    engine = engine or Engine(policies_loaded(), settings=ComplianceSettings.load())
    devices = devices.filter(lifecycle_state=LifecycleState.ENROLLED).order_by("pk")
    states: Counter = Counter()
    total = changed = batches = 0
    last = 0
    while True:
        with transaction.atomic():
            # The batch's device rows stay locked until its states are written: a check-in (or a
            # second sweep) of one of them waits for this commit and then evaluates fresh data,
            # instead of this batch overwriting its newer state or both auditing the same change.
            rows = engine.rows(devices.filter(pk__gt=last).select_for_update(of=("self",)), batch)
            if not rows:
                break
            last = rows[-1]["pk"]
            outcomes = engine.apply(rows)
            scopes = {row["pk"]: row["scope_id"] for row in rows}
            changed += compliance_states_write(actor=actor, outcomes=outcomes, scopes=scopes, now=engine.now)
        batches += 1
        total += len(rows)
        for row in rows:
            states[(row["scope_id"], outcomes[row["pk"]][1])] += 1
        if len(rows) < batch:
            break
    return {"devices": total, "changed": changed, "batches": batches, "states": states}


def compliance_sweep(*, batch: int = SWEEP_BATCH, now: datetime | None = None) -> dict[str, int]:
    """Evaluate the whole fleet (beat, hourly) and write the day's snapshot per scope and state.

    The policies and settings are loaded once; each batch costs a fixed number of queries (see
    ``compliance_evaluate_devices``); a device whose evaluation did not change is never written.
    State changes are audited per batch and scope (counts and ids), not per device.
    """
    engine = Engine(policies_loaded(), now=now, settings=ComplianceSettings.load())
    actor = Actor.system(SWEEP_JOB)
    result = compliance_evaluate_devices(Device.objects.all(), actor=actor, batch=batch, engine=engine)
    _snapshot_write(timezone.localdate(engine.now), result["states"])
    logger.info("Compliance sweep: %(devices)d devices in %(batches)d batches, %(changed)d changed", result)
    return {key: result[key] for key in ("devices", "changed", "batches")}


@transaction.atomic
def _snapshot_write(day, states: Counter) -> None:
    """Replace the day's counts: every state of every scope with devices (0 included, for the trend lines)."""
    ComplianceSnapshot.objects.filter(day=day).delete()
    scopes = sorted({scope_id for scope_id, _state in states})
    ComplianceSnapshot.objects.bulk_create(
        [
            ComplianceSnapshot(day=day, scope_id=scope_id, state=state, count=states.get((scope_id, state), 0))
            for scope_id in scopes
            for state in STATE_ORDER
        ],
        ignore_conflicts=True,
    )


def policy_reevaluate(
    policy_id: int, *, platform: str | None = None, scope_id: int | None = None, batch: int = SWEEP_BATCH
) -> dict[str, int]:
    """Re-evaluate every device a policy may apply to, after it changed or was deleted.

    Those are the enrolled devices of its platform (in its scope, if it has one) and any device
    still holding a failure of it. For a deleted policy, pass its ``platform`` and ``scope_id``.
    """
    policy = CompliancePolicy.objects.filter(pk=policy_id).first()
    if policy is not None:
        platform, scope_id = policy.platform, policy.scope_id
    if platform is None:
        return {"devices": 0, "changed": 0, "batches": 0}
    candidates = Q(platform=platform)
    if scope_id is not None:
        candidates &= Q(scope_id=scope_id)
    if policy is not None:
        candidates |= Q(pk__in=ComplianceFailure.objects.filter(policy_id=policy_id).values("device_id"))
    actor = Actor.system(f"policy_reevaluate:{policy_id}")
    result = compliance_evaluate_devices(Device.objects.filter(candidates), actor=actor, batch=batch)
    return {key: result[key] for key in ("devices", "changed", "batches")}


def reevaluate_schedule(policy_id: int, *, platform: str | None = None, scope_id: int | None = None) -> None:
    """One task message for the change, sent once it is committed."""
    from ..tasks import policy_reevaluate_task

    outbox.enqueue(policy_reevaluate_task, policy_id, platform=platform, scope_id=scope_id)


# -- settings -------------------------------------------------------------------------------------


@transaction.atomic
def compliance_settings_save(*, actor: Actor, data: dict[str, Any]) -> ComplianceSettings:
    """Change the organisation-wide settings; a change re-evaluates the fleet (one sweep task)."""
    unknown = sorted(set(data) - set(SETTINGS_FIELDS))
    if unknown:
        raise ValidationError(
            f"These compliance settings do not exist: {', '.join(unknown)}. Use {' and '.join(SETTINGS_FIELDS)}."
        )
    settings = ComplianceSettings.load()
    before = {field: getattr(settings, field) for field in SETTINGS_FIELDS}
    if "no_policy_compliant" in data:
        value = data["no_policy_compliant"]
        if not isinstance(value, bool):
            raise ValidationError({"no_policy_compliant": "Choose yes or no: are devices without a policy compliant?"})
        settings.no_policy_compliant = value
    if "validity_days" in data:
        try:
            settings.validity_days = int(data["validity_days"])
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                {"validity_days": "Enter the validity period as a whole number of days (1-365)."}
            ) from exc
    settings.full_clean()
    settings.save()
    after = {field: getattr(settings, field) for field in SETTINGS_FIELDS}
    if after != before:
        audit_record(
            actor=actor,
            verb="compliance.settings_change",
            target=settings,
            changes={k: [before[k], after[k]] for k in SETTINGS_FIELDS if before[k] != after[k]},
        )
        from ..tasks import compliance_sweep_task

        outbox.enqueue(compliance_sweep_task)
    return settings


# The actions live in their own module; importable from here too (the admin imports them from here).
from .compliance_actions import compliance_actions_run, retire_approval_decide  # noqa: E402

__all__ = [
    "Engine",
    "compliance_actions_run",
    "compliance_evaluate_devices",
    "compliance_settings_save",
    "compliance_states_write",
    "compliance_sweep",
    "device_compliance_evaluate",
    "device_compliance_on_checkin",
    "device_policy_candidates",
    "grace_days",
    "policies_loaded",
    "policy_reevaluate",
    "reevaluate_schedule",
    "retire_approval_decide",
]
