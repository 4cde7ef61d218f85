"""The access gate answers with the compliance the engine computed from what the device reported."""

import json

import pytest

from devices.choices import ComplianceState, Platform
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import services as core_services
from policies.services.policies import policy_save
from tests.factories import SYSTEM, StaffFactory, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def gate_token(db):
    from django.contrib.auth.models import Permission

    account = StaffFactory(username="vpn-gate", is_staff=False)
    permission = Permission.objects.get(content_type__app_label="devices", codename="check_device_access")
    role = core_services.role_save(actor=SYSTEM, name="Access gate", permissions=[permission])
    grant(account, role.name)
    return core_services.api_token_create(actor=SYSTEM, user=account, name="vpn gate")[1]


@pytest.fixture
def token(scope_a):
    manager = StaffFactory(username="enrolment-manager")
    return enrollment_profile_create(actor=SYSTEM, name="Phones", enrollment_manager=manager, scope=scope_a)[1]


def inventory(**overrides):
    data = {"os_version": "14", "encrypted": True, "passcode_set": True, "passcode_quality": "numeric",
            "passcode_length": 6, "jailbroken": False, "installed_apps": []}  # fmt: skip
    return {**data, **overrides}


def enrol(client, token, serial, inventory_body):
    identity = {"platform": Platform.ANDROID, "name": serial, "serial_number": serial, "os_version": "14"}
    body = {"enrollment_token": token, "transport": "over_the_air", "inventory": inventory_body, "device": identity}
    response = client.post("/agent/v1/enroll", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def check_in(client, secret, inventory_body):
    response = client.post(
        "/agent/v1/checkin",
        json.dumps({"inventory": inventory_body}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {secret}",
    )
    assert response.status_code == 200, response.content


def ask(client, gate_token, device_id):
    return client.get("/access/check", HTTP_AUTHORIZATION=f"Bearer {gate_token}", HTTP_X_MDM_DEVICE_ID=device_id)


def test_a_device_that_turns_encryption_off_is_sent_to_fix_it_and_let_back_in_once_fixed(
    client, gate_token, token, scope_a
):
    policy_save(
        actor=SYSTEM,
        data={"name": "Android baseline", "platform": Platform.ANDROID, "encryption_required": True},
        assignments=[{"target": "all_devices"}],
    )
    enrolled = enrol(client, token, "R58N00000001", inventory())
    assert ask(client, gate_token, enrolled["device_id"]).json()["decision"] == "allow"

    check_in(client, enrolled["device_secret"], inventory(encrypted=False))
    refused = ask(client, gate_token, enrolled["device_id"])
    assert refused.status_code == 403
    assert refused.json()["decision"] == "remediate"
    assert refused["X-MDM-Redirect"].endswith(f"/portal/devices/{enrolled['device_id']}/")

    check_in(client, enrolled["device_secret"], inventory(encrypted=True))
    assert ask(client, gate_token, enrolled["device_id"]).status_code == 200


def test_a_device_that_reported_nothing_yet_is_not_let_through_by_default(client, gate_token, token):
    from devices.models import Device

    device, _ = device_enroll(
        identity={"platform": Platform.ANDROID, "serial_number": "R58N00000002", "name": "NEW"}, token=token
    )
    assert Device.objects.get(pk=device.pk).compliance_state == ComplianceState.NOT_EVALUATED
    refused = ask(client, gate_token, str(device.uuid))
    assert refused.status_code == 403
