"""What the device answers: acknowledgement, verification of its report, unenrolment or failure."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from devices import lifecycle
from devices.choices import CommandStatus, LifecycleState
from devices.models import Device, DeviceCommand
from mdm_portal.core.audit import Actor, audit_record

from ..choices import OPEN_STATUSES, RetirementAction, RetirementStatus
from ..models import RetirementRequest, RetirementSettings
from ..verification import reported, verify
from .evidence import after_inventory_from_device, after_inventory_from_report
from .requests import _unenroll

Status = RetirementStatus
# A late answer (after the timeout flag) still counts.
AWAITING_ANSWER = (Status.COMMAND_SENT, Status.TIMED_OUT)


def _fail(*, actor: Actor, request: RetirementRequest, device: Device | None, reason: str) -> None:
    """Close the request as failed; the device goes back to enrolled so IT can act on it again."""
    request.status, request.failure_reason, request.finished_at = Status.FAILED, reason, timezone.now()
    # Read again: the caller's object may predate this request's own transitions.
    current = Device.objects.filter(pk=request.device_id, lifecycle_state=LifecycleState.RETIRING).first()
    if current is not None:
        lifecycle.cancel_retirement(current, actor=actor, reason=f"Retirement failed: {reason}")
        if device is not None:
            device.lifecycle_state = current.lifecycle_state


def _verify_and_close(*, actor: Actor, request: RetirementRequest, device: Device, after: dict[str, Any]) -> None:
    result = verify(request.before_inventory, after)
    request.after_inventory, request.leftovers = after, result.leftovers
    previous = request.status
    if result.clean:
        request.verified_at = timezone.now()
        if request.action == RetirementAction.WIPE or RetirementSettings.load().auto_unenroll:
            _unenroll(actor=actor, request=request, reason="Retirement verified: nothing managed left on the device.")
            request.status = Status.UNENROLLED
        else:
            request.status = Status.VERIFIED
    else:
        _fail(actor=actor, request=request, device=device, reason=result.sentence())
    request.save(
        update_fields=[
            "status",
            "after_inventory",
            "leftovers",
            "verified_at",
            "unenrolled_at",
            "finished_at",
            "failure_reason",
        ]
    )
    audit_record(
        actor=actor,
        verb="retirement.verify",
        target=request,
        changes={"status": [previous, request.status], "clean": result.clean, "leftovers": result.leftovers},
    )


@transaction.atomic
def retirement_result_record(*, device: Device, command: DeviceCommand) -> None:
    """The device answered its retire or wipe command (called from the command class's ``result_recorded``).

    ``acknowledged`` with a report in ``data`` is verified at once; without one, the request waits
    for the device's next check-in. ``error`` fails the request with the device's reason.
    """
    request = (
        RetirementRequest.objects.select_for_update()
        .filter(command=command, status__in=[*AWAITING_ANSWER, Status.ACKNOWLEDGED])
        .first()
    )
    if request is None:
        return  # cancelled or forced meanwhile: the answer is kept on the command only
    actor = Actor.for_device(device)
    if command.status == CommandStatus.ERROR:
        previous = request.status
        _fail(actor=actor, request=request, device=device, reason=f"The device reported: {command.error or 'an error'}")
        request.save(update_fields=["status", "failure_reason", "finished_at"])
        audit_record(
            actor=actor,
            verb="retirement.failed",
            target=request,
            changes={"status": [previous, request.status], "error": command.error},
        )
        return
    if command.status != CommandStatus.ACKNOWLEDGED:
        return
    previous = request.status
    request.status, request.acknowledged_at = Status.ACKNOWLEDGED, timezone.now()
    request.save(update_fields=["status", "acknowledged_at"])
    audit_record(
        actor=actor, verb="retirement.acknowledged", target=request, changes={"status": [previous, Status.ACKNOWLEDGED]}
    )
    data = command.result or {}
    if reported(data):
        _verify_and_close(actor=actor, request=request, device=device, after=after_inventory_from_report(data))


@transaction.atomic
def retirement_checkin(*, device: Device) -> None:
    """A retiring device checked in: retire a deleted record, or verify an acknowledged command
    against the inventory the device now reports."""
    request = RetirementRequest.objects.select_for_update().filter(device=device, status__in=OPEN_STATUSES).first()
    if request is None:
        return
    actor = Actor.for_device(device)
    if request.action == RetirementAction.DELETE and request.status in AWAITING_ANSWER:
        previous = request.status
        _unenroll(actor=actor, request=request, reason="The device record was deleted; retired at its check-in.")
        request.status = Status.UNENROLLED
        request.after_inventory = after_inventory_from_device(device)
        request.save(update_fields=["status", "after_inventory", "unenrolled_at", "finished_at"])
        audit_record(
            actor=actor, verb="retirement.unenroll", target=request, changes={"status": [previous, Status.UNENROLLED]}
        )
    elif request.status == Status.ACKNOWLEDGED:
        _verify_and_close(actor=actor, request=request, device=device, after=after_inventory_from_device(device))
