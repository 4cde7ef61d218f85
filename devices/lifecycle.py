"""The device lifecycle: the only code that changes ``Device.lifecycle_state``.

    pending ──enroll──▶ enrolled ──start_retirement──▶ retiring ──finish_retirement──▶ retired
       │                   ▲                              │
       │                   └──────cancel_retirement───────┘
       └──────────────────────discard──────────────────────────────────────────────▶ retired

Each transition checks its precondition with a conditional UPDATE (so two racing requests cannot
both win), writes an audit event, and raises ``TransitionNotAllowed`` with a sentence otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record

from .choices import ComplianceState, LifecycleState
from .models import Device

State = LifecycleState


class TransitionNotAllowed(Exception):
    pass


def _transition(
    device: Device,
    *,
    actor: Actor,
    verb: str,
    sources: tuple[str, ...],
    target: str,
    extra: dict[str, Any] | None = None,
    reason: str = "",
) -> Device:
    extra = extra or {}
    updated = Device.objects.filter(pk=device.pk, lifecycle_state__in=sources).update(
        lifecycle_state=target, updated_at=timezone.now(), **extra
    )
    if not updated:
        current = Device.objects.filter(pk=device.pk).values_list("lifecycle_state", flat=True).first()
        label = State(current).label.lower() if current else "deleted"
        raise TransitionNotAllowed(
            f"{device.name} is {label}; it must be {' or '.join(State(s).label.lower() for s in sources)} to {verb}."
        )
    before = device.lifecycle_state
    device.lifecycle_state = target
    changes: dict[str, Any] = {"lifecycle_state": [before, target]}
    for field, value in extra.items():
        if field.endswith("_state") and getattr(device, field) != value:
            changes[field] = [getattr(device, field), value]
        setattr(device, field, value)
    if reason:
        changes["reason"] = reason
    audit_record(actor=actor, verb=f"device.{verb.replace(' ', '_')}", target=device, changes=changes)
    return device


@transaction.atomic
def enroll(device: Device, *, actor: Actor, at: datetime | None = None) -> Device:
    """``at``: when it happened, if not now (an import or a replayed record)."""
    from .signals import device_enrolled

    _transition(
        device,
        actor=actor,
        verb="enroll",
        sources=(State.PENDING,),
        target=State.ENROLLED,
        extra={"enrolled_at": at or timezone.now()},
    )
    device_enrolled.send(sender=Device, device=device)
    return device


@transaction.atomic
def start_retirement(device: Device, *, actor: Actor, reason: str = "") -> Device:
    return _transition(
        device, actor=actor, verb="start retirement", sources=(State.ENROLLED,), target=State.RETIRING, reason=reason
    )


@transaction.atomic
def cancel_retirement(device: Device, *, actor: Actor, reason: str = "") -> Device:
    return _transition(
        device, actor=actor, verb="cancel retirement", sources=(State.RETIRING,), target=State.ENROLLED, reason=reason
    )


@transaction.atomic
def finish_retirement(device: Device, *, actor: Actor, reason: str = "", at: datetime | None = None) -> Device:
    # A retired device is no longer evaluated: it leaves every compliance count and filter instead
    # of staying "Noncompliant" beside the enrolled devices that are.
    return _transition(
        device,
        actor=actor,
        verb="finish retirement",
        sources=(State.RETIRING,),
        target=State.RETIRED,
        extra={"retired_at": at or timezone.now(), "compliance_state": ComplianceState.NOT_EVALUATED},
        reason=reason,
    )


@transaction.atomic
def discard(device: Device, *, actor: Actor, reason: str = "", at: datetime | None = None) -> Device:
    """A pre-registered device that will never enrol."""
    return _transition(
        device,
        actor=actor,
        verb="discard",
        sources=(State.PENDING,),
        target=State.RETIRED,
        extra={"retired_at": at or timezone.now()},
        reason=reason,
    )
