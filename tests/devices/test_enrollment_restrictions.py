"""Enrolment restrictions through the real agent endpoint: every rule, its sentence, and what is recorded.

Each refusal must name the restriction that refused and say what to do, write nothing but its
failure record, and (when a person or token is known) email the person and IT once.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from agent.client import AgentClient, ProtocolError
from devices.choices import LifecycleState, Ownership
from devices.models import Device, EnrollmentCode, EnrollmentFailure, EnrollmentProfile, EnrollmentRestriction
from devices.selectors_enrollment import enrollment_failure_list, enrollment_failures_for_person
from devices.services.enrollment import enrollment_code_create, enrollment_profile_create
from devices.services.restrictions import (
    DEFAULT_PRIORITY,
    enrollment_failure_notify,
    enrollment_restriction_default,
    enrollment_restriction_delete,
    enrollment_restriction_for,
    enrollment_restriction_save,
)
from devices.tasks_enrollment import NOTIFY_TASK_NAME, enrollment_failure_notify_task
from mdm_portal.celery import app as celery_app
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, UserFactory

from .protocol.conftest import identity

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery():
    """Run enqueued tasks in the test's process, as a worker would, and let their errors fail the test."""
    conf = celery_app.conf
    before = {"task_always_eager": conf.task_always_eager, "task_eager_propagates": conf.task_eager_propagates}
    conf.update(task_always_eager=True, task_eager_propagates=True)
    yield
    conf.update(before)


@pytest.fixture
def agent(live_server):
    """The real agent client, talking HTTP to the live server."""
    client = AgentClient(live_server.url)
    yield client
    client.close()


def group(name, *members):
    return core_services.user_group_save(actor=SYSTEM, name=name, members=list(members))


def restriction(name, priority, groups=(), **rules):
    return enrollment_restriction_save(actor=SYSTEM, name=name, priority=priority, user_groups=list(groups), **rules)


def code_for(user, platform="android", ownership=Ownership.PERSONAL):
    return enrollment_code_create(actor=SYSTEM, user=user, platform=platform, ownership=ownership)[1]


def enrol(client: Client, **body):
    response = client.post("/agent/v1/enroll", data=json.dumps(body), content_type="application/json")
    return response, response.json()


def state():
    """Everything an enrolment writes, except the failure record a refusal writes."""
    return (
        Device.objects.count(),
        AuditEvent.objects.count(),
        list(EnrollmentCode.objects.order_by("pk").values_list("used_at", flat=True)),
        list(EnrollmentProfile.objects.order_by("pk").values_list("use_count", flat=True)),
    )


def refused(client, sentence_parts, **body) -> tuple[dict, EnrollmentFailure]:
    """Enrol, expect a 403 refusal whose sentence holds every part, and exactly one new failure row."""
    before, failures = state(), EnrollmentFailure.objects.count()
    response, data = enrol(client, **body)
    assert response.status_code == 403, data
    assert data["error"]["code"] == "enrollment_refused"
    for part in sentence_parts:
        assert part in data["error"]["message"], data["error"]["message"]
    assert state() == before, "a refused enrolment wrote something"
    assert EnrollmentFailure.objects.count() == failures + 1
    return data["error"], EnrollmentFailure.objects.order_by("-pk").first()


def accepted(client, **body) -> Device:
    response, data = enrol(client, **body)
    assert response.status_code == 201, data
    return Device.objects.get(uuid=data["device_id"])


# The default restriction ------------------------------------------------------------------------------


def test_the_default_restriction_comes_from_the_migration():
    default = EnrollmentRestriction.objects.get(is_default=True)
    assert (default.name, default.device_limit, default.priority) == ("Default restriction", 5, DEFAULT_PRIORITY)
    assert (default.allowed_platforms, default.os_versions, default.block_personal) == ([], {}, [])
    assert enrollment_restriction_for(None) == default
    assert enrollment_restriction_for(UserFactory()) == default


