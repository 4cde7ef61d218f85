"""App protection without enrolment (MAM): sign-in tokens, app instances, check-ins, selective wipes.

The life of a managed app instance: the employee signs in (``app_sign_in``) and gets a short-lived
access token (``app_access_token_issue``); with it the app registers (``app_instance_register``)
and receives an instance secret, shown once and stored as a SHA-256 hash; from then on the app
checks in with that secret (``app_instance_checkin``) and receives its effective protection policy
when it changed, the access decision, and an open selective wipe if IT asked for one. A wipe stays
open (pending, then sent) and is handed out at every check-in until the app confirms it
(``app_wipe_confirm``); confirmation revokes the instance, whose secret then stops working: the app
starts clean by registering again.

Instances act as themselves (``instance_actor``), never as their person. Every write is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.choices import ActorType

from ..choices import WipeStatus
from ..mam import access_decision, applicable_policies, merge
from ..models import App, AppDataWipe, ManagedAppInstance

SECRET_LABEL = "mai"  # noqa: S105 (a label, not a secret)
ACCESS_TOKEN_SALT = "apps.mam.access-token"  # noqa: S105
ACCESS_TOKEN_LIFETIME_SECONDS = 600
CHECKIN_INTERVAL_SECONDS = 1800
OPEN_WIPE_STATUSES = (WipeStatus.PENDING, WipeStatus.SENT)
UNKNOWN_WIPE = "This app instance has no wipe with that id. Check in again."


class MamError(Exception):
    """A refusal the managed-app API turns into ``{"error": {code, message, fields}}``."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def instance_actor(instance: ManagedAppInstance, *, source_ip: str | None = None) -> Actor:
    """The app instance acting on its own record (a device-type actor: no person's authority)."""
    return Actor(type=ActorType.DEVICE, label=f"app instance {instance.uuid}", source_ip=source_ip)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Sign-in and access tokens --------------------------------------------------------------------------


def app_sign_in(*, username: str, password: str, request: Any = None) -> Any:
    """The active person with these credentials, or None (whichever part was wrong)."""
    user = authenticate(request, username=username, password=password)
    return user if user is not None and user.is_active else None


def _token_binding(user: Any) -> str:
    # Changes with the password, so a password reset ends every access token at once.
    return user.get_session_auth_hash()[:16]


def app_access_token_issue(*, user: Any) -> str:
    """A signed, timestamped access token for ``user``, valid ``ACCESS_TOKEN_LIFETIME_SECONDS``."""
    return signing.dumps({"u": user.pk, "h": _token_binding(user)}, salt=ACCESS_TOKEN_SALT, compress=False)


def app_access_token_user(token: str) -> Any:
    """The person an access token was issued to; ``MamError`` (401) when expired, forged or stale."""
    try:
        payload = signing.loads(token, salt=ACCESS_TOKEN_SALT, max_age=ACCESS_TOKEN_LIFETIME_SECONDS)
    except signing.SignatureExpired as exc:
        raise MamError(
            401, "invalid_token", "The access token expired (they last 10 minutes). Sign in again to get a new one."
        ) from exc
    except (signing.BadSignature, ValueError) as exc:
        raise MamError(401, "invalid_token", "The access token is not valid. Sign in again to get a new one.") from exc
    user_id = payload.get("u") if isinstance(payload, dict) else None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if isinstance(user_id, int) else None
    if user is None or not hmac.compare_digest(str(payload.get("h", "")), _token_binding(user)):
        raise MamError(401, "invalid_token", "This access token is no longer valid. Sign in again to get a new one.")
    return user


# Instances -------------------------------------------------------------------------------------------


