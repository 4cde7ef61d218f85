"""Queue device commands, hand them out at check-in, record what the device answered."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record

from ..choices import CommandStatus
from ..commands import get_action
from ..models import OPEN_STATUSES, Device, DeviceCommand

# A command the device took but did not answer is handed out again after this long.
RESEND_AFTER = timedelta(minutes=30)
# At most this many commands per check-in reply; the rest come next time, in priority order.
MAX_COMMANDS_PER_CHECKIN = 20
BULK_BATCH = 2000


def _public_params(action, params: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k in action.secret_fields else v) for k, v in params.items()}


@transaction.atomic
def device_command_queue(
    *, actor: Actor, device: Device, command_type: str, params: dict | None = None
) -> DeviceCommand:
    """Queue one command for one device, after checking it suits the device. Audited without secrets.

    The caller has already checked that the person may perform ``action.permission`` on ``device``.
    """
    action = get_action(command_type)
    clean = action.clean(params or {})
    eligibility = action.eligibility(device)
    if not eligibility.allowed:
        raise ValidationError(eligibility.reason)
    now = timezone.now()
    _tell(Device.objects.filter(pk=device.pk))
    device.command_seq += 1  # so a reply built from this same object hands it out
    command = DeviceCommand.objects.create(
        device=device,
        command_type=action.type,
        payload=action.payload_for(device, clean),
        priority=action.priority,
        requested_by=actor.user,
        requested_by_label=actor.label[:255],
        deadline_at=now + timedelta(hours=action.lifetime_hours),
    )
    audit_record(
        actor=actor,
        verb=f"device.command.{action.type}",
        target=device,
        changes={"command": str(command.uuid), "params": _public_params(action, clean)},
    )
    return command


@transaction.atomic
def device_command_queue_bulk(
    *,
    actor: Actor,
    devices: QuerySet[Device],
    command_type: str,
    params: dict | None = None,
    batch: uuid.UUID | None = None,
) -> dict[str, int]:
    """Queue a command for every eligible device of ``devices`` (already restricted by the caller).

    Set-based: devices are read in id batches and commands inserted with ``bulk_create``; one
    audit event records the whole request. Every command carries the request's ``batch`` id (given
    by a caller that links to its progress before a background run has finished, else a new one).
    Returns ``{"queued": n, "skipped": m, "batch": "<uuid>"}``.
    """
    action = get_action(command_type)
    clean = action.clean(params or {})
    now = timezone.now()
    batch_id = batch or uuid.uuid4()
    queued = skipped = 0
    last_id = 0
    while True:
        batch = list(devices.filter(pk__gt=last_id).order_by("pk")[:BULK_BATCH])
        if not batch:
            break
        last_id = batch[-1].pk
        commands = []
        for device in batch:
            if not action.eligibility(device).allowed:
                skipped += 1
                continue
            commands.append(
                DeviceCommand(
                    device=device,
                    command_type=action.type,
                    payload=action.payload_for(device, clean),
                    priority=action.priority,
                    requested_by=actor.user,
                    requested_by_label=actor.label[:255],
                    deadline_at=now + timedelta(hours=action.lifetime_hours),
                    batch=batch_id,
                )
            )
        DeviceCommand.objects.bulk_create(commands, batch_size=BULK_BATCH)
        _tell(Device.objects.filter(pk__in=[c.device_id for c in commands]))
        queued += len(commands)
    audit_record(
        actor=actor,
        verb=f"device.command.{action.type}.bulk",
        changes={"queued": queued, "skipped": skipped, "batch": str(batch_id), "params": _public_params(action, clean)},
    )
    return {"queued": queued, "skipped": skipped, "batch": str(batch_id)}


@transaction.atomic
def desired_state_commands_queue(*, commands: list[DeviceCommand]) -> list[DeviceCommand]:
    """Queue commands that bring devices to their desired state (automation, never a person).

    Each command has a ``subject`` ("profile:<uuid>"): an open command of the same subject for the
    same device is cancelled first, so a device never receives an outdated version. Set-based: one
    UPDATE per subject, one INSERT batch, one UPDATE of the devices. The caller audits the request.
    """
    if not commands:
        return []
    now = timezone.now()
    by_subject: dict[str, list[int]] = {}
    for command in commands:
        if not command.subject:
            raise ValueError("A desired-state command needs a subject.")
        by_subject.setdefault(command.subject, []).append(command.device_id)
        command.deadline_at = command.deadline_at or now + timedelta(
            hours=get_action(command.command_type).lifetime_hours
        )
        command.priority = get_action(command.command_type).priority
    # Lock the devices first, so two concurrent requests for one device and subject (a double tap,
    # a fan-out racing a check-in) queue one after the other: the second cancels the first's command.
    locked = {command.device_id for command in commands}
    list(Device.objects.select_for_update().filter(pk__in=locked).order_by("pk").values_list("pk"))
    for subject, device_ids in by_subject.items():
        DeviceCommand.objects.filter(subject=subject, device_id__in=device_ids, status__in=OPEN_STATUSES).update(
            status=CommandStatus.CANCELLED, completed_at=now, payload={}, error="Replaced by a newer version."
        )
    created = DeviceCommand.objects.bulk_create(commands, batch_size=BULK_BATCH)
    _tell(Device.objects.filter(pk__in={c.device_id for c in commands}))
    return created


def desired_state_commands_cancel(*, subject: str, devices: QuerySet[Device] | list[int]) -> int:
    """Withdraw the open desired-state commands of ``subject`` for ``devices`` (no longer wanted).

    One UPDATE; a command already sent may still be carried out by the device, and its answer is
    then ignored (the command is closed). Returns how many were cancelled.
    """
    return DeviceCommand.objects.filter(subject=subject, device_id__in=devices, status__in=OPEN_STATUSES).update(
        status=CommandStatus.CANCELLED, completed_at=timezone.now(), payload={}, error="No longer assigned."
    )


def desired_state_commands_cancel_all(*, device: Device, reason: str) -> int:
    """Withdraw every open desired-state command of one device (it is being retired or wiped)."""
    return (
        DeviceCommand.objects.filter(device=device, status__in=OPEN_STATUSES)
        .exclude(subject="")
        .update(status=CommandStatus.CANCELLED, completed_at=timezone.now(), payload={}, error=reason[:2000])
    )


def _tell(devices: QuerySet[Device]) -> None:
    """Mark devices as having something new to be told at their next check-in."""
    devices.update(command_seq=F("command_seq") + 1)


def device_commands_deliver(*, device: Device) -> list[dict[str, Any]]:
    """The commands to hand out in this check-in reply, most urgent first; marks them sent.

    No query at all when nothing changed since the last delivery (``command_seq``); otherwise one
    lookup, one update of what was sent, and one to record the delivery.
    """
    if device.command_seq == device.command_seq_delivered:
        return []
    now = timezone.now()
    pending = list(
        DeviceCommand.objects.filter(device=device, status__in=OPEN_STATUSES, deadline_at__gt=now)
        .filter(~Q(status=CommandStatus.SENT) | Q(sent_at__lt=now - RESEND_AFTER))
        .order_by("priority", "created_at")
        .values("pk", "uuid", "command_type", "payload")[:MAX_COMMANDS_PER_CHECKIN]
    )
    if pending:
        DeviceCommand.objects.filter(pk__in=[row["pk"] for row in pending]).update(
            status=CommandStatus.SENT, sent_at=now, send_count=F("send_count") + 1
        )
    if len(pending) < MAX_COMMANDS_PER_CHECKIN:
        # Everything open was handed out. Only a later bump (a new command) makes it pending again;
        # the conditional keeps a bump that raced with this check-in.
        Device.objects.filter(pk=device.pk, command_seq_delivered__lt=device.command_seq).update(
            command_seq_delivered=device.command_seq
        )
    return [
        {
            "id": str(row["uuid"]),
            "type": row["command_type"],
            "payload": get_action(row["command_type"]).delivery_payload(device, row["payload"]),
        }
        for row in pending
    ]


RESULT_STATUSES = {
    "acknowledged": CommandStatus.ACKNOWLEDGED,
    "error": CommandStatus.ERROR,
    "not_now": CommandStatus.NOT_NOW,
}


@transaction.atomic
def device_command_results_record(*, device: Device, results: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Record the device's answers. Idempotent: a closed command keeps its first answer.

    ``results`` items are validated dicts: ``id`` (UUID string), ``status``, optional ``error`` and ``data``.
    """
    from . import records

    actor = Actor.for_device(device)
    by_id = {str(r["id"]): r for r in results}
    commands = {
        str(c.uuid): c for c in DeviceCommand.objects.select_for_update().filter(device=device, uuid__in=list(by_id))
    }
    now = timezone.now()
    accepted, unknown = [], []
    for command_id, result in by_id.items():
        command = commands.get(command_id)
        if command is None:
            unknown.append(command_id)
            continue
        accepted.append(command_id)
        if command.status not in OPEN_STATUSES:
            continue  # already answered (a retry): keep the first answer
        status = RESULT_STATUSES[result["status"]]
        action = get_action(command.command_type)
        command.status = status
        command.error = result.get("error", "")[:2000]
        command.result = result.get("data") or {}
        update_fields = ["status", "error", "result"]
        if status != CommandStatus.NOT_NOW:
            command.completed_at = now
            update_fields.append("completed_at")
            if action.secret_fields:
                command.payload = {k: v for k, v in command.payload.items() if k not in action.secret_fields}
                update_fields.append("payload")
        command.save(update_fields=update_fields)
        if status == CommandStatus.NOT_NOW:
            _tell(Device.objects.filter(pk=device.pk))
        audit_record(
            actor=actor,
            verb=f"device.command.{command.command_type}.{status}",
            target=device,
            changes={"command": command_id, "error": command.error},
        )
        if status == CommandStatus.ACKNOWLEDGED:
            changes = action.acknowledged(device, command, command.result)
            if changes:
                records.device_apply_reported(device=device, actor=actor, data=changes)
        if status != CommandStatus.NOT_NOW:
            action.result_recorded(device, command)
    return {"accepted": accepted, "unknown": unknown}


