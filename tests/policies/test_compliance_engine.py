"""The compliance engine through its services: transitions, the action schedule, the sweep, the check-in hook."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import (
    CommandType,
    ComplianceState,
    EnrollmentMethod,
    LifecycleState,
    Ownership,
    ProvisioningAction,
)
from devices.models import Device, DeviceCommand, DeviceInventory
from devices.services.checkin import device_checkin, inventory_digest
from devices.services.enrollment import device_enroll, enrollment_profile_create
from devices.services.provisioning import device_provisioning_overdue_sweep
from devices.versions import version_key
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from policies.choices import ComplianceRule, RetireApprovalStatus
from policies.models import (
    ComplianceActionRun,
    ComplianceFailure,
    CompliancePolicy,
    ComplianceSettings,
    ComplianceSnapshot,
    NoncomplianceAction,
    RetireApproval,
)
from policies.selectors.compliance import device_compliance_detail
from policies.services import (
    compliance_actions_run,
    compliance_settings_save,
    compliance_sweep,
    device_compliance_evaluate,
    device_compliance_on_checkin,
    policy_delete,
    policy_save,
    retire_approval_decide,
)
from tests.factories import SYSTEM, DeviceFactory, StaffFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCHEDULE = [
    {"action": "mark_noncompliant", "days_after": 3},
    {"action": "email", "days_after": 1, "message": "Please fix this before Friday."},
    {"action": "push", "days_after": 1},
    {"action": "lock", "days_after": 5, "message": "Locked: call IT on 555-0100."},
    {"action": "retire", "days_after": 10},
]


def inventory(**overrides):
    data = {
        "os_version": "17.4",
        "encrypted": True,
        "passcode_set": True,
        "passcode_quality": "alphanumeric",
        "passcode_length": 8,
        "jailbroken": False,
        "battery_percent": 80,
        "installed_apps": [{"identifier": "com.microsoft.teams", "name": "Teams", "version": "1.0"}],
    }
    data.update(overrides)
    return data


def report(device, **overrides):
    """The device checks in with ``overrides`` (through the real check-in service and its hook)."""
    data = inventory(**overrides)
    device_checkin(device=device, inventory=data, digest=inventory_digest(data))
    device.refresh_from_db()
    return device.compliance_state


def ios_policy(scope=None, actions=None, **rules):
    return policy_save(
        actor=SYSTEM,
        data={"name": rules.pop("name", "iOS baseline"), "platform": "ios", "scope": scope, **rules},
        actions=actions,
        assignments=[{"target": "all_devices"}],
    )


@pytest.fixture
def phone(people):
    return people.device_a  # the employee's iPhone in scope A


# -- transitions ---------------------------------------------------------------------------------


def test_compliant_then_grace_then_noncompliant_then_compliant_again(phone):
    with time_machine.travel(T0, tick=False):
        ios_policy(encryption_required=True, actions=SCHEDULE)
        assert report(phone) == ComplianceState.COMPLIANT
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        assert report(phone, encrypted=False) == ComplianceState.IN_GRACE
        failure = ComplianceFailure.objects.get(device=phone)
        assert (failure.rule, failure.actual, failure.since) == (
            "encryption_required",
            "not encrypted",
            T0 + timedelta(hours=1),
        )
        assert device_compliance_detail(phone).grace_ends_at == T0 + timedelta(days=3, hours=1)
    with time_machine.travel(T0 + timedelta(days=3, minutes=59), tick=False):
        compliance_sweep()
        phone.refresh_from_db()
        assert phone.compliance_state == ComplianceState.IN_GRACE
    with time_machine.travel(T0 + timedelta(days=3, hours=1), tick=False):
        assert compliance_sweep() == {"devices": 2, "changed": 1, "batches": 1}
        phone.refresh_from_db()
        assert phone.compliance_state == ComplianceState.NONCOMPLIANT
        assert ComplianceFailure.objects.get(device=phone).since == T0 + timedelta(hours=1)  # unchanged row
        event = AuditEvent.objects.filter(verb="device.compliance_change", target_id="").latest("pk")
        assert event.changes["transitions"] == {"in_grace -> noncompliant": 1}
        assert event.changes["devices"] == {"noncompliant": [phone.pk]}
        assert event.scope_id == phone.scope_id
        assert report(phone) == ComplianceState.COMPLIANT
    assert not ComplianceFailure.objects.filter(device=phone).exists()
    # A check-in's change is audited for the device itself.
    assert AuditEvent.objects.filter(
        verb="device.compliance_change",
        target_id=str(phone.pk),
        changes__compliance_state=["noncompliant", "compliant"],
    ).exists()


def test_a_rule_that_cannot_be_evaluated_puts_the_device_in_error(phone):
    ios_policy(jailbreak_blocked=True)
    assert report(phone, jailbroken=None) == ComplianceState.ERROR
    detail = device_compliance_detail(phone)
    assert [(f.rule, f.error) for f in detail.failing] == [("jailbreak_blocked", True)]
    assert "did not report" in detail.failing[0].actual


def test_a_device_that_never_reported_is_not_evaluated_until_it_does(phone):
    ios_policy(encryption_required=True)
    assert device_compliance_evaluate(phone) == ComplianceState.NOT_EVALUATED
    assert report(phone, encrypted=False) == ComplianceState.NONCOMPLIANT  # no mark action: 0 days of grace


def test_the_validity_period_makes_a_silent_device_noncompliant_whatever_its_policies(phone):
    with time_machine.travel(T0, tick=False):
        assert report(phone) == ComplianceState.COMPLIANT  # no policy, and that counts as compliant
    with time_machine.travel(T0 + timedelta(days=30), tick=False):
        compliance_sweep()
        phone.refresh_from_db()
        assert phone.compliance_state == ComplianceState.COMPLIANT
    with time_machine.travel(T0 + timedelta(days=30, minutes=1), tick=False):
        compliance_sweep()
        phone.refresh_from_db()
        assert phone.compliance_state == ComplianceState.NONCOMPLIANT
        assert ComplianceFailure.objects.get(device=phone).rule == ComplianceRule.VALIDITY
        assert report(phone) == ComplianceState.COMPLIANT


def test_devices_without_a_policy_follow_the_setting_both_ways(phone, django_capture_on_commit_callbacks):
    assert report(phone) == ComplianceState.COMPLIANT
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        compliance_settings_save(actor=SYSTEM, data={"no_policy_compliant": False})
    assert len(callbacks) == 1  # one sweep of the fleet
    phone.refresh_from_db()
    assert phone.compliance_state == ComplianceState.NONCOMPLIANT
    assert ComplianceFailure.objects.get(device=phone).rule == ComplianceRule.NO_POLICY
    with django_capture_on_commit_callbacks(execute=True):
        compliance_settings_save(actor=SYSTEM, data={"no_policy_compliant": True})
    phone.refresh_from_db()
    assert phone.compliance_state == ComplianceState.COMPLIANT
    assert AuditEvent.objects.filter(verb="compliance.settings_change").count() == 2


def test_settings_refuse_bad_input_in_sentences():
    with pytest.raises(ValidationError, match="whole number of days"):
        compliance_settings_save(actor=SYSTEM, data={"validity_days": "a month"})
    with pytest.raises(ValidationError, match="do not exist"):
        compliance_settings_save(actor=SYSTEM, data={"grace": 3})
    assert ComplianceSettings.load().validity_days == 30


# -- the action schedule -------------------------------------------------------------------------


def test_the_schedule_runs_each_action_once_on_its_day(people, phone):
    with time_machine.travel(T0, tick=False):
        policy = ios_policy(encryption_required=True, passcode_min_length=6, actions=SCHEDULE)
        report(phone, encrypted=False, passcode_length=4)
        assert compliance_actions_run() == {}
    with time_machine.travel(T0 + timedelta(hours=23, minutes=59), tick=False):
        assert compliance_actions_run() == {}
        assert mail.outbox == []
    with time_machine.travel(T0 + timedelta(days=1), tick=False):
        assert compliance_actions_run() == {"email": 1, "push": 1}
        assert compliance_actions_run() == {}  # the second run finds nothing due
    (message,) = mail.outbox
    assert message.to == [people.employee.email]
    assert phone.name in message.subject
    assert "Please fix this before Friday." in message.body
    assert "Your device's storage is not encrypted." in message.body
    assert "Your passcode is too short: 4 characters; it must have at least 6 characters." in message.body
    assert "Data protection is enabled" in message.body  # iPhone steps
    assert "BitLocker" not in message.body
    html = message.alternatives[0][0]
    assert "<li>Open Settings › Face ID &amp; Passcode" in html  # noqa: RUF001
    notify = DeviceCommand.objects.get(device=phone, command_type=CommandType.NOTIFY)
    assert "Company Portal" in notify.payload["message"]
    assert phone.compliance_state == ComplianceState.IN_GRACE

    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        assert compliance_actions_run() == {"mark_noncompliant": 1}
        phone.refresh_from_db()
        assert phone.compliance_state == ComplianceState.NONCOMPLIANT
        detail = device_compliance_detail(phone)
        assert [a.text for a in detail.next_actions] == [
            "Device locked on 7 Mar",
            "Retirement proposed to IT on 12 Mar",
        ]
    with time_machine.travel(T0 + timedelta(days=5), tick=False):
        assert compliance_actions_run() == {"lock": 1}
        assert compliance_actions_run() == {}
    lock = DeviceCommand.objects.get(device=phone, command_type=CommandType.LOCK)
    assert lock.payload["message"] == "Locked: call IT on 555-0100."
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        assert compliance_actions_run() == {"retire": 1}
        assert compliance_actions_run() == {}
    approval = RetireApproval.objects.get(device=phone)
    assert approval.status == RetireApprovalStatus.PENDING and approval.policy == policy
    assert "Minimum passcode length" in approval.reason
    phone.refresh_from_db()
    assert phone.lifecycle_state == LifecycleState.ENROLLED  # proposed, never executed
    assert len(mail.outbox) == 1
    assert DeviceCommand.objects.filter(device=phone, command_type=CommandType.NOTIFY).count() == 1
    verbs = sorted(AuditEvent.objects.filter(verb__startswith="compliance.action.").values_list("verb", flat=True))
    assert verbs == [f"compliance.action.{a}" for a in ("email", "lock", "mark_noncompliant", "push", "retire")]

    # Fixed: the runs are cleared, so the next failing spell runs the schedule again.
    with time_machine.travel(T0 + timedelta(days=11), tick=False):
        assert report(phone) == ComplianceState.COMPLIANT
        assert not ComplianceActionRun.objects.filter(device=phone).exists()
        report(phone, encrypted=False)
    with time_machine.travel(T0 + timedelta(days=12), tick=False):
        assert compliance_actions_run() == {"email": 1, "push": 1}


def test_a_mail_server_that_is_down_leaves_the_email_for_the_next_run(phone, settings, monkeypatch):
    with time_machine.travel(T0, tick=False):
        ios_policy(encryption_required=True, actions=[{"action": "email", "days_after": 0}])
        report(phone, encrypted=False)

        def down(self, messages):
            raise ConnectionRefusedError("connection refused")

        monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", down)
        assert compliance_actions_run() == {}
        assert not ComplianceActionRun.objects.exists()
        monkeypatch.undo()
        assert compliance_actions_run() == {"email": 1}
    assert len(mail.outbox) == 1


def test_a_run_stopped_mid_way_sends_no_email_twice_when_it_runs_again(phone, monkeypatch):
    """A worker killed between two emails: the emails already sent stay recorded (each is committed
    with its run row on its own), so the redelivered run sends only the rest."""
    phones = [phone, *(DeviceFactory(scope=phone.scope, primary_user=phone.primary_user) for _ in range(2))]
    with time_machine.travel(T0, tick=False):
        ios_policy(encryption_required=True, actions=[{"action": "email", "days_after": 0}])
        for device in phones:
            report(device, encrypted=False)
        real_send = mail.backends.locmem.EmailBackend.send_messages

        def killed_at_the_second(self, messages):
            if len(mail.outbox) == 1:
                raise SystemExit("worker killed")  # not an Exception: nothing in the run catches it
            return real_send(self, messages)

        monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", killed_at_the_second)
        with pytest.raises(SystemExit):
            compliance_actions_run()
        assert len(mail.outbox) == 1
        assert ComplianceActionRun.objects.count() == 1
        monkeypatch.undo()
        assert compliance_actions_run() == {"email": 2}
    assert len(mail.outbox) == 3
    assert sorted(m.subject for m in mail.outbox) == sorted({m.subject for m in mail.outbox})


def test_retirement_is_approved_only_by_someone_who_may_retire_the_device(people, phone):
    with time_machine.travel(T0, tick=False):
        ios_policy(encryption_required=True, actions=[{"action": "retire", "days_after": 0}])
        report(phone, encrypted=False)
        compliance_actions_run()
    approval = RetireApproval.objects.get(device=phone)
    with pytest.raises(PermissionDenied, match="permission to retire"):
        retire_approval_decide(actor=Actor.for_user(people.helpdesk_a), approval=approval, approve=True)
    with pytest.raises(PermissionDenied):
        retire_approval_decide(actor=SYSTEM, approval=approval, approve=True)
    phone.refresh_from_db()
    assert phone.lifecycle_state == LifecycleState.ENROLLED

    retire_approval_decide(actor=Actor.for_user(people.global_admin), approval=approval, approve=True)
    approval.refresh_from_db()
    phone.refresh_from_db()
    assert (approval.status, approval.decided_by) == (RetireApprovalStatus.APPROVED, people.global_admin)
    assert phone.lifecycle_state == LifecycleState.RETIRING
    assert AuditEvent.objects.filter(verb="compliance.retire_approval.approve", target_id=str(phone.pk)).exists()
    # The retirement stage carries it out: a request record with its retire command.
    from retirement.models import RetirementRequest

    request = RetirementRequest.objects.get(device=phone)
    assert (request.source, request.action, request.status) == ("noncompliance", "retire", "command_sent")
    assert request.command.command_type == "retire"
    with pytest.raises(ValidationError, match="already"):
        retire_approval_decide(actor=Actor.for_user(people.global_admin), approval=approval, approve=False)


# -- policies ------------------------------------------------------------------------------------


def test_policy_save_validates_in_sentences_and_writes_nothing():
    with pytest.raises(ValidationError) as caught:
        policy_save(
            actor=SYSTEM,
            data={"name": "Bad", "platform": "ios", "os_min": "17 beta", "blocked_apps": "com.ok.app, not an id!"},
            actions=[{"action": "email", "days_after": 1}, {"action": "email", "days_after": 1}],
        )
    errors = caught.value.message_dict
    assert "is not a version number" in errors["os_min"][0]
    assert "not app identifiers: id!" in errors["blocked_apps"][0]
    assert "already in the schedule" in errors["actions"][0]
    with pytest.raises(ValidationError, match="below the minimum"):
        policy_save(actor=SYSTEM, data={"name": "Range", "platform": "ios", "os_min": "17.2", "os_max": "17.1"})
    assert not CompliancePolicy.objects.exists()


def test_policy_save_defaults_bumps_version_and_schedules_one_reevaluation(phone, django_capture_on_commit_callbacks):
    report(phone)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        policy = ios_policy(blocked_apps="com.Example.Game\ncom.example.game com.microsoft.teams")
    assert len(callbacks) == 1
    assert policy.blocked_apps == ["com.Example.Game", "com.microsoft.teams"]
    assert [(a.action, a.days_after) for a in policy.actions.all()] == [("mark_noncompliant", 0)]
    phone.refresh_from_db()
    assert phone.compliance_state == ComplianceState.NONCOMPLIANT  # Teams is blocked: the task re-evaluated it
    assert policy.version == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        policy = policy_save(actor=SYSTEM, policy=policy, data={"blocked_apps": ["com.example.game"]})
    assert (len(callbacks), policy.version) == (1, 2)
    phone.refresh_from_db()
    assert phone.compliance_state == ComplianceState.COMPLIANT
    policy = policy_save(actor=SYSTEM, policy=policy, data={"description": "Games are not allowed."})
    assert policy.version == 2  # not a rule
    assert AuditEvent.objects.filter(verb="policy.change", target_id=str(policy.pk)).count() == 2


def test_editing_a_message_keeps_the_run_history(phone):
    policy = ios_policy(encryption_required=True, actions=[{"action": "email", "days_after": 0}])
    report(phone, encrypted=False)
    assert compliance_actions_run() == {"email": 1}
    policy_save(actor=SYSTEM, policy=policy, data={}, actions=[{"action": "email", "days_after": 0, "message": "New"}])
    assert NoncomplianceAction.objects.get(policy=policy).message == "New"
    assert compliance_actions_run() == {}
    assert len(mail.outbox) == 1


def test_deleting_a_policy_reevaluates_the_devices_it_applied_to(phone, django_capture_on_commit_callbacks):
    policy = ios_policy(encryption_required=True)
    assert report(phone, encrypted=False) == ComplianceState.NONCOMPLIANT
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        policy_delete(actor=SYSTEM, policy=policy)
    assert len(callbacks) == 1
    phone.refresh_from_db()
    assert phone.compliance_state == ComplianceState.COMPLIANT


def test_a_scoped_policy_leaves_other_scopes_alone(people):
    ios_policy(scope=people.scope_b, encryption_required=True)
    assert report(people.device_a, encrypted=False) == ComplianceState.COMPLIANT
    assert report(people.device_b, encrypted=False) == ComplianceState.NONCOMPLIANT


# -- the check-in hook over HTTP -----------------------------------------------------------------


def _post(client, secret, body):
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            "/agent/v1/checkin",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {secret}",
        )
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def test_checkin_over_http_flips_the_state_and_an_unchanged_compliant_one_adds_no_query(client, scope_a):
    manager = StaffFactory(username="enrolment-manager")
    _profile, token = enrollment_profile_create(
        actor=SYSTEM, name="Phones", enrollment_manager=manager, scope=scope_a, capacity=10
    )
    policy_save(
        actor=SYSTEM,
        data={"name": "Android baseline", "platform": "android", "encryption_required": True},
        assignments=[{"target": "all_devices"}],
    )
    identity = {"platform": "android", "name": "PHONE-1", "serial_number": "R58N1", "os_version": "14"}
    body = {"enrollment_token": token, "device": identity, "inventory": inventory(os_version="14")}
    enrolled = client.post("/agent/v1/enroll", json.dumps(body), content_type="application/json")
    assert enrolled.status_code == 201, enrolled.content
    secret = enrolled.json()["device_secret"]
    device = Device.objects.get(uuid=enrolled.json()["device_id"])
    assert device.compliance_state == ComplianceState.COMPLIANT  # evaluated in the enrolment reply

    _post(client, secret, {"inventory": inventory(os_version="14", encrypted=False)})
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.NONCOMPLIANT
    assert ComplianceFailure.objects.get(device=device).rule == ComplianceRule.ENCRYPTION_REQUIRED

    _post(client, secret, {"inventory": inventory(os_version="14")})
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.COMPLIANT
    # Unchanged and compliant: the two queries of a check-in without compliance (find, stamp).
    assert _post(client, secret, {"inventory": inventory(os_version="14")}) == 2


def test_the_checkin_hook_itself_adds_zero_queries_for_an_unchanged_compliant_device(phone, django_assert_num_queries):
    ios_policy(encryption_required=True)
    assert report(phone) == ComplianceState.COMPLIANT
    with django_assert_num_queries(0):
        device_compliance_on_checkin(device=phone, inventory_changed=False, first=False)


# -- the sweep's cost ----------------------------------------------------------------------------


def _fleet(scope, count):
    """``count`` iPhones with inventories, in a repeating pattern: compliant, unencrypted, short passcode."""
    start = Device.objects.count()
    now = datetime.now(UTC)
    devices = Device.objects.bulk_create(
        Device(
            uuid=uuid.uuid4(), name=f"FLEET-{i}", platform="ios", os_version="17.4", os_version_key=version_key("17.4"),
            ownership=Ownership.CORPORATE, scope=scope, enrollment_method=EnrollmentMethod.ADMIN_BULK,
            lifecycle_state=LifecycleState.ENROLLED, serial_number=f"FLEET{i:06d}", last_checkin_at=now,
        )
        for i in range(start, start + count)
    )  # fmt: skip
    DeviceInventory.objects.bulk_create(
        DeviceInventory(
            device=device, encrypted=i % 3 != 1, passcode_set=True, passcode_quality="numeric",
            passcode_length=4 if i % 3 == 2 else 6, jailbroken=False, reported_at=now,
        )
        for i, device in enumerate(devices)
    )  # fmt: skip


def _sweep_queries(batch):
    ComplianceFailure.objects.all().delete()
    Device.objects.update(compliance_state=ComplianceState.NOT_EVALUATED)
    with CaptureQueriesContext(connection) as first:
        compliance_sweep(batch=batch)
    with CaptureQueriesContext(connection) as second:
        result = compliance_sweep(batch=batch)
    assert result["changed"] == 0
    return _statements(first), _statements(second)


def _statements(captured):
    # Each batch's transaction is a savepoint inside the test's transaction (BEGIN/COMMIT in production).
    return sum(1 for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT")))


def test_the_sweep_costs_a_fixed_number_of_queries_per_batch_whatever_the_fleet_size(scope_a):
    policy_save(
        actor=SYSTEM,
        data={"name": "Phones", "platform": "ios", "encryption_required": True, "passcode_min_length": 6},
        actions=[{"action": "mark_noncompliant", "days_after": 2}],
        assignments=[{"target": "all_devices"}],
    )
    _fleet(scope_a, 12)
    ContentType.objects.get_for_model(Device)  # cached for the whole process, as in production
    ComplianceSettings.load()  # created once, on the first load
    two_batches = _sweep_queries(6)
    four_batches = _sweep_queries(3)
    _fleet(scope_a, 12)
    two_larger_batches = _sweep_queries(12)  # twice the fleet, the same number of batches

    assert two_batches == two_larger_batches
    per_batch_first = (four_batches[0] - two_batches[0]) // 2
    per_batch_unchanged = (four_batches[1] - two_batches[1]) // 2
    assert four_batches[0] - two_batches[0] == 2 * per_batch_first
    # Read devices (inventory and policy matches joined) and their failures; write failures, one
    # UPDATE per new state (compliant, in grace), one bulk audit insert.
    assert per_batch_first == 6
    # Nothing changed: the two reads, no write.
    assert per_batch_unchanged == 2
    assert ComplianceSnapshot.objects.filter(scope=scope_a, state=ComplianceState.IN_GRACE).get().count == 16


# -- provisioning deadlines ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "state"),
    [(ProvisioningAction.MARK_NONCOMPLIANT, "noncompliant"), (ProvisioningAction.NOTIFY, "compliant")],
)
def test_the_engine_agrees_with_the_provisioning_sweep(scope_a, action, state):
    """A profile that marks late devices noncompliant is an organisation rule: evaluations keep it so."""
    _profile, token = enrollment_profile_create(
        actor=SYSTEM,
        name="Scanners",
        enrollment_manager=StaffFactory(),
        scope=scope_a,
        capacity=10,
        provisioning_minutes=60,
        provisioning_action=action,
    )
    identity = {"platform": "android", "name": "SCANNER-1", "serial_number": "SER1", "os_version": "14"}
    device, _secret = device_enroll(identity=identity, token=token, inventory=inventory(os_version="14"))
    device_checkin(device=device, inventory=None, digest=None, first=True)  # as the enrolment reply does
    device.refresh_from_db()
    assert device.compliance_state == ComplianceState.COMPLIANT
    Device.objects.filter(pk=device.pk).update(provisioning_deadline_at=datetime.now(UTC) - timedelta(minutes=1))
    device_provisioning_overdue_sweep()
    compliance_sweep()
    device.refresh_from_db()
    assert device.compliance_state == state
    if state == "noncompliant":
        failure = ComplianceFailure.objects.get(device=device)
        assert (failure.rule, failure.policy) == (ComplianceRule.PROVISIONING_ON_TIME, None)


# -- the detail selector and the beat tasks ------------------------------------------------------


def test_the_detail_costs_the_same_queries_at_any_fleet_size(phone, scope_a):
    ios_policy(encryption_required=True, actions=SCHEDULE)
    report(phone, encrypted=False)

    def detail_queries():
        with CaptureQueriesContext(connection) as ctx:
            detail = device_compliance_detail(phone)
        return len(ctx.captured_queries), detail

    small, detail = detail_queries()
    _fleet(scope_a, 30)
    compliance_sweep()
    large, _ = detail_queries()
    assert small == large <= 8
    assert detail.policies == ["iOS baseline"]
    assert [(f.rule, f.policy_name) for f in detail.failing] == [("encryption_required", "iOS baseline")]
    assert detail.state_label == "In grace period"
    assert [a.action for a in detail.next_actions] == ["email", "push", "mark_noncompliant", "lock", "retire"]


def test_the_beat_tasks_run_the_services(people, phone):
    from policies.tasks import compliance_actions_task, compliance_sweep_task

    with time_machine.travel(T0, tick=False):
        ios_policy(encryption_required=True, actions=[{"action": "push", "days_after": 0}])
        report(phone, encrypted=False)
        assert compliance_sweep_task.delay().get() == {"devices": 2, "changed": 0, "batches": 1}
        assert compliance_actions_task.delay().get() == {"push": 1}
    snapshot = ComplianceSnapshot.objects.filter(day=T0.date(), state=ComplianceState.NONCOMPLIANT)
    assert {row.scope_id: row.count for row in snapshot} == {people.scope_a.pk: 1, people.scope_b.pk: 0}
