"""Retire, wipe and delete requests: from the request to unenrolment, each step audited.

State machine of ``RetirementRequest.status`` (device lifecycle in brackets)::

    request ─┬─(approval required)─▶ awaiting_approval ──approve──┐        [enrolled]
             │                            └──cancel──▶ cancelled   │
             └────────────────────────────────────────────────────┴─▶ command_sent   [retiring]
    command_sent ──device acknowledges──▶ acknowledged ──report──▶ verify
    verify: clean ─▶ unenrolled [retired] (auto-unenrol or full wipe) | verified ──unenrol──▶ unenrolled
            leftovers ─▶ failed [enrolled again, leftovers named]
    command_sent ──device answers "error"──▶ failed [enrolled again]
    command_sent / acknowledged ──offline past the timeout──▶ timed_out (still open: a late answer counts)
    command_sent / acknowledged / timed_out ──force──▶ forced [retired, unverified]
    command_sent / timed_out (command not yet picked up) ──cancel──▶ cancelled [enrolled again]

``delete`` queues no command: the device is marked retiring and is retired at its next check-in
(``retirement_checkin``), which then answers it 410 "retired" from then on. A device that never
returns times out and IT forces it. The device record itself is kept, so the request's evidence and
the device's history stay linked.

Unenrolment moves the device to ``retired``; the agent protocol refuses every request from a retired
device with 410 ``device_retired`` (check-in, results, secret rotation), so its secret no longer works
for anything and the device is told why.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices import lifecycle
from devices.choices import CommandStatus, LifecycleState
from devices.models import Device, DeviceCommand
from devices.services import (
    desired_state_commands_cancel,
    desired_state_commands_cancel_all,
    desired_state_commands_queue,
)
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record

from ..choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from ..commands import ACTIONS_BY_RETIREMENT
from ..models import RetirementRequest, RetirementSettings
from .evidence import before_inventory_snapshot

Status = RetirementStatus
APPROVE_PERMISSION = "retirement.approve_retirementrequest"
FORCE_PERMISSION = "retirement.force_retirementrequest"
# Sources where a person in IT asks: these wait for a second administrator when the setting says so.
APPROVAL_SOURCES = (RetirementSource.ADMIN, RetirementSource.API)
PERSON_SOURCES = (RetirementSource.ADMIN, RetirementSource.API)


def device_permission(action: str) -> str:
    """The device permission an action needs (delete removes the record: ``devices.delete_device``)."""
    if action == RetirementAction.DELETE:
        return "devices.delete_device"
    return ACTIONS_BY_RETIREMENT[action].permission


def subject_for(request: RetirementRequest) -> str:
    return f"retirement:{request.uuid}"


def _label(action: str) -> str:
    return {"retire": "retire", "wipe": "full wipe", "delete": "record deletion"}[action]


def _check_eligible(device: Device, action: str) -> None:
    if action == RetirementAction.DELETE:
        if device.lifecycle_state != LifecycleState.ENROLLED:
            raise ValidationError(
                f"{device.name} is {device.get_lifecycle_state_display().lower()}; only an enrolled device can be "
                "marked for deletion."
            )
        return
    eligibility = ACTIONS_BY_RETIREMENT[action].eligibility(device)
    if not eligibility.allowed:
        raise ValidationError(eligibility.reason)


def _check_requester(actor: Actor, device: Device, action: str, source: str) -> None:
    """People acting for themselves are checked here too; automation acts on its own authority."""
    if source in PERSON_SOURCES:
        if actor.user is None or not authz.can(actor.user, device_permission(action), device):
            raise PermissionDenied(f"You do not have the permission to {_label(action)} {device.name}. Ask IT.")
    elif source == RetirementSource.PORTAL:
        if actor.user is None or not authz.owns(actor.user, device):
            raise PermissionDenied("You can only remove your own devices.")
        if action == RetirementAction.DELETE:
            raise PermissionDenied("Remove this device instead; only IT can delete a device record.")
        if action == RetirementAction.WIPE and not RetirementSettings.load().allow_user_reset:
            raise PermissionDenied("Your organisation does not let you reset devices yourself. Ask IT.")


def _open_request_error(open_request: RetirementRequest) -> ValidationError:
    return ValidationError(
        f"{open_request.device_name} already has an open request ({open_request.get_action_display().split(' (')[0]}, "
        f"{open_request.get_status_display().lower()}, requested by {open_request.requested_by_label} on "
        f"{open_request.requested_at:%Y-%m-%d %H:%M} UTC). Finish or cancel it first."
    )


@transaction.atomic
def retirement_request(
    *,
    actor: Actor,
    device: Device,
    action: str,
    source: str,
    reason: str = "",
    keep_enrollment: bool = False,
    batch: uuid.UUID | None = None,
) -> RetirementRequest:
    """Ask for a device to be retired, wiped or deleted; returns the request.

    Checks the requester and the device's eligibility (a sentence when refused), refuses a second
    open request for the device, snapshots its identity and before-inventory, then waits for
    approval (``require_approval``, IT sources) or dispatches at once.
    """
    if action not in RetirementAction.values:
        raise ValidationError(f"Unknown action {action!r}. Use retire, wipe or delete.")
    if source not in RetirementSource.values:
        raise ValidationError(f"Unknown source {source!r}.")
    if keep_enrollment and action != RetirementAction.WIPE:
        raise ValidationError("Keeping the enrolment is an option of a full wipe only.")
    device = Device.objects.select_for_update().get(pk=device.pk)
    _check_requester(actor, device, action, source)
    open_request = RetirementRequest.objects.filter(device=device, status__in=OPEN_STATUSES).first()
    if open_request is not None:
        raise _open_request_error(open_request)
    _check_eligible(device, action)
    settings = RetirementSettings.load()
    awaiting = settings.require_approval and source in APPROVAL_SOURCES
    request = RetirementRequest(
        device=device,
        device_name=device.name,
        device_serial=device.serial_number or "",
        device_platform=device.platform,
        device_ownership=device.ownership,
        scope_id=device.scope_id,
        action=action,
        keep_enrollment=keep_enrollment,
        source=source,
        status=Status.AWAITING_APPROVAL if awaiting else Status.COMMAND_SENT,
        reason=reason,
        requested_by=actor.user,
        requested_by_label=actor.label[:255],
        before_inventory=before_inventory_snapshot(device),
        batch=batch,
    )
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError as exc:
        # Another request for this device won a race past the check above.
        raise ValidationError(
            f"{device.name} already has an open retirement request. Finish or cancel it first."
        ) from exc
    audit_record(
        actor=actor,
        verb="retirement.request",
        target=request,
        changes={
            "device": str(device.uuid),
            "action": action,
            "source": source,
            "reason": reason,
            "keep_enrollment": keep_enrollment,
            "status": request.status,
        },
    )
    if not awaiting:
        _dispatch(actor=actor, request=request, device=device)
    return request


def _dispatch(*, actor: Actor, request: RetirementRequest, device: Device) -> None:
    """Mark the device retiring and queue its command (none for ``delete``)."""
    try:
        lifecycle.start_retirement(
            device, actor=actor, reason=" ".join(filter(None, [f"Retirement request {request.uuid}.", request.reason]))
        )
    except lifecycle.TransitionNotAllowed as exc:
        raise ValidationError(str(exc)) from exc
    # Installs and profiles still queued would only be undone by the wipe: withdraw them first.
    desired_state_commands_cancel_all(device=device, reason="The device is being retired.")
    now = timezone.now()
    command = None
    if request.action != RetirementAction.DELETE:
        command_action = ACTIONS_BY_RETIREMENT[request.action]
        params: dict[str, Any] = {"request": str(request.uuid)}
        if request.action == RetirementAction.RETIRE:
            params["apps"] = [a["identifier"] for a in request.before_inventory.get("managed_apps", [])]
            params["profiles"] = [p["identifier"] for p in request.before_inventory.get("managed_profiles", [])]
        else:
            params["keep_enrollment"] = request.keep_enrollment
        clean = command_action.clean(params)
        [command] = desired_state_commands_queue(
            commands=[
                DeviceCommand(
                    device=device,
                    command_type=command_action.type,
                    payload=command_action.payload_for(device, clean),
                    subject=subject_for(request),
                    requested_by=request.requested_by,
                    requested_by_label=request.requested_by_label,
                )
            ]
        )
    request.status, request.command, request.sent_at = Status.COMMAND_SENT, command, now
    request.save(update_fields=["status", "command", "sent_at"])
    audit_record(
        actor=actor,
        verb="retirement.dispatch",
        target=request,
        changes={"status": Status.COMMAND_SENT, "command": str(command.uuid) if command else None},
    )


@transaction.atomic
def retirement_approve(*, actor: Actor, request: RetirementRequest) -> RetirementRequest:
    """A second administrator approves a waiting request, which is then dispatched.

    The approver is a different person than the requester, holding the approve permission over
    the request's scope and the action's device permission on the device.
    """
    request = RetirementRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != Status.AWAITING_APPROVAL:
        raise ValidationError(
            f"This request is {request.get_status_display().lower()}; only a waiting request can be approved."
        )
    user = actor.user
    if user is None:
        raise PermissionDenied("Only a person can approve a retirement request.")
    if request.requested_by_id is not None and request.requested_by_id == user.pk:
        raise PermissionDenied(
            "You asked for this yourself; a different administrator must approve it. Ask a colleague with the "
            "approval permission."
        )
    device = Device.objects.select_for_update().filter(pk=request.device_id).first()
    if device is None:
        raise ValidationError("The device of this request was deleted; cancel the request.")
    if not authz.can(user, APPROVE_PERMISSION, request) or not authz.can(
        user, device_permission(request.action), device
    ):
        raise PermissionDenied(
            f"You do not have the permission to approve a {_label(request.action)} of {request.device_name}. "
            "Ask an administrator who has it."
        )
    _check_eligible(device, request.action)
    request.approved_by, request.approved_at = user, timezone.now()
    request.save(update_fields=["approved_by", "approved_at"])
    audit_record(
        actor=actor, verb="retirement.approve", target=request, changes={"requested_by": request.requested_by_label}
    )
    _dispatch(actor=actor, request=request, device=device)
    return request


CANCELLABLE = (Status.AWAITING_APPROVAL, Status.COMMAND_SENT, Status.TIMED_OUT)


@transaction.atomic
def retirement_cancel(*, actor: Actor, request: RetirementRequest, reason: str = "") -> RetirementRequest:
    """Withdraw a request the device has not acted on; the device returns to enrolled.

    A command the device already picked up cannot be taken back: then wait for its answer, or force.
    """
    request = RetirementRequest.objects.select_for_update().get(pk=request.pk)
    if request.status not in CANCELLABLE:
        raise ValidationError(f"This request is {request.get_status_display().lower()}; it can no longer be cancelled.")
    if request.command_id is not None:
        command_status = DeviceCommand.objects.filter(pk=request.command_id).values_list("status", flat=True).first()
        if command_status not in (
            CommandStatus.QUEUED,
            CommandStatus.NOT_NOW,
            CommandStatus.CANCELLED,
            CommandStatus.EXPIRED,
        ):
            raise ValidationError(
                f"{request.device_name} already received the command and may be carrying it out. Wait for its answer, "
                "or force the unenrolment if it stays offline."
            )
    previous = request.status
    if request.device_id is not None and previous != Status.AWAITING_APPROVAL:
        desired_state_commands_cancel(subject=subject_for(request), devices=[request.device_id])
        device = Device.objects.filter(pk=request.device_id).first()
        if device is not None and device.lifecycle_state == LifecycleState.RETIRING:
            lifecycle.cancel_retirement(device, actor=actor, reason=reason or "Retirement request cancelled.")
    request.status, request.finished_at = Status.CANCELLED, timezone.now()
    request.save(update_fields=["status", "finished_at"])
    audit_record(
        actor=actor,
        verb="retirement.cancel",
        target=request,
        changes={"status": [previous, Status.CANCELLED], "reason": reason},
    )
    return request


def _unenroll(*, actor: Actor, request: RetirementRequest, reason: str) -> None:
    """Retire the device (its secret then opens nothing: every agent route answers 410)."""
    device = Device.objects.filter(pk=request.device_id).first()
    if device is not None and device.lifecycle_state == LifecycleState.RETIRING:
        lifecycle.finish_retirement(device, actor=actor, reason=reason)
    request.unenrolled_at = request.finished_at = timezone.now()


@transaction.atomic
def retirement_unenroll(*, actor: Actor, request: RetirementRequest) -> RetirementRequest:
    """IT unenrols a verified device (when automatic unenrolment is off)."""
    request = RetirementRequest.objects.select_for_update().get(pk=request.pk)
    if request.status != Status.VERIFIED:
        raise ValidationError(
            f"This request is {request.get_status_display().lower()}; only a verified device can be unenrolled."
        )
    if actor.user is None or not authz.can(actor.user, device_permission(request.action), request):
        raise PermissionDenied(f"You do not have the permission to unenrol {request.device_name}.")
    _unenroll(actor=actor, request=request, reason="Unenrolled after a verified retirement.")
    request.status = Status.UNENROLLED
    request.save(update_fields=["status", "unenrolled_at", "finished_at"])
    audit_record(
        actor=actor,
        verb="retirement.unenroll",
        target=request,
        changes={"status": [Status.VERIFIED, Status.UNENROLLED]},
    )
    return request


FORCEABLE = (Status.COMMAND_SENT, Status.ACKNOWLEDGED, Status.TIMED_OUT)


@transaction.atomic
def retirement_force(
    *, actor: Actor, request: RetirementRequest, reason: str, automated: bool = False
) -> RetirementRequest:
    """Unenrol a device that does not answer, without verification; who and why are recorded.

    ``automated``: the organisation's own rule forces it (a cleanup rule removing a silent device's
    record), so no person's force permission is asked for; the caller has checked its own.
    """
    request = RetirementRequest.objects.select_for_update().get(pk=request.pk)
    if not automated and (actor.user is None or not authz.can(actor.user, FORCE_PERMISSION, request)):
        raise PermissionDenied(f"You do not have the permission to force the unenrolment of {request.device_name}.")
    if request.status not in FORCEABLE:
        raise ValidationError(
            f"This request is {request.get_status_display().lower()}; only a sent, acknowledged or timed-out request "
            "can be forced."
        )
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why you force the unenrolment: it is recorded as unverified.")
    previous = request.status
    if request.device_id is not None:
        desired_state_commands_cancel(subject=subject_for(request), devices=[request.device_id])
    _unenroll(actor=actor, request=request, reason=f"Forced (unverified): {reason}")
    request.status, request.forced_by, request.forced_reason = Status.FORCED, actor.user, reason
    request.save(update_fields=["status", "forced_by", "forced_reason", "unenrolled_at", "finished_at"])
    audit_record(
        actor=actor,
        verb="retirement.force",
        target=request,
        changes={"status": [previous, Status.FORCED], "reason": reason, "source": request.source},
    )
    return request


TIMEOUT_BATCH = 1000


def retirement_timeouts_flag() -> int:
    """Flag open requests whose device has not answered within ``offline_timeout_days`` (beat).

    One UPDATE and one audit event per batch of requests; returns how many were flagged.
    """
    actor = Actor.system("retirement.timeouts")
    now = timezone.now()
    cutoff = now - timedelta(days=RetirementSettings.load().offline_timeout_days)
    due = RetirementRequest.objects.filter(status__in=[Status.COMMAND_SENT, Status.ACKNOWLEDGED], sent_at__lt=cutoff)
    flagged = 0
    while True:
        with transaction.atomic():
            batch = list(due.order_by("pk").values_list("pk", "uuid")[:TIMEOUT_BATCH])
            if not batch:
                break
            count = RetirementRequest.objects.filter(
                pk__in=[pk for pk, _ in batch], status__in=[Status.COMMAND_SENT, Status.ACKNOWLEDGED]
            ).update(status=Status.TIMED_OUT, timed_out_at=now)
            audit_record(
                actor=actor,
                verb="retirement.timed_out",
                changes={"requests": [str(u) for _, u in batch], "offline_since_before": cutoff.isoformat()},
            )
            flagged += count
        if len(batch) < TIMEOUT_BATCH:
            break
    return flagged
