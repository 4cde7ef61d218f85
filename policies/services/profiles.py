"""Configuration profiles: save, assign, fan out to the targeted devices, record what devices answer.

The fan-out (``profile_fanout``) is the only writer of deliveries. It walks the targeted devices in
id batches, with a fixed number of queries per batch whatever the fleet size: it upserts a
delivery per device, queues one ``install_profile`` command per device that lacks the current
version (replacing any older open one), marks conflicts, and removes the profile from devices no
longer targeted. Commands store a reference; the native payload is rendered at check-in
(``policies.commands``), so no secret is copied per device.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from devices.choices import CommandType, LifecycleState
from devices.models import Device, DeviceCommand
from devices.services import desired_state_commands_queue
from mdm_portal.core import outbox
from mdm_portal.core.audit import Actor, audit_record

from ..choices import DeliveryState
from ..conflicts import conflict_keys, conflicts_between
from ..models import ConfigurationProfile, ProfileDelivery
from ..platforms import ProfileSpec, Rendered, render
from ..profile_settings import settings_clean
from ..secrets import secrets_decrypt, secrets_encrypt
from ..targeting import candidates_for, device_matches, targeted_devices
from .assignments import assignments_replace

logger = logging.getLogger(__name__)

FANOUT_BATCH = 2000
FANOUT_TASK = "policies.tasks.profile_fanout_task"
# Deliveries the device may still hold: removal is sent for them when it is no longer targeted.
HELD = (DeliveryState.SUCCEEDED, DeliveryState.PENDING, DeliveryState.ERROR)


def subject_of(profile: ConfigurationProfile) -> str:
    return f"profile:{profile.uuid}"


def profile_spec(profile: ConfigurationProfile) -> ProfileSpec:
    return ProfileSpec(
        uuid=str(profile.uuid),
        name=profile.name,
        kind=profile.kind,
        version=profile.version,
        settings=dict(profile.settings),
        secrets=secrets_decrypt(profile.secret_settings),
    )


def fanout_schedule(profile_id: int, *, reason: str) -> None:
    """One task message per change, sent once the change is committed."""
    from ..tasks import profile_fanout_task

    outbox.enqueue(profile_fanout_task, profile_id, reason=reason)


# -- writes a person makes ----------------------------------------------------------------------

FIELDS = ("name", "description", "scope", "kind", "platforms")


@transaction.atomic
def profile_save(
    *,
    actor: Actor,
    profile: ConfigurationProfile | None = None,
    data: dict[str, Any],
    settings: dict[str, Any],
    assignments: list[dict[str, Any]] | None = None,
    user=None,
) -> ConfigurationProfile:
    """Create (``profile`` None) or change a profile; a blank secret keeps the stored one.

    A change of settings bumps the version (devices receive it again); a change of assignments
    or platforms only re-targets. Audited without secrets. Nothing is written when anything is wrong.
    """
    creating = profile is None
    profile = profile or ConfigurationProfile()
    kind = data.get("kind", profile.kind)
    if not creating and kind != profile.kind:
        raise ValidationError({"kind": "A profile's kind cannot change; create a new profile instead."})
    clean, secrets = settings_clean(kind, settings)
    stored = secrets_decrypt(profile.secret_settings) if not creating else {}
    merged_secrets = {**stored, **secrets}
    before = {f: getattr(profile, f) for f in ("name", "description", "scope_id", "platforms")}
    for field in FIELDS:
        if field in data:
            setattr(profile, field, data[field])
    profile.platforms = sorted(set(profile.platforms or []))
    settings_changed = creating or clean != profile.settings or merged_secrets != stored
    if settings_changed and not creating:
        profile.version += 1
    profile.settings = clean
    profile.secret_settings = secrets_encrypt(merged_secrets)
    profile.full_clean(exclude=["settings", "platforms"])
    profile.save()
    changes: dict[str, Any] = {"version": profile.version, "settings": clean}
    if secrets:
        changes["secrets_changed"] = sorted(secrets)
    if not creating:
        changes["before"] = {k: v for k, v in before.items() if getattr(profile, k) != v}
    audit_record(actor=actor, verb="profile.create" if creating else "profile.change", target=profile, changes=changes)
    if assignments is not None:
        assignments_replace(actor=actor, obj=profile, rows=assignments, user=user)
    fanout_schedule(profile.pk, reason="created" if creating else "changed")
    return profile


@transaction.atomic
def profile_assignments_set(*, actor: Actor, profile: ConfigurationProfile, rows: list[dict], user=None) -> None:
    assignments_replace(actor=actor, obj=profile, rows=rows, user=user)
    fanout_schedule(profile.pk, reason="assignments changed")


@transaction.atomic
def profile_delete(*, actor: Actor, profile: ConfigurationProfile) -> int:
    """Delete a profile: devices that may hold it are told to remove it first. Returns how many."""
    held = ProfileDelivery.objects.filter(
        profile=profile, state__in=HELD, device__lifecycle_state=LifecycleState.ENROLLED
    ).values_list("device_id", flat=True)
    removed = _queue_removal(profile, list(held))
    audit_record(
        actor=actor, verb="profile.delete", target=profile, changes={"name": profile.name, "removal_queued": removed}
    )
    related = _related_conflicted(profile)
    profile.delete()
    for other in related:
        fanout_schedule(other, reason="a conflicting profile was deleted")
    return removed


@transaction.atomic
def profile_resend_failed(
    *, actor: Actor, profile: ConfigurationProfile, devices: QuerySet[Device] | None = None
) -> int:
    """Queue the current version again for every delivery in error (of ``devices``, already authorised)."""
    failed = ProfileDelivery.objects.filter(profile=profile, state=DeliveryState.ERROR)
    if devices is not None:
        failed = failed.filter(device__in=devices)
    ids = list(failed.filter(device__lifecycle_state=LifecycleState.ENROLLED).values_list("device_id", flat=True))
    for start in range(0, len(ids), FANOUT_BATCH):
        commands = _queue_install(profile, ids[start : start + FANOUT_BATCH])
        rows = list(ProfileDelivery.objects.filter(profile=profile, device_id__in=list(commands)))
        for row in rows:
            row.state, row.reason, row.version, row.command = (
                DeliveryState.PENDING, "", profile.version, commands[row.device_id]
            )  # fmt: skip
        ProfileDelivery.objects.bulk_update(rows, ["state", "reason", "version", "command"], batch_size=FANOUT_BATCH)
    audit_record(actor=actor, verb="profile.resend_failed", target=profile, changes={"resent": len(ids)})
    return len(ids)


# -- the fan-out --------------------------------------------------------------------------------


class _Run:
    """One fan-out: what is rendered once per platform and compared once per other profile."""

    def __init__(self, profile: ConfigurationProfile):
        self.profile = profile
        self.spec = profile_spec(profile)
        self.keys = conflict_keys(profile.kind, self.spec.settings, self.spec.secrets)
        self.rendered: dict[str, Rendered] = {}
        self.others: dict[int, tuple[str, list[str]]] = {}  # profile id -> (name, conflicting setting labels)
        self.counts: dict[str, int] = defaultdict(int)

    def render(self, platform: str) -> Rendered:
        if platform not in self.rendered:
            self.rendered[platform] = render(self.spec, platform)
        return self.rendered[platform]

    def conflict_with(self, other_ids: set[int]) -> None:
        missing = other_ids - set(self.others)
        for other in ConfigurationProfile.objects.filter(pk__in=missing):
            other_keys = conflict_keys(other.kind, other.settings, secrets_decrypt(other.secret_settings))
            self.others[other.pk] = (other.name, conflicts_between(other.kind, self.keys, other_keys))


def _queue_install(profile: ConfigurationProfile, device_ids: list[int]) -> dict[int, DeviceCommand]:
    commands = [
        DeviceCommand(
            device_id=device_id,
            command_type=CommandType.INSTALL_PROFILE,
            payload={"profile": str(profile.uuid), "version": profile.version},
            subject=subject_of(profile),
            requested_by_label="system:profile fan-out",
        )
        for device_id in device_ids
    ]
    return {c.device_id: c for c in desired_state_commands_queue(commands=commands)}


def _queue_removal(profile: ConfigurationProfile, device_ids: list[int]) -> int:
    payload = {"profile": str(profile.uuid), "identifier": profile_spec(profile).identifier, "name": profile.name}
    commands = [
        DeviceCommand(
            device_id=device_id,
            command_type=CommandType.REMOVE_PROFILE,
            payload=payload,
            subject=subject_of(profile),
            requested_by_label="system:profile fan-out",
        )
        for device_id in device_ids
    ]
    desired_state_commands_queue(commands=commands)
    return len(commands)


def _fanout_batch(run: _Run, targets: list[tuple[int, str]]) -> None:
    """Bring the deliveries of ``run.profile`` on ``targets`` ([(device id, platform)]) up to date."""
    profile = run.profile
    ids = [device_id for device_id, _ in targets]
    existing = {
        row["device_id"]: row
        for row in ProfileDelivery.objects.filter(profile=profile, device_id__in=ids).values(
            "device_id", "state", "version"
        )
    }
    others: dict[int, set[int]] = defaultdict(set)
    for device_id, other_id in (
        ProfileDelivery.objects.filter(device_id__in=ids, profile__kind=profile.kind)
        .exclude(profile=profile)
        .exclude(state=DeliveryState.NOT_APPLICABLE)
        .values_list("device_id", "profile_id")
    ):
        others[device_id].add(other_id)
    run.conflict_with(set().union(*others.values()) if others else set())
    rows: list[ProfileDelivery] = []
    to_send: list[int] = []
    conflicted_others: dict[int, list[int]] = defaultdict(list)  # other profile id -> device ids
    for device_id, platform in targets:
        current = existing.get(device_id)
        rendered = run.render(platform)
        not_applicable = [{"setting": n.setting, "reason": n.reason} for n in rendered.not_applicable]
        clashes = [(oid, *run.others[oid]) for oid in sorted(others.get(device_id, ())) if run.others[oid][1]]
        if not rendered.applicable:
            state, reason = DeliveryState.NOT_APPLICABLE, "Nothing in this profile can be expressed on this platform."
        elif clashes:
            state = DeliveryState.CONFLICT
            reason = "; ".join(f"{name!r} sets {', '.join(labels)} differently" for _, name, labels in clashes)
            for other_id, _, _ in clashes:
                conflicted_others[other_id].append(device_id)
        elif (
            current is None
            or current["version"] != profile.version
            or current["state"] in (DeliveryState.CONFLICT, DeliveryState.NOT_APPLICABLE)
        ):
            state, reason = DeliveryState.PENDING, ""
            to_send.append(device_id)
        else:
            continue  # already has (or is receiving) the current version
        if (
            current is not None
            and current["state"] == state == DeliveryState.CONFLICT
            and current["version"] == profile.version
        ):
            continue
        run.counts[state] += 1
        rows.append(
            ProfileDelivery(
                device_id=device_id,
                profile=profile,
                state=state,
                version=profile.version,
                reason=reason,
                not_applicable=not_applicable,
            )
        )
    commands = _queue_install(profile, to_send)
    for row in rows:
        row.command = commands.get(row.device_id)
    ProfileDelivery.objects.bulk_create(
        rows,
        batch_size=FANOUT_BATCH,
        update_conflicts=True,
        unique_fields=["device", "profile"],
        update_fields=["state", "version", "reason", "not_applicable", "command", "updated_at"],
    )
    for other_id, device_ids in conflicted_others.items():
        ProfileDelivery.objects.filter(profile_id=other_id, device_id__in=device_ids).exclude(
            state=DeliveryState.CONFLICT
        ).update(state=DeliveryState.CONFLICT, reason=f"{profile.name!r} sets the same settings differently.")


def _related_conflicted(profile: ConfigurationProfile) -> set[int]:
    """Other profiles of the same kind with deliveries in conflict: re-checked after this one changes."""
    return set(
        ProfileDelivery.objects.filter(profile__kind=profile.kind, state=DeliveryState.CONFLICT)
        .exclude(profile=profile)
        .values_list("profile_id", flat=True)
        .distinct()
    )


def profile_fanout(profile_id: int, *, reason: str = "", recheck_related: bool = True) -> dict[str, int]:
    """Bring every delivery of a profile up to date (the fan-out task; idempotent). Returns counts."""
    profile = ConfigurationProfile.objects.filter(pk=profile_id).first()
    if profile is None:
        return {}
    run = _Run(profile)
    targeted = targeted_devices(profile).order_by("pk")
    last = 0
    while True:
        with transaction.atomic():
            batch = list(targeted.filter(pk__gt=last).values_list("pk", "platform")[:FANOUT_BATCH])
            if not batch:
                break
            last = batch[-1][0]
            _fanout_batch(run, batch)
    with transaction.atomic():
        # NOT EXISTS, so PostgreSQL plans an anti-join (NOT IN over a subquery would be a nested loop).
        in_target = Exists(targeted_devices(profile).filter(pk=OuterRef("device_id")))
        gone = ProfileDelivery.objects.filter(profile=profile).filter(~in_target)
        held = list(
            gone.filter(state__in=HELD, device__lifecycle_state=LifecycleState.ENROLLED).values_list(
                "device_id", flat=True
            )
        )
        for start in range(0, len(held), FANOUT_BATCH):
            _queue_removal(profile, held[start : start + FANOUT_BATCH])
        removed = gone.delete()[0]
        if removed:
            run.counts["removed"] = removed
        if run.counts:  # a run that changed nothing (the hourly reconcile, mostly) is not an event
            audit_record(
                actor=Actor.system("profile fan-out"),
                verb="profile.fanout",
                target=profile,
                changes={"reason": reason, "version": profile.version, **run.counts},
            )
    if recheck_related:
        for other_id in _related_conflicted(profile):
            profile_fanout(other_id, reason=f"re-check after {profile.name!r} changed", recheck_related=False)
    return dict(run.counts)


def device_profiles_sync(device: Device) -> int:
    """Queue every profile that targets one device (at enrolment). Bounded by the number of profiles."""
    profiles = list(candidates_for(ConfigurationProfile, device))
    matched = device_matches(device, profiles)
    for profile in profiles:
        if profile.pk in matched:
            _fanout_batch(_Run(profile), [(device.pk, device.platform)])
    if matched:
        device.refresh_from_db(fields=["command_seq"])
    return len(matched)


# -- what devices answer ------------------------------------------------------------------------


def delivery_result_record(*, device: Device, command: DeviceCommand) -> None:
    """The device installed the profile (or could not): only the delivery of that very command changes."""
    ok = command.status == "acknowledged"
    ProfileDelivery.objects.filter(device=device, command=command).update(
        state=DeliveryState.SUCCEEDED if ok else DeliveryState.ERROR,
        reason="" if ok else (command.error or "The device reported an error without a reason."),
    )
