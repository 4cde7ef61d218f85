"""A NUL character in an address is a clear 400 in each protocol's shape, never a 500 (PostgreSQL refuses NUL)."""

import pytest

from mdm_portal.core import services as core_services
from tests.factories import SYSTEM, StaffFactory, UserFactory, grant

pytestmark = pytest.mark.django_db


def test_api_search_and_filters_with_a_nul_are_a_400_with_a_sentence(client):
    admin = StaffFactory()
    grant(admin, "Global administrator")
    _, token = core_services.api_token_create(actor=SYSTEM, user=admin, name="fuzz")
    for query in ("search=%00", "name=a%00b", "last_checkin_after=%00", "%00=1"):
        response = client.get(f"/api/v1/devices/?{query}", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 400, query
        assert "NUL character" in response.json()["detail"]
    assert client.get("/api/v1/devices/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200


def test_agent_and_pages_answer_in_their_own_shape(client):
    agent = client.post("/agent/v1/checkin?x=%00", {}, content_type="application/json")
    assert agent.status_code == 400 and agent.json()["error"]["code"] == "invalid"
    client.force_login(UserFactory())
    page = client.get("/portal/devices/%00/")
    assert page.status_code == 400 and "NUL character" in page.content.decode()
    assert client.get("/portal/devices/").status_code == 200


def test_a_nul_inside_a_looked_up_name_in_a_body_is_a_field_error():
    from django.test import Client

    from devices.models import CorporateIdentifier
    from tests.factories import ScopeFactory

    admin = StaffFactory()
    grant(admin, "Global administrator")
    scope = ScopeFactory(slug="emea")
    _, token = core_services.api_token_create(actor=SYSTEM, user=admin, name="nul")
    body = {"serial_number": "SN12345", "scope": "em\x00ea", "device_group": "Lab\x00"}

    response = Client().post(
        "/api/v1/corporate-identifiers/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )

    assert response.status_code == 400, response.content
    errors = response.json()
    assert errors["scope"] == ["Null characters are not allowed."]
    assert errors["device_group"] == ["Null characters are not allowed."]
    assert not CorporateIdentifier.objects.exists() and scope.slug == "emea"
