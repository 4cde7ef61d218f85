"""Enrolment refusals and self-service codes: a sentence that says what to do, and nothing written."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from devices.choices import EnrollmentMethod, LifecycleState, Ownership
from devices.models import Device, EnrollmentCode, EnrollmentProfile, EnrollmentRestriction
from devices.services import device_register
from devices.services.enrollment import enrollment_code_create, enrollment_profile_create, enrollment_profile_revoke
from devices.services.restrictions import enrollment_restriction_default
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, UserFactory

from .conftest import identity, inventory

pytestmark = pytest.mark.django_db


def enrol(client: Client, **body):
    response = client.post("/agent/v1/enroll", data=json.dumps(body), content_type="application/json")
    return response, response.json()


def counts():
    return Device.objects.count(), AuditEvent.objects.count()


def assert_refused(client, code, message_part, **body):
    before = counts()
    response, data = enrol(client, **body)
    assert response.status_code in (400, 403), data
    assert data["error"]["code"] == code
    assert message_part in data["error"]["message"]
    assert counts() == before
    return data


def test_unknown_token(client, token):
    assert_refused(
        client, "invalid_enrollment_token", "not valid", enrollment_token=token[:-3] + "xyz", device=identity()
    )


def test_revoked_token(client, profile_and_token):
    profile, token = profile_and_token
    enrollment_profile_revoke(actor=SYSTEM, profile=profile)
    assert_refused(client, "invalid_enrollment_token", "revoked", enrollment_token=token, device=identity())


def test_expired_token(client, profile_and_token):
    profile, token = profile_and_token
    EnrollmentProfile.objects.filter(pk=profile.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert_refused(client, "invalid_enrollment_token", "expired", enrollment_token=token, device=identity())


def test_token_capacity_is_never_exceeded(client, scope_a, enrollment_manager):
    profile, token = enrollment_profile_create(
        actor=SYSTEM, name="One", enrollment_manager=enrollment_manager, scope=scope_a, capacity=1
    )
    response, _ = enrol(client, enrollment_token=token, device=identity())
    assert response.status_code == 201
    assert_refused(
        client, "invalid_enrollment_token", "used for all 1 devices",
        enrollment_token=token, device=identity(serial_number="OTHER", imei=""),
    )  # fmt: skip
    profile.refresh_from_db()
    assert profile.use_count == 1


def test_token_limited_to_platforms(client, scope_a, enrollment_manager):
    _, token = enrollment_profile_create(
        actor=SYSTEM, name="iPads", enrollment_manager=enrollment_manager, scope=scope_a, platforms=["ipados"]
    )
    data = assert_refused(
        client, "enrollment_refused", "iPadOS devices only", enrollment_token=token, device=identity()
    )
    assert "device.platform" in data["error"]["fields"]


def test_already_enrolled_serial_is_refused(client, token, scope_a):
    DeviceFactory(scope=scope_a, serial_number="R58N12345AB", imei="")
    assert_refused(client, "enrollment_refused", "already enrolled", enrollment_token=token, device=identity())


def test_pre_registered_device_is_claimed_as_corporate(client, scope_b, people):
    pending = device_register(
        actor=SYSTEM, name="Pre-registered", platform="android", ownership=Ownership.CORPORATE, scope=scope_b,
        enrollment_method=EnrollmentMethod.CORPORATE_IDENTIFIER, serial_number="R58N12345AB",
    )  # fmt: skip
    _code_obj, code = enrollment_code_create(
        actor=SYSTEM, user=people.employee, platform="android", ownership=Ownership.PERSONAL
    )
    response, data = enrol(client, enrollment_code=code, device=identity(imei=""))
    assert response.status_code == 201, data
    pending.refresh_from_db()
    assert str(pending.uuid) == data["device_id"]
    assert pending.lifecycle_state == LifecycleState.ENROLLED
    assert pending.ownership == Ownership.CORPORATE
    assert pending.scope == scope_b  # IT's placement stands
    assert pending.primary_user == people.employee


def test_self_enrolment_code_is_single_use(client, people):
    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership=Ownership.PERSONAL)
    response, data = enrol(client, enrollment_code=code.lower(), device=identity(platform="ios", imei=""))
    assert response.status_code == 201
    device = Device.objects.get(uuid=data["device_id"])
    assert (device.primary_user, device.ownership, device.scope) == (
        people.employee, Ownership.PERSONAL, people.employee.scope,
    )  # fmt: skip
    assert device.enrollment_method == EnrollmentMethod.USER_SELF_SERVICE
    assert EnrollmentCode.objects.get(device=device).used_at is not None
    assert_refused(
        client, "invalid_enrollment_token", "already used",
        enrollment_code=code, device=identity(platform="ios", serial_number="OTHER", imei=""),
    )  # fmt: skip


def test_code_for_another_platform_is_refused(client, people):
    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership=Ownership.PERSONAL)
    assert_refused(client, "enrollment_refused", "is for a iOS device", enrollment_code=code, device=identity())
    assert EnrollmentCode.objects.get().used_at is None


def test_expired_code_is_refused(client, people):
    code_obj, code = enrollment_code_create(
        actor=SYSTEM, user=people.employee, platform="android", ownership=Ownership.PERSONAL
    )
    EnrollmentCode.objects.filter(pk=code_obj.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_refused(client, "invalid_enrollment_token", "expired", enrollment_code=code, device=identity())


def set_default_device_limit(limit):
    EnrollmentRestriction.objects.filter(pk=enrollment_restriction_default().pk).update(device_limit=limit)


def test_device_limit_per_person(client, people):
    set_default_device_limit(2)
    DeviceFactory(scope=people.scope_a, primary_user=people.employee, serial_number="SECOND")  # device_a is the first
    _, code = enrollment_code_create(
        actor=SYSTEM, user=people.employee, platform="android", ownership=Ownership.PERSONAL
    )
    data = assert_refused(
        client, "enrollment_refused", "already has 2 enrolled devices", enrollment_code=code, device=identity()
    )
    assert "Remove one in the Company Portal" in data["error"]["message"]
    assert EnrollmentCode.objects.get().used_at is None


def test_bulk_enrolment_is_exempt_from_the_personal_limit(client, scope_a, people):
    set_default_device_limit(1)
    _, token = enrollment_profile_create(
        actor=SYSTEM, name="Kiosks", enrollment_manager=people.global_admin, scope=scope_a, primary_user=people.employee
    )
    for n in range(3):
        response, _ = enrol(client, enrollment_token=token, device=identity(serial_number=f"K{n}", imei=""))
        assert response.status_code == 201


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_enrolments_racing_for_the_last_place_cannot_both_win(scope_a, enrollment_manager):
    _, token = enrollment_profile_create(
        actor=SYSTEM, name="Last place", enrollment_manager=enrollment_manager, scope=scope_a, capacity=1
    )
    statuses, barrier = [], threading.Barrier(4)

    def attempt(n):
        barrier.wait()
        try:
            response, _ = enrol(Client(), enrollment_token=token, device=identity(serial_number=f"RACE{n}", imei=""))
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 403, 403, 403]
    assert Device.objects.filter(serial_number__startswith="RACE").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_self_enrolments_racing_for_the_last_personal_place(scope_a):
    set_default_device_limit(1)
    person = UserFactory(scope=scope_a)
    codes = [
        enrollment_code_create(actor=SYSTEM, user=person, platform="android", ownership=Ownership.PERSONAL)[1]
        for _ in range(3)
    ]
    statuses, barrier = [], threading.Barrier(3)

    def attempt(n):
        barrier.wait()
        try:
            response, _ = enrol(Client(), enrollment_code=codes[n], device=identity(serial_number=f"P{n}", imei=""))
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201, 403, 403]
    assert Device.objects.filter(primary_user=person).count() == 1


def test_enrolment_stores_inventory_and_reports_it(client, token):
    response, data = enrol(client, enrollment_token=token, device=identity(), inventory=inventory(battery_percent=12))
    assert response.status_code == 201
    assert Device.objects.get(uuid=data["device_id"]).inventory.battery_percent == 12


def test_refusal_of_a_real_code_is_kept_as_the_persons(client, people):
    from devices.models import EnrollmentFailure

    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership=Ownership.PERSONAL)
    assert_refused(client, "enrollment_refused", "is for a iOS device", enrollment_code=code, device=identity())
    failure = EnrollmentFailure.objects.get()
    assert failure.user == people.employee
    assert failure.reason_code == "enrollment_refused"
