"""The check-in path's query count does not grow with the fleet."""

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import EnrollmentMethod, LifecycleState, Ownership
from devices.models import Device
from devices.services import device_command_queue
from devices.services.checkin import device_checkin
from devices.services.enrollment import device_enroll
from tests.factories import SYSTEM

from .conftest import identity, inventory

pytestmark = pytest.mark.django_db


def grow_fleet(scope, n):
    start = Device.objects.count()
    Device.objects.bulk_create(
        Device(
            uuid=uuid.uuid4(), name=f"FILL-{i}", platform="ios", ownership=Ownership.CORPORATE, scope=scope,
            enrollment_method=EnrollmentMethod.ADMIN_BULK, lifecycle_state=LifecycleState.ENROLLED,
            serial_number=f"FILL{i:06d}",
        )
        for i in range(start, start + n)
    )  # fmt: skip


def checkin_queries(client, secret, body):
    with CaptureQueriesContext(connection) as ctx:
        response = client.post(
            "/agent/v1/checkin",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {secret}",
        )
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries), response.json()


def enrol(token):
    """Enrol as the enrolment endpoint does: the service, then the reply's first check-in (which evaluates)."""
    device, secret = device_enroll(identity=identity(), token=token, inventory=inventory())
    device_checkin(device=device, inventory=None, digest=None, first=True)
    return device, secret


def test_unchanged_checkin_costs_two_queries_at_any_fleet_size(client, token, scope_a):
    _device, secret = enrol(token)
    grow_fleet(scope_a, 10)
    small, reply = checkin_queries(client, secret, {"inventory": inventory()})
    grow_fleet(scope_a, 990)
    large, _ = checkin_queries(client, secret, {"inventory": inventory()})
    # Find the device, stamp the check-in time; with nothing new to tell, no command lookup at all.
    assert small == large == 2
    assert reply["commands"] == []


def test_checkin_with_commands_and_changed_inventory_is_bounded(client, token, scope_a):
    device, secret = enrol(token)
    measured = []
    for fleet, battery in ((10, 5), (990, 6)):
        grow_fleet(scope_a, fleet)
        for _ in range(5):
            device_command_queue(actor=SYSTEM, device=device, command_type="sync")
        queries, reply = checkin_queries(client, secret, {"inventory": inventory(battery_percent=battery)})
        assert len(reply["commands"]) == 5
        measured.append(queries)
    # Device, inventory upsert (in a savepoint), device fields, the compliance evaluation of the
    # changed inventory (policies, assignments, one device read), the device's app installs
    # (reconciliation), pending commands, mark them sent, record the delivery.
    assert measured[0] == measured[1] <= 14
