"""Enrolment: bulk enrolment profiles (tokens), self-service codes, and the enrolment itself.

``device_enroll`` is the one way a device becomes enrolled through the agent protocol: it checks
the credential, the restrictions, creates or claims the device record, issues the device secret
(returned once, stored hashed) and stores the first inventory, all in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.choices import ActorType
from mdm_portal.core.models import Scope, User

from .. import lifecycle
from ..choices import EnrollmentMethod, EnrollmentTransport, LifecycleState, Ownership, Platform, ProvisioningAction
from ..models import MAX_PROFILE_CAPACITY, Device, DeviceGroup, EnrollmentCode, EnrollmentProfile
from . import records
from .checkin import device_inventory_store, inventory_digest

TOKEN_LABEL = "enr"  # noqa: S105 (labels, not secrets)
SECRET_LABEL = "dsk"  # noqa: S105
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud and typed on a phone
CODE_TTL = timedelta(hours=24)


class EnrollmentError(Exception):
    """A refused enrolment: ``code`` for machines, ``message`` (a sentence) for people.

    ``user``, ``profile`` and ``restriction`` say, where known, whose enrolment it was, with which
    token, and which restriction refused it; the failure record keeps them.
    """

    def __init__(self, code: str, message: str, fields: dict[str, str] | None = None, *, restriction=None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or {}
        self.restriction = restriction
        self.user: User | None = None
        self.profile: EnrollmentProfile | None = None


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Enrolment profiles --------------------------------------------------------------------------------


@transaction.atomic
def enrollment_profile_create(
    *,
    actor: Actor,
    name: str,
    enrollment_manager: User,
    scope: Scope,
    ownership: str = Ownership.CORPORATE,
    capacity: int = 100,
    expires_at: datetime | None = None,
    device_group: DeviceGroup | None = None,
    primary_user: User | None = None,
    platforms: list[str] | None = None,
    provisioning_minutes: int | None = None,
    provisioning_action: str = ProvisioningAction.NOTIFY,
    description: str = "",
) -> tuple[EnrollmentProfile, str]:
    """Create a bulk enrolment profile. Returns it and its token, which is shown once and never stored."""
    if not 1 <= capacity <= MAX_PROFILE_CAPACITY:
        raise ValidationError({"capacity": f"Capacity must be between 1 and {MAX_PROFILE_CAPACITY} devices."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry is in the past. Choose a future date or leave it empty."})
    unknown = sorted(set(platforms or []) - set(Platform.values))
    if unknown:
        raise ValidationError({"platforms": f"Unknown platform(s): {', '.join(unknown)}."})
    if device_group is not None and device_group.scope_id not in (None, scope.pk):
        raise ValidationError({"device_group": "The device group belongs to another scope than the profile."})
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_LABEL}_{prefix}_{secrets.token_urlsafe(32)}"
    profile = EnrollmentProfile(
        name=name, description=description, enrollment_manager=enrollment_manager, scope=scope,
        ownership=ownership, capacity=capacity, expires_at=expires_at, device_group=device_group,
        primary_user=primary_user, platforms=sorted(platforms or []), provisioning_minutes=provisioning_minutes,
        provisioning_action=provisioning_action, token_prefix=prefix, token_hash=_sha256(token),
    )  # fmt: skip
    profile.full_clean()
    profile.save()
    audit_record(
        actor=actor,
        verb="enrollment_profile.create",
        target=profile,
        changes={
            "name": name,
            "capacity": capacity,
            "ownership": ownership,
            "enrollment_manager": enrollment_manager.pk,
        },
    )
    return profile, token


@transaction.atomic
def enrollment_profile_revoke(*, actor: Actor, profile: EnrollmentProfile) -> EnrollmentProfile:
    if profile.revoked_at is None:
        profile.revoked_at = timezone.now()
        profile.save(update_fields=["revoked_at"])
        audit_record(actor=actor, verb="enrollment_profile.revoke", target=profile, changes={"name": profile.name})
    return profile


# Self-service codes ----------------------------------------------------------------------------------


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    """How an enrolment code is stored and looked up: the SHA-256 of its normalised form."""
    return _sha256(normalise_code(code))


@transaction.atomic
def enrollment_code_create(*, actor: Actor, user: User, platform: str, ownership: str) -> tuple[EnrollmentCode, str]:
    """A one-time code for the employee to enrol one device. Returns it and the code (shown once)."""
    if platform not in Platform.values:
        raise ValidationError({"platform": f"Choose one of: {', '.join(Platform.labels)}."})
    if ownership not in Ownership.values:
        raise ValidationError({"ownership": "Choose whether the device is corporate or personal."})
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
    code = EnrollmentCode.objects.create(
        user=user,
        platform=platform,
        ownership=ownership,
        code_hash=code_hash(raw),
        expires_at=timezone.now() + CODE_TTL,
    )
    audit_record(
        actor=actor, verb="enrollment_code.create", target=code, changes={"platform": platform, "ownership": ownership}
    )
    return code, f"{raw[:5]}-{raw[5:]}"


# Device secrets ----------------------------------------------------------------------------------------


def device_secret_issue(device: Device) -> str:
    """A new secret for the device; the previous one stops working. Returns it (never stored)."""
    secret = f"{SECRET_LABEL}_{device.uuid.hex}_{secrets.token_urlsafe(32)}"
    device.agent_secret_hash = _sha256(secret)
    Device.objects.filter(pk=device.pk).update(agent_secret_hash=device.agent_secret_hash)
    return secret


def device_secret_rotate(*, device: Device) -> str:
    secret = device_secret_issue(device)
    audit_record(actor=Actor.for_device(device), verb="device.secret_rotate", target=device)
    return secret


def device_authenticate(secret: str) -> Device | None:
    """The device a secret belongs to, or None. Constant-time comparison of hashes."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != SECRET_LABEL or len(parts[1]) != 32 or not parts[2]:
        return None
    try:
        device = Device.objects.get(uuid=parts[1])
    except (Device.DoesNotExist, ValidationError):
        return None
    if device is None or not device.agent_secret_hash:
        return None
    if not hmac.compare_digest(device.agent_secret_hash, _sha256(secret)):
        return None
    return device