def test_default_limit_is_five_devices_per_person(client, people):
    for n in range(4):  # device_a is the first
        DeviceFactory(scope=people.scope_a, primary_user=people.employee, serial_number=f"OWN{n}")
    _error, failure = refused(
        client,
        ["This account already has 5 enrolled devices", "'Default restriction' is 5",
         "Remove one in the Company Portal or ask IT."],
        enrollment_code=code_for(people.employee), device=identity(),
    )  # fmt: skip
    assert failure.restriction == enrollment_restriction_default()
    assert failure.user == people.employee


def test_retired_devices_do_not_count_and_retiring_ones_do(client, people):
    EnrollmentRestriction.objects.filter(is_default=True).update(device_limit=2)
    DeviceFactory(scope=people.scope_a, primary_user=people.employee, state=LifecycleState.RETIRED)
    DeviceFactory(scope=people.scope_a, primary_user=people.employee, state=LifecycleState.PENDING)
    accepted(client, enrollment_code=code_for(people.employee), device=identity())  # device_a + this = 2
    EnrollmentRestriction.objects.filter(is_default=True).update(device_limit=3)
    DeviceFactory(scope=people.scope_a, primary_user=people.employee, state=LifecycleState.RETIRING)
    refused(
        client, ["already has 3 enrolled devices"],
        enrollment_code=code_for(people.employee), device=identity(serial_number="NEXT", imei=""),
    )  # fmt: skip


# Every rule and its sentence ---------------------------------------------------------------------------


def test_platform_not_allowed(client, people):
    restriction("Apple only", 1, [group("iPhone users", people.employee)], allowed_platforms=["ios", "ipados"])
    error, failure = refused(
        client,
        ["Android devices may not be enrolled", "'Apple only' allows only iOS, iPadOS devices",
         "Enrol a device of one of those platforms, or ask IT."],
        enrollment_code=code_for(people.employee), device=identity(),
    )  # fmt: skip
    assert error["fields"] == {"device.platform": "not allowed by the enrolment restriction"}
    assert failure.restriction.name == "Apple only"
    accepted(client, enrollment_code=code_for(people.employee, "ios"), device=identity(platform="ios", imei=""))


@pytest.mark.parametrize(
    ("os_version", "outcome"),
    [("15.7.9", "refused"), ("16", "accepted"), ("16.0", "accepted"), ("17.4.1", "accepted"), ("18.0", "refused")],
)
def test_os_version_bounds_min_inclusive_and_max_inclusive_of_its_releases(client, people, os_version, outcome):
    restriction(
        "Supported iOS", 1, [group("Staff", people.employee)], os_versions={"ios": {"min": "16.0", "max": "17"}}
    )
    body = {
        "enrollment_code": code_for(people.employee, "ios"),
        "device": identity(platform="ios", os_version=os_version),
    }
    if outcome == "accepted":
        accepted(client, **body)
        return
    if os_version < "16":
        parts = [f"This device runs iOS {os_version}", "'Supported iOS' requires iOS 16.0 or later",
                 "Update the device to iOS 16.0 or later, then enrol it again."]  # fmt: skip
        field = "below the minimum 16.0"
    else:
        parts = [f"This device runs iOS {os_version}", "'Supported iOS' allows at most iOS 17",
                 "Enrol a device with iOS 17 or earlier, or ask IT."]  # fmt: skip
        field = "above the maximum 17"
    error, _ = refused(client, parts, **body)
    assert error["fields"] == {"device.os_version": field}


def test_os_bounds_apply_only_to_their_platform(client, people):
    restriction("New iOS", 1, [group("Staff", people.employee)], os_versions={"ios": {"min": "17", "max": ""}})
    accepted(client, enrollment_code=code_for(people.employee), device=identity(os_version="9"))


