"""Provisioning time limits: the deadline set at enrolment, the check-in that meets it, the sweep."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.choices import CommandStatus, ComplianceState, ProvisioningAction
from devices.models import Device
from devices.services import device_command_queue, device_command_results_record
from devices.services.checkin import device_checkin
from devices.services.enrollment import device_enroll, enrollment_profile_create
from devices.services.provisioning import device_provisioning_overdue_sweep
from devices.tasks import provisioning_overdue_sweep
from mdm_portal.core.models import AuditEvent
from mdm_portal.schedules import SCHEDULES
from tests.factories import SYSTEM, DeviceFactory, StaffFactory

from .protocol.conftest import identity, inventory

pytestmark = pytest.mark.django_db


def make_profile(scope, *, minutes=60, action=ProvisioningAction.NOTIFY, primary_user=None):
    return enrollment_profile_create(
        actor=SYSTEM,
        name=f"Profile {minutes} {action}",
        enrollment_manager=StaffFactory(),
        scope=scope,
        capacity=100,
        provisioning_minutes=minutes,
        provisioning_action=action,
        primary_user=primary_user,
    )


def enrol(token, n=1, **overrides):
    device, _secret = device_enroll(
        identity=identity(serial_number=f"SER{n:06d}", imei="", name=f"SCANNER-{n:02d}", **overrides),
        token=token,
        inventory=inventory(),
    )
    return Device.objects.get(pk=device.pk)


def checkin(device):
    device = Device.objects.get(pk=device.pk)
    return device_checkin(device=device, inventory=None, digest=None)


def pass_deadline(*devices):
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(
        provisioning_deadline_at=timezone.now() - timedelta(minutes=1)
    )


def test_a_profile_with_a_limit_gives_the_enrolled_device_a_deadline(scope_a):
    profile, token = make_profile(scope_a, minutes=90)
    before = timezone.now()
    device = enrol(token)
    assert before + timedelta(minutes=90) <= device.provisioning_deadline_at <= timezone.now() + timedelta(minutes=90)
    assert device.provisioned_at is None and device.provisioning_overdue_at is None
    assert profile.provisioning_action == ProvisioningAction.NOTIFY


def test_a_checkin_with_nothing_open_marks_the_device_provisioned(scope_a):
    _profile, token = make_profile(scope_a)
    device = enrol(token)
    assert checkin(device)["commands"] == []
    device.refresh_from_db()
    assert device.provisioned_at is not None
    event = AuditEvent.objects.get(verb="device.provisioned", target_id=str(device.pk))
    assert event.actor_label == f"device {device.uuid}" and event.scope_id == device.scope_id
    # Later check-ins neither move the time nor audit again.
    first = device.provisioned_at
    checkin(device)
    device.refresh_from_db()
    assert device.provisioned_at == first
    assert AuditEvent.objects.filter(verb="device.provisioned", target_id=str(device.pk)).count() == 1


def test_an_open_command_keeps_the_device_unprovisioned_until_acknowledged_and_the_next_checkin(scope_a):
    _profile, token = make_profile(scope_a)
    device = enrol(token)
    command = device_command_queue(actor=SYSTEM, device=device, command_type="sync")

    assert [c["id"] for c in checkin(device)["commands"]] == [str(command.uuid)]
    assert Device.objects.get(pk=device.pk).provisioned_at is None
    # Sent but unanswered: still open.
    assert checkin(device)["commands"] == []
    assert Device.objects.get(pk=device.pk).provisioned_at is None

    device_command_results_record(device=device, results=[{"id": str(command.uuid), "status": "acknowledged"}])
    command.refresh_from_db()
    assert command.status == CommandStatus.ACKNOWLEDGED
    assert Device.objects.get(pk=device.pk).provisioned_at is None
    checkin(device)
    assert Device.objects.get(pk=device.pk).provisioned_at is not None


def test_the_sweep_flags_only_overdue_unprovisioned_devices_and_notifies_once(scope_a, people, mailoutbox):
    owner = people.employee
    _profile, token = make_profile(scope_a, primary_user=owner)
    overdue, provisioned, in_time = enrol(token, 1), enrol(token, 2), enrol(token, 3)
    checkin(provisioned)
    pass_deadline(overdue, provisioned)
    _unlimited_profile, unlimited_token = make_profile(scope_a, minutes=None)
    unlimited = enrol(unlimited_token, 4)
    assert unlimited.provisioning_deadline_at is None
    plain = DeviceFactory(scope=scope_a)

    assert provisioning_overdue_sweep.delay().get() == 1

    flagged = set(Device.objects.filter(provisioning_overdue_at__isnull=False).values_list("pk", flat=True))
    assert flagged == {overdue.pk}
    overdue.refresh_from_db()
    assert overdue.compliance_state == ComplianceState.NOT_EVALUATED  # notify only
    event = AuditEvent.objects.get(verb="device.provisioning_overdue")
    assert (event.target_id, event.scope_id, event.actor_label) == (
        str(overdue.pk),
        scope_a.pk,
        "system:provisioning_overdue_sweep",
    )
    to_person, to_it = mailoutbox
    assert to_person.to == [owner.email]
    assert "SCANNER-01" in to_person.subject
    assert "global-admin@example.com" in to_it.to and owner.email not in to_it.to
    assert "SCANNER-01" in to_it.body and "SCANNER-02" not in to_it.body

    # Idempotent: nothing more is flagged, audited or mailed.
    assert device_provisioning_overdue_sweep() == 0
    assert AuditEvent.objects.filter(verb="device.provisioning_overdue").count() == 1
    assert len(mailoutbox) == 2
    for device in (unlimited, plain, in_time):
        device.refresh_from_db()
        assert device.provisioning_overdue_at is None


@pytest.mark.parametrize(
    ("action", "noncompliant", "mails"),
    [
        (ProvisioningAction.MARK_NONCOMPLIANT, True, 0),
        (ProvisioningAction.NOTIFY_AND_MARK_NONCOMPLIANT, True, 2),
        (ProvisioningAction.NOTIFY, False, 2),
    ],
)
def test_the_sweep_runs_the_profiles_action(scope_a, people, mailoutbox, action, noncompliant, mails):
    _profile, token = make_profile(scope_a, action=action, primary_user=people.employee)
    device = enrol(token)
    pass_deadline(device)
    assert device_provisioning_overdue_sweep() == 1
    device.refresh_from_db()
    assert (device.compliance_state == ComplianceState.NONCOMPLIANT) is noncompliant
    assert AuditEvent.objects.filter(verb="device.compliance_change", target_id=str(device.pk)).exists() is noncompliant
    assert len(mailoutbox) == mails


def test_a_device_provisioned_late_keeps_its_overdue_flag_but_counts_as_done(scope_a):
    _profile, token = make_profile(scope_a)
    device = enrol(token)
    pass_deadline(device)
    device_provisioning_overdue_sweep()
    checkin(device)
    device.refresh_from_db()
    assert device.provisioned_at is not None and device.provisioning_overdue_at is not None
    assert AuditEvent.objects.get(verb="device.provisioned").changes["late"] is True


def overdue_fleet(scope, profile, n):
    start = Device.objects.count()
    devices = [DeviceFactory(scope=scope, name=f"LATE-{start + i:04d}") for i in range(n)]
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(
        enrollment_profile=profile, provisioning_deadline_at=timezone.now() - timedelta(minutes=5)
    )


def sweep_queries():
    with CaptureQueriesContext(connection) as ctx:
        flagged = device_provisioning_overdue_sweep()
    return flagged, len(ctx.captured_queries)


def test_the_sweeps_query_count_does_not_grow_with_the_devices(scope_a, people, mailoutbox):
    profile, _token = make_profile(scope_a)
    overdue_fleet(scope_a, profile, 5)
    small = sweep_queries()
    overdue_fleet(scope_a, profile, 50)
    large = sweep_queries()
    assert small[0] == 5 and large[0] == 50
    assert small[1] == large[1] <= 16
    # One email to IT per sweep, whatever the number of devices.
    assert len(mailoutbox) == 2 and "50 device(s)" in mailoutbox[1].subject


def test_the_sweep_is_scheduled_every_five_minutes():
    (schedule,) = [s for s in SCHEDULES if s.task == "devices.tasks.provisioning_overdue_sweep"]
    assert schedule.every_seconds == 300


def test_the_admin_filter_lists_devices_by_provisioning(client, scope_a, people):
    _profile, token = make_profile(scope_a)
    overdue, in_progress, done = enrol(token, 1), enrol(token, 2), enrol(token, 3)
    checkin(done)
    pass_deadline(overdue)
    device_provisioning_overdue_sweep()
    client.force_login(people.global_admin)
    url = reverse("admin:devices_device_changelist")
    for value, expected in (("overdue", overdue), ("in_progress", in_progress), ("done", done)):
        response = client.get(url, {"provisioning": value})
        assert response.status_code == 200
        assert [d.pk for d in response.context["cl"].result_list] == [expected.pk], value
    page = client.get(reverse("admin:devices_device_change", args=[overdue.pk]))
    assert b"Provisioning overdue at" in page.content or b"provisioning overdue at" in page.content.lower()


def test_the_enrolment_reply_does_not_count_as_provisioned(client, scope_a):
    import json

    from tests.devices.protocol.conftest import identity

    _profile, token = make_profile(scope_a)
    response = client.post(
        "/agent/v1/enroll",
        json.dumps({"enrollment_token": token, "device": identity(serial_number="PROV-REPLY", imei="")}),
        content_type="application/json",
    )
    assert response.status_code == 201
    device = Device.objects.get(uuid=response.json()["device_id"])
    assert device.provisioning_deadline_at is not None
    assert device.provisioned_at is None
