from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from apps.management.commands.demo_apps import demo_deb
from apps.models import App, AppInstall, AppProtectionPolicy
from apps.selectors_portal import portal_app_catalog
from devices.choices import LifecycleState, Ownership, Platform
from devices.models import Device, DeviceGroup
from devices.selectors import device_group_devices, device_list
from mdm_portal.core.models import AuditEvent, RoleAssignment, Scope, User, UserGroup
from policies.models import (
    ComplianceFailure,
    CompliancePolicy,
    ComplianceSnapshot,
    ConfigurationProfile,
    ProfileDelivery,
)
from policies.secrets import secrets_decrypt
from tests.factories import ScopeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """The demo's Linux package is stored in a temporary directory, never in the demo's var/media."""
    settings.MEDIA_ROOT = tmp_path


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
    App,
    AppInstall,
    AppProtectionPolicy,
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

    # The dashboard's trend has 60 days; each day counts the same devices per scope as today.
    days = sorted(set(ComplianceSnapshot.objects.values_list("day", flat=True)))
    assert len(days) == 60 and days[-1] == timezone.localdate()
    totals = ComplianceSnapshot.objects.values("day").annotate(n=Sum("count")).values_list("day", "n")
    today = dict(totals)[days[-1]]
    assert all(abs(n - today) <= today * 0.02 for _day, n in totals)  # a device or two apart: rounding
    failing = dict(
        ComplianceSnapshot.objects.filter(state="noncompliant")
        .values("day")
        .annotate(n=Sum("count"))
        .values_list("day", "n")
    )
    assert failing[days[0]] > failing[days[-1]]  # more failures two months ago than today

    out = StringIO()
    call_command("demo_policies", stdout=out)
    assert "already exist" in out.getvalue()


def test_demo_org_adds_an_app_catalog_with_installs_and_app_protection():
    run_demo_org()

    apps = App.objects.all()
    assert set(apps.values_list("kind", flat=True)) == {"store", "lob", "web"}
    assert set(apps.values_list("platform", flat=True)) == set(Platform.values)
    teams = apps.filter(name="Microsoft Teams")
    assert teams.count() == 5 and all(app.assignments.get().intent == "required" for app in teams)
    torrent = apps.get(name="qBittorrent", platform="windows").assignments.get()
    assert (torrent.intent, torrent.filter_ownership) == ("blocked", "corporate")
    package = apps.get(kind="lob")
    filename, data = demo_deb()
    assert (package.platform, package.identifier, package.current_version.version) == (
        "linux",
        "example-vpn-helper",
        "1.4.2",
    )
    assert package.current_version.size_bytes == len(data) and package.current_version.package_format == "deb"
    assert demo_deb() == (filename, data)  # the same bytes every time

    # The required apps reached every targeted device: most installed, some failed, some pending.
    states = set(AppInstall.objects.filter(app__in=teams).values_list("state", flat=True))
    assert states == {"installed", "failed", "pending"}
    protection = AppProtectionPolicy.objects.order_by("platform")
    assert [(p.platform, sorted(a.name for a in p.apps.all())) for p in protection] == [
        ("android", ["Microsoft Outlook", "Microsoft Teams"]),
        ("ios", ["Microsoft Outlook", "Microsoft Teams"]),
    ]
    assert all(p.assignments.get().user_group.name == "All employees" for p in protection)

    # The employee's devices offer the available apps in the Company Portal.
    employee = User.objects.get(username="employee")
    device = Device.objects.filter(primary_user=employee, lifecycle_state="enrolled").order_by("pk").first()
    offered = {entry.app.name: entry.required for entry in portal_app_catalog(user=employee, device=device)}
    assert offered["Zoom Workplace"] is False and offered["Microsoft Teams"] is True
    assert "qBittorrent" not in offered

    out = StringIO()
    call_command("demo_apps", stdout=out)
    assert "already exist" in out.getvalue()


def test_demo_org_offboards_the_leaver_and_adds_retirements_and_cleanup_rules():
    from retirement.choices import OffboardingSource, RetirementStatus
    from retirement.models import CleanupRule, Offboarding, RetirementRequest
    from retirement.services.cleanup import cleanup_candidates

    run_demo_org()
    counts = (Offboarding.objects.count(), RetirementRequest.objects.count(), CleanupRule.objects.count())
    out = StringIO()
    call_command("demo_retirement", stdout=out)
    assert "already exist" in out.getvalue()
    assert (Offboarding.objects.count(), RetirementRequest.objects.count(), CleanupRule.objects.count()) == counts

    offboarding = Offboarding.objects.get()
    assert offboarding.username == "oliver.bennett" and offboarding.source == OffboardingSource.DIRECTORY
    assert not User.objects.get(username="oliver.bennett").is_active
    # His devices stay managed, without him (corporate devices are reassigned to IT by default).
    items = list(offboarding.items.select_related("device"))
    assert items and all(item.step == "reassign" and item.device.primary_user is None for item in items)
    assert not Device.objects.filter(primary_user__username="oliver.bennett").exclude(lifecycle_state="retired")
    handhelds = RetirementRequest.objects.filter(device_name__contains="-HH-")
    assert handhelds.count() == 4
    assert set(handhelds.values_list("status", flat=True)) == {RetirementStatus.COMMAND_SENT}
    assert len({r.batch for r in handhelds}) == 1 and handhelds[0].batch is not None
    android = CleanupRule.objects.get(platform=Platform.ANDROID)
    assert (android.days, android.enabled) == (30, True)
    assert cleanup_candidates(android).exists(), "the demo has stale Android devices for the preview to show"
