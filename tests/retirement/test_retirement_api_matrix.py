"""Permission matrix of the retirement API (personas: ``tests/test_permission_matrix.py``, plus ``retirer_a``,
a custom role over scope A with the device retire and wipe permissions and every retirement permission).

What the tables encode: anonymous callers get 401; people without the permission anywhere get 403
(the employee, staff without a role, and the helpdesk, whose role has no retire, no wipe and no
retirement records); the read-only operator reads every record and acts on none (403); a global
administrator acts everywhere; scope A's retirer acts on A, and B's devices and records are a 404.
A refused write changes nothing.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest, RetirementSettings
from retirement.services import retirement_request
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import covers
from tests.test_permission_matrix import PERSONAS, assert_api_error, sign_in

pytestmark = pytest.mark.django_db

ALL = (*PERSONAS, "retirer_a")
REFUSED = {"anonymous": 401, "employee": 403, "no_role": 403, "helpdesk_a": 403}
# (device_a or its record, device_b or its record)
READ = REFUSED | {"global_admin": (200, 200), "read_only": (200, 200), "retirer_a": (200, 404)}
ACT = REFUSED | {"global_admin": (200, 200), "read_only": (403, 403), "retirer_a": (200, 404)}
ASK = REFUSED | {"global_admin": (202, 202), "read_only": (403, 403), "retirer_a": (202, 404)}
LIST = REFUSED | {"global_admin": {"a", "b"}, "read_only": {"a", "b"}, "retirer_a": {"a"}}
RETIRER_PERMISSIONS = (
    "devices.view_device",
    "devices.retire_device",
    "devices.wipe_device",
    "retirement.view_retirementrequest",
    "retirement.approve_retirementrequest",
    "retirement.force_retirementrequest",
)


def pair(table, persona):
    value = table[persona]
    return value if isinstance(value, tuple) else (value, value)


@pytest.fixture
def world(people):
    retirer = StaffFactory(username="retirer-a")
    permissions = [
        Permission.objects.get(content_type__app_label=label, codename=codename)
        for label, codename in (p.split(".") for p in RETIRER_PERMISSIONS)
    ]
    core_services.role_save(actor=SYSTEM, name="Retirer", permissions=permissions)
    grant(retirer, "Retirer", [people.scope_a])
    people.retirer_a = retirer
    people.requester = StaffFactory(username="requester")
    grant(people.requester, "Global administrator")
    return people


def open_requests(people, status=RetirementStatus.COMMAND_SENT):
    """A retire request for each device, asked by another administrator."""
    settings = RetirementSettings.load()
    settings.require_approval = status == RetirementStatus.AWAITING_APPROVAL
    settings.save()
    requests = {}
    for key in ("a", "b"):
        requests[key] = retirement_request(
            actor=Actor.for_user(people.requester),
            device=getattr(people, f"device_{key}"),
            action=RetirementAction.RETIRE,
            source=RetirementSource.API,
        )
    if status == RetirementStatus.VERIFIED:
        # The device's clean report is exercised in test_retirement_api; here only the state matters.
        RetirementRequest.objects.filter(pk__in=[r.pk for r in requests.values()]).update(status=status)
    return requests


def call(client, method, url, body=None):
    if method == "get":
        return client.get(url)
    return client.post(url, json.dumps(body or {}), content_type="application/json")


def check(response, expected, what):
    assert response.status_code == expected, f"{what}: expected {expected}, got {response.status_code}"
    if expected in (401, 403):
        assert_api_error(response, expected)


@covers("api:device-retirement-retire", "api:device-retirement-wipe")
@pytest.mark.parametrize("what", ["retire", "wipe"])
@pytest.mark.parametrize("persona", ALL)
def test_retire_and_wipe_a_device(client, world, persona, what):
    sign_in(client, world, persona)
    for key, expected in zip(("a", "b"), pair(ASK, persona), strict=True):
        device = getattr(world, f"device_{key}")
        url = reverse(f"device-retirement-{what}", kwargs={"id": device.uuid})
        response = call(client, "post", url, {"confirm_name": device.name})
        check(response, expected, f"{persona} asking to {what} device_{key}")
        assert RetirementRequest.objects.filter(device=device).exists() is (expected == 202)


@covers("api:retirement-request-list")
@pytest.mark.parametrize("persona", ALL)
def test_list_retirement_requests(client, world, persona):
    requests = open_requests(world)
    sign_in(client, world, persona)
    response = client.get(reverse("retirement-request-list"))
    expected = LIST[persona]
    if isinstance(expected, int):
        check(response, expected, f"{persona} listing")
        return
    assert response.status_code == 200
    assert {row["id"] for row in response.json()["results"]} == {str(requests[key].uuid) for key in expected}


@covers("api:retirement-request-detail", "api:retirement-request-evidence")
@pytest.mark.parametrize("what", ["detail", "evidence"])
@pytest.mark.parametrize("persona", ALL)
def test_read_a_retirement_request(client, world, persona, what):
    requests = open_requests(world)
    sign_in(client, world, persona)
    for key, expected in zip(("a", "b"), pair(READ, persona), strict=True):
        for params in ("", "?format=csv") if what == "evidence" else ("",):
            url = reverse(f"retirement-request-{what}", kwargs={"id": requests[key].uuid}) + params
            response = client.get(url)
            assert response.status_code == expected, f"{persona} on the {what}{params} of {key}"
            if expected != 200:
                assert response["Content-Type"].startswith("application/json")


ACTIONS = {
    "approve": (RetirementStatus.AWAITING_APPROVAL, {}, RetirementStatus.COMMAND_SENT),
    "cancel": (RetirementStatus.COMMAND_SENT, {"reason": "Wrong device"}, RetirementStatus.CANCELLED),
    "force": (RetirementStatus.COMMAND_SENT, {"reason": "Lost"}, RetirementStatus.FORCED),
    "unenroll": (RetirementStatus.VERIFIED, {}, RetirementStatus.UNENROLLED),
}


@covers(
    "api:retirement-request-approve",
    "api:retirement-request-cancel",
    "api:retirement-request-force",
    "api:retirement-request-unenroll",
)
@pytest.mark.parametrize("what", list(ACTIONS))
@pytest.mark.parametrize("persona", ALL)
def test_act_on_a_retirement_request(client, world, persona, what):
    before, body, after = ACTIONS[what]
    requests = open_requests(world, before)
    sign_in(client, world, persona)
    for key, expected in zip(("a", "b"), pair(ACT, persona), strict=True):
        url = reverse(f"retirement-request-{what}", kwargs={"id": requests[key].uuid})
        response = call(client, "post", url, body)
        check(response, expected, f"{persona} on {what} of {key}")
        requests[key].refresh_from_db()
        assert requests[key].status == (after if expected == 200 else before), f"{persona} on {what} of {key}"