def test_a_device_that_reports_no_version_is_refused_when_a_bound_is_set(client, people):
    restriction("New Android", 1, [group("Staff", people.employee)], os_versions={"android": {"min": "13"}})
    refused(
        client,
        ["did not report a Android version that can be checked", "'New Android' requires version 13 or later",
         "Update the device management agent"],
        enrollment_code=code_for(people.employee), device=identity(os_version=""),
    )  # fmt: skip


def test_personally_owned_devices_blocked_per_platform(client, people):
    restriction("Corporate Android", 1, [group("Staff", people.employee)], block_personal=["android"])
    refused(
        client,
        ["Personally owned Android devices may not be enrolled", "'Corporate Android'",
         "Enrol a corporate device, or ask IT to register this device as corporate."],
        enrollment_code=code_for(people.employee, ownership=Ownership.PERSONAL), device=identity(),
    )  # fmt: skip
    accepted(client, enrollment_code=code_for(people.employee, ownership=Ownership.CORPORATE), device=identity())
    ios = identity(platform="ios", serial_number="IPHONE", imei="")
    accepted(client, enrollment_code=code_for(people.employee, "ios", Ownership.PERSONAL), device=ios)


def test_device_limit_of_the_targeted_restriction(client, people):
    restriction("One each", 1, [group("Contractors", people.employee)], device_limit=1)
    refused(
        client,
        ["already has 1 enrolled devices", "'One each' is 1"],
        enrollment_code=code_for(people.employee), device=identity(),
    )  # fmt: skip


# Which restriction applies --------------------------------------------------------------------------------


def test_the_first_restriction_by_priority_among_the_persons_groups_applies(client, people):
    sales, android_users = group("Sales", people.employee), group("Android users", people.employee)
    lenient = restriction("Anything goes", 2, [sales])
    strict = restriction("No Android", 1, [android_users], allowed_platforms=["ios"])
    assert enrollment_restriction_for(people.employee) == strict
    refused(client, ["'No Android'"], enrollment_code=code_for(people.employee), device=identity())

    enrollment_restriction_save(actor=SYSTEM, restriction=strict, name=strict.name, priority=3,
                                user_groups=[android_users], allowed_platforms=["ios"])  # fmt: skip
    assert enrollment_restriction_for(people.employee) == lenient
    accepted(client, enrollment_code=code_for(people.employee), device=identity())


def test_restrictions_for_other_groups_do_not_apply(client, people):
    restriction("No Android", 1, [group("Americas", people.other_employee)], allowed_platforms=["ios"])
    assert enrollment_restriction_for(people.employee).is_default
    accepted(client, enrollment_code=code_for(people.employee), device=identity())


def test_a_restriction_without_groups_targets_nobody(client, people):
    restriction("Draft", 1, [], allowed_platforms=["ios"])
    assert enrollment_restriction_for(people.employee).is_default


# Bulk tokens ------------------------------------------------------------------------------------------------


@pytest.fixture
def kiosk_token(people):
    return enrollment_profile_create(
        actor=SYSTEM, name="Kiosks", enrollment_manager=people.global_admin, scope=people.scope_a,
        primary_user=people.employee,
    )  # fmt: skip


def test_bulk_tokens_are_exempt_from_the_device_limit_only(client, people, kiosk_token):
    profile, token = kiosk_token
    restriction("Small", 1, [group("Staff", people.employee)], device_limit=1, os_versions={"android": {"min": "13"}})
    for n in range(3):
        accepted(client, enrollment_token=token, device=identity(serial_number=f"K{n}", imei=""))
    _, failure = refused(
        client, ["'Small' requires Android 13 or later"],
        enrollment_token=token, device=identity(serial_number="OLD", imei="", os_version="12"),
    )  # fmt: skip
    assert (failure.user, failure.profile, failure.restriction.name) == (people.employee, profile, "Small")
    profile.refresh_from_db()
    assert profile.use_count == 3  # the refused enrolment gave its place back


