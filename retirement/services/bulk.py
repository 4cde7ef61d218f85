"""Retire or wipe every device of a selection (a filter of the device list): one bulk request.

Every device goes through ``retirement_request`` (permission, eligibility, one open request per
device, approval, evidence, dispatch), each in its own savepoint, so one refusal never undoes the
others. The requests share the bulk request's ``batch`` id, which the progress page follows.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet

from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record

from ..choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from ..models import RetirementRequest, RetirementSettings
from ..selectors import ACTION_LABELS, SKIP_NOT_PERMITTED, bulk_skip_reason
from .requests import device_permission, retirement_request

BULK_BATCH = 200
BULK_ACTIONS = (RetirementAction.RETIRE, RetirementAction.WIPE)


def _refusal(exc: Exception, device: Device) -> str:
    """A service's sentence for one device, without its name, so that refusals of many devices group."""
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    return text.replace(device.name, "the device") if device.name else text


def retirement_request_bulk(
    *,
    actor: Actor,
    devices: QuerySet[Device],
    action: str,
    reason: str = "",
    keep_enrollment: bool = False,
    batch: uuid.UUID | None = None,
    source: str = RetirementSource.ADMIN,
) -> dict[str, Any]:
    """Ask for ``action`` (retire or wipe) on every device of ``devices``; returns what happened.

    ``{"batch": "<uuid>", "requested": n, "sent": n, "awaiting_approval": n, "skipped": n,
    "skipped_reasons": {"personal device, …": n}}``: ``requested`` counts every request made (sent at
    once, or waiting for a second administrator's approval).

    Devices outside the scopes where the actor holds the action's permission are skipped, whatever
    the caller passed. Not one transaction: each device commits on its own, so a bulk request over
    thousands of devices never holds their locks (and their check-ins) for its whole run, and the
    progress page shows the requests as they are made. Run again with the same ``batch`` (a redelivered
    task), it skips the devices that already have a request of that batch.
    """
    if action not in BULK_ACTIONS:
        raise ValidationError("A bulk request retires or wipes devices; delete device records one at a time.")
    if keep_enrollment and action != RetirementAction.WIPE:
        raise ValidationError("Keeping the enrolment is an option of a full wipe only.")
    batch_id = batch or uuid.uuid4()
    permission = device_permission(action)
    allow_personal_wipe = RetirementSettings.load().allow_personal_full_wipe
    not_permitted = SKIP_NOT_PERMITTED.format(label=ACTION_LABELS[action])
    requested = awaiting = 0
    reasons: dict[str, int] = {}
    last_id = 0
    candidates = devices.exclude(pk__in=RetirementRequest.objects.filter(batch=batch_id).values("device_id"))
    while True:
        chunk = list(candidates.filter(pk__gt=last_id).order_by("pk")[:BULK_BATCH])
        if not chunk:
            break
        last_id = chunk[-1].pk
        with_open = set(
            RetirementRequest.objects.filter(device_id__in=[d.pk for d in chunk], status__in=OPEN_STATUSES).values_list(
                "device_id", flat=True
            )
        )
        for device in chunk:
            skip = (
                not_permitted
                if actor.user is None or not authz.can(actor.user, permission, device)
                else bulk_skip_reason(
                    action=action,
                    platform=device.platform,
                    ownership=device.ownership,
                    lifecycle_state=device.lifecycle_state,
                    has_open_request=device.pk in with_open,
                    allow_personal_wipe=allow_personal_wipe,
                )
            )
            if skip is None:
                try:
                    with transaction.atomic():
                        created = retirement_request(
                            actor=actor,
                            device=device,
                            action=action,
                            source=source,
                            reason=reason,
                            keep_enrollment=keep_enrollment,
                            batch=batch_id,
                        )
                except (ValidationError, PermissionDenied) as exc:
                    # Changed since it was read (a request of its own, a new state): the service's word.
                    skip = _refusal(exc, device)
                else:
                    requested += 1
                    awaiting += created.status == RetirementStatus.AWAITING_APPROVAL
            if skip is not None:
                reasons[skip] = reasons.get(skip, 0) + 1
    skipped = sum(reasons.values())
    outcome = {
        "batch": str(batch_id),
        "requested": requested,
        "sent": requested - awaiting,
        "awaiting_approval": awaiting,
        "skipped": skipped,
        "skipped_reasons": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
    }
    audit_record(
        actor=actor,
        verb="retirement.request.bulk",
        changes={
            "action": action,
            "source": source,
            "reason": reason,
            "keep_enrollment": keep_enrollment,
            **outcome,
        },
    )
    return outcome
