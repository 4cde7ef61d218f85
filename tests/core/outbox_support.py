"""Helpers for the outbox tests: a broker for this process, a task to send, rows that can never be sent."""

from __future__ import annotations

import socket

from celery import shared_task

from mdm_portal.core.models import OutboxMessage
from tests.celery_broker import celery_using

GOOD_TASK = "tests.core.outbox_record"


@shared_task(name=GOOD_TASK)
def outbox_record(*args, **kwargs):
    return args


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker(url: str = "memory://"):
    """This process's Celery app publishes to ``url`` (not eagerly) inside the block.

    ``memory://`` is kombu's in-process transport: publishing succeeds and nothing runs the task,
    which is what a relay test needs. A ``redis://`` URL on a closed port is a broker that is down.
    """
    return celery_using(url)


def good_row(n: int = 1) -> OutboxMessage:
    return OutboxMessage.objects.create(task=GOOD_TASK, payload=f'{{"args": [{n}], "kwargs": {{}}}}', shown=f"n={n}")


def poison_rows(count: int) -> list[OutboxMessage]:
    """``count`` rows that can never be sent, of the three kinds in turn: unknown task, foreign key, broken JSON."""
    kinds = [
        {"task": "no.such.task", "payload": '{"args": [], "kwargs": {}}'},
        {"task": GOOD_TASK, "payload": "gAAAAABnot-a-token-this-key-can-read", "sealed": True},
        {"task": GOOD_TASK, "payload": '{"args": [1], "kwa'},
    ]
    return OutboxMessage.objects.bulk_create(
        OutboxMessage(**kinds[n % len(kinds)], shown=f"poison {n}") for n in range(count)
    )
