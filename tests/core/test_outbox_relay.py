"""The outbox relay is never blocked by a message it can never send: such a message is dead, set aside once."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from mdm_portal.core import authz, outbox, selectors
from mdm_portal.core.models import OutboxMessage

from .outbox_support import broker, closed_port, good_row, poison_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox_log(caplog):
    """The outbox's log records, whatever the root logger's handlers are meanwhile."""
    outbox.logger.addHandler(caplog.handler)
    yield caplog
    outbox.logger.removeHandler(caplog.handler)


def test_101_unreadable_messages_do_not_hold_back_the_one_behind_them(outbox_log):
    caplog = outbox_log
    poison = poison_rows(outbox.RELAY_BATCH + 1)
    good = good_row()
    with broker():
        assert outbox.outbox_relay() == 1
        assert not OutboxMessage.objects.filter(pk=good.pk).exists()
        dead = OutboxMessage.objects.filter(dead_at__isnull=False)
        assert dead.count() == len(poison) == OutboxMessage.objects.count()
        records = {id(r): r for r in caplog.records if r.name == "mdm_portal.core.outbox"}.values()
        assert len(records) == len(poison)  # once each
        assert {r.levelno for r in records} == {logging.ERROR}  # dead, not "stays waiting"

        caplog.clear()
        assert outbox.outbox_relay() == 0  # the second run does not try them again
        assert [r for r in caplog.records if r.name == "mdm_portal.core.outbox"] == []
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}


def test_each_kind_of_unreadable_message_says_why_it_is_dead():
    unknown, foreign_key, broken = poison_rows(3)
    with broker():
        outbox.outbox_relay()
    reasons = {row.pk: row.last_error for row in OutboxMessage.objects.all()}
    assert "no.such.task" in reasons[unknown.pk]
    assert reasons[foreign_key.pk].startswith("InvalidToken")
    assert reasons[broken.pk].startswith("JSONDecodeError")
    assert all(row.dead_at is not None and row.last_attempt_at is not None for row in OutboxMessage.objects.all())


def test_dead_messages_are_not_waiting_work(django_capture_on_commit_callbacks):
    poison_rows(2)
    with broker():
        outbox.outbox_relay()
        assert not outbox._waiting()
        # A later enqueue that reaches the broker finds nothing to relay and touches no dead row.
        with django_capture_on_commit_callbacks(execute=True):
            outbox.enqueue(outbox_record_task(), 9)
    assert OutboxMessage.objects.filter(dead_at__isnull=True).count() == 0
    assert set(OutboxMessage.objects.values_list("attempts", flat=True)) == {1}


def outbox_record_task():
    from .outbox_support import outbox_record

    return outbox_record


def test_a_broker_that_is_down_leaves_messages_waiting_not_dead():
    row = good_row()
    with broker(f"redis://127.0.0.1:{closed_port()}/0"):
        assert outbox.outbox_relay() == 0
    row.refresh_from_db()
    assert row.dead_at is None and row.attempts == 1 and row.last_error
    assert outbox._waiting()
    with broker():
        assert outbox.outbox_relay() == 1
    assert not OutboxMessage.objects.exists()


def test_relay_on_chosen_rows_sends_only_those():
    first, second = good_row(1), good_row(2)
    with broker():
        assert outbox.outbox_relay(pks=[second.pk]) == 1
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [first.pk]


# The console's warning --------------------------------------------------------------------------


def _aged(row: OutboxMessage, minutes: int) -> None:
    OutboxMessage.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def test_health_is_quiet_for_a_blip_and_speaks_after_a_few_minutes(people):
    row = good_row()
    assert selectors.outbox_health(user=people.global_admin) is None  # a message that has just been written
    _aged(row, 10)
    health = selectors.outbox_health(user=people.global_admin)
    assert health.waiting == 1 and health.stale and health.dead == 0


def test_health_reports_dead_messages_at_once(people):
    poison_rows(2)
    with broker():
        outbox.outbox_relay()
    health = selectors.outbox_health(user=people.global_admin)
    assert health.dead == 2 and not health.stale


@pytest.mark.parametrize("persona", ["read_only", "helpdesk_a", "no_role", "employee"])
def test_health_is_only_for_people_who_may_open_the_outbox(people, persona):
    _aged(good_row(), 10)
    assert selectors.outbox_health(user=getattr(people, persona)) is None


def test_health_is_one_query(people, django_assert_num_queries):
    poison_rows(1)
    with broker():
        outbox.outbox_relay()
    _aged(good_row(), 10)
    assert authz.has_global(people.global_admin, selectors.VIEW_OUTBOX)  # permissions cached for the request
    with django_assert_num_queries(1):
        health = selectors.outbox_health(user=people.global_admin)
    assert (health.waiting, health.dead, health.stale) == (1, 1, True)
