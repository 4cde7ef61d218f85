"""Permission matrix of offboarding: the console's record pages and start page, and the API.

Personas of ``tests/test_permission_matrix.py`` plus ``offboarder_a`` (the Global administrator role
over scope A only). The people offboarded are ``employee`` (scope A) and ``other_employee`` (scope B).
Offboarding retires or wipes devices: ``retirement.run_offboarding`` is sensitive, so the read-only
operator reads records but starts none (403), the helpdesk has neither (403), scope A's administrator
offboards A's people and B's are a 404. A refused start changes nothing: the account stays active.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from retirement.choices import OffboardingSource
from retirement.models import Offboarding
from retirement.services import offboarding_run
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import admin_ids, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_api_error, assert_outcome

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "offboarder_a")
VIEWERS = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 200,
    "helpdesk_a": 403,
    "offboarder_a": 200,
}
STARTERS = VIEWERS | {"read_only": 403}
API_REFUSED = {"anonymous": 401, "employee": 403, "no_role": 403, "helpdesk_a": 403}
API_LIST = API_REFUSED | {"global_admin": {"a", "b"}, "read_only": {"a", "b"}, "offboarder_a": {"a"}}
API_READ = API_REFUSED | {"global_admin": (200, 200), "read_only": (200, 200), "offboarder_a": (200, 404)}
# Creating names the person in the body: one outside the caller's scopes is "no such person" (400).
API_START = API_REFUSED | {"global_admin": (201, 201), "read_only": (403, 403), "offboarder_a": (201, 400)}


@pytest.fixture
def world(people):
    people.offboarder_a = StaffFactory(username="offboarder-a")
    grant(people.offboarder_a, "Global administrator", [people.scope_a])
    return people


@pytest.fixture
def records(world):
    """One finished offboarding per scope (the accounts stay active so they can be offboarded again)."""
    world.offboarding_a = offboarding_run(actor=SYSTEM, user=world.employee, source=OffboardingSource.DIRECTORY)
    world.offboarding_b = offboarding_run(actor=SYSTEM, user=world.other_employee, source=OffboardingSource.DIRECTORY)
    return world


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


def pair(table, persona):
    value = table[persona]
    return value if isinstance(value, tuple) else (value, value)


@covers(*admin_ids(Offboarding))
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_offboarding_changelist_and_record(client, records, persona):
    people = records
    sign_in(client, people, persona)
    expected = VIEWERS[persona]
    changelist = client.get(reverse(admin_ids(Offboarding)[0]))
    assert_outcome(changelist, expected, f"{persona} on the changelist")
    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(people.offboarding_a) in content
        assert (admin_url(people.offboarding_b) in content) is (persona != "offboarder_a")
    assert_outcome(client.get(admin_url(people.offboarding_a)), expected, f"{persona} on scope A's record")
    expected_b = 404 if persona == "offboarder_a" else expected
    assert_outcome(client.get(admin_url(people.offboarding_b)), expected_b, f"{persona} on scope B's record")


@covers("admin:retirement_offboarding_start")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_offboarding_start_page(client, world, persona):
    people = world
    sign_in(client, people, persona)
    expected = STARTERS[persona]
    for key, person in (("a", people.employee), ("b", people.other_employee)):
        url = reverse("admin:retirement_offboarding_start", args=[person.pk])
        expected_here = 404 if persona == "offboarder_a" and key == "b" else expected
        assert_outcome(client.get(url), expected_here, f"{persona} opening the start page for {key}")
        response = client.post(url, {"confirm_username": person.username, "reason": "Left"})
        if expected_here == 200:
            assert response.status_code == 302, f"{persona} offboarding {key}"
        else:
            assert_outcome(response, expected_here, f"{persona} offboarding {key}")
        person.refresh_from_db()
        assert person.is_active is (expected_here != 200), f"{persona} offboarding {key}"
        assert Offboarding.objects.filter(user=person).exists() is (expected_here == 200)


@covers("api:offboarding-list")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_api_list_offboardings(client, records, persona):
    sign_in(client, records, persona)
    response = client.get(reverse("offboarding-list"))
    expected = API_LIST[persona]
    if isinstance(expected, int):
        assert_api_error(response, expected)
        return
    assert response.status_code == 200
    ids = {row["id"] for row in response.json()["results"]}
    assert ids == {str(getattr(records, f"offboarding_{key}").uuid) for key in expected}


@covers("api:offboarding-detail")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_api_read_an_offboarding(client, records, persona):
    sign_in(client, records, persona)
    for key, expected in zip(("a", "b"), pair(API_READ, persona), strict=True):
        offboarding = getattr(records, f"offboarding_{key}")
        response = client.get(reverse("offboarding-detail", kwargs={"id": offboarding.uuid}))
        assert response.status_code == expected, f"{persona} reading {key}"


@covers("api:offboarding-list")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_api_start_an_offboarding(client, world, persona):
    sign_in(client, world, persona)
    for person, expected in zip((world.employee, world.other_employee), pair(API_START, persona), strict=True):
        response = client.post(
            reverse("offboarding-list"), json.dumps({"user": person.username}), content_type="application/json"
        )
        assert response.status_code == expected, f"{persona} offboarding {person.username}: {response.content!r}"
        if expected in (401, 403):
            assert_api_error(response, expected)
        person.refresh_from_db()
        assert person.is_active is (expected != 201)
