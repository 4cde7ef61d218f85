"""Actions for noncompliance: each policy's schedule, run by beat, once per device per failing spell.

A policy's action with ``days_after`` d is due for a device that has failed that policy for at
least d days (its oldest current failure of the policy) and is in grace or noncompliant. It runs
once: a ``ComplianceActionRun`` row (unique per device and action) is inserted in the same
transaction as the action and its audit event, and cleared by the evaluation when the device
complies with the policy again. Concurrent runs of one action wait for each other (a row lock on
the action) and then skip what the other did; the unique constraint backs that up.

* mark noncompliant: the state logic itself (the grace period ends), evaluated set-based;
* email: the primary user gets every failing setting with its fix steps and the action's message
  (``templates/policies/email/noncompliance*``); a mail server that is down leaves no run row, so
  the next run tries again;
* push: a ``notify`` command through the agent's channel; lock: a ``lock`` command;
* retire: a ``RetireApproval`` waiting for IT, never a retirement.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from devices.choices import CommandType, ComplianceState, LifecycleState
from devices.models import Device
from devices.services import device_command_queue
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.models import AuditEvent

from ..choices import ComplianceRule, NoncomplianceActionType, RetireApprovalStatus
from ..compliance import ERROR_PREFIX, rule_help
from ..models import ComplianceActionRun, ComplianceFailure, ComplianceSettings, NoncomplianceAction, RetireApproval
from .compliance_engine import Engine, compliance_states_write, policies_loaded

logger = logging.getLogger(__name__)

ACTIONS_JOB = "compliance_actions"
CHUNK = 500
ACTIONABLE = (ComplianceState.IN_GRACE, ComplianceState.NONCOMPLIANT)
LOCK_MESSAGE = "This device was locked because it does not meet company requirements. Contact IT to unlock it."
RETIRE_PERMISSION = "devices.retire_device"


class _TryAgain(Exception):
    """The action could not be done now (mail server down): no run row, the next run retries."""


def _due(action: NoncomplianceAction, now: datetime) -> list[int]:
    cutoff = now - timedelta(days=action.days_after)
    failing = ComplianceFailure.objects.filter(policy_id=action.policy_id, since__lte=cutoff).exclude(
        actual__startswith=ERROR_PREFIX
    )
    done = ComplianceActionRun.objects.filter(action=action).values("device_id")
    return list(
        Device.objects.filter(
            lifecycle_state=LifecycleState.ENROLLED,
            compliance_state__in=ACTIONABLE,
            pk__in=failing.values("device_id"),
        )
        .exclude(pk__in=done)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def compliance_actions_run(now: datetime | None = None) -> dict[str, int]:
    """Run every policy action that is due (beat, every 15 minutes). Returns runs done by action type."""
    now = now or timezone.now()
    actor = Actor.system(ACTIONS_JOB)
    done: Counter = Counter()
    engine: Engine | None = None
    for action in NoncomplianceAction.objects.select_related("policy").order_by("days_after", "pk"):
        due = _due(action, now)
        # An email cannot be taken back: each is committed with its run row on its own, so a worker
        # killed mid-run sends at most one email twice (a command chunk rolls back as a whole instead).
        size = 1 if action.action == NoncomplianceActionType.EMAIL else CHUNK
        for start in range(0, len(due), size):
            with transaction.atomic():
                # Serialise runs of this action; then skip what a concurrent run did meanwhile.
                if not list(NoncomplianceAction.objects.select_for_update().filter(pk=action.pk).values_list("pk")):
                    break
                chunk = set(due[start : start + size]) - set(
                    ComplianceActionRun.objects.filter(
                        action=action, device_id__in=due[start : start + size]
                    ).values_list("device_id", flat=True)
                )
                if not chunk:
                    continue
                if action.action == NoncomplianceActionType.MARK_NONCOMPLIANT:
                    engine = engine or Engine(policies_loaded(), now=now, settings=ComplianceSettings.load())
                    count = _mark(action, sorted(chunk), engine=engine, actor=actor)
                else:
                    count = _each(action, sorted(chunk), now=now, actor=actor)
                if count:
                    done[action.action] += count
    return dict(done)


def _mark(action: NoncomplianceAction, ids: list[int], *, engine: Engine, actor: Actor) -> int:
    """The grace period ended: evaluate set-based (the state logic marks them) and record the runs."""
    ComplianceActionRun.objects.bulk_create(
        [ComplianceActionRun(device_id=pk, action=action, ran_at=engine.now, outcome="marked") for pk in ids],
        ignore_conflicts=True,
    )
    rows = engine.rows(Device.objects.filter(pk__in=ids))
    outcomes = engine.apply(rows)
    scopes = {row["pk"]: row["scope_id"] for row in rows}
    compliance_states_write(actor=actor, outcomes=outcomes, scopes=scopes, now=engine.now)
    content_type = ContentType.objects.get_for_model(Device)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_type=actor.type,
            actor_user=actor.user,
            actor_label=actor.label[:255],
            verb="compliance.action.mark_noncompliant",
            target_type=content_type,
            target_id=str(row["pk"]),
            target_repr=f"device {row['pk']}",
            scope_id=row["scope_id"],
            changes=_changes(action, f"state {outcomes[row['pk']][1]}"),
            source_ip=None,
        )
        for row in rows
    )
    return len(rows)


def _changes(action: NoncomplianceAction, outcome: str) -> dict[str, Any]:
    return {
        "policy": {"id": action.policy_id, "name": action.policy.name},
        "action": action.action,
        "days_after": action.days_after,
        "outcome": outcome,
    }


def _each(action: NoncomplianceAction, ids: list[int], *, now: datetime, actor: Actor) -> int:
    devices = Device.objects.filter(pk__in=ids).select_related("primary_user").in_bulk()
    failures: dict[int, list[ComplianceFailure]] = defaultdict(list)
    for failure in ComplianceFailure.objects.filter(device_id__in=ids).select_related("policy").order_by("rule"):
        failures[failure.device_id].append(failure)
    handler = HANDLERS[action.action]
    connection = get_connection() if action.action == NoncomplianceActionType.EMAIL else None
    count = 0
    for pk in ids:
        device = devices[pk]
        try:
            with transaction.atomic():
                run = ComplianceActionRun.objects.create(device=device, action=action, ran_at=now)
                run.outcome = handler(action, device, failures[pk], actor=actor, connection=connection)[:255]
                run.save(update_fields=["outcome"])
                verb = f"compliance.action.{action.action}"
                audit_record(actor=actor, verb=verb, target=device, changes=_changes(action, run.outcome))
            count += 1
        except IntegrityError:
            continue  # a concurrent run did it
        except _TryAgain as exc:
            logger.warning("Compliance action %s for device %s will be retried: %s", action, pk, exc)
        except Exception:
            # Only this device's savepoint is rolled back: the chunk's other runs (and the emails
            # already sent for them) stay recorded, so nothing is done twice at the next run.
            logger.exception("Compliance action %s failed for device %s; it will be retried", action, pk)
    return count


# -- the actions ----------------------------------------------------------------------------------


def failing_settings(device: Device, failures: list[ComplianceFailure]) -> list[dict[str, Any]]:
    """What to tell a person about each failure: label, plain sentence, values, fix steps for the device."""
    items = []
    for failure in failures:
        if failure.actual.startswith(ERROR_PREFIX):
            continue
        plain, steps = rule_help(failure.rule, device.platform, failure.expected, failure.actual)
        items.append(
            {
                "rule": failure.rule,
                "label": ComplianceRule(failure.rule).label,
                "policy": failure.policy.name if failure.policy_id else "",
                "expected": failure.expected,
                "actual": failure.actual,
                "plain": plain,
                "steps": steps,
            }
        )
    return items


def portal_device_url(device: Device) -> str:
    """The device's page in the Company Portal with what to fix, as an absolute link (``MDM_PUBLIC_URL``)."""
    return settings.MDM_PUBLIC_URL.rstrip("/") + reverse("portal:device_compliance", kwargs={"uuid": device.uuid})