def test_bulk_enrolment_without_a_person_follows_the_default_restriction(client, people):
    _, token = enrollment_profile_create(
        actor=SYSTEM, name="Shared", enrollment_manager=people.global_admin, scope=people.scope_a
    )
    enrollment_restriction_save(
        actor=SYSTEM, restriction=enrollment_restriction_default(), name="Default restriction",
        allowed_platforms=["ios"],
    )  # fmt: skip
    _, failure = refused(client, ["'Default restriction' allows only iOS"], enrollment_token=token, device=identity())
    assert failure.user is None and failure.profile is not None


# Failure records and notification -----------------------------------------------------------------------------


def test_a_refusal_is_recorded_with_who_which_device_and_which_rule(client, people):
    limited = restriction("Apple only", 1, [group("Staff", people.employee)], allowed_platforms=["ios"])
    code = code_for(people.employee)
    _, failure = refused(
        client, ["'Apple only'"], enrollment_code=code, device=identity(os_version="14.1", name="Anna's phone")
    )
    assert failure.user == people.employee
    assert failure.restriction == limited
    assert failure.profile is None
    assert (failure.platform, failure.os_version, failure.serial_number, failure.imei, failure.device_name) == (
        "android", "14.1", "R58N12345AB", "356938035643809", "Anna's phone",
    )  # fmt: skip
    assert failure.reason_code == "enrollment_refused"
    assert "'Apple only'" in failure.message
    assert failure.source_ip == "127.0.0.1"
    assert failure.created_at is not None
    assert EnrollmentCode.objects.get().used_at is None  # the code can be used once the device qualifies


def test_a_refusal_emails_the_person_and_it_once(client, people, mailoutbox, django_capture_on_commit_callbacks):
    restriction("Apple only", 1, [group("Staff", people.employee)], allowed_platforms=["ios"])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _, failure = refused(client, ["'Apple only'"], enrollment_code=code_for(people.employee), device=identity())
    assert len(callbacks) == 1

    to_person, to_it = mailoutbox
    assert to_person.to == ["employee@example.com"]
    assert to_person.subject == "Your Android device 'SCANNER-01' could not be enrolled"
    assert failure.message in to_person.body
    assert "Enrol a device of one of those platforms, or ask IT." in to_person.body
    # IT: the staff who may read every failure (global admin; the read-only operator views everything).
    assert sorted(to_it.to) == ["global-admin@example.com", "read-only@example.com"]
    assert "Refused by: enrolment restriction 'Apple only'" in to_it.body
    assert "employee" in to_it.subject and failure.message in to_it.body
    failure.refresh_from_db()
    assert failure.notified_at is not None
    assert AuditEvent.objects.filter(verb="enrollment_failure.notify", target_id=str(failure.pk)).exists()

    # Idempotent: the task delivered twice sends nothing more.
    assert enrollment_failure_notify(failure_id=failure.pk) is False
    # Retrying the same refused enrolment within the hour records it but does not email again.
    with django_capture_on_commit_callbacks(execute=True):
        _, again = refused(client, ["'Apple only'"], enrollment_code=code_for(people.employee), device=identity())
    assert len(mailoutbox) == 2
    again.refresh_from_db()
    assert again.notified_at is None


def test_remediation_is_configured_per_restriction(client, people, mailoutbox, django_capture_on_commit_callbacks):
    staff = group("Staff", people.employee)
    quiet = restriction("Apple only", 1, [staff], allowed_platforms=["ios"], notify_on_refusal=False)
    with django_capture_on_commit_callbacks(execute=True):
        _, failure = refused(client, ["'Apple only'"], enrollment_code=code_for(people.employee), device=identity())
    assert mailoutbox == []  # recorded, but this restriction emails nobody
    failure.refresh_from_db()
    assert failure.notified_at is None

    enrollment_restriction_save(
        actor=SYSTEM, restriction=quiet, name=quiet.name, priority=1, user_groups=[staff], allowed_platforms=["ios"],
        remediation_instructions="Ask the service desk for a loan iPhone: extension 4242.", notify_repeat_minutes=0,
    )  # fmt: skip
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            refused(client, ["'Apple only'"], enrollment_code=code_for(people.employee), device=identity())
    to_person = [m for m in mailoutbox if m.to == ["employee@example.com"]]
    # A window of 0 minutes: every refusal is emailed, with the instructions.
    assert len(to_person) == 2
    assert "How to fix it:\nAsk the service desk for a loan iPhone: extension 4242." in to_person[0].body