def app_instance_authenticate(secret: str) -> ManagedAppInstance | None:
    """The instance a secret belongs to (revoked ones too: the caller decides), or None."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != SECRET_LABEL or len(parts[1]) != 32 or not parts[2]:
        return None
    try:
        instance_uuid = uuid.UUID(hex=parts[1])
    except ValueError:
        return None
    instance = ManagedAppInstance.objects.select_related("user", "app").filter(uuid=instance_uuid).first()
    if instance is None or not instance.secret_hash:
        return None
    if not hmac.compare_digest(instance.secret_hash, _sha256(secret)):
        return None
    return instance


@transaction.atomic
def app_instance_register(
    *,
    user: Any,
    app_identifier: str,
    platform: str,
    device_name: str = "",
    os_version: str = "",
    app_version: str = "",
    source_ip: str | None = None,
) -> tuple[ManagedAppInstance, str]:
    """Register a managed app signed in by ``user``; returns the instance and its secret (shown once).

    Every registration is a new instance with no state and no wipes. The app must be in the app
    catalog for the platform (``App.identifier``), otherwise ``MamError`` (403).
    """
    if not user.is_active:
        raise MamError(403, "account_disabled", "Your account is disabled. Ask IT if you think this is a mistake.")
    # Only an app of the person's own scope's catalog (or an organisation-wide one) can be protected.
    app = (
        App.objects.filter(platform=platform, identifier=app_identifier)
        .filter(Q(scope__isnull=True) | Q(scope_id=user.scope_id))
        .order_by("pk")
        .first()
    )
    if app is None:
        raise MamError(
            403,
            "app_not_managed",
            f"'{app_identifier}' is not a managed app on {platform} in this organisation. "
            "Ask IT to add it to the app catalog.",
            {"app_identifier": "Not in the app catalog for this platform."},
        )
    instance_uuid = uuid.uuid4()
    secret = f"{SECRET_LABEL}_{instance_uuid.hex}_{secrets.token_urlsafe(32)}"
    instance = ManagedAppInstance.objects.create(
        uuid=instance_uuid,
        user=user,
        app=app,
        app_identifier=app_identifier,
        platform=platform,
        device_name=device_name,
        os_version=os_version,
        app_version=app_version,
        secret_hash=_sha256(secret),
    )
    audit_record(
        actor=Actor.for_user(user, source_ip=source_ip),
        verb="mam.instance.register",
        target=instance,
        scope_id=user.scope_id,
        changes={
            "app": app,
            "platform": platform,
            "device_name": device_name,
            "app_version": app_version,
            "os_version": os_version,
        },
    )
    return instance, secret


def _wipe_reply(wipe: AppDataWipe | None) -> dict[str, Any] | None:
    if wipe is None:
        return None
    return {"id": str(wipe.uuid), "reason": wipe.reason, "requested_at": wipe.requested_at.isoformat()}


@transaction.atomic
def app_instance_checkin(
    *, instance: ManagedAppInstance, report: dict[str, Any], source_ip: str | None = None
) -> dict[str, Any]:
    """Record what the app reports and answer with its policy, its open wipe and the access decision.

    ``report`` holds the check-in's validated fields: ``app_version``, ``os_version``,
    ``device_name`` (each optional: kept when absent), ``policy_version`` (the version the app
    holds; when absent, the one last sent) and ``state`` (stored as the instance's state).

    The policy is sent only when its version differs from the one the app holds
    (``policy_status``: ``changed``; otherwise ``unchanged``, or ``none`` when no policy applies).
    An open wipe is handed out at every check-in until confirmed (pending becomes sent).
    """
    if instance.revoked_at is not None:
        raise MamError(410, "instance_revoked", "This app instance was wiped. Sign in again to register it.")
    now = timezone.now()
    for field in ("app_version", "os_version", "device_name"):
        if field in report:
            setattr(instance, field, report[field])
    held = report.get("policy_version", instance.policy_version)
    policies = applicable_policies(user=instance.user, app=instance.app, platform=instance.platform)
    policy = merge(policies)
    version = policy["version"] if policy else 0
    status = "none" if policy is None else ("unchanged" if version == held else "changed")
    instance.policy = policies[0] if policies else None
    instance.policy_version = version
    instance.state = {**report.get("state", {}), "policy_version": held}
    instance.last_checkin_at = now
    instance.save(
        update_fields=[
            "app_version",
            "os_version",
            "device_name",
            "policy",
            "policy_version",
            "state",
            "last_checkin_at",
        ]
    )
    wipe = instance.wipes.filter(status__in=OPEN_WIPE_STATUSES).first()
    # Conditional, so two concurrent check-ins record the delivery once.
    if (
        wipe is not None
        and wipe.status == WipeStatus.PENDING
        and AppDataWipe.objects.filter(pk=wipe.pk, status=WipeStatus.PENDING).update(
            status=WipeStatus.SENT, sent_at=now
        )
    ):
        wipe.status, wipe.sent_at = WipeStatus.SENT, now
        audit_record(
            actor=instance_actor(instance, source_ip=source_ip),
            verb="mam.wipe.sent",
            target=wipe,
            scope_id=instance.user.scope_id,
        )
    access = access_decision(
        policy,
        app_version=instance.app_version,
        os_version=instance.os_version,
        user_active=instance.user.is_active,
        wipe_pending=wipe is not None,
    )
    return {
        "checkin_interval_seconds": CHECKIN_INTERVAL_SECONDS,
        "policy_status": status,
        "policy_version": version,
        "policy": policy if status == "changed" else None,
        "wipe": _wipe_reply(wipe),
        "access": access,
    }


# Selective wipe of app data ----------------------------------------------------------------------------


@transaction.atomic
def app_data_wipe_request(*, actor: Actor, instance: ManagedAppInstance, reason: str = "") -> AppDataWipe:
    """Ask the instance to remove its org data at its next check-in. Idempotent: an open wipe is returned.

    The caller has already checked that the person may wipe this instance
    (``apps.wipe_managedappinstance``).
    """
    instance = ManagedAppInstance.objects.select_for_update().select_related("user").get(pk=instance.pk)
    if instance.revoked_at is not None:
        raise ValidationError(
            f"This app instance was already wiped on {instance.revoked_at:%Y-%m-%d %H:%M} UTC; "
            "there is no org data left to remove."
        )
    existing = instance.wipes.filter(status__in=OPEN_WIPE_STATUSES).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            wipe = AppDataWipe.objects.create(
                instance=instance,
                reason=reason[:255],
                requested_by=actor.user,
                requested_by_label=actor.label[:255],
            )
    except IntegrityError:
        # Another request opened one between our read and our write (no row lock on SQLite).
        return instance.wipes.get(status__in=OPEN_WIPE_STATUSES)
    audit_record(
        actor=actor,
        verb="mam.wipe.request",
        target=wipe,
        scope_id=instance.user.scope_id,
        changes={"instance": str(instance.uuid), "app": instance.app_identifier, "reason": wipe.reason},
    )
    return wipe


@transaction.atomic
def app_data_wipe_user(*, actor: Actor, user: Any, reason: str = "") -> list[AppDataWipe]:
    """Wipe the org data from every registered (not revoked) app instance of ``user``; the open wipes."""
    instances = ManagedAppInstance.objects.filter(user=user, revoked_at__isnull=True).order_by("pk")
    return [app_data_wipe_request(actor=actor, instance=instance, reason=reason) for instance in instances]


@transaction.atomic
def app_data_wipe_cancel(*, actor: Actor, wipe: AppDataWipe) -> AppDataWipe:
    """Cancel a wipe the app has not received yet. Idempotent for a cancelled wipe."""
    wipe = AppDataWipe.objects.select_for_update().select_related("instance__user").get(pk=wipe.pk)
    if wipe.status == WipeStatus.CANCELLED:
        return wipe
    if wipe.status != WipeStatus.PENDING:
        raise ValidationError(
            f"This wipe was already delivered to the app ({wipe.get_status_display().lower()}); "
            "it can no longer be cancelled."
        )
    wipe.status = WipeStatus.CANCELLED
    wipe.save(update_fields=["status"])
    audit_record(
        actor=actor,
        verb="mam.wipe.cancel",
        target=wipe,
        scope_id=wipe.instance.user.scope_id,
        changes={"instance": str(wipe.instance.uuid)},
    )
    return wipe


@transaction.atomic
def app_wipe_confirm(*, instance: ManagedAppInstance, wipe_uuid: Any, source_ip: str | None = None) -> AppDataWipe:
    """The app removed its org data: the wipe is confirmed and the instance revoked.

    Idempotent: confirming a confirmed wipe again (a retry) returns it, even though the instance is
    revoked by then.
    """
    try:
        wipe = AppDataWipe.objects.select_for_update().get(instance=instance, uuid=wipe_uuid)
    except (AppDataWipe.DoesNotExist, ValidationError, ValueError) as exc:
        raise MamError(404, "unknown_wipe", UNKNOWN_WIPE) from exc
    if wipe.status == WipeStatus.CONFIRMED:
        return wipe
    if instance.revoked_at is not None:
        raise MamError(410, "instance_revoked", "This app instance was wiped. Sign in again to register it.")
    if wipe.status == WipeStatus.CANCELLED:
        raise MamError(409, "wipe_cancelled", "IT cancelled this wipe. Keep the data and check in again.")
    now = timezone.now()
    wipe.status, wipe.confirmed_at, wipe.sent_at = WipeStatus.CONFIRMED, now, wipe.sent_at or now
    wipe.save(update_fields=["status", "confirmed_at", "sent_at"])
    instance.revoked_at = now
    ManagedAppInstance.objects.filter(pk=instance.pk).update(revoked_at=now)
    audit_record(
        actor=instance_actor(instance, source_ip=source_ip),
        verb="mam.wipe.confirm",
        target=wipe,
        scope_id=instance.user.scope_id,
        changes={"instance": str(instance.uuid), "app": instance.app_identifier},
    )
    return wipe
