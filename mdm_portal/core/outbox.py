"""Transactional outbox: Celery task messages that survive a broker outage.

``enqueue(task, *args, **kwargs)`` (or ``outbox_add`` with a ``kwargsrepr``) writes an
``OutboxMessage`` row in the caller's transaction, so the message exists exactly when the change
that asks for it is committed. Once the transaction commits, the row is published straight away
(one attempt, a short connection timeout, no retry loop) and deleted. If the broker cannot be
reached, the request carries on (the change is committed, the message is safe in the database) and
the row waits for the relay:

* ``outbox_relay`` runs from beat every minute (``mdm_portal.schedules``), and
* every enqueue whose own message reached the broker relays the rows still waiting, so work held
  back during an outage leaves as soon as the broker answers again.

Rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``: two relays never publish the same row
at once. A crash between the publish and the delete publishes that row once more, so every task
sent through here must tolerate a duplicate message (the fan-out, sweep and bulk tasks do: see the
README, "When the broker or the database is down").

With ``CELERY_TASK_ALWAYS_EAGER`` (tests, a worker-less setup) the task runs in the process after the
commit, as ``transaction.on_commit(task.delay)`` did, and no row outlives the transaction.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from cryptography.fernet import MultiFernet
from django.db import transaction
from django.utils import timezone

from .crypto import fernet
from .models import OutboxMessage

logger = logging.getLogger(__name__)

RELAY_BATCH = 100
# After a failed publish, web requests stop trying the broker for this long (per process): during an
# outage only one request in this window pays the connection timeout; the relay keeps trying.
BACKOFF_SECONDS = 10.0
_unreachable: dict[str, float] = {}  # broker URL -> monotonic time until which it is assumed down


def _app():
    from mdm_portal.celery import app

    return app


def _fernet() -> MultiFernet:
    return fernet("task outbox")


def _pack(args: tuple | list, kwargs: dict, sealed: bool) -> str:
    text = json.dumps({"args": list(args), "kwargs": kwargs}, sort_keys=True, default=str)
    return _fernet().encrypt(text.encode()).decode() if sealed else text


def _unpack(row: OutboxMessage) -> tuple[list, dict]:
    text = _fernet().decrypt(row.payload.encode()).decode() if row.sealed else row.payload
    data = json.loads(text)
    return data["args"], data["kwargs"]


def enqueue(task, /, *args: Any, **kwargs: Any) -> OutboxMessage:
    """Send ``task(*args, **kwargs)`` once the current transaction commits; never lost if the broker is down."""
    return outbox_add(task, args=args, kwargs=kwargs)


def outbox_add(task, *, args: tuple | list = (), kwargs: dict | None = None, kwargsrepr: str | None = None):
    """``enqueue`` with Celery's ``kwargsrepr``: a message with secrets is stored encrypted, shown redacted."""
    kwargs = kwargs or {}
    sealed = kwargsrepr is not None
    row = OutboxMessage.objects.create(
        task=task.name,
        payload=_pack(args, kwargs, sealed),
        sealed=sealed,
        shown=(kwargsrepr or f"args={list(args)!r} kwargs={kwargs!r}")[:2000],
    )
    pk = row.pk
    transaction.on_commit(lambda: _after_commit(task, pk))
    return row


def _after_commit(task, pk: int) -> None:
    if _app().conf.task_always_eager:
        # In-process, as before the outbox: the task's errors reach the caller (and the tests).
        row = OutboxMessage.objects.filter(pk=pk).first()
        if row is None:
            return
        OutboxMessage.objects.filter(pk=pk).delete()
        args, kwargs = _unpack(row)
        _apply(task, row, args, kwargs)
        return
    broker = _app().conf.broker_url
    if time.monotonic() < _unreachable.get(broker, 0):
        return  # it failed a moment ago: leave the message to the relay rather than wait again
    if not _publish_claimed(OutboxMessage.objects.filter(pk=pk), task=task):
        _unreachable[broker] = time.monotonic() + BACKOFF_SECONDS
    elif _waiting():
        outbox_relay(limit=RELAY_BATCH)


def _waiting() -> bool:
    return OutboxMessage.objects.exists()


def _apply(task, row: OutboxMessage, args: list, kwargs: dict) -> None:
    options: dict[str, Any] = {"retry": False}
    if row.sealed:
        options["kwargsrepr"] = row.shown
    task.apply_async(args=args, kwargs=kwargs, **options)


def _task(name: str):
    app = _app()
    task = app.tasks.get(name)
    if task is None:
        app.loader.import_default_modules()
        task = app.tasks[name]
    return task


def _publish_claimed(rows, *, task=None) -> bool:
    """Publish the rows of ``rows`` nobody else holds, oldest first; delete each that reached the broker.

    Stops at the first failure (the broker is down: no point waiting for every row's timeout) and
    records it on that row. Returns whether every claimed row was published.
    """
    with transaction.atomic():
        claimed = list(rows.select_for_update(skip_locked=True).order_by("pk"))
        for row in claimed:
            try:
                args, kwargs = _unpack(row)
                target = task or _task(row.task)
            except Exception as exc:  # unknown task, a key no longer configured: never blocks the others
                _failed(row, exc)
                continue
            try:
                _apply(target, row, args, kwargs)
            except Exception as exc:  # the broker's errors vary by transport; any failure means "later"
                _failed(row, exc)
                return False
            OutboxMessage.objects.filter(pk=row.pk).delete()
    return True


def _failed(row: OutboxMessage, exc: Exception) -> None:
    logger.warning("Task %s stays in the outbox (row %s): %s: %s", row.task, row.pk, type(exc).__name__, exc)
    OutboxMessage.objects.filter(pk=row.pk).update(
        attempts=row.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000], last_attempt_at=timezone.now()
    )


def outbox_relay(*, limit: int | None = None) -> int:
    """Publish the messages still waiting (the beat task; the next enqueue that reached the broker).

    Returns how many were published; stops at the first one the broker refuses.
    """
    _unreachable.clear()
    sent = 0
    while limit is None or sent < limit:
        size = RELAY_BATCH if limit is None else min(RELAY_BATCH, limit - sent)
        ids = list(OutboxMessage.objects.order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            break
        before = OutboxMessage.objects.filter(pk__in=ids).count()
        complete = _publish_claimed(OutboxMessage.objects.filter(pk__in=ids))
        if not complete:
            _unreachable[_app().conf.broker_url] = time.monotonic() + BACKOFF_SECONDS
        published = before - OutboxMessage.objects.filter(pk__in=ids).count()
        sent += published
        if not complete or published == 0:
            break
    return sent