def test_anonymous_bad_tokens_are_recorded_but_email_nobody(
    client, people, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response, data = enrol(client, enrollment_token="enr_000000000000_forged", device=identity())
    assert response.status_code == 403
    assert data["error"]["code"] == "invalid_enrollment_token"
    failure = EnrollmentFailure.objects.get()
    assert (failure.user, failure.restriction, failure.reason_code) == (None, None, "invalid_enrollment_token")
    assert callbacks == [] and mailoutbox == []


def test_the_notify_task_is_registered_under_its_name_and_tolerates_a_missing_failure():
    assert enrollment_failure_notify_task.name == NOTIFY_TASK_NAME
    assert NOTIFY_TASK_NAME in celery_app.tasks
    assert enrollment_failure_notify_task.delay(999_999).get() is False


def test_a_person_without_email_still_gets_it_notified(people, mailoutbox):
    people.employee.email = ""
    people.employee.save(update_fields=["email"])
    failure = EnrollmentFailure.objects.create(
        user=people.employee, platform="ios", reason_code="enrollment_refused", message="Refused. Ask IT."
    )
    assert enrollment_failure_notify(failure_id=failure.pk) is True
    assert [m.to for m in mailoutbox] == [["global-admin@example.com", "read-only@example.com"]]
    assert "no email" in mailoutbox[0].body


@pytest.mark.django_db(transaction=True)
def test_refusal_over_real_http_with_the_agent_client(agent, people):
    restriction("Apple only", 1, [group("Staff", people.employee)], allowed_platforms=["ios"])
    with pytest.raises(ProtocolError) as refusal:
        agent.enroll(code=code_for(people.employee), device=identity())
    assert (refusal.value.status, refusal.value.code) == (403, "enrollment_refused")
    assert "'Apple only' allows only iOS devices" in refusal.value.message
    assert refusal.value.fields == {"device.platform": "not allowed by the enrolment restriction"}
    assert EnrollmentFailure.objects.get().restriction.name == "Apple only"
    assert not Device.objects.filter(serial_number="R58N12345AB").exists()


# Selectors ----------------------------------------------------------------------------------------------------


def test_failure_selectors(people):
    mine = [
        EnrollmentFailure.objects.create(user=people.employee, reason_code="enrollment_refused", message=f"No {n}.")
        for n in range(7)
    ]
    theirs = EnrollmentFailure.objects.create(
        user=people.other_employee, reason_code="enrollment_refused", message="Not yours."
    )
    assert list(enrollment_failures_for_person(user=people.employee)) == mine[::-1][:5]
    assert list(enrollment_failures_for_person(user=people.employee, limit=2)) == mine[::-1][:2]
    assert set(enrollment_failure_list(user=people.helpdesk_a)) == set(mine)
    assert theirs in enrollment_failure_list(user=people.global_admin)
    assert not enrollment_failure_list(user=people.no_role).exists()
    assert not enrollment_failure_list(user=people.employee).exists()


# Managing restrictions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "field", "sentence"),
    [
        ({"device_limit": 0}, "device_limit", "between 1 and 15"),
        ({"device_limit": 16}, "device_limit", "between 1 and 15"),
        ({"allowed_platforms": ["symbian"]}, "allowed_platforms", "Unknown platform(s): symbian."),
        ({"block_personal": ["palm"]}, "block_personal", "Unknown platform(s): palm."),
        ({"os_versions": {"ios": {"min": "seventeen"}}}, "os_versions.ios.min", "is not a version number"),
        ({"os_versions": {"ios": {"max": "17.x"}}}, "os_versions.ios.max", "is not a version number"),
        ({"os_versions": {"ios": {"min": "18", "max": "17.4"}}}, "os_versions.ios.min", "above the maximum"),
        ({"os_versions": {"beos": {"min": "5"}}}, "os_versions", "Unknown platform 'beos'"),
        ({"priority": 0}, "priority", "from 1 to 999,999"),
        ({"priority": DEFAULT_PRIORITY}, "priority", "from 1 to 999,999"),
        ({"allowed_platforms": ["ios"], "block_personal": ["android"]}, "block_personal", "does not allow at all"),
    ],
)
def test_restriction_validation_sentences(rules, field, sentence):
    before = (EnrollmentRestriction.objects.count(), AuditEvent.objects.count())
    with pytest.raises(ValidationError) as invalid:
        enrollment_restriction_save(actor=SYSTEM, name="Bad", **{"priority": 1, **rules})
    assert any(sentence in message for message in invalid.value.message_dict[field]), invalid.value.message_dict
    assert (EnrollmentRestriction.objects.count(), AuditEvent.objects.count()) == before