def _email(action, device, failures, *, actor, connection) -> str:
    # Imported here: the selectors package imports these services.
    from ..selectors.compliance import device_compliance_detail

    person = device.primary_user
    if person is None or not person.email:
        return "No email sent: the device has no user with an email address."
    # The deadline the portal shows (the earliest grace end of the failing policies); once it has
    # passed the device has lost access, even before the sweep marks it noncompliant.
    fix_by = device_compliance_detail(device).grace_ends_at
    late = device.compliance_state == ComplianceState.NONCOMPLIANT or (fix_by is not None and fix_by <= timezone.now())
    context = {
        "person": person,
        "device": device,
        "policy": action.policy,
        "message": action.message,
        "failing": failing_settings(device, failures),
        "portal_url": portal_device_url(device),
        "fix_by": None if late else fix_by,
        "noncompliant": late,
        "helpdesk": settings.MDM_HELPDESK_CONTACT,
    }
    subject = " ".join(render_to_string("policies/email/noncompliance_subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("policies/email/noncompliance.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[person.email],
        connection=connection,
    )
    message.attach_alternative(render_to_string("policies/email/noncompliance.html", context), "text/html")
    try:
        message.send()
    except OSError as exc:
        raise _TryAgain(f"could not email {person.email}: {exc}") from exc
    return f"Emailed {person.email}"


def _queue(device, command_type: str, params: dict, actor: Actor) -> str:
    try:
        command = device_command_queue(actor=actor, device=device, command_type=command_type, params=params)
    except ValidationError as exc:
        return "Not queued: " + " ".join(exc.messages)
    return f"Queued {command_type} command {command.uuid}"


def _push(action, device, failures, *, actor, connection) -> str:
    labels = ", ".join(item["label"].lower() for item in failing_settings(device, failures))
    text = action.message.strip() or (
        f"{device.name} does not meet company requirements ({labels or 'see the Company Portal'}). "
        "Open the Company Portal to see how to fix it."
    )
    return _queue(device, CommandType.NOTIFY, {"title": "Action needed on your device", "message": text[:1000]}, actor)


def _lock(action, device, failures, *, actor, connection) -> str:
    return _queue(device, CommandType.LOCK, {"message": (action.message.strip() or LOCK_MESSAGE)[:200]}, actor)


def _retire(action, device, failures, *, actor, connection) -> str:
    labels = ", ".join(item["label"] for item in failing_settings(device, failures)) or "see its compliance detail"
    since = min((f.since for f in failures if f.policy_id == action.policy_id), default=timezone.now())
    reason = f"Noncompliant with '{action.policy.name}' since {since:%Y-%m-%d}: {labels}."
    if action.message.strip():
        reason += f" {action.message.strip()}"
    try:
        with transaction.atomic():
            RetireApproval.objects.create(
                device=device, policy=action.policy, reason=reason, requested_at=timezone.now()
            )
    except IntegrityError:
        return "A retirement request was already waiting for IT."
    return "Retirement proposed: waiting for IT's approval."


HANDLERS = {
    NoncomplianceActionType.EMAIL: _email,
    NoncomplianceActionType.PUSH: _push,
    NoncomplianceActionType.LOCK: _lock,
    NoncomplianceActionType.RETIRE: _retire,
}


# -- IT's decision on a proposed retirement -------------------------------------------------------


@transaction.atomic
def retire_approval_decide(*, actor: Actor, approval: RetireApproval, approve: bool) -> RetireApproval:
    """Approve (the device starts retiring) or dismiss a proposed retirement; audited.

    The decider must be a person holding ``devices.retire_device`` on the device.
    """
    approval = RetireApproval.objects.select_for_update().select_related("device").get(pk=approval.pk)
    device = approval.device
    if actor.user is None or not authz.can(actor.user, RETIRE_PERMISSION, device):
        raise PermissionDenied(
            f"You cannot decide on retiring {device.name}: that needs the permission to retire devices in its scope. "
            "Ask an administrator who has it."
        )
    if approval.status != RetireApprovalStatus.PENDING:
        raise ValidationError(
            f"This retirement request was already {approval.get_status_display().lower()}; nothing to decide."
        )
    if approve:
        # The retirement stage takes over: a request record, the retire command, verification.
        from retirement.choices import RetirementAction, RetirementSource
        from retirement.services import retirement_request

        try:
            retirement_request(
                actor=actor,
                device=device,
                action=RetirementAction.RETIRE,
                source=RetirementSource.NONCOMPLIANCE,
                reason=approval.reason,
            )
        except ValidationError as exc:
            raise ValidationError(f"{' '.join(exc.messages)} Dismiss this request instead.") from exc
    approval.status = RetireApprovalStatus.APPROVED if approve else RetireApprovalStatus.DISMISSED
    approval.decided_by = actor.user
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_by", "decided_at"])
    audit_record(
        actor=actor,
        verb="compliance.retire_approval." + ("approve" if approve else "dismiss"),
        target=device,
        changes={"approval": approval.pk, "reason": approval.reason, "status": approval.status},
    )
    return approval
