"""Permission matrix of the Company Portal's compliance pages: the device's owner only.

Another employee and every IT role (a global administrator who is not the owner included) get the
404 of a device that does not exist; IT reads compliance in the admin. Anonymous visitors are sent
to the portal's sign-in page. "Check again" queues a sync for the owner and for nobody else.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from devices.choices import CommandType
from devices.models import DeviceCommand
from tests.matrix import covers
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "other_employee", "no_role", "global_admin", "read_only", "helpdesk_a")
STAFF = ("no_role", "global_admin", "read_only", "helpdesk_a")
# device_a is the employee's, device_b the other employee's.
OWNERS = {"device_a": "employee", "device_b": "other_employee"}


def expected(persona: str, device: str):
    if persona == "anonymous":
        return PORTAL_LOGIN
    return "owner" if OWNERS[device] == persona else 404


@covers("portal:device_compliance")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_compliance(client, people, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        response = client.get(reverse("portal:device_compliance", kwargs={"uuid": device.uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200, f"{persona} on the compliance page of their {name}"
            assert response.context["device"] == device
        else:
            assert_outcome(response, outcome, f"{persona} on the compliance page of {name}")


@covers("portal:device_compliance_check")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_compliance_check(client, people, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        url = reverse("portal:device_compliance_check", kwargs={"uuid": device.uuid})
        response = client.post(url)
        queued = DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC).count()
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 302
            assert response["Location"] == reverse("portal:device_compliance", kwargs={"uuid": device.uuid})
            assert queued == 1
        else:
            assert_outcome(response, outcome, f"{persona} checking {name} again")
            assert queued == 0
        if persona != "anonymous":
            assert client.get(url).status_code == 405  # POST only, for everyone


@covers("portal:device_compliance_status")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_compliance_status(client, people, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        response = client.get(reverse("portal:device_compliance_status", kwargs={"uuid": device.uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200
            assert response.json()["checking"] is False
        else:
            assert_outcome(response, outcome, f"{persona} polling {name}")
