"""Permission matrix of bulk retire / full wipe, its progress page, the retirement report with its CSV
exports, and ``GET /api/v1/retirement/summary/``.

Personas: ``tests/test_permission_matrix.py`` plus ``retirer_a`` (the Global administrator role over
scope A only). Anonymous people and employees are sent to the admin sign-in (401 / 403 on the API);
staff without the permission anywhere (no role, the Helpdesk operator, who holds no retirement
permission and neither retire nor wipe) get 403 and no bulk action; the read-only operator reads the
progress and the report but is offered no bulk action and makes no request; scope A's retirer sees
only A's numbers, scope B's bulk request is a 404 for them, and a bulk request over B's devices
makes nothing there.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from devices.models import Device
from mdm_portal.core.audit import Actor
from retirement.choices import RetirementAction
from retirement.models import RetirementRequest
from retirement.services import retirement_request_bulk
from tests.factories import StaffFactory, grant
from tests.matrix import covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, assert_api_error, assert_outcome

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "retirer_a")
VIEWERS = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 200,
    "helpdesk_a": 403,
    "retirer_a": 200,
}
API = {
    "anonymous": 401,
    "employee": 403,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 200,
    "helpdesk_a": 403,
    "retirer_a": 200,
}


@pytest.fixture
def world(people):
    people.retirer_a = StaffFactory(username="retirer-a")
    grant(people.retirer_a, "Global administrator", [people.scope_a])
    requester = StaffFactory(username="requester")
    grant(requester, "Global administrator")
    people.batch_a, people.batch_b = (
        uuid.UUID(
            retirement_request_bulk(
                actor=Actor.for_user(requester),
                devices=Device.objects.filter(pk=device.pk),
                action=RetirementAction.RETIRE,
            )["batch"]
        )
        for device in (people.device_a, people.device_b)
    )
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


@covers("admin:retirement_bulk_progress")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_bulk_progress_page(client, world, persona):
    sign_in(client, world, persona)
    expected = VIEWERS[persona]
    url_a = reverse("admin:retirement_bulk_progress", args=[world.batch_a])
    url_b = reverse("admin:retirement_bulk_progress", args=[world.batch_b])
    assert_outcome(client.get(url_a), expected, f"{persona} on scope A's bulk request")
    assert_outcome(
        client.get(url_b), 404 if persona == "retirer_a" else expected, f"{persona} on scope B's bulk request"
    )


@covers("admin:retirement_report", "admin:retirement_report_overdue_csv", "admin:retirement_report_stale_csv")
@pytest.mark.parametrize("name", ["retirement_report", "retirement_report_overdue_csv", "retirement_report_stale_csv"])
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_report_pages(client, world, persona, name):
    sign_in(client, world, persona)
    response = client.get(reverse(f"admin:{name}"))
    assert_outcome(response, VIEWERS[persona], f"{persona} on {name}")
    if response.status_code == 200:
        content = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
        if persona == "retirer_a":
            assert "AMER-PHONE-1" not in content


@covers("api:retirement-summary")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_api_summary(client, world, persona):
    sign_in(client, world, persona)
    response = client.get(reverse("retirement-summary"))
    expected = API[persona]
    if expected != 200:
        assert_api_error(response, expected)
        return
    assert response.status_code == 200
    sent = {row["value"]: row["all_time"] for row in response.json()["by_state"]}["command_sent"]
    assert sent == (1 if persona == "retirer_a" else 2)


def test_api_summary_refuses_writes(client, world):
    client.force_login(world.global_admin)
    assert client.post(reverse("retirement-summary"), {}).status_code in (403, 405)


# The bulk actions on the device list -------------------------------------------------------------------

OFFERED = {"global_admin": True, "retirer_a": True, "read_only": False, "helpdesk_a": False}


def bulk_post(client, action: str, ids, *, select_across=False, confirm=None):
    data = {
        "action": f"retirement_{action}_selected",
        "select_across": "1" if select_across else "0",
        ACTION_CHECKBOX_NAME: [str(pk) for pk in ids],
    }
    data |= {"post": "yes", **confirm} if confirm is not None else {"index": "0"}
    return client.post(reverse("admin:devices_device_changelist"), data)


@pytest.mark.parametrize("action", [RetirementAction.RETIRE, RetirementAction.WIPE])
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_bulk_actions_offered_and_refused(client, people, persona, action):
    people.retirer_a = StaffFactory(username="retirer-a")
    grant(people.retirer_a, "Global administrator", [people.scope_a])
    sign_in(client, people, persona)
    listing = client.get(reverse("admin:devices_device_changelist"))
    if persona in ("anonymous", "employee"):
        assert_outcome(listing, ADMIN_LOGIN, persona)
        assert_outcome(bulk_post(client, action, [people.device_a.pk]), ADMIN_LOGIN, persona)
        return
    if persona == "no_role":
        assert listing.status_code == 403
        assert bulk_post(client, action, [people.device_a.pk]).status_code == 403
        return
    offered = f"retirement_{action}_selected" in listing.content.decode()
    assert offered is OFFERED[persona], persona
    confirm = {"reason": "matrix", "confirm": "wipe 1 device" if persona == "retirer_a" else "wipe 2 devices"}
    response = bulk_post(client, action, [people.device_a.pk, people.device_b.pk], confirm=confirm)
    made = set(RetirementRequest.objects.values_list("device_id", flat=True))
    if not OFFERED[persona]:
        # Django answers an action it does not offer with the list again (no preview, nothing made).
        assert response.status_code in (200, 302)
        assert not made
    elif persona == "retirer_a":
        # Scope B's device is not in their list, so not in their selection: nothing happens there.
        assert response.status_code == 302
        assert made == {people.device_a.pk}
    else:
        assert response.status_code == 302
        assert made == {people.device_a.pk, people.device_b.pk}


def test_select_across_of_a_scoped_retirer_stays_in_scope(client, people):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [people.scope_a])
    client.force_login(retirer)
    response = bulk_post(client, "retire", [people.device_b.pk], select_across=True, confirm={"reason": "x"})
    assert response.status_code == 302
    assert set(RetirementRequest.objects.values_list("device_id", flat=True)) == {people.device_a.pk}
