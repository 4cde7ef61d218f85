"""Cleanup rules: devices of a platform silent for too long are retired or removed from management.

One rule per platform says after how many days without a check-in (30 to 270) a device is taken,
and what happens to it:

* ``retire``: a retirement request (source ``cleanup``), so the device receives the retire command if
  it ever checks in again, and times out otherwise like any other request;
* ``delete``: the record is removed from management at once: a delete request, then forced
  unenrolment (unverified). The device is retired; its secret is refused with 410 if it returns.

``cleanup_candidates`` is the one definition of what a rule takes: the admin's dry-run preview
shows it (restricted to the viewer's scopes) and ``cleanup_rule_run`` takes exactly that set, in id
batches. A rule acts on its own authority, like any automation: the device permissions of whoever
runs it are not checked per device (running a rule needs ``retirement.change_cleanuprule``
everywhere, which the admin checks).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from devices.choices import LifecycleState
from devices.models import Device
from mdm_portal.core.audit import Actor, audit_record, model_changes

from ..choices import OPEN_STATUSES, CleanupAction, RetirementAction, RetirementSource
from ..models import CleanupRule, RetirementRequest
from . import requests as requests_service

MIN_DAYS, MAX_DAYS = 30, 270
RUN_BATCH = 500
RULE_FIELDS = ("platform", "days", "action", "enabled")
# How many skipped devices a run's audit event names (the counts cover all of them).
SKIPPED_EXAMPLES = 20
DAYS_SENTENCE = (
    f"Choose between {MIN_DAYS} and {MAX_DAYS} days: fewer would catch devices that are only on holiday or in a "
    f"drawer, more would keep lost devices managed for most of a year."
)


def cleanup_days_validate(days: Any) -> None:
    """Refuse a number of days outside 30 to 270 with a sentence that says the range."""
    if days is None or isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError({"days": DAYS_SENTENCE}, code="days_range")


def cleanup_reason(rule: CleanupRule) -> str:
    return f"Cleanup rule: no check-in for {rule.days} days"


def cleanup_candidates(rule: CleanupRule, now: datetime | None = None) -> QuerySet[Device]:
    """The devices ``rule`` takes at ``now``: one queryset, ordered by id.

    Enrolled devices of the rule's platform whose last check-in (their enrolment, when they never
    checked in) is more than ``rule.days`` days before ``now``, without an open retirement request.
    Annotated with ``last_seen``. Written as an OR rather than a filter on the COALESCE so that the
    (lifecycle_state, last_checkin_at) index serves the common case.
    """
    cutoff = (now or timezone.now()) - timedelta(days=rule.days)
    silent = Q(last_checkin_at__lt=cutoff) | Q(
        Q(enrolled_at__lt=cutoff) | Q(enrolled_at__isnull=True, created_at__lt=cutoff), last_checkin_at__isnull=True
    )
    open_request = RetirementRequest.objects.filter(device=OuterRef("pk"), status__in=OPEN_STATUSES)
    return (
        Device.objects.filter(silent, lifecycle_state=LifecycleState.ENROLLED, platform=rule.platform)
        .filter(~Exists(open_request))
        .annotate(last_seen=Coalesce("last_checkin_at", "enrolled_at", "created_at"))
        .order_by("pk")
    )


def _take(*, actor: Actor, rule: CleanupRule, device: Device, now: datetime, reason: str) -> RetirementRequest:
    """One device, in its own transaction: still a candidate (locked), then the request (and the force)."""
    with transaction.atomic():
        still = cleanup_candidates(rule, now).filter(pk=device.pk).select_for_update(of=("self",))
        if not list(still.values_list("pk", flat=True)):
            raise ValidationError(
                f"{device.name} is no longer a candidate (it checked in, left the enrolled state or got a request "
                "since the selection)."
            )
        action = RetirementAction.DELETE if rule.action == CleanupAction.DELETE else RetirementAction.RETIRE
        request = requests_service.retirement_request(
            actor=actor, device=device, action=action, source=RetirementSource.CLEANUP, reason=reason
        )
        if rule.action == CleanupAction.DELETE:
            requests_service.retirement_force(actor=actor, request=request, reason=reason, automated=True)
        return request


def _skip_reason(exc: Exception, device: Device) -> str:
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    # Counted by reason across devices: the device's name would make every reason unique.
    return text.replace(device.name, "The device") if device.name else text


def cleanup_rule_run(*, rule: CleanupRule, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """Take exactly ``cleanup_candidates(rule, now)``; returns the run's counts.

    Devices are read in id batches of ``RUN_BATCH`` (one query each) and each is taken in its own
    transaction, so a run over 100,000 devices neither loads them at once nor holds one long
    transaction. A device that cannot be taken (it checked in meanwhile, became ineligible) is
    skipped and its reason counted; it never stops the run. The requests of one run share a batch
    id. The rule's last run is recorded and the run audited once, with the counts.
    """
    now = now or timezone.now()
    reason = cleanup_reason(rule)
    batch_id = uuid.uuid4()
    candidates = cleanup_candidates(rule, now)
    taken, skipped, batches = 0, 0, 0
    reasons: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    last_pk = 0
    while True:
        devices = list(candidates.filter(pk__gt=last_pk)[:RUN_BATCH])
        if not devices:
            break
        batches += 1
        made: list[int] = []
        for device in devices:
            try:
                request = _take(actor=actor, rule=rule, device=device, now=now, reason=reason)
            except (ValidationError, PermissionDenied) as exc:
                skipped += 1
                why = _skip_reason(exc, device)
                reasons[why] += 1
                if len(examples) < SKIPPED_EXAMPLES:
                    examples.append({"device": str(device.uuid), "name": device.name, "reason": why})
            else:
                taken += 1
                made.append(request.pk)
        if made:
            RetirementRequest.objects.filter(pk__in=made).update(batch=batch_id)
        last_pk = devices[-1].pk
        if len(devices) < RUN_BATCH:
            break
    result = {
        "rule": rule.pk,
        "platform": rule.platform,
        "action": rule.action,
        "days": rule.days,
        "batch": str(batch_id),
        "candidates": taken + skipped,
        "taken": taken,
        "skipped": skipped,
        "skipped_reasons": dict(reasons),
        "batches": batches,
    }
    with transaction.atomic():
        CleanupRule.objects.filter(pk=rule.pk).update(last_run_at=now, last_run_count=taken)
        rule.last_run_at, rule.last_run_count = now, taken
        audit_record(
            actor=actor,
            verb="retirement.cleanup.run",
            target=rule,
            changes={
                **result,
                "silent_since_before": (now - timedelta(days=rule.days)).isoformat(),
                "skipped_examples": examples,
            },
        )
    return result


def cleanup_rules_run_all(*, now: datetime | None = None) -> list[dict[str, Any]]:
    """Run every enabled rule as the system (beat, daily); returns each run's counts."""
    actor = Actor.system("retirement.cleanup")
    return [cleanup_rule_run(rule=rule, actor=actor, now=now) for rule in CleanupRule.objects.filter(enabled=True)]


@transaction.atomic
def cleanup_rule_save(*, actor: Actor, rule: CleanupRule) -> CleanupRule:
    """Create or update a rule from its edited fields: days within 30 to 270, one rule per platform."""
    created = rule._state.adding
    cleanup_days_validate(rule.days)
    rule.full_clean()
    previous = None if created else CleanupRule.objects.filter(pk=rule.pk).values(*RULE_FIELDS).first()
    rule.save()
    current = model_changes(rule, RULE_FIELDS)
    if previous is None:
        changes: dict[str, Any] = current
    else:
        changes = {f: [previous[f], current[f]] for f in RULE_FIELDS if previous[f] != current[f]}
    audit_record(
        actor=actor,
        verb="retirement.cleanup_rule.create" if created else "retirement.cleanup_rule.update",
        target=rule,
        changes=changes,
    )
    return rule


@transaction.atomic
def cleanup_rule_delete(*, actor: Actor, rule: CleanupRule) -> None:
    """Delete a rule; the requests it made stay (they are the devices' history)."""
    audit_record(
        actor=actor, verb="retirement.cleanup_rule.delete", target=rule, changes=model_changes(rule, RULE_FIELDS)
    )
    rule.delete()
