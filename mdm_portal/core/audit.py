"""Who did it, and the one way to write it down.

Every service takes an ``Actor`` and calls ``audit_record`` inside its own transaction, so a
mutation and its audit event commit or roll back together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from .choices import ActorType

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import APIToken, AuditEvent, User

REDACTED = "[redacted]"
SECRET_KEY_PARTS = ("password", "secret", "token", "key_hash", "passcode", "recovery", "private")


@dataclass(frozen=True)
class Actor:
    """The subject of a mutation: a person, an API token (and its owner), a device, or the system."""

    type: str
    label: str
    user: User | None = None
    source_ip: str | None = None

    @classmethod
    def for_user(cls, user: User, *, source_ip: str | None = None) -> Actor:
        return cls(type=ActorType.USER, label=user.get_username(), user=user, source_ip=source_ip)

    @classmethod
    def for_api_token(cls, token: APIToken, *, source_ip: str | None = None) -> Actor:
        label = f"{token.user.get_username()} via API token {token.prefix}"
        return cls(type=ActorType.API_TOKEN, label=label, user=token.user, source_ip=source_ip)

    @classmethod
    def for_device(cls, device: Any, *, source_ip: str | None = None) -> Actor:
        return cls(type=ActorType.DEVICE, label=f"device {device.uuid}", source_ip=source_ip)

    @classmethod
    def system(cls, job: str) -> Actor:
        """A Celery task, beat job or management command acting on its own authority."""
        return cls(type=ActorType.SYSTEM, label=f"system:{job}")

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        from .models import APIToken

        ip = client_ip(request)
        auth = getattr(request, "auth", None)
        if isinstance(auth, APIToken):
            return cls.for_api_token(auth, source_ip=ip)
        return cls.for_user(request.user, source_ip=ip)


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites
    # REMOTE_ADDR (gunicorn's --forwarded-allow-ips does exactly that).
    return request.META.get("REMOTE_ADDR") or None


def redact(changes: dict[str, Any]) -> dict[str, Any]:
    """Replace the value of every key that names a secret, at any depth (dicts inside lists too)."""
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if any(part in str(key).lower() for part in SECRET_KEY_PARTS):
            clean[key] = REDACTED
        else:
            clean[key] = _redact_nested(value)
    return clean


def _redact_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return redact(value)
    if isinstance(value, list | tuple):
        return [_redact_nested(item) for item in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return {"id": value.pk, "repr": str(value)[:200]}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def audit_record(
    *,
    actor: Actor,
    verb: str,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    scope_id: int | None = None,
) -> AuditEvent:
    """Write one audit event. Call it inside the service's transaction."""
    from .models import AuditEvent

    if scope_id is None and target is not None:
        scope_id = getattr(target, "scope_id", None)
    return AuditEvent.objects.create(
        actor_type=actor.type,
        actor_user=actor.user,
        actor_label=actor.label[:255],
        verb=verb,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:255] if target is not None else "",
        scope_id=scope_id,
        changes=_jsonable(redact(changes or {})),
        source_ip=actor.source_ip,
    )


def model_changes(instance: models.Model, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The current values of ``fields`` on ``instance``, for an audit event's ``changes``."""
    values: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        if field.many_to_many:
            if instance.pk is not None:
                values[name] = sorted(str(obj) for obj in getattr(instance, name).all())
        elif field.is_relation:
            values[name] = getattr(instance, field.attname)
        else:
            values[name] = getattr(instance, name)
    return values
