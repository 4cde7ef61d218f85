"""Admin lists of per-device outcome rows cost the same number of queries for 2 rows as for 12."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.choices import AppKind, InstallState
from apps.models import App, AppDataWipe, AppInstall, ManagedAppInstance
from devices.choices import Platform
from policies.choices import ComplianceRule, DeliveryState, ProfileKind
from policies.models import (
    ComplianceFailure,
    CompliancePolicy,
    ConfigurationProfile,
    ProfileDelivery,
    RetireApproval,
)
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def rows_for(kind, device, n):
    now = timezone.now()
    if kind == "profiledelivery":
        profile, _ = ConfigurationProfile.objects.get_or_create(name="Passcode", kind=ProfileKind.PASSCODE)
        ProfileDelivery.objects.create(device=device, profile=profile, state=DeliveryState.ERROR, reason="no")
    elif kind == "compliancefailure":
        policy, _ = CompliancePolicy.objects.get_or_create(name="iOS", platform=Platform.IOS)
        ComplianceFailure.objects.create(
            device=device, policy=policy, rule=ComplianceRule.ENCRYPTION_REQUIRED, since=now
        )
    elif kind == "retireapproval":
        RetireApproval.objects.create(device=device, reason="Noncompliant for 30 days", requested_at=now)
    elif kind == "appinstall":
        app, _ = App.objects.get_or_create(name="Teams", kind=AppKind.STORE, platform=Platform.IOS, identifier="t")
        AppInstall.objects.create(device=device, app=app, state=InstallState.FAILED, reason="no space")
    elif kind == "appdatawipe":
        instance = ManagedAppInstance.objects.create(
            user=UserFactory(scope=device.scope), app_identifier="com.microsoft.Office.Outlook",
            platform=Platform.IOS, secret_hash=f"{n:064d}",
        )  # fmt: skip
        AppDataWipe.objects.create(instance=instance, requested_by_label="tests")


def list_queries(client, kind, app_label, scope, start, count):
    for n in range(start, start + count):
        rows_for(kind, DeviceFactory(scope=scope, platform=Platform.IOS), n)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(f"admin:{app_label}_{kind}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == start + count  # the rows are really on the page
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    ("app_label", "kind"),
    [
        ("policies", "profiledelivery"),
        ("policies", "compliancefailure"),
        ("policies", "retireapproval"),
        ("apps", "appinstall"),
        ("apps", "appdatawipe"),
    ],
)
def test_outcome_lists_do_not_grow_with_the_page(client, people, app_label, kind):
    client.force_login(people.global_admin)
    few = list_queries(client, kind, app_label, people.scope_a, 0, 2)
    many = list_queries(client, kind, app_label, people.scope_a, 2, 10)
    assert few == many
