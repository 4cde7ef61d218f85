"""Provisioning time limits: flag devices that did not apply their initial desired state in time.

An enrolment profile with ``provisioning_minutes`` gives each device it enrols a deadline; a
check-in with nothing left to apply marks the device provisioned (``checkin.device_provisioned_mark``).
The beat sweep here flags the ones past their deadline and runs the profile's action.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent, User

from ..choices import ComplianceState, LifecycleState, ProvisioningAction
from ..models import Device
from .records import device_compliance_set

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
DEVICE_VIEW_PERMISSION = "devices.view_device"
SWEEP_JOB = "provisioning_overdue_sweep"
NOTIFY_ACTIONS = frozenset({ProvisioningAction.NOTIFY, ProvisioningAction.NOTIFY_AND_MARK_NONCOMPLIANT})
NONCOMPLIANT_ACTIONS = frozenset(
    {ProvisioningAction.MARK_NONCOMPLIANT, ProvisioningAction.NOTIFY_AND_MARK_NONCOMPLIANT}
)


def _overdue_q(now) -> Q:
    return Q(
        lifecycle_state=LifecycleState.ENROLLED,
        provisioning_deadline_at__lte=now,
        provisioned_at__isnull=True,
        provisioning_overdue_at__isnull=True,
    )


def device_provisioning_overdue_sweep() -> int:
    """Flag every enrolled device past its provisioning deadline and run its profile's action.

    Set-based: per batch of up to 1,000 devices one lookup, one conditional UPDATE, one bulk
    INSERT of audit events, and (for profiles that ask for it) a compliance change per device.
    A device is flagged once; a second sweep does nothing. IT gets one email per sweep listing
    every device flagged for notification. Returns how many devices were flagged.
    """
    actor = Actor.system(SWEEP_JOB)
    now = timezone.now()
    flagged = 0
    to_notify: list[Device] = []
    last_id = 0
    while True:
        batch_flagged, batch_notify, last_id = _sweep_batch(actor=actor, now=now, after_id=last_id)
        if last_id is None:
            break
        flagged += batch_flagged
        to_notify += batch_notify
    if to_notify:
        _notify(to_notify)
    return flagged


@transaction.atomic
def _sweep_batch(*, actor: Actor, now, after_id: int) -> tuple[int, list[Device], int | None]:
    """One id batch after ``after_id``; returns (flagged, devices to notify about, last id seen or None)."""
    candidates = list(
        authz.unrestricted(Device.objects, actor=actor)
        .filter(_overdue_q(now), pk__gt=after_id)
        .select_related("enrollment_profile", "primary_user")
        .order_by("pk")[:BATCH_SIZE]
    )
    if not candidates:
        return 0, [], None
    ids = [device.pk for device in candidates]
    # Conditional: a device another sweep (or a provisioning check-in) got to first stays as it is.
    updated = Device.objects.filter(_overdue_q(now), pk__in=ids).update(provisioning_overdue_at=now, updated_at=now)
    devices = candidates
    if updated < len(candidates):
        flagged_ids = set(
            Device.objects.filter(pk__in=ids, provisioning_overdue_at=now, provisioned_at__isnull=True).values_list(
                "pk", flat=True
            )
        )
        devices = [device for device in candidates if device.pk in flagged_ids]
    content_type = ContentType.objects.get_for_model(Device)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_type=actor.type,
            actor_user=actor.user,
            actor_label=actor.label[:255],
            verb="device.provisioning_overdue",
            target_type=content_type,
            target_id=str(device.pk),
            target_repr=str(device)[:255],
            scope_id=device.scope_id,
            changes={
                "provisioning_deadline_at": device.provisioning_deadline_at.isoformat(),
                "provisioning_overdue_at": now.isoformat(),
                "action": _action(device),
            },
            source_ip=None,
        )
        for device in devices
    )
    notify = []
    for device in devices:
        device.provisioning_overdue_at = now
        action = _action(device)
        if action in NONCOMPLIANT_ACTIONS:
            device_compliance_set(actor=actor, device=device, state=ComplianceState.NONCOMPLIANT)
        if action in NOTIFY_ACTIONS:
            notify.append(device)
    return len(devices), notify, ids[-1]


def _action(device: Device) -> str:
    profile = device.enrollment_profile
    return profile.provisioning_action if profile is not None else ProvisioningAction.NOTIFY


def provisioning_it_recipients() -> list[User]:
    """Active staff who may see every device (the permission held in all scopes), with an email."""
    app_label, codename = DEVICE_VIEW_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    holders = Q(is_superuser=True)
    if permission is not None:
        holders |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    candidates = User.objects.filter(holders, is_active=True, is_staff=True).exclude(email="").distinct()
    return [user for user in candidates.order_by("pk") if authz.has_global(user, DEVICE_VIEW_PERMISSION)]


def _deadline_words(device: Device) -> str:
    return timezone.localtime(device.provisioning_deadline_at).strftime("%Y-%m-%d %H:%M %Z")


def _notify(devices: Iterable[Device]) -> int:
    """Email each device's primary user, and IT once with the whole list. Returns messages sent.

    Sent after the flags committed: a mail server that is down must not undo the flags, and a
    flagged device is never flagged (nor mailed about) again.
    """
    devices = list(devices)
    sent = 0
    for device in devices:
        person = device.primary_user
        if person is None or not person.email:
            continue
        greeting = f"Hello {person.first_name}," if person.first_name else "Hello,"
        try:
            sent += send_mail(
                subject=f"Your device '{device.name}' is not set up yet",
                message=(
                    f"{greeting}\n\nYour device '{device.name}' should have finished its setup (company settings "
                    f"and apps) by {_deadline_words(device)}, and has not.\n\nConnect it to the internet and "
                    "open the device management agent so it can finish. IT has been told; reply to your IT "
                    "helpdesk if it still does not complete.\n"
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[person.email],
            )
        except OSError:
            logger.exception("Could not email %s about device %s's overdue provisioning", person.email, device.pk)
    it_staff = [user.email for user in provisioning_it_recipients()]
    if it_staff:
        lines = [f"{len(devices)} device(s) missed their provisioning deadline:", ""]
        for device in devices:
            user = device.primary_user.get_username() if device.primary_user else "no user"
            profile = device.enrollment_profile.name if device.enrollment_profile else "-"
            lines.append(
                f"- {device.name} ({device.get_platform_display()}, serial {device.serial_number or '-'}), "
                f"user {user}, profile '{profile}', deadline {_deadline_words(device)}"
            )
        lines += ["", "Filter the device list in the IT console by Provisioning: overdue to see them."]
        try:
            sent += send_mail(
                subject=f"Provisioning overdue: {len(devices)} device(s)",
                message="\n".join(lines) + "\n",
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=it_staff,
            )
        except OSError:
            logger.exception("Could not email IT about %d device(s) with overdue provisioning", len(devices))
    return sent
