"""The enrolment pages of the IT console: issuing and revoking tokens, editing restrictions, reading failures."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.choices import Ownership
from devices.models import Device, EnrollmentCode, EnrollmentFailure, EnrollmentProfile, EnrollmentRestriction
from devices.services import device_group_save
from devices.services.enrollment import enrollment_code_create, enrollment_profile_create
from devices.services.restrictions import DEFAULT_PRIORITY, enrollment_restriction_default, enrollment_restriction_save
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM

from .protocol.conftest import identity

pytestmark = pytest.mark.django_db

PROFILE_ADD = reverse("admin:devices_enrollmentprofile_add")
PROFILE_LIST = reverse("admin:devices_enrollmentprofile_changelist")
RESTRICTION_ADD = reverse("admin:devices_enrollmentrestriction_add")
RESTRICTION_LIST = reverse("admin:devices_enrollmentrestriction_changelist")
FAILURE_LIST = reverse("admin:devices_enrollmentfailure_changelist")
CODE_LIST = reverse("admin:devices_enrollmentcode_changelist")
TOKEN_IN_MESSAGE = re.compile(r"<code id=['\"]new-enrollment-token['\"]>(enr_[^<]+)</code>")


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.global_admin)
    return client


def enrol(client, **body):
    response = client.post("/agent/v1/enroll", data=json.dumps(body), content_type="application/json")
    return response, response.json()


def change_url(obj, page="change"):
    return reverse(f"admin:devices_{obj._meta.model_name}_{page}", args=[obj.pk])


# Enrolment profiles --------------------------------------------------------------------------------------


def profile_form(people, **changes):
    data = {
        "name": "Warehouse scanners",
        "description": "Zebra scanners in the Leeds warehouse",
        "enrollment_manager": people.global_admin.pk,
        "scope": people.scope_a.pk,
        "ownership": Ownership.CORPORATE,
        "device_group": "",
        "primary_user": "",
        "platforms": ["android"],
        "capacity": 25,
        "expires_at_0": "",
        "expires_at_1": "",
        "provisioning_minutes": "60",
        "provisioning_action": "notify_and_mark_noncompliant",
    }
    return {**data, **changes}


def test_creating_a_profile_shows_its_token_once_and_the_token_enrols(admin_client, people):
    response = admin_client.post(PROFILE_ADD, profile_form(people), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    token = TOKEN_IN_MESSAGE.search(page).group(1)
    profile = EnrollmentProfile.objects.get(name="Warehouse scanners")
    assert (profile.scope, profile.capacity, profile.platforms, profile.provisioning_minutes) == (
        people.scope_a, 25, ["android"], 60,
    )  # fmt: skip
    assert profile.provisioning_action == "notify_and_mark_noncompliant"
    assert token.startswith(f"enr_{profile.token_prefix}_")
    assert "python -m agent enroll --server http://testserver --token" in page
    assert AuditEvent.objects.filter(verb="enrollment_profile.create", target_id=str(profile.pk)).exists()

    # Never again: not on the list, not on the profile's page, not in the audit trail.
    for url in (PROFILE_LIST, change_url(profile)):
        assert token not in admin_client.get(url).content.decode()
    assert not AuditEvent.objects.filter(changes__icontains=token[-20:]).exists()

    reply, data = enrol(admin_client, enrollment_token=token, device=identity())
    assert reply.status_code == 201, data
    device = Device.objects.get(uuid=data["device_id"])
    assert (device.enrollment_profile, device.scope) == (profile, people.scope_a)

    listing = admin_client.get(PROFILE_LIST).content.decode()
    assert "1 / 25" in listing and "Active" in listing


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"capacity": 0}, "capacity"),
        ({"capacity": 1001}, "capacity"),
        ({"name": ""}, "name"),
        ({"platforms": ["symbian"]}, "platforms"),
        ({"expires_at_0": "2001-01-01", "expires_at_1": "10:00"}, "expires_at"),
        ({"expires_at_0": "not a date", "expires_at_1": "10:00"}, "expires_at"),
        ({"enrollment_manager": 999_999}, "enrollment_manager"),
        ({"device_group": "group_b"}, "device_group"),
    ],
)
def test_bad_profile_input_is_a_form_error_and_creates_nothing(admin_client, people, changes, field):
    if changes.get("device_group") == "group_b":
        changes["device_group"] = device_group_save(actor=SYSTEM, name="Americas", scope=people.scope_b).pk
    before = (EnrollmentProfile.objects.count(), AuditEvent.objects.count())
    response = admin_client.post(PROFILE_ADD, profile_form(people, **changes))
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert (EnrollmentProfile.objects.count(), AuditEvent.objects.count()) == before


def test_a_future_expiry_is_accepted(admin_client, people):
    tomorrow = timezone.localtime() + timedelta(days=1)
    form = profile_form(people, expires_at_0=tomorrow.strftime("%Y-%m-%d"), expires_at_1="12:00:00")
    assert admin_client.post(PROFILE_ADD, form).status_code == 302
    assert EnrollmentProfile.objects.get().expires_at > timezone.now()


def test_a_profile_is_never_edited_or_deleted(admin_client, people):
    profile, _ = enrollment_profile_create(
        actor=SYSTEM, name="Kiosks", enrollment_manager=people.global_admin, scope=people.scope_a
    )
    page = admin_client.get(change_url(profile))
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()  # read-only: no inputs
    assert profile.token_hash not in page.content.decode()
    assert admin_client.post(change_url(profile), {"name": "Renamed"}).status_code == 403
    assert admin_client.post(change_url(profile, "delete"), {"post": "yes"}).status_code == 403
    profile.refresh_from_db()
    assert profile.name == "Kiosks"


def test_revoking_a_profile_stops_its_token(admin_client, people):
    profile, token = enrollment_profile_create(
        actor=SYSTEM, name="Kiosks", enrollment_manager=people.global_admin, scope=people.scope_a
    )
    assert 'value="revoke"' in admin_client.get(PROFILE_LIST).content.decode()
    response = admin_client.post(PROFILE_LIST, {"action": "revoke", "_selected_action": [profile.pk]}, follow=True)
    assert "Revoked 1 enrolment token(s)." in response.content.decode()
    profile.refresh_from_db()
    assert profile.revoked_at is not None
    assert AuditEvent.objects.filter(verb="enrollment_profile.revoke", target_id=str(profile.pk)).exists()
    assert "Revoked" in admin_client.get(PROFILE_LIST).content.decode()

    reply, data = enrol(admin_client, enrollment_token=token, device=identity())
    assert reply.status_code == 403
    assert data["error"]["message"] == "This enrolment token was revoked. Ask IT for a new one."


# Enrolment restrictions ------------------------------------------------------------------------------------


def restriction_form(**changes):
    data = {
        "name": "Sales phones",
        "description": "",
        "priority": 10,
        "user_groups": [],
        "device_limit": 3,
        "allowed_platforms": ["ios", "android"],
        "block_personal": ["android"],
        "os_ios_min": "16.0",
        "os_ios_max": "17",
        "os_android_min": "13",
        "notify_on_refusal": "on",
        "remediation_instructions": "Update the phone, then enrol it again.",
        "notify_repeat_minutes": 30,
    }
    return {**data, **changes}


def test_creating_a_restriction_through_the_form(admin_client, people):
    sales = core_services.user_group_save(actor=SYSTEM, name="Sales", members=[people.employee])
    response = admin_client.post(RESTRICTION_ADD, restriction_form(user_groups=[sales.pk]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    restriction = EnrollmentRestriction.objects.get(name="Sales phones")
    assert (restriction.priority, restriction.device_limit) == (10, 3)
    assert list(restriction.user_groups.all()) == [sales]
    assert restriction.allowed_platforms == ["ios", "android"]
    assert restriction.block_personal == ["android"]
    assert restriction.os_versions == {"ios": {"min": "16.0", "max": "17"}, "android": {"min": "13", "max": ""}}
    assert (restriction.notify_on_refusal, restriction.notify_repeat_minutes) == (True, 30)
    assert restriction.remediation_instructions == "Update the phone, then enrol it again."
    assert AuditEvent.objects.filter(verb="enrollment_restriction.create", target_id=str(restriction.pk)).exists()

    # The form shows what was saved, and the list summarises it.
    page = admin_client.get(change_url(restriction)).content.decode()
    assert 'name="os_ios_min" value="16.0"' in page and 'name="os_ios_max" value="17"' in page
    listing = admin_client.get(RESTRICTION_LIST).content.decode()
    assert "Sales" in listing and "iOS: 16.0 to 17" in listing and "Default (last)" in listing


@pytest.mark.parametrize(
    ("changes", "field", "sentence"),
    [
        ({"device_limit": 16}, "device_limit", "between 1 and 15 devices per person"),
        ({"device_limit": 0}, "device_limit", "between 1 and 15 devices per person"),
        ({"device_limit": "many"}, "device_limit", "Enter a whole number."),
        ({"os_ios_min": "18", "os_ios_max": "17.4"}, "os_ios_min", "above the maximum 17.4"),
        ({"os_android_min": "thirteen"}, "os_android_min", "is not a version number"),
        ({"os_windows_max": "10.0.x"}, "os_windows_max", "is not a version number"),
        ({"allowed_platforms": ["symbian"]}, "allowed_platforms", "Select a valid choice."),
        ({"block_personal": ["windows"]}, "block_personal", "does not allow at all"),
        ({"os_macos_min": "14"}, None, "does not allow at all"),
        ({"priority": "taken"}, "priority", "already has priority 1"),
        ({"priority": DEFAULT_PRIORITY}, "priority", "from 1 to 999,999"),
        ({"name": "Taken"}, "name", "already a restriction named 'Taken'"),
        ({"name": ""}, "name", "This field is required."),
    ],
)
def test_restriction_form_errors_are_sentences_on_the_form_never_a_500(admin_client, changes, field, sentence):
    enrollment_restriction_save(actor=SYSTEM, name="Taken", priority=1)
    if changes.get("priority") == "taken":
        changes["priority"] = 1
    before = (EnrollmentRestriction.objects.count(), AuditEvent.objects.count())
    response = admin_client.post(RESTRICTION_ADD, restriction_form(**changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    messages = errors.get(field or "__all__", [])
    assert any(sentence in message for message in messages), errors
    assert len(messages) == 1, "one problem, one sentence"
    assert (EnrollmentRestriction.objects.count(), AuditEvent.objects.count()) == before


def test_the_default_restriction_is_edited_but_never_targeted_reordered_or_deleted(admin_client):
    default = enrollment_restriction_default()
    page = admin_client.get(change_url(default))
    form = page.context["adminform"].form
    assert "priority" not in form.fields and "user_groups" not in form.fields
    assert "Everyone no other restriction targets" in page.content.decode()
    assert "deletelink" not in page.content.decode()

    data = restriction_form(name="Default restriction", device_limit=7, block_personal=[], os_android_min="")
    response = admin_client.post(change_url(default), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    default.refresh_from_db()
    assert (default.is_default, default.priority, default.device_limit) == (True, DEFAULT_PRIORITY, 7)
    assert default.os_versions == {"ios": {"min": "16.0", "max": "17"}}

    assert admin_client.post(change_url(default, "delete"), {"post": "yes"}).status_code == 403
    assert EnrollmentRestriction.objects.filter(pk=default.pk).exists()


def test_deleting_a_restriction_goes_through_the_service(admin_client):
    restriction = enrollment_restriction_save(actor=SYSTEM, name="Old", priority=3)
    response = admin_client.post(change_url(restriction, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not EnrollmentRestriction.objects.filter(name="Old").exists()
    assert AuditEvent.objects.filter(verb="enrollment_restriction.delete").exists()


def test_read_only_operator_sees_a_summary_not_a_form(client, people):
    restriction = enrollment_restriction_save(
        actor=SYSTEM, name="Apple only", priority=1, allowed_platforms=["ios"], os_versions={"ios": {"min": "17"}}
    )
    client.force_login(people.read_only)
    page = client.get(change_url(restriction)).content.decode()
    assert "iOS: 17 to any" in page and "Apple only" in page
    assert 'name="os_ios_min"' not in page and 'name="device_limit"' not in page


# Enrolment failures and codes ------------------------------------------------------------------------------


@pytest.fixture
def failures(people):
    apple_only = enrollment_restriction_save(actor=SYSTEM, name="Apple only", priority=1, allowed_platforms=["ios"])
    refused = EnrollmentFailure.objects.create(
        user=people.employee, platform="android", os_version="14", device_name="Anna's Pixel",
        serial_number="PIXEL-1", reason_code="enrollment_refused", restriction=apple_only,
        message="Android devices may not be enrolled: the enrolment restriction 'Apple only' allows only iOS devices.",
    )  # fmt: skip
    bad_token = EnrollmentFailure.objects.create(
        platform="windows", device_name="LAPTOP-9", reason_code="invalid_enrollment_token",
        message="This enrolment token is not valid. Ask IT for a new one.",
    )  # fmt: skip
    return refused, bad_token


def test_failure_list_shows_who_what_and_why(admin_client, failures):
    refused, _bad_token = failures
    page = admin_client.get(FAILURE_LIST).content.decode()
    for text in ("employee", "Anna&#x27;s Pixel", "Android", "Restriction: Apple only", "LAPTOP-9", "Windows",
                 "Token or code not valid", "allows only iOS devices"):  # fmt: skip
        assert text in page, text
    assert 'href="/admin/devices/enrollmentfailure/add/"' not in page

    only_refused = admin_client.get(FAILURE_LIST, {"reason_code": "enrollment_refused"}).content.decode()
    assert "Anna&#x27;s Pixel" in only_refused and "LAPTOP-9" not in only_refused
    windows = admin_client.get(FAILURE_LIST, {"platform": "windows"}).content.decode()
    assert "LAPTOP-9" in windows and "Anna&#x27;s Pixel" not in windows
    searched = admin_client.get(FAILURE_LIST, {"q": "PIXEL-1"}).content.decode()
    assert "Anna&#x27;s Pixel" in searched and "LAPTOP-9" not in searched
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = admin_client.get(
        FAILURE_LIST, {"created_at__gte": str(midnight), "created_at__lt": str(midnight + timedelta(days=1))}
    )
    assert today.status_code == 200 and "LAPTOP-9" in today.content.decode()

    detail = admin_client.get(change_url(refused))
    assert detail.status_code == 200 and "Apple only" in detail.content.decode()
    assert admin_client.post(change_url(refused), {"message": "edited"}).status_code == 403


def test_failure_list_query_count_is_constant(admin_client, people, failures, django_assert_max_num_queries):
    for n in range(40):
        EnrollmentFailure.objects.create(
            user=people.employee, platform="ios", reason_code="enrollment_refused", message=f"Refused {n}.",
            restriction=failures[0].restriction,
        )  # fmt: skip
    with django_assert_max_num_queries(12):
        assert admin_client.get(FAILURE_LIST).status_code == 200


def test_code_list_hides_the_code_hashes(admin_client, people):
    code, raw = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership="personal")
    for url in (CODE_LIST, change_url(code)):
        page = admin_client.get(url).content.decode()
        assert "employee" in page
        assert code.code_hash not in page and raw not in page and raw.replace("-", "") not in page
    assert admin_client.post(change_url(code), {"platform": "android"}).status_code == 403
    assert EnrollmentCode.objects.get().platform == "ios"