def device_commands_expire() -> int:
    """Close every open command past its deadline (beat). Set-based; returns how many."""
    return DeviceCommand.objects.filter(status__in=OPEN_STATUSES, deadline_at__lte=timezone.now()).update(
        status=CommandStatus.EXPIRED, completed_at=timezone.now(), payload={}
    )


def device_commands_resend_due() -> int:
    """Make devices with a command sent but unanswered for ``RESEND_AFTER`` get it again (beat).

    One set-based UPDATE over the devices concerned; returns how many devices.
    """
    stale = DeviceCommand.objects.filter(
        status=CommandStatus.SENT, sent_at__lt=timezone.now() - RESEND_AFTER, deadline_at__gt=timezone.now()
    ).values("device_id")
    return Device.objects.filter(pk__in=stale).update(command_seq=F("command_seq") + 1)


@transaction.atomic
def device_command_cancel(*, actor: Actor, command: DeviceCommand) -> DeviceCommand:
    if command.status not in (CommandStatus.QUEUED, CommandStatus.NOT_NOW):
        raise ValidationError(
            f"This command is {command.get_status_display().lower()}; only a queued command can be cancelled."
        )
    command.status, command.completed_at, command.payload = CommandStatus.CANCELLED, timezone.now(), {}
    command.save(update_fields=["status", "completed_at", "payload"])
    audit_record(
        actor=actor,
        verb=f"device.command.{command.command_type}.cancel",
        target=command.device,
        changes={"command": str(command.uuid)},
    )
    return command
