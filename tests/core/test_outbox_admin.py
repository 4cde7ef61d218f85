"""The "Task outbox" console page: the list, its actions (send now, retry, discard behind a confirmation),
their audit events, the index warning and the list's query count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin import helpers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mdm_portal.core import outbox
from mdm_portal.core.models import AuditEvent, OutboxMessage

from .outbox_support import broker, closed_port, good_row, poison_rows

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:core_outboxmessage_changelist"


def dead_rows(count: int) -> list[OutboxMessage]:
    rows = poison_rows(count)
    with broker():
        outbox.outbox_relay()
    return rows


def act(client, action: str, rows, **extra):
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [row.pk for row in rows], **extra}
    return client.post(reverse(CHANGELIST), data)


@pytest.fixture
def admin_client_(client, people):
    client.force_login(people.global_admin)
    return client


def test_the_list_shows_what_a_message_carries_never_its_payload(admin_client_):
    [dead] = dead_rows(1)  # first: the relay that kills it would send the waiting row too
    outbox.outbox_add(outbox_record(), kwargs={"new_passcode": "739184"}, kwargsrepr="{'new_passcode': '[redacted]'}")
    response = admin_client_.get(reverse(CHANGELIST))
    assert response.status_code == 200
    content = response.content.decode()
    assert "[redacted]" in content and "739184" not in content
    row = OutboxMessage.objects.get(sealed=True)
    assert row.payload not in content
    assert "Waiting" in content and "Dead" in content and "no.such.task" in content
    assert [r.pk for r in response.context["cl"].result_list] == sorted([row.pk, dead.pk])  # oldest first
    detail = admin_client_.get(reverse("admin:core_outboxmessage_change", args=[row.pk]))
    assert detail.status_code == 200 and row.payload not in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()  # view-only


def outbox_record():
    from .outbox_support import outbox_record as task

    return task


def test_the_state_filter(admin_client_):
    [dead] = dead_rows(1)
    waiting = good_row()
    for state, expected in (("waiting", [waiting.pk]), ("dead", [dead.pk])):
        response = admin_client_.get(reverse(CHANGELIST), {"state": state})
        assert [r.pk for r in response.context["cl"].result_list] == expected


def test_no_add_and_no_edit(admin_client_):
    row = good_row()
    assert admin_client_.get(reverse("admin:core_outboxmessage_add")).status_code == 403
    change = reverse("admin:core_outboxmessage_change", args=[row.pk])
    admin_client_.post(change, {"task": "other.task", "payload": "{}", "shown": "x"})
    assert OutboxMessage.objects.get(pk=row.pk).task == row.task
    assert admin_client_.get(reverse("admin:core_outboxmessage_delete", args=[row.pk])).status_code == 403


def test_send_now_sends_the_waiting_rows_and_says_how_many(admin_client_, people):
    [dead] = dead_rows(1)
    first, second = good_row(1), good_row(2)
    with broker():
        response = act(admin_client_, "send_now", [first, second, dead], index="0")
    assert response.status_code == 302
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [dead.pk]
    text = " ".join(m.message for m in response.wsgi_request._messages)
    assert "Sent 2 messages; 0 stayed waiting." in text and "1 dead message skipped" in text
    events = AuditEvent.objects.filter(verb="outboxmessage.send").order_by("target_id")
    assert [e.target_id for e in events] == [str(first.pk), str(second.pk)]
    assert all(e.actor_user == people.global_admin and e.changes["outcome"] == "sent" for e in events)


def test_send_now_with_the_broker_down_reports_what_stayed(admin_client_):
    row = good_row()
    with broker(f"redis://127.0.0.1:{closed_port()}/0"):
        response = act(admin_client_, "send_now", [row], index="0")
    text = " ".join(m.message for m in response.wsgi_request._messages)
    assert "Sent 0 messages; 1 stayed waiting." in text
    row.refresh_from_db()
    assert row.dead_at is None and row.attempts == 1
    assert AuditEvent.objects.get(verb="outboxmessage.send").changes["outcome"] == "stayed"


def test_retry_makes_dead_rows_waiting_and_the_relay_tries_them(admin_client_, people):
    [dead] = dead_rows(1)
    waiting = good_row()
    response = act(admin_client_, "retry", [dead, waiting], index="0")
    assert response.status_code == 302
    dead.refresh_from_db()
    assert dead.dead_at is None and "no.such.task" in dead.last_error
    event = AuditEvent.objects.get(verb="outboxmessage.retry")
    assert event.target_id == str(dead.pk) and event.actor_user == people.global_admin
    with broker():
        outbox.outbox_relay()  # the cause is not fixed: dead again, and the good row went
    dead.refresh_from_db()
    assert dead.dead_at is not None and dead.attempts == 2
    assert not OutboxMessage.objects.filter(pk=waiting.pk).exists()


def test_discard_asks_first_and_lists_what_goes(admin_client_):
    [dead] = dead_rows(1)
    waiting, keep = good_row(1), good_row(3)
    confirmation = act(admin_client_, "discard", [waiting, dead])
    assert confirmation.status_code == 200
    content = confirmation.content.decode()
    assert 'id="discard-count">2<' in content and "n=1" in content and "poison 0" in content and "n=3" not in content
    assert OutboxMessage.objects.count() == 3 and not AuditEvent.objects.filter(verb="outboxmessage.discard")

    response = act(admin_client_, "discard", [waiting, dead], post="yes")
    assert response.status_code == 302
    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [keep.pk]
    events = AuditEvent.objects.filter(verb="outboxmessage.discard")
    assert sorted(e.target_id for e in events) == sorted([str(waiting.pk), str(dead.pk)])
    assert {e.changes["state"] for e in events} == {"waiting", "dead"}


def test_the_list_costs_the_same_for_2_rows_as_for_20(admin_client_):
    def queries(count):
        poison_rows(count // 2)
        for n in range(count - count // 2):
            good_row(n)
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client_.get(reverse(CHANGELIST))
        assert response.context["cl"].result_count == OutboxMessage.objects.count()
        return len(ctx.captured_queries)

    assert queries(2) == queries(18)


# The warning on the console index -----------------------------------------------------------------


def _stale_and_dead():
    dead_rows(2)
    row = good_row()
    OutboxMessage.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(minutes=12))


def test_the_index_warns_a_global_administrator(admin_client_):
    _stale_and_dead()
    content = admin_client_.get(reverse("admin:index")).content.decode()
    assert 'id="outbox-warning"' in content
    assert "1 background task is waiting for the message broker since" in content
    assert "2 background tasks could not be sent: review them." in content
    assert f"{reverse(CHANGELIST)}?state=dead" in content


def test_the_index_is_quiet_when_the_outbox_is_healthy(admin_client_):
    good_row()  # written a moment ago: a blip, not an outage
    assert 'id="outbox-warning"' not in admin_client_.get(reverse("admin:index")).content.decode()


@pytest.mark.parametrize("persona", ["read_only", "helpdesk_a"])
def test_the_index_warns_nobody_who_may_not_open_the_page(client, people, persona):
    _stale_and_dead()
    client.force_login(getattr(people, persona))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert 'id="outbox-warning"' not in response.content.decode()
