"""The device lifecycle: which transitions are allowed, and live-device identifier uniqueness."""

import uuid

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from devices import lifecycle
from devices import services as device_services
from devices.choices import ComplianceState, EnrollmentMethod, LifecycleState, Ownership, Platform
from devices.lifecycle import TransitionNotAllowed
from devices.models import Device
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory

pytestmark = pytest.mark.django_db

State = LifecycleState

# (transition, from state) -> expected state after it; every other pair must be refused.
ALLOWED = {
    ("enroll", State.PENDING): State.ENROLLED,
    ("start_retirement", State.ENROLLED): State.RETIRING,
    ("cancel_retirement", State.RETIRING): State.ENROLLED,
    ("finish_retirement", State.RETIRING): State.RETIRED,
    ("discard", State.PENDING): State.RETIRED,
}
TRANSITIONS = ["enroll", "start_retirement", "cancel_retirement", "finish_retirement", "discard"]
REFUSED = [(t, s) for t in TRANSITIONS for s in State.values if (t, s) not in ALLOWED]


def stored_state(device) -> str:
    return Device.objects.values_list("lifecycle_state", flat=True).get(pk=device.pk)


@pytest.mark.parametrize("transition, source", list(ALLOWED))
def test_allowed_transition(scope_a, transition, source):
    device = DeviceFactory(scope=scope_a, state=source)
    events = AuditEvent.objects.count()
    result = getattr(lifecycle, transition)(device, actor=SYSTEM)
    expected = ALLOWED[(transition, source)]
    assert result.lifecycle_state == expected
    assert stored_state(device) == expected
    assert AuditEvent.objects.count() == events + 1


@pytest.mark.parametrize("transition, source", REFUSED)
def test_refused_transition(scope_a, transition, source):
    device = DeviceFactory(name="REFUSED-1", scope=scope_a, state=source)
    events = AuditEvent.objects.count()
    with pytest.raises(TransitionNotAllowed) as info:
        getattr(lifecycle, transition)(device, actor=SYSTEM)
    message = str(info.value)
    # A sentence that names the device and its current state.
    assert message.startswith(f"REFUSED-1 is {State(source).label.lower()}; it must be ")
    assert message.endswith(".")
    assert stored_state(device) == source
    assert device.lifecycle_state == source
    assert AuditEvent.objects.count() == events


def test_refusal_message_says_what_state_is_needed(scope_a):
    device = DeviceFactory(name="LAPTOP-7", scope=scope_a, state=State.PENDING)
    with pytest.raises(TransitionNotAllowed) as info:
        lifecycle.finish_retirement(device, actor=SYSTEM)
    assert str(info.value) == "LAPTOP-7 is pending enrolment; it must be retiring to finish retirement."


def test_enroll_and_retire_stamp_their_dates(scope_a):
    device = DeviceFactory(scope=scope_a, state=State.PENDING)
    assert device.enrolled_at is None
    lifecycle.enroll(device, actor=SYSTEM)
    assert Device.objects.get(pk=device.pk).enrolled_at is not None
    lifecycle.start_retirement(device, actor=SYSTEM)
    lifecycle.finish_retirement(device, actor=SYSTEM)
    stored = Device.objects.get(pk=device.pk)
    assert stored.retired_at is not None
    assert stored.retired_at >= stored.enrolled_at


def test_stale_copy_cannot_repeat_a_transition(scope_a):
    """Two requests holding the same device: only the first transition wins."""
    first = DeviceFactory(scope=scope_a, state=State.ENROLLED)
    second = Device.objects.get(pk=first.pk)
    lifecycle.start_retirement(first, actor=SYSTEM)
    with pytest.raises(TransitionNotAllowed, match="is retiring; it must be enrolled"):
        lifecycle.start_retirement(second, actor=SYSTEM)
    assert AuditEvent.objects.filter(verb="device.start_retirement", target_id=str(first.pk)).count() == 1


def test_stale_copy_sees_the_current_state_in_the_message(scope_a):
    device = DeviceFactory(scope=scope_a, state=State.RETIRING)
    stale = Device.objects.get(pk=device.pk)
    lifecycle.finish_retirement(device, actor=SYSTEM)
    with pytest.raises(TransitionNotAllowed, match="is retired"):
        lifecycle.cancel_retirement(stale, actor=SYSTEM)
    assert stored_state(device) == State.RETIRED


def test_lifecycle_state_is_not_editable_through_device_update(scope_a):
    from django.core.exceptions import ValidationError

    device = DeviceFactory(scope=scope_a, state=State.ENROLLED)
    with pytest.raises(ValidationError, match="cannot be edited"):
        device_services.device_update(actor=SYSTEM, device=device, data={"lifecycle_state": State.RETIRED})
    assert stored_state(device) == State.ENROLLED


