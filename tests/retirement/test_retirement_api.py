"""The retirement API: retire and wipe a device, the records, their actions and the evidence export."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.urls import reverse

from devices.choices import CommandType, LifecycleState, Ownership
from devices.models import Device, DeviceCommand
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import services as core_services
from retirement.choices import RetirementStatus
from retirement.models import RetirementRequest
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM, DeviceFactory, StaffFactory

from .conftest import clean_report, give_managed_set

pytestmark = pytest.mark.django_db
Status = RetirementStatus


class Api:
    """A client that sends a bearer token and JSON."""

    def __init__(self, client, token: str):
        self.client, self.auth = client, {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, url, params=None, **extra):
        return self.client.get(url, params or {}, **self.auth, **extra)

    def post(self, url, body=None):
        return self.client.post(url, json.dumps(body or {}), content_type="application/json", **self.auth)


def token_for(user) -> str:
    return core_services.api_token_create(actor=SYSTEM, user=user, name=f"{user.username} automation")[1]


@pytest.fixture
def api(client, admins):
    return Api(client, token_for(admins[0]))


@pytest.fixture
def second_api(admins):
    from django.test import Client

    return Api(Client(), token_for(admins[1]))


def retire_url(device, what="retire"):
    return reverse(f"device-retirement-{what}", kwargs={"id": device.uuid})


def request_url(request, what="detail"):
    return reverse(f"retirement-request-{what}", kwargs={"id": request.uuid if hasattr(request, "uuid") else request})


def sentence(response) -> str:
    detail = response.json()["detail"]
    return " ".join(detail) if isinstance(detail, list) else detail


@pytest.fixture
def enrolled(scope_a):
    """A real enrolled device with its agent secret."""
    _, token = enrollment_profile_create(
        actor=SYSTEM,
        name="Field phones",
        enrollment_manager=StaffFactory(username="manager"),
        scope=scope_a,
        capacity=5,
    )
    return device_enroll(identity=identity(), token=token, inventory=inventory())


def agent_post(client, url, body, secret):
    return client.post(
        url, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {secret}"
    )


def test_retire_a_device(api, people):
    response = api.post(retire_url(people.device_a), {"reason": "Leaving the company"})
    assert response.status_code == 202, response.content
    body = response.json()
    request = RetirementRequest.objects.get(device=people.device_a)
    assert body["id"] == str(request.uuid) and body["device"] == str(people.device_a.uuid)
    assert (body["action"], body["source"], body["status"], body["reason"]) == (
        "retire",
        "api",
        Status.COMMAND_SENT,
        "Leaving the company",
    )
    assert body["scope"] == people.scope_a.slug and body["requested_by"]
    assert DeviceCommand.objects.filter(device=people.device_a, command_type=CommandType.RETIRE).exists()
    assert Device.objects.get(pk=people.device_a.pk).lifecycle_state == LifecycleState.RETIRING


def test_retire_refusals_are_sentences(api, people):
    response = api.post(retire_url(people.device_a), {"keep_enrollment": True})
    assert response.status_code == 400 and "option of a full wipe only" in sentence(response)

    assert api.post(retire_url(people.device_a)).status_code == 202
    response = api.post(retire_url(people.device_a))
    assert response.status_code == 400 and "already has an open request" in sentence(response)
    response = api.post(retire_url(people.device_a, "wipe"), {"confirm_name": people.device_a.name})
    assert response.status_code == 400 and "Finish or cancel it first" in sentence(response)

    nowhere = reverse("device-retirement-retire", kwargs={"id": "00000000-0000-4000-8000-000000000000"})
    assert api.post(nowhere).status_code == 404
    response = api.client.post(retire_url(people.device_b), "{not json", content_type="application/json", **api.auth)
    assert response.status_code == 400
    response = api.post(retire_url(people.device_b), {"reason": "x" * 2001})
    assert response.status_code == 400 and "reason" in response.json()
    assert not RetirementRequest.objects.filter(device=people.device_b).exists()


def test_wipe_needs_the_device_name(api, people):
    url = retire_url(people.device_a, "wipe")
    response = api.post(url, {})
    assert response.status_code == 400 and "confirm_name" in response.json()
    response = api.post(url, {"confirm_name": people.device_a.name.lower()})
    assert response.status_code == 400
    assert f"exactly ({people.device_a.name})" in response.json()["confirm_name"][0]
    assert not RetirementRequest.objects.exists()

    response = api.post(url, {"confirm_name": people.device_a.name, "keep_enrollment": True, "reason": "Repurpose"})
    assert response.status_code == 202
    assert (response.json()["action"], response.json()["keep_enrollment"]) == ("wipe", True)
    command = DeviceCommand.objects.get(device=people.device_a, command_type=CommandType.WIPE)
    assert command.payload["keep_enrollment"] is True


def test_a_personal_device_refuses_a_full_wipe_unless_allowed(api, people, retirement_settings):
    device = DeviceFactory(name="BYOD-1", scope=people.scope_a, ownership=Ownership.PERSONAL)
    response = api.post(retire_url(device, "wipe"), {"confirm_name": device.name})
    assert response.status_code == 400 and "personal" in sentence(response).lower()
    retirement_settings.allow_personal_full_wipe = True
    retirement_settings.save()
    assert api.post(retire_url(device, "wipe"), {"confirm_name": device.name}).status_code == 202


def test_list_filter_and_retrieve(api, people):
    api.post(retire_url(people.device_a))
    api.post(retire_url(people.device_b, "wipe"), {"confirm_name": people.device_b.name})
    listed = api.get(reverse("retirement-request-list")).json()
    assert listed["count"] == 2
    assert [row["device_name"] for row in listed["results"]] == [people.device_b.name, people.device_a.name]
    only = api.get(reverse("retirement-request-list"), {"action": "wipe"}).json()["results"]
    assert [row["device_name"] for row in only] == [people.device_b.name]
    assert api.get(reverse("retirement-request-list"), {"source": "portal"}).json()["count"] == 0
    assert api.get(reverse("retirement-request-list"), {"status": "command_sent"}).json()["count"] == 2
    assert api.get(reverse("retirement-request-list"), {"device": str(people.device_a.uuid)}).json()["count"] == 1
    response = api.get(reverse("retirement-request-list"), {"status": "nonsense"})
    assert response.status_code == 400

    request = RetirementRequest.objects.get(device=people.device_a)
    detail = api.get(request_url(request))
    assert detail.status_code == 200 and detail.json()["id"] == str(request.uuid)
    assert api.get(request_url("00000000-0000-4000-8000-000000000000")).status_code == 404


def test_second_person_approval(api, second_api, people, retirement_settings):
    retirement_settings.require_approval = True
    retirement_settings.save()
    body = api.post(retire_url(people.device_a)).json()
    assert body["status"] == Status.AWAITING_APPROVAL
    assert not DeviceCommand.objects.filter(device=people.device_a, command_type=CommandType.RETIRE).exists()

    response = api.post(request_url(body["id"], "approve"))
    assert response.status_code == 403 and "a different administrator must approve it" in sentence(response)

    response = second_api.post(request_url(body["id"], "approve"))
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["approved_by"]) == (Status.COMMAND_SENT, "admin-two")
    assert DeviceCommand.objects.filter(device=people.device_a, command_type=CommandType.RETIRE).exists()

    response = second_api.post(request_url(body["id"], "approve"))
    assert response.status_code == 400 and "only a waiting request can be approved" in sentence(response)


def test_cancel(api, people):
    body = api.post(retire_url(people.device_a)).json()
    response = api.post(request_url(body["id"], "cancel"), {"reason": "Wrong device"})
    assert response.status_code == 200 and response.json()["status"] == Status.CANCELLED
    assert Device.objects.get(pk=people.device_a.pk).lifecycle_state == LifecycleState.ENROLLED
    response = api.post(request_url(body["id"], "cancel"))
    assert response.status_code == 400 and "can no longer be cancelled" in sentence(response)


def test_force(api, people):
    body = api.post(retire_url(people.device_a)).json()
    response = api.post(request_url(body["id"], "force"), {})
    assert response.status_code == 400 and "reason" in response.json()
    response = api.post(request_url(body["id"], "force"), {"reason": "   "})
    assert response.status_code == 400
    response = api.post(request_url(body["id"], "force"), {"reason": "Phone lost in a lake"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["forced_by"], response.json()["forced_reason"]) == (
        Status.FORCED,
        "admin-one",
        "Phone lost in a lake",
    )
    assert Device.objects.get(pk=people.device_a.pk).lifecycle_state == LifecycleState.RETIRED
    response = api.post(request_url(body["id"], "force"), {"reason": "Again"})
    assert response.status_code == 400 and "only a sent, acknowledged or timed-out request" in sentence(response)
    evidence = api.get(request_url(body["id"], "evidence")).json()
    assert evidence["verified"] is False


def test_unenroll_and_evidence_after_the_device_reports(client, api, enrolled, retirement_settings):
    retirement_settings.auto_unenroll = False
    retirement_settings.save()
    device, secret = enrolled
    app, profile_identifier = give_managed_set(device)
    body = api.post(retire_url(device), {"reason": "Returned"}).json()
    response = api.post(request_url(body["id"], "unenroll"))
    assert response.status_code == 400 and "only a verified device can be unenrolled" in sentence(response)

    reply = agent_post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret)
    [command] = [c for c in reply.json()["commands"] if c["type"] == "retire"]
    results = {"results": [{"id": command["id"], "status": "acknowledged", "data": clean_report()}]}
    agent_post(client, "/agent/v1/commands/results", results, secret)
    assert api.get(request_url(body["id"])).json()["status"] == Status.VERIFIED

    response = api.post(request_url(body["id"], "unenroll"))
    assert response.status_code == 200 and response.json()["status"] == Status.UNENROLLED
    assert Device.objects.get(pk=device.pk).lifecycle_state == LifecycleState.RETIRED

    evidence = api.get(request_url(body["id"], "evidence"))
    assert evidence.status_code == 200
    data = evidence.json()
    assert data["verified"] is True and data["leftovers"] == []
    assert [a["identifier"] for a in data["before_inventory"]["managed_apps"]] == [app.identifier]
    assert data["after_inventory"]["installed_apps"] == clean_report()["installed_apps"]

    exported = api.get(request_url(body["id"], "evidence"), {"format": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert f"retirement-evidence-{body['id']}" in exported["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0] == ["section", "kind", "identifier", "name", "detail"]
    assert ["record", "status", "", "", "Unenrolled (verified)"] in rows
    assert ["before", "managed app", app.identifier, "Outlook", "installed"] in rows
    assert any(row[:3] == ["before", "managed profile", profile_identifier] for row in rows)
    assert ["after", "installed app", "com.spotify.client", "Spotify", ""] in rows
    assert not [row for row in rows if row[0] == "leftover"]

    # A refusal asked as CSV is still JSON.
    missing = api.get(request_url("00000000-0000-4000-8000-000000000000", "evidence"), {"format": "csv"})
    assert missing.status_code == 404 and missing["Content-Type"].startswith("application/json")


def test_failed_evidence_names_the_leftovers(client, api, enrolled):
    device, secret = enrolled
    app, _ = give_managed_set(device)
    body = api.post(retire_url(device)).json()
    [command] = agent_post(client, "/agent/v1/checkin", {}, secret).json()["commands"]
    report = {**clean_report(), "installed_apps": [{"identifier": app.identifier, "name": "Outlook"}]}
    agent_post(
        client,
        "/agent/v1/commands/results",
        {"results": [{"id": command["id"], "status": "acknowledged", "data": report}]},
        secret,
    )
    data = api.get(request_url(body["id"], "evidence")).json()
    assert data["status"] == Status.FAILED and data["verified"] is False
    assert data["leftovers"] == [{"kind": "app", "identifier": app.identifier, "name": "Outlook"}]
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(api.get(request_url(body["id"], "evidence"), {"format": "csv"}).streaming_content).decode()
            )
        )
    )
    assert ["leftover", "app", app.identifier, "Outlook", ""] in rows


def test_the_list_reads_in_constant_queries(api, people, django_assert_max_num_queries):
    for n in range(6):
        device = DeviceFactory(name=f"EMEA-SPARE-{n}", scope=people.scope_a)
        assert api.post(retire_url(device)).status_code == 202
    with django_assert_max_num_queries(8):
        response = api.get(reverse("retirement-request-list"))
    assert response.status_code == 200 and response.json()["count"] == 6
