"""The task outbox on its own (any database): eager runs, an unreachable broker, the relay, secrets."""

from __future__ import annotations

import pytest
from celery import shared_task
from django.db import transaction

from mdm_portal.core import outbox
from mdm_portal.core.models import OutboxMessage

from .conftest import celery_using, free_port

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

RAN: list[tuple] = []


@shared_task(name="tests.faults.record")
def record(*args, **kwargs):
    RAN.append((args, kwargs))
    return len(RAN)


@pytest.fixture(autouse=True)
def nothing_ran():
    RAN.clear()


def test_eager_the_task_runs_after_the_commit_and_leaves_no_row(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        outbox.enqueue(record, 1, reason="x")
        assert OutboxMessage.objects.count() == 1  # written with the change
        assert RAN == []
    assert len(callbacks) == 1
    assert RAN == [((1,), {"reason": "x"})]
    assert not OutboxMessage.objects.exists()


def test_a_rolled_back_change_sends_nothing(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        outbox.enqueue(record, 1)
        raise RuntimeError("the change failed")
    assert callbacks == [] and RAN == []
    assert not OutboxMessage.objects.exists()


def test_an_unreachable_broker_keeps_the_message_for_the_relay(django_capture_on_commit_callbacks):
    closed = free_port()  # nothing listens there
    with celery_using(f"redis://127.0.0.1:{closed}/0"):
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue(record, 7)
        [row] = OutboxMessage.objects.all()
        assert row.task == "tests.faults.record" and row.attempts == 1
        assert "Error" in row.last_error
        assert outbox.outbox_relay() == 0  # still down: the relay gives up at the first refusal
        assert OutboxMessage.objects.get().attempts == 2
    with celery_using("memory://"):
        assert outbox.outbox_relay() == 1
    assert not OutboxMessage.objects.exists()


def test_the_next_enqueue_relays_what_waited(django_capture_on_commit_callbacks):
    closed = free_port()
    with celery_using(f"redis://127.0.0.1:{closed}/0"):
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue(record, 1)
            outbox.enqueue(record, 2)
        assert OutboxMessage.objects.count() == 2
    with celery_using("memory://"), django_capture_on_commit_callbacks(execute=True):
        outbox.enqueue(record, 3)
    assert not OutboxMessage.objects.exists()


def test_a_message_with_secrets_is_stored_encrypted_and_shown_redacted(django_capture_on_commit_callbacks):
    closed = free_port()
    with celery_using(f"redis://127.0.0.1:{closed}/0"), django_capture_on_commit_callbacks(execute=True):
        outbox.outbox_add(record, kwargs={"new_passcode": "739184"}, kwargsrepr="{'new_passcode': '[redacted]'}")
    row = OutboxMessage.objects.get()
    assert row.sealed and "739184" not in row.payload and "739184" not in row.shown
    assert outbox._unpack(row) == ([], {"new_passcode": "739184"})


def test_a_message_that_cannot_be_read_does_not_block_the_others():
    OutboxMessage.objects.create(task="no.such.task", payload='{"args": [], "kwargs": {}}')
    OutboxMessage.objects.create(task="tests.faults.record", payload='{"args": [5], "kwargs": {}}')
    with celery_using("memory://"):
        assert outbox.outbox_relay() == 1
    [stuck] = OutboxMessage.objects.all()
    assert stuck.task == "no.such.task" and stuck.attempts >= 1 and "no.such.task" in stuck.last_error
