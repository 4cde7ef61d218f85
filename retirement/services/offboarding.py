"""Offboarding: a person leaves, and each of their devices and app instances is handled per policy.

- personal enrolled device → retire (selective wipe: company apps, profiles and data only);
- corporate enrolled device → full wipe or reassign to IT (``RetirementSettings.corporate_offboarding``);
  a corporate device that cannot be wiped (Linux) is retired instead, and the item says why;
- a device already being retired → linked to its open request;
- a device not enrolled yet → the person is removed from the record;
- every app instance with org data (app protection without enrolment) → app data wipe.

The requests it makes have the source ``offboarding``: they act on the organisation's policy, not on
the device permissions of whoever started it, and never wait for a second approval. Starting one
needs ``retirement.run_offboarding`` for the person (checked by the caller's view, and here for a
person acting through ``offboarding_start``). The record (``Offboarding`` and its items) links to
every request and wipe, so IT follows each to the end.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from apps.models import ManagedAppInstance
from apps.services.mam import app_data_wipe_request
from devices.choices import LifecycleState, Ownership, Platform
from devices.models import Device
from devices.services import device_update
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.models import User
from mdm_portal.core.services import user_deactivate

from ..choices import (
    OPEN_STATUSES,
    CorporateOffboarding,
    OffboardingSource,
    OffboardingStep,
    RetirementAction,
    RetirementSource,
)
from ..models import Offboarding, OffboardingItem, RetirementRequest, RetirementSettings
from .requests import retirement_request

RUN_PERMISSION = "retirement.run_offboarding"


def offboarding_check_allowed(*, actor: Actor, user: User) -> None:
    """Refuse, with a sentence, a person who may not offboard ``user``."""
    if actor.user is None:
        return
    if actor.user.pk == user.pk:
        raise PermissionDenied("You cannot offboard yourself. Ask another administrator.")
    if not authz.can(actor.user, RUN_PERMISSION, user):
        raise PermissionDenied(
            f"You do not have the permission to offboard {user.get_username()}: it retires or wipes their devices. "
            "Ask a global administrator."
        )
    if user.is_superuser and not actor.user.is_superuser:
        raise PermissionDenied("Only a superuser can offboard a superuser.")


def planned_step(device: Device, corporate_action: str) -> tuple[str, str]:
    """What offboarding does to one device: ``(step, note)``. Shared by the preview and the run."""
    if device.lifecycle_state in (LifecycleState.RETIRING, LifecycleState.RETIRED):
        return OffboardingStep.EXISTING, "Already being retired."
    if device.lifecycle_state != LifecycleState.ENROLLED:
        return OffboardingStep.REASSIGN, "Not enrolled yet: the person is removed from the record."
    if device.ownership != Ownership.CORPORATE:
        return (
            OffboardingStep.RETIRE,
            "Personal device: company apps, profiles and data are removed; personal data stays.",
        )
    if corporate_action == CorporateOffboarding.REASSIGN:
        return OffboardingStep.REASSIGN, "Corporate device kept under management; the person is removed from it."
    if device.platform == Platform.LINUX:
        return (
            OffboardingStep.RETIRE,
            "A full wipe is not available on Linux: retired instead (what the portal installed is removed).",
        )
    return OffboardingStep.WIPE, "Corporate device: factory reset."


def offboarding_devices(user: User):
    """The person's devices that offboarding looks at (retired ones are done already)."""
    return (
        Device.objects.filter(primary_user=user)
        .exclude(lifecycle_state=LifecycleState.RETIRED)
        .select_related("scope")
        .order_by("pk")
    )


def offboarding_app_instances(user: User):
    """The person's app instances that still hold org data."""
    return ManagedAppInstance.objects.filter(user=user, revoked_at__isnull=True).order_by("pk")


def _instance_label(instance: ManagedAppInstance) -> str:
    where = instance.device_name or instance.get_platform_display()
    return f"{instance.app_identifier} on {where}"[:255]


