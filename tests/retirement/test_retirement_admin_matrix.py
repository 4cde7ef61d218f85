"""Permission matrix of the retirement console: every ModelAdmin page and custom admin URL against every persona.

The rules of ``tests/test_permission_matrix.py``: anonymous people and employees are sent to the admin
sign-in; staff without the permission anywhere get 403; an object outside the person's scopes is a
404 like a missing one; a view-only person's write is refused (403) and changes nothing. Personas add
``retirer_a``: the Global administrator role over scope A only, on scope A's objects (200) and scope
B's (404). The Helpdesk operator holds no ``retirement`` permission and no ``devices.wipe_device``,
``retire_device`` or ``delete_device``: 403 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.urls import reverse

from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest, RetirementSettings
from retirement.services import retirement_request
from tests.factories import StaffFactory, grant
from tests.matrix import admin_ids, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_outcome, changelist_url

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
# Asking, approving, cancelling and forcing are writes: the read-only operator is refused.
WRITERS = VIEWERS | {"read_only": 403}


@pytest.fixture
def matrix_people(people):
    people.retirer_a = StaffFactory(username="retirer-a")
    grant(people.retirer_a, "Global administrator", [people.scope_a])
    # A third administrator asks, so that everyone else may approve.
    requester = StaffFactory(username="requester")
    grant(requester, "Global administrator")
    settings = RetirementSettings.load()
    settings.require_approval = True
    settings.save()
    people.request_a, people.request_b = (
        retirement_request(
            actor=Actor.for_user(requester),
            device=device,
            action=RetirementAction.RETIRE,
            source=RetirementSource.ADMIN,
        )
        for device in (people.device_a, people.device_b)
    )
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


@covers(*admin_ids(RetirementRequest))
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_retirement_request_changelist_and_change_page(client, matrix_people, persona):
    people = matrix_people
    sign_in(client, people, persona)
    expected = VIEWERS[persona]
    changelist = client.get(changelist_url(RetirementRequest))
    assert_outcome(changelist, expected, f"{persona} on the changelist")
    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(people.request_a) in content
        assert (admin_url(people.request_b) in content) is (persona != "retirer_a")
    assert_outcome(client.get(admin_url(people.request_a)), expected, f"{persona} on scope A's request")
    expected_b = 404 if persona == "retirer_a" else expected
    assert_outcome(client.get(admin_url(people.request_b)), expected_b, f"{persona} on scope B's request")


def _request_page(p):
    return (
        reverse("admin:retirement_retirementrequest_request", args=[p.device_a.pk]),
        reverse("admin:retirement_retirementrequest_request", args=[p.device_b.pk]),
    )


def _object_page(name: str, *args: str) -> Callable[[SimpleNamespace], tuple[str, str]]:
    def urls(p):
        return tuple(
            reverse(f"admin:retirement_retirementrequest_{name}", args=[r.pk, *args])
            for r in (p.request_a, p.request_b)
        )

    return urls


@dataclass(frozen=True)
class Page:
    name: str
    urls: Callable[[SimpleNamespace], tuple[str, str]]
    outcomes: dict
    label: str = ""

    def __str__(self) -> str:
        return self.label or self.name


PAGES = (
    Page("retirement_retirementrequest_request", _request_page, WRITERS),
    Page("retirement_retirementrequest_step", _object_page("step", "approve"), WRITERS, "step approve"),
    Page("retirement_retirementrequest_step", _object_page("step", "cancel"), WRITERS, "step cancel"),
    Page("retirement_retirementrequest_step", _object_page("step", "unenroll"), WRITERS, "step unenroll"),
    Page("retirement_retirementrequest_step", _object_page("step", "force"), WRITERS, "step force"),
    Page("retirement_retirementrequest_evidence_csv", _object_page("evidence_csv"), VIEWERS),
    Page("retirement_retirementrequest_proof", _object_page("proof"), VIEWERS),
)


@covers(*{f"admin:{page.name}" for page in PAGES})
@pytest.mark.parametrize("page", PAGES, ids=str)
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_retirement_admin_custom_pages(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    sign_in(client, matrix_people, persona)
    expected = page.outcomes[persona]
    assert_outcome(client.get(url_a), expected, f"{persona} on {page} (scope A)")
    expected_b = 404 if persona == "retirer_a" else expected
    assert_outcome(client.get(url_b), expected_b, f"{persona} on {page} (scope B)")


def test_an_unknown_step_is_a_404(client, matrix_people):
    client.force_login(matrix_people.global_admin)
    url = reverse("admin:retirement_retirementrequest_step", args=[matrix_people.request_a.pk, "explode"])
    assert client.get(url).status_code == 404


# Refused writes: nothing changes. The administrator of scope A posts to scope B's objects (404).
WRITES = {
    "step approve": {},
    "step cancel": {"reason": "Refused"},
    "step force": {"reason": "Refused"},
    "retirement_retirementrequest_request": {"action": "delete", "reason": "Refused"},
}
REFUSED = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403, "read_only": 403, "helpdesk_a": 403}


def _state():
    return (
        list(RetirementRequest.objects.order_by("pk").values_list("status", "approved_by_id", "forced_reason")),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("page", [p for p in PAGES if str(p) in WRITES], ids=str)
@pytest.mark.parametrize("persona", [*REFUSED, "retirer_a"])
def test_retirement_admin_writes_refused(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    sign_in(client, matrix_people, persona)
    before = _state()
    targets = [url_b] if persona == "retirer_a" else [url_a, url_b]
    expected = 404 if persona == "retirer_a" else REFUSED[persona]
    for url in targets:
        assert_outcome(client.post(url, WRITES[str(page)]), expected, f"{persona} posting to {page}")
    assert _state() == before


def test_the_administrator_of_scope_a_approves_in_scope_a(client, matrix_people):
    client.force_login(matrix_people.retirer_a)
    url = reverse("admin:retirement_retirementrequest_step", args=[matrix_people.request_a.pk, "approve"])
    assert client.post(url).status_code == 302
    matrix_people.request_a.refresh_from_db()
    assert matrix_people.request_a.status == RetirementStatus.COMMAND_SENT


# Settings: organisation-wide, so only a global grant opens them ---------------------------------------

SETTINGS_VIEWERS = VIEWERS | {"retirer_a": 403}


@covers(*admin_ids(RetirementSettings))
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_retirement_settings_pages(client, matrix_people, persona):
    sign_in(client, matrix_people, persona)
    row = RetirementSettings.load()
    expected = SETTINGS_VIEWERS[persona]
    changelist = client.get(changelist_url(RetirementSettings))
    if expected == 200:
        assert changelist.status_code == 302 and changelist["Location"] == admin_url(row)
    else:
        assert_outcome(changelist, expected, f"{persona} on the settings changelist")
    assert_outcome(client.get(admin_url(row)), expected, f"{persona} on the settings")
    assert client.get(reverse("admin:retirement_retirementsettings_add")).status_code in (302, 403)
    posted = client.post(admin_url(row), {"offline_timeout_days": 30, "corporate_offboarding": "wipe"})
    row.refresh_from_db()
    if persona == "global_admin":
        assert posted.status_code == 302
        assert (row.offline_timeout_days, row.corporate_offboarding) == (30, "wipe")
    else:
        assert_outcome(posted, 403 if expected == 200 else expected, f"{persona} saving the settings")
        assert (row.offline_timeout_days, row.require_approval) == (14, True)
