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

A row that can never be published (its task is unknown to this app, its sealed payload no longer
decrypts because the key changed, its JSON is broken) is marked *dead* (``dead_at``, the reason in
``last_error``), logged once at ERROR and left out of every relay from then on, so it never holds
back the rows behind it. Only a transport error leaves a row *waiting*. Administrators see both in
the "Task outbox" admin page (``core.admin_outbox``): send now, discard, or retry a dead row once
the cause is fixed (``core.services_outbox``).

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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
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
    try:
        text = _fernet().decrypt(row.payload.encode()).decode() if row.sealed else row.payload
    except InvalidToken:
        raise InvalidToken(
            "the sealed payload does not decrypt with any configured key (MDM_SECRETS_KEYS or SECRET_KEY changed)"
        ) from None
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
    if not _publish_claimed(OutboxMessage.objects.filter(pk=pk), task=task).complete:
        _unreachable[broker] = time.monotonic() + BACKOFF_SECONDS
    elif _waiting():
        outbox_relay(limit=RELAY_BATCH)


def waiting_messages():
    """The rows a relay may still publish: every row that is not dead."""
    return OutboxMessage.objects.filter(dead_at__isnull=True)


def _waiting() -> bool:
    return waiting_messages().exists()


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


@dataclass(frozen=True)
class Outcome:
    """What one pass over claimed rows did: ``complete`` is false when the broker refused one."""

    sent: int = 0
    dead: int = 0
    complete: bool = True


def _publish_claimed(rows, *, task=None) -> Outcome:
    """Publish the live rows of ``rows`` nobody else holds, oldest first; delete each that reached the broker.

    A row that can never be published is marked dead and skipped. Stops at the first broker failure
    (the broker is down: no point waiting for every row's timeout) and records it on that row.
    """
    sent = dead = 0
    with transaction.atomic():
        claimed = list(rows.filter(dead_at__isnull=True).select_for_update(skip_locked=True).order_by("pk"))
        for row in claimed:
            try:
                args, kwargs = _unpack(row)
                target = task or _task(row.task)
            except Exception as exc:  # unknown task, a key no longer configured, broken JSON: never sendable
                _dead(row, exc)
                dead += 1
                continue
            try:
                _apply(target, row, args, kwargs)
            except Exception as exc:  # the broker's errors vary by transport; any failure means "later"
                _failed(row, exc)
                return Outcome(sent=sent, dead=dead, complete=False)
            OutboxMessage.objects.filter(pk=row.pk).delete()
            sent += 1
    return Outcome(sent=sent, dead=dead)


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def _failed(row: OutboxMessage, exc: Exception) -> None:
    logger.warning("Task %s stays in the outbox (row %s): %s: %s", row.task, row.pk, type(exc).__name__, exc)
    OutboxMessage.objects.filter(pk=row.pk).update(
        attempts=row.attempts + 1, last_error=_error_text(exc), last_attempt_at=timezone.now()
    )


def _dead(row: OutboxMessage, exc: Exception) -> None:
    # Logged once: a dead row is not claimed again until an administrator retries it.
    logger.error(
        "Task %s can never be sent and is set aside in the outbox (row %s): %s: %s. "
        "Review it in the console's Task outbox page.",
        row.task,
        row.pk,
        type(exc).__name__,
        exc,
    )
    now = timezone.now()
    OutboxMessage.objects.filter(pk=row.pk).update(
        attempts=row.attempts + 1, last_error=_error_text(exc), last_attempt_at=now, dead_at=now
    )


def outbox_relay(*, limit: int | None = None, pks: Iterable[int] | None = None) -> int:
    """Publish the messages still waiting (the beat task; the next enqueue that reached the broker).

    ``pks`` narrows the relay to those rows ("Send now" in the admin). Dead rows are never
    published. Returns how many were published; stops at the first one the broker refuses.
    """
    _unreachable.clear()
    candidates = waiting_messages()
    if pks is not None:
        candidates = candidates.filter(pk__in=list(pks))
    sent = 0
    while limit is None or sent < limit:
        size = RELAY_BATCH if limit is None else min(RELAY_BATCH, limit - sent)
        ids = list(candidates.order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            break
        outcome = _publish_claimed(OutboxMessage.objects.filter(pk__in=ids))
        if not outcome.complete:
            _unreachable[_app().conf.broker_url] = time.monotonic() + BACKOFF_SECONDS
        sent += outcome.sent
        # No progress means another relay holds these rows: it sends them, this one stops.
        if not outcome.complete or outcome.sent + outcome.dead == 0:
            break
    return sent
