"""Permission matrix of the Company Portal's self-enrolment and own-device action pages.

Only the owner reaches an enrolment code or a device in the portal: another employee and every IT
role (even a global administrator) get the same 404 as for something that does not exist. The
enrolment form itself belongs to nobody in particular: every signed-in person may enrol their own
device.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from devices.choices import CommandType, Platform
from devices.models import DeviceCommand, EnrollmentCode
from devices.services.enrollment import enrollment_code_create
from tests.factories import SYSTEM
from tests.matrix import covers
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "other_employee", "no_role", "global_admin", "read_only", "helpdesk_a")
STAFF = ("no_role", "global_admin", "read_only", "helpdesk_a")

# The employee's own code or device: the owner only.
OWNER_ONLY = {"anonymous": PORTAL_LOGIN, "employee": 200, "other_employee": 404} | {p: 404 for p in STAFF}


@pytest.fixture
def employee_code(people):
    """An iOS enrolment code of ``people.employee``: ``(EnrollmentCode, "XXXXX-XXXXX")``."""
    return enrollment_code_create(actor=SYSTEM, user=people.employee, platform=Platform.IOS, ownership="personal")


@covers("portal:enroll")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_enroll(client, people, persona):
    user = sign_in(client, people, persona)
    response = client.get(reverse("portal:enroll"))
    if user is None:
        assert_outcome(response, PORTAL_LOGIN, "anonymous on the enrolment form")
        response = client.post(reverse("portal:enroll"), {"platform": "ios", "ownership": "personal"})
        assert_outcome(response, PORTAL_LOGIN, "anonymous posting the enrolment form")
        assert not EnrollmentCode.objects.exists()
        return
    # Anyone signed in may enrol a device of their own; the code is theirs.
    assert response.status_code == 200
    nonce = response.context["form"]["nonce"].value()
    response = client.post(reverse("portal:enroll"), {"platform": "ios", "ownership": "personal", "nonce": nonce})
    assert response.status_code == 200
    assert list(EnrollmentCode.objects.values_list("user", flat=True)) == [user.pk]


@covers("portal:enroll_status")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_enroll_status(client, people, persona, employee_code):
    sign_in(client, people, persona)
    response = client.get(reverse("portal:enroll_status", kwargs={"pk": employee_code[0].pk}))
    assert_outcome(response, OWNER_ONLY[persona], f"{persona} polling the employee's enrolment code")
    if response.status_code == 200:
        assert response.json()["state"] == "waiting"
    missing = client.get(reverse("portal:enroll_status", kwargs={"pk": employee_code[0].pk + 1000}))
    assert_outcome(missing, PORTAL_LOGIN if persona == "anonymous" else 404, f"{persona} polling a missing code")


@covers("portal:enroll_profile")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_enroll_profile(client, people, persona, employee_code):
    sign_in(client, people, persona)
    response = client.post(reverse("portal:enroll_profile"), {"code": employee_code[1]})
    assert_outcome(response, OWNER_ONLY[persona], f"{persona} downloading the employee's enrolment profile")
    if response.status_code == 200:
        assert response["Content-Type"] == "application/x-apple-aspen-config"
        assert employee_code[1].encode() in response.content
    else:
        assert employee_code[1].encode() not in response.content
    # The code travels only in a POST body: the URL answers nothing else.
    if persona != "anonymous":
        assert client.get(reverse("portal:enroll_profile")).status_code == 405


@covers("portal:device_sync")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_sync(client, people, persona):
    sign_in(client, people, persona)
    for device, owner in ((people.device_a, "employee"), (people.device_b, "other_employee")):
        url = reverse("portal:device_sync", kwargs={"uuid": device.uuid})
        response = client.post(url)
        queued = DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC).count()
        if persona == "anonymous":
            assert_outcome(response, PORTAL_LOGIN, f"anonymous syncing {device.name}")
            assert queued == 0
        elif persona == owner:
            assert response.status_code == 302
            assert response["Location"] == reverse("portal:device_detail", kwargs={"uuid": device.uuid})
            assert queued == 1
        else:
            assert response.status_code == 404, f"{persona} syncing {device.name}: {response.status_code}"
            assert queued == 0


@covers("portal:device_lock")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_lock(client, people, persona):
    sign_in(client, people, persona)
    for device, owner in ((people.device_a, "employee"), (people.device_b, "other_employee")):
        url = reverse("portal:device_lock", kwargs={"uuid": device.uuid})
        page = client.get(url)
        response = client.post(url, {"message": "Please call me", "phone_number": "+44 20 7946 0000"})
        queued = DeviceCommand.objects.filter(device=device, command_type=CommandType.LOCK).count()
        if persona == "anonymous":
            assert_outcome(page, PORTAL_LOGIN, f"anonymous on the lock page of {device.name}")
            assert_outcome(response, PORTAL_LOGIN, f"anonymous locking {device.name}")
            assert queued == 0
        elif persona == owner:
            assert page.status_code == 200
            assert response.status_code == 302
            assert queued == 1
        else:
            assert page.status_code == 404, f"{persona} on the lock page of {device.name}: {page.status_code}"
            assert response.status_code == 404, f"{persona} locking {device.name}: {response.status_code}"
            assert queued == 0
