"""Background bulk requests: a remote action over more devices than one web request should queue.

The task acts as the person who asked (their audit actor, their authorisation at run time): it
selects the devices again from the same filters they confirmed, narrows them through ``core.authz``
to those where they hold the action's permission, and queues through the one bulk service. The
message carries the filters and ids, never model instances; secret inputs are masked in Celery's
own record of the task (``kwargsrepr``).
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import QuerySet

from mdm_portal.core import authz, outbox
from mdm_portal.core.audit import REDACTED, Actor

from .commands import get_action
from .models import Device, DeviceCommand
from .services import device_command_queue_bulk

# Above this many devices a bulk request is queued by this task instead of in the web request.
BACKGROUND_THRESHOLD = 5000
QUEUE_BULK_TASK = "devices.tasks_commands.device_commands_queue_bulk_task"


def _selected_devices(user, selection: dict[str, Any]) -> QuerySet[Device]:
    """The devices of the request: the console's list filters, or the API's filter body."""
    if "api_filter" in selection:
        from . import selectors
        from .api.serializers import device_bulk_filter

        return device_bulk_filter(selectors.device_list(user=user), selection["api_filter"])
    from .admin.devices import device_changelist_queryset

    devices = device_changelist_queryset(user=user, query=selection.get("admin_query", ""))
    if "ids" in selection:
        devices = devices.filter(pk__in=selection["ids"])
    return devices


@shared_task(name=QUEUE_BULK_TASK, acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def device_commands_queue_bulk_task(
    *,
    user_id: int,
    source_ip: str | None,
    command_type: str,
    params: dict[str, Any],
    batch: str,
    selection: dict[str, Any],
) -> int:
    """Queue one bulk request; returns how many commands it queued. Idempotent per ``batch``.

    A message delivered twice (the outbox relays a row again after a crash between publish and
    delete; a redelivery after a worker died) queues nothing the second time, even when both copies
    run at once: the batch is locked for the transaction (PostgreSQL) before it is checked.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"device-command-batch:{batch}"])
        return _queue_bulk(
            user_id=user_id,
            source_ip=source_ip,
            command_type=command_type,
            params=params,
            batch=batch,
            selection=selection,
        )


def _queue_bulk(
    *, user_id: int, source_ip: str | None, command_type: str, params: dict[str, Any], batch: str, selection: dict
) -> int:
    if DeviceCommand.objects.filter(batch=batch).exists():
        return 0  # a redelivered message: the request was already queued
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    action = get_action(command_type)
    devices = authz.restrict(_selected_devices(user, selection), user, action.permission)
    outcome = device_command_queue_bulk(
        actor=Actor.for_user(user, source_ip=source_ip),
        devices=devices,
        command_type=command_type,
        params=params,
        batch=uuid.UUID(batch),
    )
    return outcome["queued"]


def enqueue_bulk_queue(
    *, user, source_ip: str | None, command_type: str, params: dict[str, Any], batch: uuid.UUID, selection: dict
) -> None:
    """Send the task once the caller's transaction commits (through the outbox; the params' secrets are
    stored encrypted until then and never shown)."""
    action = get_action(command_type)
    kwargs = {
        "user_id": user.pk,
        "source_ip": source_ip,
        "command_type": command_type,
        "params": params,
        "batch": str(batch),
        "selection": selection,
    }
    shown = {**kwargs, "params": {k: (REDACTED if k in action.secret_fields else v) for k, v in params.items()}}
    outbox.outbox_add(device_commands_queue_bulk_task, kwargs=kwargs, kwargsrepr=repr(shown))