# Identifier uniqueness among live devices ------------------------------------------------------


def register(scope, *, name="DUP", serial="", imei=""):
    return device_services.device_register(
        actor=SYSTEM,
        name=name,
        platform=Platform.ANDROID,
        ownership=Ownership.CORPORATE,
        scope=scope,
        enrollment_method=EnrollmentMethod.ADMIN_BULK,
        serial_number=serial,
        imei=imei,
    )


@pytest.mark.parametrize("state", [State.PENDING, State.ENROLLED, State.RETIRING])
def test_serial_unique_among_live_devices(scope_a, scope_b, state):
    DeviceFactory(scope=scope_a, serial_number="C02XYZ", state=state)
    devices, events = Device.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError, match="serial number C02XYZ already belongs to the device"):
        register(scope_b, serial="C02XYZ")
    assert (Device.objects.count(), AuditEvent.objects.count()) == (devices, events)


def test_serial_uniqueness_ignores_case_and_spaces(scope_a):
    register(scope_a, serial="c02xyz")
    with pytest.raises(ValidationError, match="C02XYZ"):
        register(scope_a, name="DUP-2", serial="  C02XYZ ")


@pytest.mark.parametrize("state", [State.PENDING, State.ENROLLED, State.RETIRING])
def test_imei_unique_among_live_devices(scope_a, state):
    DeviceFactory(scope=scope_a, serial_number="", imei="356938035643809", state=state)
    with pytest.raises(ValidationError, match="IMEI 356938035643809 already belongs"):
        register(scope_a, imei="356938035643809")
    assert Device.objects.filter(imei="356938035643809").count() == 1


def test_retired_device_serial_and_imei_can_be_reused(scope_a):
    old = DeviceFactory(scope=scope_a, serial_number="C02XYZ", imei="356938035643809", state=State.RETIRED)
    new = register(scope_a, name="REENROLLED", serial="C02XYZ", imei="356938035643809")
    lifecycle.enroll(new, actor=SYSTEM)
    assert Device.objects.filter(serial_number="C02XYZ").count() == 2
    assert stored_state(old) == State.RETIRED
    assert stored_state(new) == State.ENROLLED
    # ...but only one live record: a second live one is still refused.
    with pytest.raises(ValidationError, match="C02XYZ"):
        register(scope_a, name="THIRD", serial="C02XYZ")


@pytest.mark.django_db(transaction=True)
def test_the_database_still_refuses_a_second_live_serial_that_skips_the_service(scope_a):
    DeviceFactory(scope=scope_a, serial_number="C02RACE")
    clone = Device.objects.get(serial_number="C02RACE")
    clone.pk, clone.uuid = None, uuid.uuid4()
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()


def test_discarded_device_serial_can_be_reused(scope_a):
    pending = register(scope_a, serial="PRE-REG-1")
    lifecycle.discard(pending, actor=SYSTEM)
    assert register(scope_a, name="REAL", serial="PRE-REG-1").lifecycle_state == State.PENDING


def test_several_retired_devices_may_share_a_serial(scope_a):
    for _ in range(3):
        DeviceFactory(scope=scope_a, serial_number="RECYCLED", state=State.RETIRED)
    assert Device.objects.filter(serial_number="RECYCLED", lifecycle_state=State.RETIRED).count() == 3


def test_blank_identifiers_are_not_unique(scope_a):
    register(scope_a, name="NO-SERIAL-1")
    register(scope_a, name="NO-SERIAL-2")
    assert Device.objects.filter(serial_number="", imei="").count() == 2


def test_a_retired_device_leaves_the_compliance_counts(client, people, scope_a):
    device = DeviceFactory(name="GONE-1", scope=scope_a, state=State.RETIRING)
    Device.objects.filter(pk=device.pk).update(compliance_state=ComplianceState.NONCOMPLIANT)
    device.refresh_from_db()
    lifecycle.finish_retirement(device, actor=SYSTEM)

    assert Device.objects.get(pk=device.pk).compliance_state == ComplianceState.NOT_EVALUATED
    event = AuditEvent.objects.get(verb="device.finish_retirement", target_id=str(device.pk))
    assert event.changes["compliance_state"] == [ComplianceState.NONCOMPLIANT, ComplianceState.NOT_EVALUATED]
    client.force_login(people.global_admin)
    noncompliant = client.get(reverse("admin:devices_device_changelist") + "?compliance_state__exact=noncompliant")
    assert "GONE-1" not in noncompliant.content.decode()
