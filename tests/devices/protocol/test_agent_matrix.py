"""Permission matrix of the agent protocol, and bad input on every route.

The agent routes' callers are devices, not people: no credentials, a forged secret, a person's
session or API token, a retired device, and a device reaching for another device's commands.
Every refusal is a 4xx with ``{"error": {...}}`` and writes nothing.
"""

import json

import pytest

from devices import lifecycle
from devices.models import Device, DeviceCommand
from devices.services import device_command_queue
from devices.services.enrollment import device_enroll
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM
from tests.matrix import covers

from .conftest import identity, inventory

pytestmark = pytest.mark.django_db

AUTHENTICATED_ROUTES = {
    "/agent/v1/checkin": {"inventory": {}},
    "/agent/v1/commands/results": {
        "results": [{"id": "00000000-0000-4000-8000-000000000000", "status": "acknowledged"}]
    },
    "/agent/v1/secret/rotate": {},
}


def post(client, url, body, secret=None, **extra):
    if secret is not None:
        extra["HTTP_AUTHORIZATION"] = f"Device {secret}"
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data=data, content_type=extra.pop("content_type", "application/json"), **extra)


@pytest.fixture
def enrolled(token):
    device, secret = device_enroll(identity=identity(), token=token, inventory=inventory())
    return device, secret


@pytest.fixture
def other_enrolled(token):
    return device_enroll(identity=identity(serial_number="OTHER-1", imei=""), token=token)


def state():
    return (
        Device.objects.count(),
        AuditEvent.objects.count(),
        list(DeviceCommand.objects.order_by("pk").values_list("status", flat=True)),
        list(Device.objects.order_by("pk").values_list("agent_secret_hash", flat=True)),
    )


@covers("agent:checkin", "agent:command-results", "agent:secret-rotate")
@pytest.mark.parametrize("url", sorted(AUTHENTICATED_ROUTES))
@pytest.mark.parametrize(
    "caller", ["anonymous", "forged secret", "malformed header", "person session", "person api token", "retired device"]
)
def test_authenticated_routes_refuse_everyone_but_the_device(client, people, enrolled, url, caller):
    device, secret = enrolled
    headers = {}
    if caller == "forged secret":
        headers["secret"] = secret[:-4] + "AAAA"
    elif caller == "malformed header":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    elif caller == "person session":
        client.force_login(people.global_admin)
    elif caller == "person api token":
        _, api_token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="t")
        headers["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
    elif caller == "retired device":
        lifecycle.start_retirement(device, actor=SYSTEM)
        lifecycle.finish_retirement(device, actor=SYSTEM)
        headers["secret"] = secret
    before = state()
    response = post(client, url, AUTHENTICATED_ROUTES[url], **headers)
    expected = (410, "device_retired") if caller == "retired device" else (401, "invalid_credentials")
    assert (response.status_code, response.json()["error"]["code"]) == expected
    assert response.json()["error"]["message"]
    assert state() == before


@covers("agent:checkin", "agent:command-results", "agent:secret-rotate")
@pytest.mark.parametrize("url", sorted(AUTHENTICATED_ROUTES))
def test_the_device_itself_is_served(client, enrolled, url):
    _, secret = enrolled
    assert post(client, url, AUTHENTICATED_ROUTES[url], secret=secret).status_code == 200


@covers("agent:command-results")
def test_a_device_cannot_answer_another_devices_commands(client, enrolled, other_enrolled):
    _, secret = enrolled
    other, _ = other_enrolled
    foreign = device_command_queue(actor=SYSTEM, device=other, command_type="sync")
    response = post(
        client, "/agent/v1/commands/results", {"results": [{"id": str(foreign.uuid), "status": "acknowledged"}]}, secret
    )
    assert response.json() == {"accepted": [], "unknown": [str(foreign.uuid)]}
    assert DeviceCommand.objects.get(pk=foreign.pk).status == "queued"


@covers("agent:checkin")
def test_a_device_receives_only_its_own_commands(client, enrolled, other_enrolled):
    _, secret = enrolled
    other, _ = other_enrolled
    device_command_queue(actor=SYSTEM, device=other, command_type="sync")
    assert post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret).json()["commands"] == []


