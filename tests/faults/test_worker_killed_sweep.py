"""A Celery worker SIGKILLed in the middle of the compliance sweep, and in the middle of the noncompliance actions.

A real worker (a subprocess, prefork pool) on a throwaway Redis broker and the test's PostgreSQL
database takes the task message; once some but not all of its batches are committed, the whole
worker is killed. The message was never acknowledged (``acks_late``), so Redis hands it to the
restarted worker after the visibility timeout, and the re-run does only what the killed run had not
committed:

* the sweep: every device ends evaluated with the right state, each state change is audited once
  (the killed run's audit rows are exactly its committed batches), the day's snapshot is written
  once with the right counts, and the sweep queues no command;
* the actions (lock and push, due at once): every noncompliant device ends with exactly one lock and
  one notify command, each with its run row and audit event: none lost, none queued twice.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from django.db.models import Count
from django.utils import timezone

from devices.choices import CommandType, ComplianceState, EnrollmentMethod, LifecycleState, Ownership
from devices.models import Device, DeviceCommand, DeviceInventory
from devices.versions import version_key
from mdm_portal.core.models import AuditEvent, Scope
from policies.models import ComplianceActionRun, ComplianceFailure, ComplianceSnapshot
from policies.services import compliance_sweep, policy_save
from policies.tasks import compliance_actions_task, compliance_sweep_task
from tests.factories import SYSTEM

from .conftest import celery_using, needs_postgres, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SWEEP_TASK = "policies.tasks.compliance_sweep_task"
ACTIONS_TASK = "policies.tasks.compliance_actions_task"


def encryption_policy() -> None:
    """Encryption required on iPhones; no grace period (noncompliant at once); lock and push at once.

    Saved before the fleet exists, so its own re-evaluation (run in-process) touches no device.
    """
    policy_save(
        actor=SYSTEM,
        data={"name": "Encrypted iPhones", "platform": "ios", "scope": None, "encryption_required": True},
        actions=[{"action": "lock", "days_after": 0}, {"action": "push", "days_after": 0}],
        assignments=[{"target": "all_devices"}],
    )


def build_fleet(n: int) -> tuple[set[int], set[int]]:
    """``n`` enrolled iPhones that reported; every third one is not encrypted. Returns (compliant, failing) ids."""
    scope = Scope.objects.create(name="Faults", slug="faults")
    now = timezone.now()
    devices = Device.objects.bulk_create(
        Device(
            uuid=uuid.uuid4(), name=f"SWEEP-{i:05d}", platform="ios", os_version="17.4",
            os_version_key=version_key("17.4"), ownership=Ownership.CORPORATE, scope=scope,
            serial_number=f"SWEEP{i:08d}", enrollment_method=EnrollmentMethod.ADMIN_BULK,
            lifecycle_state=LifecycleState.ENROLLED, last_checkin_at=now,
        )
        for i in range(n)
    )  # fmt: skip
    DeviceInventory.objects.bulk_create(
        DeviceInventory(
            device=device, encrypted=i % 3 != 1, passcode_set=True, passcode_quality="alphanumeric",
            passcode_length=8, jailbroken=False, reported_at=now,
        )
        for i, device in enumerate(devices)
    )  # fmt: skip
    failing = {device.pk for i, device in enumerate(devices) if i % 3 == 1}
    return {device.pk for device in devices} - failing, failing


def sweep_audit() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(verb="device.compliance_change", actor_label="system:compliance_sweep"))


def audited_devices(events: list[AuditEvent]) -> list[int]:
    return sorted(pk for event in events for ids in event.changes["devices"].values() for pk in ids)


def test_a_worker_killed_mid_sweep_completes_after_restart_without_doubling_anything(
    redis_broker, celery_worker_factory
):
    needs_postgres()
    devices, batch = 3000, 100  # 30 batches, each committed on its own
    encryption_policy()
    compliant, failing = build_fleet(devices)
    with celery_using(redis_broker.url):
        compliance_sweep_task.apply_async()
    evaluated = Device.objects.exclude(compliance_state=ComplianceState.NOT_EVALUATED)

    worker = celery_worker_factory(redis_broker.url, sweep_batch=batch, batch_pause=0.1)
    worker.start()
    wait_for(
        lambda: evaluated.count() >= 5 * batch, timeout=30, interval=0.02, what=lambda: "five batches\n" + worker.log()
    )
    worker.kill()
    done_when_killed = evaluated.count()
    assert 0 < done_when_killed < devices, f"the kill should land mid-sweep, not after {done_when_killed} devices"
    assert done_when_killed % batch == 0, "a batch was committed in part"
    # The killed run's audit is exactly its committed batches: nothing audited that was rolled back.
    assert audited_devices(sweep_audit()) == sorted(evaluated.values_list("pk", flat=True))
    assert not ComplianceSnapshot.objects.exists(), "the killed sweep wrote a snapshot"
    assert worker.succeeded(SWEEP_TASK) == 0

    restarted = celery_worker_factory(redis_broker.url, sweep_batch=batch)
    restarted.start()
    wait_for(
        lambda: restarted.succeeded(SWEEP_TASK) >= 1,
        timeout=40,
        interval=0.2,
        what=lambda: "the redelivered sweep to finish\n" + restarted.log(),
    )
    restarted.kill()

    # Every device evaluated, with the right state and failures.
    states = dict(Device.objects.values_list("pk", "compliance_state"))
    assert states == {pk: ComplianceState.COMPLIANT for pk in compliant} | {
        pk: ComplianceState.NONCOMPLIANT for pk in failing
    }
    failures = ComplianceFailure.objects.values_list("device_id", "rule")
    assert sorted(failures) == sorted((pk, "encryption_required") for pk in failing)

    # Each device's change audited exactly once, and the counts say what happened.
    events = sweep_audit()
    assert audited_devices(events) == sorted(compliant | failing)
    transitions: Counter = Counter()
    for event in events:
        transitions.update(event.changes["transitions"])
        assert event.changes["count"] == sum(event.changes["transitions"].values())
    assert transitions == {"not_evaluated -> compliant": len(compliant), "not_evaluated -> noncompliant": len(failing)}

    # The day's snapshot: one row per state of the scope, the right counts.
    snapshot = ComplianceSnapshot.objects.filter(day=timezone.localdate())
    assert ComplianceSnapshot.objects.count() == snapshot.count() == len(ComplianceState.values)
    counts = dict(snapshot.values_list("state", "count"))
    assert counts == dict.fromkeys(ComplianceState.values, 0) | {
        ComplianceState.COMPLIANT: len(compliant),
        ComplianceState.NONCOMPLIANT: len(failing),
    }
    # The sweep itself queues nothing: commands come from the actions (the test below).
    assert not DeviceCommand.objects.exists()
    assert not ComplianceActionRun.objects.exists()


def test_a_worker_killed_mid_actions_completes_after_restart_without_a_command_twice(
    redis_broker, celery_worker_factory
):
    needs_postgres()
    chunk = 25
    encryption_policy()
    _compliant, failing = build_fleet(1500)
    compliance_sweep()  # in-process: the 500 unencrypted iPhones are noncompliant, both actions are due
    assert set(Device.objects.filter(compliance_state=ComplianceState.NONCOMPLIANT).values_list("pk", flat=True)) == (
        failing
    )
    expected = 2 * len(failing)  # a lock and a notify command each
    with celery_using(redis_broker.url):
        compliance_actions_task.apply_async()
    commands = DeviceCommand.objects.filter(command_type__in=[CommandType.LOCK, CommandType.NOTIFY])

    worker = celery_worker_factory(redis_broker.url, actions_chunk=chunk, batch_pause=0.1)
    worker.start()
    wait_for(
        lambda: commands.count() >= 5 * chunk, timeout=30, interval=0.02, what=lambda: "five chunks\n" + worker.log()
    )
    worker.kill()
    queued_when_killed = commands.count()
    assert 0 < queued_when_killed < expected, f"the kill should land mid-run, not after {queued_when_killed} commands"
    # Committed together: a command exists exactly when its run row does.
    assert ComplianceActionRun.objects.count() == queued_when_killed
    assert worker.succeeded(ACTIONS_TASK) == 0

    restarted = celery_worker_factory(redis_broker.url, actions_chunk=chunk)
    restarted.start()
    wait_for(
        lambda: restarted.succeeded(ACTIONS_TASK) >= 1,
        timeout=40,
        interval=0.2,
        what=lambda: "the redelivered actions run to finish\n" + restarted.log(),
    )
    restarted.kill()

    # Every noncompliant device: exactly one lock and one notify command; no other device any.
    for command_type in (CommandType.LOCK, CommandType.NOTIFY):
        mine = commands.filter(command_type=command_type)
        per_device = dict(mine.values("device_id").annotate(n=Count("pk")).values_list("device_id", "n"))
        assert set(per_device) == failing, f"{len(failing - set(per_device))} devices lost their {command_type}"
        assert set(per_device.values()) == {1}, f"a device got its {command_type} command twice"
    # One run row per device and action, naming the command it queued; one audit event per command.
    runs = ComplianceActionRun.objects.select_related("action")
    assert runs.count() == expected
    uuids = {str(u) for u in commands.values_list("uuid", flat=True)}
    assert {run.outcome.rsplit(" ", 1)[-1] for run in runs} == uuids
    for verb in ("compliance.action.lock", "compliance.action.push", "device.command.lock", "device.command.notify"):
        targets = Counter(AuditEvent.objects.filter(verb=verb).values_list("target_id", flat=True))
        assert targets == Counter(str(pk) for pk in failing), verb