def _device_item(*, actor: Actor, offboarding: Offboarding, device: Device, reason: str) -> OffboardingItem:
    step, note = planned_step(device, offboarding.corporate_action)
    item = OffboardingItem(offboarding=offboarding, step=step, device=device, label=device.name[:255], note=note)
    if step == OffboardingStep.EXISTING:
        item.retirement_request = RetirementRequest.objects.filter(device=device, status__in=OPEN_STATUSES).first()
        if item.retirement_request is None:
            item.step, item.note = OffboardingStep.SKIPPED, "Being retired without an open request; nothing to do."
    elif step == OffboardingStep.REASSIGN:
        device_update(actor=actor, device=device, data={"primary_user": None})
    else:
        action = RetirementAction.WIPE if step == OffboardingStep.WIPE else RetirementAction.RETIRE
        try:
            with transaction.atomic():
                item.retirement_request = retirement_request(
                    actor=actor, device=device, action=action, source=RetirementSource.OFFBOARDING, reason=reason
                )
        except ValidationError as exc:
            # Refused for this device only (e.g. it became ineligible): IT sees why and decides.
            item.step, item.note = OffboardingStep.SKIPPED, " ".join(exc.messages)
    item.save()
    return item


@transaction.atomic
def offboarding_run(*, actor: Actor, user: User, source: str, reason: str = "") -> Offboarding:
    """Handle every device and app instance of ``user`` per the retirement settings; returns the record.

    Does not deactivate the account (``offboarding_start`` does both); runs for an account already
    deactivated, e.g. by a directory sync.
    """
    if source not in OffboardingSource.values:
        raise ValidationError(f"Unknown offboarding source {source!r}.")
    user = User.objects.get(pk=user.pk)
    settings = RetirementSettings.load()
    full_name = user.get_full_name()
    label = f"{full_name} <{user.email}>" if full_name and user.email else full_name or user.email or user.username
    offboarding = Offboarding.objects.create(
        user=user,
        username=user.get_username(),
        user_label=label[:255],
        scope_id=user.scope_id,
        source=source,
        corporate_action=settings.corporate_offboarding,
        reason=reason,
        started_by=actor.user,
        started_by_label=actor.label[:255],
    )
    why = " ".join(filter(None, [f"Offboarding of {offboarding.username}.", reason]))
    for device in offboarding_devices(user).select_for_update(of=("self",)):
        _device_item(actor=actor, offboarding=offboarding, device=device, reason=why)
    for instance in offboarding_app_instances(user):
        wipe = app_data_wipe_request(actor=actor, instance=instance, reason=why)
        OffboardingItem.objects.create(
            offboarding=offboarding,
            step=OffboardingStep.APP_DATA_WIPE,
            device=instance.device,
            label=_instance_label(instance),
            app_data_wipe=wipe,
            note="The app removes the organisation's data at its next check-in.",
        )
    steps = dict.fromkeys(OffboardingStep.values, 0)
    for step in offboarding.items.values_list("step", flat=True):
        steps[step] += 1
    audit_record(
        actor=actor,
        verb="retirement.offboarding",
        target=offboarding,
        changes={"user": offboarding.username, "source": source, "reason": reason, "steps": steps},
    )
    return offboarding


@transaction.atomic
def offboarding_start(*, actor: Actor, user: User, source: str, reason: str = "") -> Offboarding:
    """Offboard a person from the IT console or the API: deactivate the account, then handle their devices.

    Deactivation sends ``user_deactivated``, whose receiver runs ``offboarding_run``; an account that
    is already inactive is offboarded directly (e.g. to handle devices enrolled since).
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    offboarding_check_allowed(actor=actor, user=user)
    if user.is_active:
        user_deactivate(actor=actor, user=user, source=source, reason=reason)
        return Offboarding.objects.filter(user=user).latest("pk")
    return offboarding_run(actor=actor, user=user, source=source, reason=reason)