# Enrolment ------------------------------------------------------------------------------------------


@dataclass
class _Grant:
    """What the credential decides about the new device."""

    method: str
    ownership: str
    scope: Scope | None
    user: User | None
    profile: EnrollmentProfile | None = None
    code: EnrollmentCode | None = None


def _redeem_token(token: str, platform: str) -> _Grant:
    parts = token.split("_", 2)
    profile = None
    if len(parts) == 3 and parts[0] == TOKEN_LABEL and parts[2]:
        profile = (
            EnrollmentProfile.objects.select_related("scope", "primary_user").filter(token_prefix=parts[1]).first()
        )
    if profile is None or not hmac.compare_digest(profile.token_hash, _sha256(token)):
        raise EnrollmentError("invalid_enrollment_token", "This enrolment token is not valid. Ask IT for a new one.")
    now = timezone.now()
    if profile.revoked_at is not None:
        raise EnrollmentError("invalid_enrollment_token", "This enrolment token was revoked. Ask IT for a new one.")
    if profile.expires_at is not None and profile.expires_at <= now:
        raise EnrollmentError("invalid_enrollment_token", "This enrolment token has expired. Ask IT for a new one.")
    if profile.platforms and platform not in profile.platforms:
        allowed = ", ".join(Platform(p).label for p in profile.platforms)
        raise EnrollmentError(
            "enrollment_refused",
            f"This enrolment token is for {allowed} devices only.",
            {"device.platform": "not allowed"},
        )
    # Counted with a conditional UPDATE: two devices racing for the last place cannot both get it.
    taken = EnrollmentProfile.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now), pk=profile.pk, revoked_at__isnull=True,
        use_count__lt=F("capacity"),
    ).update(use_count=F("use_count") + 1)  # fmt: skip
    if not taken:
        raise EnrollmentError(
            "invalid_enrollment_token",
            f"This enrolment token has been used for all {profile.capacity} devices it allows. Ask IT for a new one.",
        )
    return _Grant(EnrollmentMethod.ADMIN_BULK, profile.ownership, profile.scope, profile.primary_user, profile=profile)


def _redeem_code(raw: str, platform: str) -> _Grant:
    code = (
        EnrollmentCode.objects.select_for_update(of=("self",))
        .select_related("user", "user__scope")
        .filter(code_hash=code_hash(raw))
        .first()
    )
    if code is None:
        raise EnrollmentError(
            "invalid_enrollment_token",
            "This enrolment code is not valid. Check it, or create a new one in the Company Portal.",
        )
    try:
        _check_code(code, platform)
    except EnrollmentError as error:
        # The code is real, so the refusal is the person's: it shows in their Company Portal.
        error.user = code.user
        raise
    return _Grant(EnrollmentMethod.USER_SELF_SERVICE, code.ownership, code.user.scope, code.user, code=code)


def _check_code(code: EnrollmentCode, platform: str) -> None:
    if code.used_at is not None:
        raise EnrollmentError(
            "invalid_enrollment_token", "This enrolment code was already used. Create a new one in the Company Portal."
        )
    if code.expires_at <= timezone.now():
        raise EnrollmentError(
            "invalid_enrollment_token", "This enrolment code has expired. Create a new one in the Company Portal."
        )
    if not code.user.is_active:
        raise EnrollmentError("invalid_enrollment_token", "The account this code belongs to is deactivated.")
    if code.platform != platform:
        raise EnrollmentError(
            "enrollment_refused",
            f"This code is for a {code.get_platform_display()} device, not {Platform(platform).label}. "
            "Create a code for this platform in the Company Portal.",
            {"device.platform": "does not match the code"},
        )
    if code.user.scope is None:
        raise EnrollmentError(
            "enrollment_refused",
            "Your account has no home scope yet, so the device cannot be placed. Ask IT to set one.",
        )


