from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devices.choices import LifecycleState, Ownership, Platform
from devices.models import Device, DeviceGroup
from devices.selectors import device_group_devices, device_list
from mdm_portal.core.models import AuditEvent, RoleAssignment, Scope, User, UserGroup
from policies.models import ComplianceFailure, CompliancePolicy, ConfigurationProfile, ProfileDelivery
from policies.secrets import secrets_decrypt
from tests.factories import ScopeFactory

pytestmark = pytest.mark.django_db

COUNTED = (
    Scope,
    User,
    UserGroup,
    RoleAssignment,
    Device,
    DeviceGroup,
    AuditEvent,
    ConfigurationProfile,
    CompliancePolicy,
    ProfileDelivery,
    ComplianceFailure,
)


def run_demo_org() -> str:
    out = StringIO()
    call_command("demo_org", stdout=out)
    return out.getvalue()


def test_demo_org_builds_the_promised_organisation_once():
    first = run_demo_org()
    counts = {model: model.objects.count() for model in COUNTED}

    second = run_demo_org()

    assert "already exists" in second
    assert {model: model.objects.count() for model in COUNTED} == counts
    for output in (first, second):
        assert "/admin/" in output and "/portal/" in output and "/api/docs/" in output
        assert "helpdesk-emea" in output and "demo-pass-2026" in output

    assert set(Scope.objects.values_list("slug", flat=True)) == {"emea", "americas", "apac"}
    devices = Device.objects.all()
    assert devices.count() >= 300
    assert set(devices.values_list("platform", flat=True)) == set(Platform.values)
    assert set(devices.values_list("ownership", flat=True)) == set(Ownership.values)
    assert set(devices.values_list("lifecycle_state", flat=True)) == set(LifecycleState.values)
    assert devices.filter(ownership=Ownership.CORPORATE, primary_user=None).exists()


def test_demo_logins_see_what_the_printout_says():
    run_demo_org()

    helpdesk = User.objects.get(username="helpdesk-emea")
    visible = device_list(user=helpdesk)
    assert visible.count() > 0
    assert set(visible.values_list("scope__slug", flat=True)) == {"emea"}
    assert visible.count() == Device.objects.filter(scope__slug="emea").count()

    assert device_list(user=User.objects.get(username="itadmin")).count() == Device.objects.count()
    assert device_list(user=User.objects.get(username="readonly")).count() == Device.objects.count()

    employee = User.objects.get(username="employee")
    assert employee.check_password("demo-pass-2026")
    assert 2 <= Device.objects.filter(primary_user=employee).count() <= 3

    lab = DeviceGroup.objects.get(name="Lab machines")
    assert device_group_devices(lab).exists()
    assert all(name.startswith("LAB-") for name in device_group_devices(lab).values_list("name", flat=True))


def test_demo_org_refuses_to_mix_with_a_partial_organisation():
    ScopeFactory(name="EMEA", slug="emea")

    with pytest.raises(CommandError, match="Part of the demo organisation exists already"):
        run_demo_org()
    assert not Device.objects.exists()


def test_demo_org_adds_profiles_and_compliance_policies_with_numbers_for_the_console():
    run_demo_org()

    assert set(ConfigurationProfile.objects.values_list("kind", flat=True)) == {
        "passcode",
        "encryption",
        "wifi",
        "restrictions",
        "vpn",
    }
    wifi = ConfigurationProfile.objects.get(kind="wifi")
    assert "password" not in wifi.settings and secrets_decrypt(wifi.secret_settings) == {"password": "demo-wifi-2026"}
    assert "demo-wifi-2026" not in wifi.secret_settings
    restrictions = ConfigurationProfile.objects.get(kind="restrictions").assignments.get()
    assert (restrictions.target, restrictions.filter_ownership) == ("all_devices", "corporate")

    policies = CompliancePolicy.objects.all()
    assert set(policies.values_list("platform", flat=True)) == {"ios", "android", "windows", "macos"}
    for policy in policies:
        schedule = sorted(policy.actions.values_list("action", "days_after"), key=lambda row: (row[1], row[0]))
        assert schedule == [("email", 0), ("mark_noncompliant", 1), ("email", 3), ("lock", 7), ("retire", 30)]
        assert policy.assignments.filter(target="user_group", user_group__name="All employees").exists()

    # The fan-out and the sweep ran: deliveries, and devices in every compliance state.
    assert ProfileDelivery.objects.filter(state="pending").count() > 100
    states = set(Device.objects.filter(lifecycle_state="enrolled").values_list("compliance_state", flat=True))
    assert states == {"compliant", "in_grace", "noncompliant", "not_evaluated", "error"}
    employee = User.objects.get(username="employee")
    in_grace = Device.objects.get(primary_user=employee, compliance_state="in_grace")
    assert ComplianceFailure.objects.filter(device=in_grace).exists()

    out = StringIO()
    call_command("demo_policies", stdout=out)
    assert "already exist" in out.getvalue()
