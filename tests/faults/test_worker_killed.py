"""A Celery worker SIGKILLed in the middle of a profile fan-out over 3,000 devices.

A real worker (a subprocess, prefork pool) on a throwaway Redis broker and the test's PostgreSQL
database takes the fan-out message; once some but not all of its batches are committed, the whole
worker (master and pool child) is killed. The message was never acknowledged (``acks_late``), so
Redis hands it to the restarted worker after the visibility timeout; the re-run skips the devices
whose delivery is already at the profile's version. Every device ends with exactly one install
command for the profile: none lost, none queued twice.
"""

from __future__ import annotations

import uuid

import pytest
from django.db.models import Count
from django.utils import timezone

from devices.choices import CommandStatus, CommandType, EnrollmentMethod, LifecycleState, Ownership
from devices.models import Device, DeviceCommand
from mdm_portal.core.models import AuditEvent, OutboxMessage, Scope
from policies.choices import DeliveryState, ProfileKind
from policies.models import ProfileDelivery
from policies.services.profiles import profile_save, subject_of
from tests.factories import SYSTEM

from .conftest import celery_using, needs_postgres, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEVICES = 3000
BATCH = 100  # the worker's fan-out batch: 30 batches, each committed on its own


def build_fleet(n: int) -> None:
    scope = Scope.objects.create(name="Faults", slug="faults")
    now = timezone.now()
    Device.objects.bulk_create(
        Device(
            uuid=uuid.uuid4(), name=f"FAULT-{i:05d}", platform=("ios", "android")[i % 2], os_version="17.4",
            ownership=Ownership.CORPORATE, scope=scope, serial_number=f"FAULT{i:08d}",
            enrollment_method=EnrollmentMethod.ADMIN_BULK, lifecycle_state=LifecycleState.ENROLLED,
            last_checkin_at=now,
        )
        for i in range(n)
    )  # fmt: skip


def test_a_worker_killed_mid_fanout_completes_after_restart_without_duplicates(redis_broker, celery_worker_factory):
    needs_postgres()
    build_fleet(DEVICES)
    with celery_using(redis_broker.url):
        profile = profile_save(
            actor=SYSTEM,
            data={"name": "Passcode for everyone", "kind": ProfileKind.PASSCODE, "scope": None},
            settings={"require_passcode": True, "min_length": 6},
            assignments=[{"target": "all_devices"}],
        )
    assert not OutboxMessage.objects.exists(), "the fan-out message reached the broker at commit"
    deliveries = ProfileDelivery.objects.filter(profile=profile)

    worker = celery_worker_factory(redis_broker.url, fanout_batch=BATCH, batch_pause=0.1)
    worker.start()
    wait_for(
        lambda: deliveries.count() >= 5 * BATCH, timeout=30, interval=0.02, what=lambda: "five batches\n" + worker.log()
    )
    worker.kill()
    done_when_killed = deliveries.count()
    assert 0 < done_when_killed < DEVICES, f"the kill should land mid-run, not after {done_when_killed} deliveries"
    assert not AuditEvent.objects.filter(verb="profile.fanout").exists()

    restarted = celery_worker_factory(redis_broker.url, fanout_batch=BATCH)
    restarted.start()
    wait_for(
        lambda: AuditEvent.objects.filter(verb="profile.fanout").exists(),
        timeout=40,
        interval=0.2,
        what=lambda: "the redelivered fan-out to finish\n" + restarted.log(),
    )
    restarted.kill()

    # Every device: one delivery at the profile's version, and exactly one install command for it.
    assert deliveries.count() == DEVICES
    assert set(deliveries.values_list("state", flat=True)) == {DeliveryState.PENDING}
    commands = DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE, subject=subject_of(profile))
    per_device = dict(commands.values("device_id").annotate(n=Count("pk")).values_list("device_id", "n"))
    assert len(per_device) == DEVICES, f"{DEVICES - len(per_device)} devices lost their command"
    assert set(per_device.values()) == {1}, "a device got its command twice"
    assert set(commands.values_list("status", flat=True)) == {CommandStatus.QUEUED}
    assert set(deliveries.values_list("command_id", flat=True)) == set(commands.values_list("pk", flat=True))
    [event] = AuditEvent.objects.filter(verb="profile.fanout")
    # The re-run did only what the killed run had not committed.
    assert event.changes[DeliveryState.PENDING] == DEVICES - done_when_killed