def test_min_may_equal_max_and_a_release_of_the_max(people):
    saved = restriction(
        "Exactly 17", 1, os_versions={"ios": {"min": "17.2", "max": "17"}, "android": {"min": "", "max": ""}}
    )
    assert saved.os_versions == {"ios": {"min": "17.2", "max": "17"}}


def test_names_and_priorities_are_unique():
    restriction("First", 1)
    with pytest.raises(ValidationError) as invalid:
        restriction("First", 1)
    assert "already a restriction named 'First'" in invalid.value.message_dict["name"][0]
    assert "'First' already has priority 1" in invalid.value.message_dict["priority"][0]


def test_save_and_delete_are_audited(people):
    sales = group("Sales", people.employee)
    saved = restriction("Sales phones", 5, [sales], device_limit=3, allowed_platforms=["android", "ios"])
    assert saved.allowed_platforms == ["ios", "android"]  # in the platforms' own order
    event = AuditEvent.objects.get(verb="enrollment_restriction.create")
    assert event.changes["device_limit"] == 3 and event.changes["user_groups"] == ["Sales"]
    enrollment_restriction_save(actor=SYSTEM, restriction=saved, name="Sales phones", priority=5, device_limit=4)
    assert AuditEvent.objects.get(verb="enrollment_restriction.update").changes["user_groups"] == []
    pk = saved.pk
    enrollment_restriction_delete(actor=SYSTEM, restriction=saved)
    assert not EnrollmentRestriction.objects.filter(pk=pk).exists()
    assert AuditEvent.objects.filter(verb="enrollment_restriction.delete", target_id=str(pk)).exists()


def test_the_default_restriction_cannot_be_deleted_or_targeted(people):
    default = enrollment_restriction_default()
    with pytest.raises(ValidationError, match="cannot be deleted"):
        enrollment_restriction_delete(actor=SYSTEM, restriction=default)
    with pytest.raises(ValidationError) as invalid:
        enrollment_restriction_save(
            actor=SYSTEM, restriction=default, name=default.name, user_groups=[group("Sales", people.employee)]
        )
    assert "applies to everyone" in invalid.value.message_dict["user_groups"][0]
    edited = enrollment_restriction_save(
        actor=SYSTEM, restriction=default, name=default.name, priority=1, device_limit=7
    )
    assert (edited.is_default, edited.priority, edited.device_limit) == (True, DEFAULT_PRIORITY, 7)


def test_a_missing_default_restriction_is_recreated_not_a_server_error(client, people):
    EnrollmentRestriction.objects.all().delete()
    accepted(client, enrollment_code=code_for(people.employee), device=identity())
    assert EnrollmentRestriction.objects.get().is_default
