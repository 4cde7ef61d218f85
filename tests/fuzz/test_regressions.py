"""What the API fuzzing found, each pinned by the request that showed it (see ``test_api_fuzz``)."""

from __future__ import annotations

import pytest

from apps.choices import InstallState
from apps.models import AppInstall
from apps.services import app_save, app_version_add
from devices.models import CorporateIdentifier
from mdm_portal.core import services as core_services
from tests.factories import SYSTEM, DeviceFactory
from tests.fuzz.schema import CHECKS, openapi_document, schema

pytestmark = pytest.mark.django_db


def bearer(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {core_services.api_token_create(actor=SYSTEM, user=user, name='t')[1]}"}


def call(path: str, method: str, auth: dict[str, str], **parts):
    """Send one request through the WSGI app and run the fuzzing's checks on the answer."""
    if "body" in parts:
        parts.setdefault("media_type", "application/json")
    case = schema[path][method].Case(**parts)
    return case.call_and_validate(headers=auth, checks=CHECKS)


def test_the_fuzzed_document_is_the_served_one(client, people):
    client.force_login(people.global_admin)
    served = client.get("/api/schema/?format=json")
    assert served.status_code == 200
    assert served.json() == openapi_document()


@pytest.mark.parametrize("path", ["/api/v1/devices/%C2%84/", "/api/v1/devices/a/b/", "/api/v1/no-such-thing/"])
def test_an_api_url_no_route_matches_is_a_json_404(client, people, path):
    """Was Django's HTML page: an id the URL pattern refuses never reached DRF."""
    response = client.get(path, headers={"Authorization": bearer(people.global_admin)["Authorization"]})
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_agent_url_no_route_matches_is_a_404_in_the_protocols_shape(client):
    response = client.get("/agent/v1/apps/not-a-uuid/package")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_person_still_gets_the_not_found_page(client):
    response = client.get("/portal/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_an_unknown_format_is_a_documented_404(people):
    """DRF answers ``?format=AAA`` with 404, which the operation did not document."""
    response = call("/api/v1/compliance/summary/", "GET", bearer(people.global_admin), query={"format": "AAA"})
    assert response.status_code == 404


def test_a_paginated_list_out_of_pages_is_a_documented_404(people):
    response = call("/api/v1/devices/", "GET", bearer(people.global_admin), query={"page": 99})
    assert response.status_code == 404


def test_a_validation_error_is_a_documented_400(people):
    response = call("/api/v1/corporate-identifiers/", "POST", bearer(people.global_admin), body={"scope": "nowhere"})
    assert response.status_code == 400


def test_an_install_no_assignment_asks_for_has_a_blank_intent_in_the_schema(people):
    """A device reports apps no assignment wants: their install's intent is "", which the enum refused."""
    app = app_save(
        actor=SYSTEM, data={"name": "Notes", "kind": "store", "platform": "ios", "identifier": "com.example.notes"}
    )
    AppInstall.objects.create(device=people.device_a, app=app, state=InstallState.INSTALLED)
    response = call("/api/v1/apps/{id}/installs/", "GET", bearer(people.global_admin), path_parameters={"id": app.uuid})
    assert response.json()["results"][0]["intent"] == ""


def test_a_store_apps_version_has_a_blank_package_format_in_the_schema(people):
    app = app_save(
        actor=SYSTEM, data={"name": "Notes", "kind": "store", "platform": "ios", "identifier": "com.example.notes"}
    )
    app_version_add(actor=SYSTEM, app=app, version="1.0")
    response = call("/api/v1/apps/{id}/versions/", "GET", bearer(people.global_admin), path_parameters={"id": app.uuid})
    assert response.json()["results"][0]["package_format"] == ""


def test_an_identifier_no_device_matched_yet_has_a_null_device_in_the_schema(people):
    CorporateIdentifier.objects.create(serial_number="C02XK0AAJGH5", scope=people.scope_a)
    response = call("/api/v1/corporate-identifiers/", "GET", bearer(people.global_admin))
    assert response.json()["results"][0]["device"] is None


def test_the_access_check_refusing_the_gate_itself_matches_the_schema(people):
    """A caller without ``check_device_access`` gets DRF's ``{"detail": ...}``, not a decision."""
    DeviceFactory(name="GATE-TEST", scope=people.scope_a, serial_number="GATE-1")
    response = call("/access/check", "GET", bearer(people.helpdesk_a), headers={"X-MDM-Device-Serial": "GATE-1"})
    assert response.status_code == 403
    assert "detail" in response.json()


def test_the_access_check_throttled_matches_the_schema(people, settings):
    """429 was not documented."""
    settings.MDM_ACCESS_CHECK_RATE = "1/minute"
    auth = bearer(people.global_admin)
    assert call("/access/check", "GET", auth).status_code == 401  # no device named: enrol
    assert call("/access/check", "GET", auth).status_code == 429


def test_a_nul_character_in_a_related_name_is_a_400_not_a_500(people):
    """PostgreSQL refuses NUL in a string: the lookup of ``user_group`` "\\x00" raised a 500 there."""
    body = {"name": "Protect", "platform": "ios", "assignments": [{"user_group": "a\x00b"}]}
    response = call("/api/v1/app-protection-policies/", "POST", bearer(people.global_admin), body=body)
    assert response.status_code == 400


def test_a_date_filter_far_in_the_past_with_an_odd_offset_is_not_a_500(people):
    query = {"last_checkin_after": "0114-05-09T12:40:05+17:34", "last_checkin_before": "3644-02-18T10:57:51Z"}
    response = call("/api/v1/devices/", "GET", bearer(people.global_admin), query=query)
    assert response.status_code in (200, 400)


def test_a_sign_in_with_spaces_in_the_username_is_refused_not_a_500(client):
    """Found by fuzzing: the per-username throttle put the username into the cache key as it was."""
    response = client.post(
        "/mam/v1/token",
        "grant_type=password&username=Cancel+the+request&password=Cancel+the+request",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
