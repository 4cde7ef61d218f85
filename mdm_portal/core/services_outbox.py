"""Administrators' writes to the task outbox: send now, discard, retry a dead message. Each one audits itself.

The outbox itself (writing, publishing, relaying) is ``core.outbox``; these are the console's hands
on the rows it could not send. Every row is audited with what it carries (``shown``, secrets
already redacted), never its payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from . import outbox
from .audit import Actor, audit_record
from .models import OutboxMessage


@dataclass(frozen=True)
class OutboxSendResult:
    """``sent`` reached the broker; ``stayed`` are still waiting (the broker refused one); ``skipped`` were dead."""

    sent: int
    stayed: int
    skipped: int


def _described(row: OutboxMessage) -> dict[str, Any]:
    return {
        "task": row.task,
        "shown": row.shown,
        "state": "dead" if row.is_dead else "waiting",
        "created_at": row.created_at,
        "attempts": row.attempts,
        "last_error": row.last_error,
    }


def _locked(messages: QuerySet[OutboxMessage]) -> list[OutboxMessage]:
    ids = list(messages.values_list("pk", flat=True))
    return list(OutboxMessage.objects.filter(pk__in=ids).defer("payload").select_for_update().order_by("pk"))


def outbox_messages_send(*, actor: Actor, messages: QuerySet[OutboxMessage]) -> OutboxSendResult:
    """Run the relay on the waiting rows of ``messages`` now; dead rows are left alone.

    Not one transaction: like the relay, each batch publishes and deletes under its own row locks,
    so a message that reached the broker is gone even if a later one is refused. The audit events
    (one per row, with its outcome) are written together once the relay has run.
    """
    rows = list(messages.defer("payload").order_by("pk"))
    waiting = [row for row in rows if not row.is_dead]
    if waiting:
        outbox.outbox_relay(pks=[row.pk for row in waiting])
    left = set(OutboxMessage.objects.filter(pk__in=[row.pk for row in waiting]).values_list("pk", flat=True))
    with transaction.atomic():
        for row in waiting:
            outcome = "stayed" if row.pk in left else "sent"
            audit_record(
                actor=actor, verb="outboxmessage.send", target=row, changes={**_described(row), "outcome": outcome}
            )
    return OutboxSendResult(sent=len(waiting) - len(left), stayed=len(left), skipped=len(rows) - len(waiting))


@transaction.atomic
def outbox_messages_discard(*, actor: Actor, messages: QuerySet[OutboxMessage]) -> int:
    """Delete ``messages`` (waiting or dead) without sending them. Returns how many were discarded.

    A row the relay is publishing at this moment is waited for; if it was sent meanwhile, it is not
    counted (there is nothing left to discard).
    """
    rows = _locked(messages)
    for row in rows:
        audit_record(actor=actor, verb="outboxmessage.discard", target=row, changes=_described(row))
    OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)


@transaction.atomic
def outbox_messages_retry(*, actor: Actor, messages: QuerySet[OutboxMessage]) -> int:
    """Make the dead rows of ``messages`` waiting again: the next relay (within a minute) tries them.

    ``last_error`` keeps the reason they died until the next attempt replaces it. Returns how many
    rows were revived; waiting rows among ``messages`` are left alone.
    """
    rows = [row for row in _locked(messages) if row.is_dead]
    for row in rows:
        audit_record(
            actor=actor,
            verb="outboxmessage.retry",
            target=row,
            changes={**_described(row), "dead_since": row.dead_at},
        )
    OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).update(dead_at=None)
    return len(rows)