def _existing_device(identity: dict[str, Any]) -> Device | None:
    from .identifiers import identity_match

    match = identity_match(identity)
    if match is None:
        return None
    return Device.objects.select_for_update().exclude(lifecycle_state=LifecycleState.RETIRED).filter(match).first()


def device_enroll(
    *,
    identity: dict[str, Any],
    token: str | None = None,
    code: str | None = None,
    transport: str = EnrollmentTransport.OVER_THE_AIR,
    inventory: dict[str, Any] | None = None,
    source_ip: str | None = None,
) -> tuple[Device, str]:
    """Enrol a device with a bulk token or a self-service code. Returns the device and its secret.

    Raises ``EnrollmentError`` when the credential or a restriction refuses it: the enrolment
    writes nothing, and the refusal is recorded as an ``EnrollmentFailure`` in its own transaction.
    """
    from .restrictions import enrollment_failure_record

    try:
        return _device_enroll(
            identity=identity, token=token, code=code, transport=transport, inventory=inventory, source_ip=source_ip
        )
    except EnrollmentError as error:
        enrollment_failure_record(identity=identity, error=error, source_ip=source_ip)
        raise


@transaction.atomic
def _device_enroll(
    *,
    identity: dict[str, Any],
    token: str | None,
    code: str | None,
    transport: str,
    inventory: dict[str, Any] | None,
    source_ip: str | None,
) -> tuple[Device, str]:
    platform = identity["platform"]
    grant = _redeem_token(token, platform) if token else _redeem_code(code or "", platform)
    try:
        return _enroll_granted(grant, identity, transport, inventory, source_ip)
    except EnrollmentError as error:
        error.user, error.profile = grant.user, grant.profile
        raise


def _enroll_granted(grant: _Grant, identity, transport, inventory, source_ip) -> tuple[Device, str]:
    from .identifiers import corporate_identifier_claim, corporate_identifier_for
    from .restrictions import enrollment_restrictions_check

    platform = identity["platform"]
    existing = _existing_device(identity)
    if existing is not None and existing.lifecycle_state != LifecycleState.PENDING:
        raise EnrollmentError(
            "enrollment_refused",
            f"This device is already enrolled as '{existing.name}'. Remove it in the Company Portal or ask IT to "
            "retire it, then enrol it again.",
        )
    # A device IT pre-registered, or whose serial/IMEI IT listed as corporate, is corporate,
    # whatever the person chose; IT's placement (scope, user) stands.
    identifier = corporate_identifier_for(identity)
    ownership = Ownership.CORPORATE if existing is not None or identifier is not None else grant.ownership
    user = grant.user if grant.user is not None else (existing.primary_user if existing else None)
    scope = grant.scope
    if identifier is not None:
        scope = identifier.scope
        user = identifier.user or user
    enrollment_restrictions_check(
        user=user, platform=platform, os_version=identity.get("os_version", ""), ownership=ownership,
        exempt=grant.profile is not None,
    )  # fmt: skip

    via = f"token {grant.profile.token_prefix}" if grant.profile else "self-enrolment code"
    actor = Actor(type=ActorType.DEVICE, label=f"enrolment via {via}", user=grant.user, source_ip=source_ip)
    if existing is None:
        device = records.device_register(
            actor=actor, name=identity.get("name") or "", platform=platform, ownership=ownership,
            scope=scope, enrollment_method=grant.method, enrollment_transport=transport, primary_user=user,
            os_version=identity.get("os_version", ""), model=identity.get("model", ""),
            manufacturer=identity.get("manufacturer", ""), serial_number=identity.get("serial_number", ""),
            imei=identity.get("imei", ""),
        )  # fmt: skip
    else:
        device = existing
        Device.objects.filter(pk=device.pk).update(
            ownership=ownership, primary_user=user, enrollment_method=EnrollmentMethod.CORPORATE_IDENTIFIER,
            enrollment_transport=transport,
        )  # fmt: skip
        device.ownership, device.primary_user = ownership, user
        device.enrollment_method, device.enrollment_transport = EnrollmentMethod.CORPORATE_IDENTIFIER, transport
        records.device_apply_reported(device=device, actor=actor, data=identity)
    if grant.profile is not None:
        profile_fields: dict[str, Any] = {"enrollment_profile": grant.profile}
        if grant.profile.provisioning_minutes:
            profile_fields["provisioning_deadline_at"] = timezone.now() + timedelta(
                minutes=grant.profile.provisioning_minutes
            )
        Device.objects.filter(pk=device.pk).update(**profile_fields)
        for field, value in profile_fields.items():
            setattr(device, field, value)
        if grant.profile.device_group is not None:
            grant.profile.device_group.static_members.add(device)
    if grant.code is not None:
        EnrollmentCode.objects.filter(pk=grant.code.pk).update(used_at=timezone.now(), device=device)
    if identifier is not None:
        corporate_identifier_claim(identifier=identifier, device=device)
    lifecycle.enroll(device, actor=actor)
    secret = device_secret_issue(device)
    if inventory:
        device_inventory_store(device=device, inventory=inventory, digest=inventory_digest(inventory))
    else:
        records.device_checkin_touch(device=device)
    return device, secret
