"""The whole retirement over the real agent HTTP endpoints (Django test client as the device)."""

import json

import pytest

from devices.choices import LifecycleState
from devices.models import Device, DeviceInventory
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core.audit import Actor
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.services import retirement_request
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM, StaffFactory

from .conftest import clean_report, give_managed_set

pytestmark = pytest.mark.django_db
Status = RetirementStatus


@pytest.fixture
def enrolled(scope_a):
    _, token = enrollment_profile_create(
        actor=SYSTEM,
        name="Field phones",
        enrollment_manager=StaffFactory(username="manager"),
        scope=scope_a,
        capacity=5,
    )
    return device_enroll(identity=identity(), token=token, inventory=inventory())


def post(client, url, body, secret):
    return client.post(
        url, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {secret}"
    )


def test_retire_over_http_until_unenrolled(client, enrolled, admins):
    device, secret = enrolled
    app, profile_identifier = give_managed_set(device)
    request = retirement_request(
        actor=Actor.for_user(admins[0]), device=device, action=RetirementAction.RETIRE, source=RetirementSource.ADMIN
    )

    reply = post(client, "/agent/v1/checkin", {"inventory": inventory(battery_percent=50)}, secret)
    assert reply.status_code == 200
    [command] = [c for c in reply.json()["commands"] if c["type"] == "retire"]
    assert command["payload"] == {
        "request": str(request.uuid),
        "apps": [app.identifier],
        "profiles": [profile_identifier],
    }

    results = {"results": [{"id": command["id"], "status": "acknowledged", "data": clean_report()}]}
    reply = post(client, "/agent/v1/commands/results", results, secret)
    assert reply.status_code == 200 and reply.json()["accepted"] == [command["id"]]

    request.refresh_from_db()
    device.refresh_from_db()
    assert request.status == Status.UNENROLLED
    assert request.after_inventory["source"] == "command_result"
    assert device.lifecycle_state == LifecycleState.RETIRED

    # The device comes back: it is told it was retired.
    reply = post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret)
    assert reply.status_code == 410 and reply.json()["error"]["code"] == "device_retired"


def test_acknowledged_without_a_report_is_verified_at_the_next_checkin(client, enrolled, admins):
    device, secret = enrolled
    app, _ = give_managed_set(device)
    request = retirement_request(
        actor=Actor.for_user(admins[0]), device=device, action=RetirementAction.RETIRE, source=RetirementSource.ADMIN
    )
    [command] = post(client, "/agent/v1/checkin", {}, secret).json()["commands"]
    post(client, "/agent/v1/commands/results", {"results": [{"id": command["id"], "status": "acknowledged"}]}, secret)
    request.refresh_from_db()
    assert request.status == Status.ACKNOWLEDGED

    # The Outlook app is still reported: verification fails and names it.
    reported = inventory(installed_apps=[{"identifier": app.identifier, "name": "Outlook"}])
    assert post(client, "/agent/v1/checkin", {"inventory": reported}, secret).status_code == 200
    request.refresh_from_db()
    assert request.status == Status.FAILED
    assert request.after_inventory["source"] == "checkin"
    assert request.leftovers == [{"kind": "app", "identifier": app.identifier, "name": "Outlook"}]
    assert DeviceInventory.objects.get(device=device).installed_apps == reported["installed_apps"]


def test_a_deleted_record_is_retired_at_its_next_checkin(client, enrolled, admins):
    device, secret = enrolled
    request = retirement_request(
        actor=Actor.for_user(admins[0]), device=device, action=RetirementAction.DELETE, source=RetirementSource.ADMIN
    )
    assert request.command is None and request.status == Status.COMMAND_SENT
    assert post(client, "/agent/v1/checkin", {}, secret).status_code == 200
    request.refresh_from_db()
    assert request.status == Status.UNENROLLED
    assert Device.objects.get(pk=device.pk).lifecycle_state == LifecycleState.RETIRED
    assert post(client, "/agent/v1/checkin", {}, secret).status_code == 410


@pytest.mark.parametrize(
    "url, body",
    [
        ("/agent/v1/checkin", {}),
        (
            "/agent/v1/commands/results",
            {"results": [{"id": "00000000-0000-4000-8000-000000000000", "status": "acknowledged"}]},
        ),
        ("/agent/v1/secret/rotate", {}),
    ],
)
def test_a_retired_devices_secret_is_refused_everywhere(client, enrolled, admins, url, body):
    device, secret = enrolled
    request = retirement_request(
        actor=Actor.for_user(admins[0]), device=device, action=RetirementAction.RETIRE, source=RetirementSource.ADMIN
    )
    from retirement.services import retirement_force

    retirement_force(actor=Actor.for_user(admins[1]), request=request, reason="Phone lost")
    hash_before = Device.objects.get(pk=device.pk).agent_secret_hash
    reply = post(client, url, body, secret)
    assert reply.status_code == 410 and reply.json()["error"]["code"] == "device_retired"
    # Refused means no new secret either.
    assert Device.objects.get(pk=device.pk).agent_secret_hash == hash_before
