"""Permission matrix of the task outbox page (``core.admin_outbox``): its list, a message, its actions.

The outbox is global operational data: its permissions are sensitive (``core.roles``) and not
scoped, so only the Global administrator role over all scopes opens it. The Read-only operator
(``*.view_*`` does not reach a sensitive permission), the Helpdesk operator and ``admin_a`` (the
Global administrator role over scope A only) are refused with 403 like staff without a role, and a
refused action changes nothing. Nobody adds, edits or deletes a message through Django's own pages.
"""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from mdm_portal.core.models import AuditEvent, OutboxMessage
from tests.factories import StaffFactory, grant
from tests.matrix import admin_ids, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, assert_outcome, changelist_url

from .outbox_support import broker, good_row

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "admin_a")
VIEWERS = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 403,
    "helpdesk_a": 403,
    "admin_a": 403,
}
REFUSED = [p for p in MATRIX_PERSONAS if VIEWERS[p] != 200]


@pytest.fixture
def matrix_people(people):
    people.admin_a = StaffFactory(username="admin-a")
    grant(people.admin_a, "Global administrator", [people.scope_a])
    people.message = good_row()
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


@covers(*admin_ids(OutboxMessage))
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_outbox_changelist_and_change_page(client, matrix_people, persona):
    people = matrix_people
    sign_in(client, people, persona)
    expected = VIEWERS[persona]
    changelist = client.get(changelist_url(OutboxMessage))
    assert_outcome(changelist, expected, f"{persona} on the outbox")
    change = reverse("admin:core_outboxmessage_change", args=[people.message.pk])
    if expected == 200:
        assert change in changelist.content.decode()
    assert_outcome(client.get(change), expected, f"{persona} on a message")
    missing = reverse("admin:core_outboxmessage_change", args=[999999])
    assert_outcome(client.get(missing), 404 if expected == 200 else expected, f"{persona} on a missing message")
    refused = 403 if expected == 200 else expected  # view-only for everyone
    add = client.get(reverse("admin:core_outboxmessage_add"))
    assert_outcome(add, refused, f"{persona} on the add page")
    delete = client.get(reverse("admin:core_outboxmessage_delete", args=[people.message.pk]))
    assert_outcome(delete, refused, f"{persona} on the delete page")


def _state():
    return (
        list(OutboxMessage.objects.order_by("pk").values_list("pk", "task", "payload", "dead_at", "attempts")),
        AuditEvent.objects.filter(verb__startswith="outboxmessage.").count(),
    )


@pytest.mark.parametrize("persona", REFUSED)
def test_refused_actions_change_nothing(client, matrix_people, persona):
    people = matrix_people
    OutboxMessage.objects.filter(pk=people.message.pk).update(dead_at=people.message.created_at)
    sign_in(client, people, persona)
    before = _state()
    selected = {helpers.ACTION_CHECKBOX_NAME: [people.message.pk]}
    with broker():
        for action, extra in (("send_now", {"index": "0"}), ("retry", {"index": "0"}), ("discard", {"post": "yes"})):
            response = client.post(changelist_url(OutboxMessage), {"action": action, **selected, **extra})
            assert_outcome(response, VIEWERS[persona], f"{persona} running {action}")
        change = reverse("admin:core_outboxmessage_change", args=[people.message.pk])
        assert_outcome(client.post(change, {"task": "x", "payload": "{}"}), VIEWERS[persona], f"{persona} editing")
        delete = reverse("admin:core_outboxmessage_delete", args=[people.message.pk])
        assert_outcome(client.post(delete, {"post": "yes"}), VIEWERS[persona], f"{persona} deleting")
    assert _state() == before


def test_the_global_administrator_may_run_every_action(client, matrix_people):
    client.force_login(matrix_people.global_admin)
    response = client.get(changelist_url(OutboxMessage))
    assert set(response.context["cl"].model_admin.get_actions(response.wsgi_request)) == {
        "send_now",
        "retry",
        "discard",
    }
