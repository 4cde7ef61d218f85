"""The demo's simulated fleet: each run retires the last run's devices and gets a fresh token."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devices.choices import LifecycleState
from devices.models import Device, EnrollmentProfile
from devices.services.enrollment import device_enroll

pytestmark = pytest.mark.django_db


def run_demo_fleet() -> str:
    out = StringIO()
    call_command("demo_fleet", stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_each_run_retires_the_previous_simulated_devices_and_issues_a_new_token():
    call_command("demo_org", stdout=StringIO())
    first = run_demo_fleet()
    device, _ = device_enroll(identity={"platform": "linux", "serial_number": "SIM-0001"}, token=first)
    assert device.lifecycle_state == LifecycleState.ENROLLED

    second = run_demo_fleet()
    assert second != first
    assert Device.objects.get(pk=device.pk).lifecycle_state == LifecycleState.RETIRED
    profiles = EnrollmentProfile.objects.filter(name="Demo fleet simulator")
    assert profiles.count() == 2 and profiles.filter(revoked_at__isnull=True).count() == 1
    # The same simulated serial enrols again with the new token.
    again, _ = device_enroll(identity={"platform": "linux", "serial_number": "SIM-0001"}, token=second)
    assert again.pk != device.pk


def test_without_the_demo_organisation_it_says_what_to_do():
    with pytest.raises(CommandError, match=r"run `manage\.py demo_org` first"):
        run_demo_fleet()


def test_the_employees_laptop_simulator_enrols_devices_owned_by_the_demo_employee():
    call_command("demo_org", stdout=StringIO())
    out = StringIO()
    call_command("demo_fleet", "--simulator", "laptop", stdout=out, stderr=StringIO())
    device, _ = device_enroll(
        identity={"platform": "windows", "serial_number": "SIM-LAPTOP"}, token=out.getvalue().strip()
    )
    assert device.primary_user.username == "employee"
    assert device.scope.slug == "emea"