@covers("agent:enroll")
@pytest.mark.parametrize("caller", ["anonymous", "person session"])
def test_enrolment_needs_a_token_or_code_whoever_calls(client, people, caller):
    if caller == "person session":
        client.force_login(people.global_admin)
    before = state()
    response = post(client, "/agent/v1/enroll", {"device": identity()})
    assert response.status_code == 400
    assert "enrollment_token" in response.json()["error"]["fields"]
    assert state() == before


TOKEN = {"enrollment_token": "x", "device": identity()}
BAD_ENROL_BODIES = [
    (b"not json", "invalid_request", "not valid JSON"),
    ("[1, 2]", "invalid_request", "must be a JSON object"),
    ({"enrollment_token": "x", "device": identity(), "colour": "red"}, "invalid_request", "colour"),
    ({"enrollment_token": "x", "device": {**identity(), "platform": "symbian"}}, "invalid_request", "device.platform"),
    ({"enrollment_token": "x", "device": {**identity(), "imei": "12ab"}}, "invalid_request", "device.imei"),
    ({"enrollment_token": "x", "enrollment_code": "y", "device": identity()}, "invalid_request", "exactly one"),
    ({**TOKEN, "inventory": {"encrypted": "yes"}}, "invalid_request", "inventory.encrypted"),
    ({**TOKEN, "inventory": {"battery_percent": 140}}, "invalid_request", "inventory.battery_percent"),
    ({**TOKEN, "inventory": {"installed_apps": [{"name": "x"}]}}, "invalid_request", "identifier"),
    ({"enrollment_token": "x", "device": "a phone"}, "invalid_request", "device"),
]  # fmt: skip


@covers("agent:enroll")
@pytest.mark.parametrize(("body", "code", "mentions"), BAD_ENROL_BODIES)
def test_bad_enrolment_requests_get_a_400_and_write_nothing(client, token, body, code, mentions):
    if isinstance(body, dict) and body.get("enrollment_token") == "x":
        body = {**body, "enrollment_token": token}
    before = state()
    response = post(client, "/agent/v1/enroll", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"]
    assert state() == before


BAD_CHECKINS = [
    ({"inventory": {"encrypted": 1}}, "inventory.encrypted"),
    ({"inventory": {"free_storage_mb": -5}}, "inventory.free_storage_mb"),
    ({"inventory": {"free_storage_mb": "12"}}, "inventory.free_storage_mb"),
    ({"inventory": {"os_version": "17", "mood": "good"}}, "inventory.mood"),
    ({"inventory": "all good"}, "inventory"),
    ({"inventry": {}}, "inventry"),
    ({"inventory": {"installed_apps": [{"identifier": "a"}] * 2001}}, "installed_apps"),
]


@covers("agent:checkin")
@pytest.mark.parametrize(("body", "mentions"), BAD_CHECKINS)
def test_bad_checkins_get_a_400_and_write_nothing(client, enrolled, body, mentions):
    device, secret = enrolled
    before = (state(), Device.objects.get(pk=device.pk).last_checkin_at)
    response = post(client, "/agent/v1/checkin", body, secret)
    assert response.status_code == 400, response.content
    assert mentions in response.json()["error"]["message"]
    assert (state(), Device.objects.get(pk=device.pk).last_checkin_at) == before


@covers("agent:command-results")
@pytest.mark.parametrize(
    "body",
    [
        {"results": []},
        {"results": [{"id": "not-a-uuid", "status": "acknowledged"}]},
        {"results": [{"id": "00000000-0000-4000-8000-000000000000", "status": "done"}]},
        {"results": [{"id": "00000000-0000-4000-8000-000000000000", "status": "error"}]},
        {"results": "all done"},
    ],
)
def test_bad_results_get_a_400(client, enrolled, body):
    _, secret = enrolled
    before = state()
    response = post(client, "/agent/v1/commands/results", body, secret)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert state() == before


@covers("agent:enroll", "agent:checkin")
def test_oversized_bodies_are_refused_before_parsing(client, enrolled):
    _, secret = enrolled
    huge = json.dumps({"inventory": {"name": "x" * (300 * 1024)}})
    response = post(client, "/agent/v1/checkin", huge, secret)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
    response = post(client, "/agent/v1/enroll", huge)
    assert response.status_code == 413


@covers("agent:checkin")
def test_wrong_method_and_content_type(client, enrolled):
    _, secret = enrolled
    response = client.get("/agent/v1/checkin", HTTP_AUTHORIZATION=f"Device {secret}")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "invalid_request"
    response = post(
        client, "/agent/v1/checkin", "inventory=1", secret, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
