"""List pages run a constant number of queries, whatever the fleet size.

Each test measures the same page at 10 and at 500 devices with the same person and asserts the
two counts are equal (no per-row query) and below a bound (no accidental fan-out per filter).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices import services as device_services
from devices.choices import EnrollmentMethod, Ownership, Platform
from tests.factories import SYSTEM, UserFactory

pytestmark = pytest.mark.django_db

MAX_QUERIES = 20
PLATFORMS = list(Platform.values)


def add_devices(count: int, *, scopes, owners, start: int) -> None:
    """Register ``count`` devices spread over ``scopes`` and ``owners`` through the service."""
    for n in range(start, start + count):
        device_services.device_register(
            actor=SYSTEM,
            name=f"FLEET-{n:05d}",
            platform=PLATFORMS[n % len(PLATFORMS)],
            ownership=Ownership.CORPORATE if n % 3 else Ownership.PERSONAL,
            scope=scopes[n % len(scopes)],
            primary_user=owners[n % len(owners)],
            enrollment_method=EnrollmentMethod.ADMIN_BULK,
            os_version=f"{10 + n % 8}.{n % 5}",
            serial_number=f"FLEET{n:07d}",
        )


def count_queries(client, url: str) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(queries), response.content


def measure_at_10_and_500(client, url: str, *, scopes, owners):
    add_devices(10, scopes=scopes, owners=owners, start=0)
    client.get(url)  # warm per-process caches (content types, templates) before measuring
    small, small_content = count_queries(client, url)
    add_devices(490, scopes=scopes, owners=owners, start=10)
    large, large_content = count_queries(client, url)
    return small, large, small_content, large_content


@pytest.fixture
def owners(db, scope_a, scope_b):
    return [UserFactory(username=f"owner-{n}", scope=scope_a if n % 2 else scope_b) for n in range(5)]


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_admin_device_changelist_constant_queries(client, people, owners, persona):
    client.force_login(getattr(people, persona))
    url = reverse("admin:devices_device_changelist")
    small, large, _, large_content = measure_at_10_and_500(
        client, url, scopes=[people.scope_a, people.scope_b], owners=owners
    )
    assert small == large, f"{small} queries at 10 devices, {large} at 500"
    assert large <= MAX_QUERIES
    # The page really listed the fleet (and, for helpdesk, only its scope).
    assert b"FLEET-00000" in large_content
    if persona == "helpdesk_a":
        assert b"FLEET-00001" not in large_content  # odd numbers are in scope B
        assert b"AMER-PHONE-1" not in large_content
    else:
        assert b"FLEET-00001" in large_content


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_admin_device_changelist_filtered_by_group_constant_queries(client, people, owners, persona):
    group = device_services.device_group_save(
        actor=SYSTEM, name="iOS in EMEA", scope=people.scope_a, membership_type="dynamic"
    )
    device_services.device_group_rules_set(actor=SYSTEM, group=group, rules=[("platform", "ios,android")])
    client.force_login(getattr(people, persona))
    url = reverse("admin:devices_device_changelist") + f"?device_group={group.pk}"
    small, large, _, large_content = measure_at_10_and_500(
        client, url, scopes=[people.scope_a, people.scope_b], owners=owners
    )
    assert small == large, f"{small} queries at 10 devices, {large} at 500"
    assert large <= MAX_QUERIES
    assert b"FLEET-00000" in large_content  # n=0 is iOS in scope A


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_api_device_list_constant_queries(client, people, owners, persona):
    client.force_login(getattr(people, persona))
    url = reverse("device-list") + "?page_size=200"
    small, large, _, _ = measure_at_10_and_500(client, url, scopes=[people.scope_a, people.scope_b], owners=owners)
    assert small == large, f"{small} queries at 10 devices, {large} at 500"
    assert large <= MAX_QUERIES
    body = client.get(url).json()
    assert len(body["results"]) == 200
    if persona == "helpdesk_a":
        assert body["count"] == 251  # 250 fleet devices in scope A and the fixture's EMEA-PHONE-1
        assert {d["scope"] for d in body["results"]} == {"emea"}
    else:
        assert body["count"] == 502
    assert all(d["primary_user"] for d in body["results"] if d["name"].startswith("FLEET-"))


def test_api_device_list_with_token_constant_queries(client, people, owners):
    from mdm_portal.core import services as core_services

    _, plaintext = core_services.api_token_create(actor=SYSTEM, user=people.helpdesk_a, name="report")
    url = reverse("device-list") + "?page_size=100&ordering=-os_version_key"
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {plaintext}"
    small, large, _, _ = measure_at_10_and_500(client, url, scopes=[people.scope_a, people.scope_b], owners=owners)
    assert small == large, f"{small} queries at 10 devices, {large} at 500"
    assert large <= MAX_QUERIES


def test_portal_my_devices_constant_queries(client, people):
    employee = people.employee
    client.force_login(employee)
    url = reverse("portal:device_list")
    small, large, _, large_content = measure_at_10_and_500(
        client, url, scopes=[people.scope_a, people.scope_b], owners=[employee]
    )
    assert small == large, f"{small} queries at 10 devices, {large} at 500"
    assert large <= MAX_QUERIES
    assert b"FLEET-00499" in large_content
    assert b"AMER-PHONE-1" not in large_content  # another employee's device
