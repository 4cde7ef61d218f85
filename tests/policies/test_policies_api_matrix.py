"""Permission matrix of the policies API and the compliance dashboard (personas: ``tests/test_permission_matrix.py``,
plus ``manager_a``, a Policy and profile manager over scope A).

What the tables encode: anonymous callers get 401 from the API and the admin's sign-in page; people
without the permission anywhere get 403; scope A's manager sees and changes A's profiles and
policies, B's and organisation-wide ones are a 404, and creating in B is refused; the helpdesk and
the policy manager of A see the compliance reports of A's devices only; a refused write changes
nothing.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from devices import services as device_services
from devices.choices import ComplianceState
from policies.choices import ComplianceRule, DeliveryState
from policies.models import ComplianceFailure, CompliancePolicy, ConfigurationProfile, ProfileDelivery
from policies.services.policies import policy_save
from policies.services.profiles import profile_save
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, assert_api_error, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

ALL = (*PERSONAS, "manager_a")
API_REFUSED = {"anonymous": 401, "employee": 403, "no_role": 403}
ADMIN_REFUSED = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403}


@pytest.fixture
def world(people):
    """A profile and a policy in each scope and one for the whole organisation, a failure on each device."""
    manager = StaffFactory(username="policy-manager-a")
    grant(manager, "Policy and profile manager", [people.scope_a])
    people.manager_a = manager
    objects = {}
    for key, scope in (("a", people.scope_a), ("b", people.scope_b), ("org", None)):
        objects[f"profile_{key}"] = profile_save(
            actor=SYSTEM,
            data={"name": f"Passcode {key}", "kind": "passcode", "scope": scope},
            settings={"min_length": 6},
            assignments=[{"target": "all_devices"}],
        )
        objects[f"policy_{key}"] = policy_save(
            actor=SYSTEM,
            data={"name": f"Policy {key}", "platform": "ios", "scope": scope, "encryption_required": True},
            assignments=[{"target": "all_devices"}],
        )
    for device, key in ((people.device_a, "a"), (people.device_b, "b")):
        device_services.device_compliance_set(actor=SYSTEM, device=device, state=ComplianceState.NONCOMPLIANT)
        # The compliance engine's outcome and the fan-out's, set directly.
        ComplianceFailure.objects.create(
            device=device,
            policy=objects[f"policy_{key}"],
            rule=ComplianceRule.ENCRYPTION_REQUIRED,
            expected="on",
            actual="off",
            since=device.enrolled_at,
        )
        ProfileDelivery.objects.create(profile=objects[f"profile_{key}"], device=device, state=DeliveryState.ERROR)
    people.__dict__.update(objects)
    return people


def login(client, world, persona):
    if persona == "manager_a":
        client.force_login(world.manager_a)
        return world.manager_a
    return sign_in(client, world, persona)


def send(client, method: str, url: str, body=None):
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def check(response, expected: int, what: str) -> None:
    assert response.status_code == expected, f"{what}: expected {expected}, got {response.status_code}"
    if expected in (401, 403, 404):
        assert_api_error(response, expected)


# Profiles ---------------------------------------------------------------------------------------------------------

# Lists: the names each persona sees; a number: refused with that status.
PROFILE_LIST = API_REFUSED | {
    "global_admin": {"Passcode a", "Passcode b", "Passcode org"},
    "read_only": {"Passcode a", "Passcode b", "Passcode org"},
    "helpdesk_a": 403,
    "manager_a": {"Passcode a"},
}
# One object: (A, B, organisation-wide).
PROFILE_READ = API_REFUSED | {
    "global_admin": (200, 200, 200),
    "read_only": (200, 200, 200),
    "helpdesk_a": (403, 403, 403),
    "manager_a": (200, 404, 404),
}
PROFILE_WRITE = API_REFUSED | {
    "global_admin": (200, 200, 200),
    "read_only": (403, 403, 403),
    "helpdesk_a": (403, 403, 403),
    "manager_a": (200, 404, 404),
}
# Create in A, in B.
PROFILE_CREATE = API_REFUSED | {
    "global_admin": (201, 201),
    "read_only": (403, 403),
    "helpdesk_a": (403, 403),
    "manager_a": (201, 400),
}


def triple(table, persona):
    value = table[persona]
    return value if isinstance(value, tuple) else (value,) * 3


@covers("api:profile-list")
@pytest.mark.parametrize("persona", ALL)
def test_api_profile_list_and_create(client, world, persona):
    login(client, world, persona)
    response = client.get(reverse("profile-list"))
    expected = PROFILE_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {p["name"] for p in response.json()["results"]} == expected
    else:
        assert_api_error(response, expected)
    creates = PROFILE_CREATE[persona]
    creates = creates if isinstance(creates, tuple) else (creates, creates)
    before = ConfigurationProfile.objects.count()
    made = 0
    for scope, wanted in zip(("emea", "americas"), creates, strict=True):
        body = {"name": f"New in {scope}", "kind": "passcode", "scope": scope, "settings": {"min_length": 8}}
        response = send(client, "post", reverse("profile-list"), body)
        check(response, wanted, f"{persona} creating a profile in {scope}")
        made += wanted == 201
    assert ConfigurationProfile.objects.count() == before + made


@covers("api:profile-detail")
@pytest.mark.parametrize("persona", ALL)
def test_api_profile_detail(client, world, persona):
    login(client, world, persona)
    objects = (world.profile_a, world.profile_b, world.profile_org)
    for profile, read, write in zip(
        objects, triple(PROFILE_READ, persona), triple(PROFILE_WRITE, persona), strict=True
    ):
        url = reverse("profile-detail", kwargs={"id": profile.uuid})
        check(client.get(url), read, f"{persona} reading {profile}")
        response = send(client, "patch", url, {"description": "changed"})
        check(response, write, f"{persona} changing {profile}")
        profile.refresh_from_db()
        assert (profile.description == "changed") is (write == 200)
        response = client.delete(url)
        check(response, 204 if write == 200 else write, f"{persona} deleting {profile}")
        assert ConfigurationProfile.objects.filter(pk=profile.pk).exists() is (write != 200)


@covers("api:profile-resend-failed")
@pytest.mark.parametrize("persona", ALL)
def test_api_profile_resend_failed(client, world, persona):
    login(client, world, persona)
    for profile, write in zip((world.profile_a, world.profile_b), triple(PROFILE_WRITE, persona), strict=False):
        response = send(client, "post", reverse("profile-resend-failed", kwargs={"id": profile.uuid}))
        check(response, write, f"{persona} resending {profile}")
        if write == 200:
            assert response.json() == {"resent": 1}
        state = ProfileDelivery.objects.get(profile=profile).state
        assert state == (DeliveryState.PENDING if write == 200 else DeliveryState.ERROR)


@covers("api:profile-deliveries")
@pytest.mark.parametrize("persona", ALL)
def test_api_profile_deliveries(client, world, persona):
    login(client, world, persona)
    for profile, device, read in zip(
        (world.profile_a, world.profile_b),
        (world.device_a, world.device_b),
        triple(PROFILE_READ, persona),
        strict=False,
    ):
        response = client.get(reverse("profile-deliveries", kwargs={"id": profile.uuid}))
        check(response, read, f"{persona} reading the deliveries of {profile}")
        if read == 200:
            assert [d["device"] for d in response.json()["results"]] == [str(device.uuid)]


# Compliance policies ------------------------------------------------------------------------------------------------

POLICY_LIST = {
    persona: ({n.replace("Passcode", "Policy") for n in v} if isinstance(v, set) else v)
    for persona, v in PROFILE_LIST.items()
}


@covers("api:compliance-policy-list")
@pytest.mark.parametrize("persona", ALL)
def test_api_policy_list_and_create(client, world, persona):
    login(client, world, persona)
    response = client.get(reverse("compliance-policy-list"))
    expected = POLICY_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {p["name"] for p in response.json()["results"]} == expected
    else:
        assert_api_error(response, expected)
    creates = PROFILE_CREATE[persona]
    creates = creates if isinstance(creates, tuple) else (creates, creates)
    before = CompliancePolicy.objects.count()
    made = 0
    for scope, wanted in zip(("emea", "americas"), creates, strict=True):
        body = {"name": f"New in {scope}", "platform": "android", "scope": scope, "encryption_required": True}
        response = send(client, "post", reverse("compliance-policy-list"), body)
        check(response, wanted, f"{persona} creating a policy in {scope}")
        made += wanted == 201
    assert CompliancePolicy.objects.count() == before + made


@covers("api:compliance-policy-detail")
@pytest.mark.parametrize("persona", ALL)
def test_api_policy_detail(client, world, persona):
    login(client, world, persona)
    objects = (world.policy_a, world.policy_b, world.policy_org)
    for policy, read, write in zip(objects, triple(PROFILE_READ, persona), triple(PROFILE_WRITE, persona), strict=True):
        url = reverse("compliance-policy-detail", kwargs={"id": policy.uuid})
        check(client.get(url), read, f"{persona} reading {policy}")
        response = send(client, "patch", url, {"os_min": "17.0"})
        check(response, write, f"{persona} changing {policy}")
        policy.refresh_from_db()
        assert (policy.os_min == "17.0") is (write == 200)
        response = client.delete(url)
        check(response, 204 if write == 200 else write, f"{persona} deleting {policy}")
        assert CompliancePolicy.objects.filter(pk=policy.pk).exists() is (write != 200)


# Reports ------------------------------------------------------------------------------------------------------------

# The devices each persona's reports count: A and B's, A's only, or refused.
REPORTS = API_REFUSED | {
    "global_admin": {"a", "b"},
    "read_only": {"a", "b"},
    "helpdesk_a": {"a"},
    "manager_a": {"a"},
}


@covers(
    "api:compliance-summary",
    "api:compliance-trend",
    "api:compliance-failing-settings",
    "api:compliance-devices-without-policy",
)
@pytest.mark.parametrize("persona", ALL)
def test_api_compliance_reports(client, world, persona):
    login(client, world, persona)
    expected = REPORTS[persona]
    for name in ("summary", "trend", "failing-settings", "devices-without-policy"):
        for params in ({}, {"format": "csv"}):
            response = client.get(reverse(f"compliance-{name}"), params)
            if not isinstance(expected, set):
                assert_api_error(response, expected)
                continue
            assert response.status_code == 200, f"{persona} on {name} {params}"
            if params:
                assert response["Content-Type"].startswith("text/csv")
                b"".join(response.streaming_content)
    if isinstance(expected, set):
        summary = client.get(reverse("compliance-summary")).json()
        assert summary["counts"]["noncompliant"] == len(expected)
        failing = client.get(reverse("compliance-failing-settings")).json()
        assert failing[0]["devices"] == len(expected)


DEVICE_COMPLIANCE = API_REFUSED | {
    "global_admin": (200, 200),
    "read_only": (200, 200),
    "helpdesk_a": (200, 404),
    "manager_a": (200, 404),
}


@covers("api:device-compliance")
@pytest.mark.parametrize("persona", ALL)
def test_api_device_compliance(client, world, persona):
    login(client, world, persona)
    expected = DEVICE_COMPLIANCE[persona]
    expected = expected if isinstance(expected, tuple) else (expected, expected)
    for device, wanted in zip((world.device_a, world.device_b), expected, strict=True):
        response = client.get(reverse("device-compliance", kwargs={"id": device.uuid}))
        check(response, wanted, f"{persona} on the compliance of {device}")
        if wanted == 200:
            assert response.json()["failing"][0]["rule"] == "encryption_required"


# The dashboard in the console -----------------------------------------------------------------------------------------

ADMIN_DASHBOARD = ADMIN_REFUSED | {"global_admin": 200, "read_only": 200, "helpdesk_a": 200, "manager_a": 200}
NONCOMPLIANT_SEEN = {"global_admin": 2, "read_only": 2, "helpdesk_a": 1, "manager_a": 1}


@covers(
    "admin:policies_compliance_dashboard",
    "admin:policies_compliance_failing_rule",
    "admin:policies_compliance_without_policy",
)
@pytest.mark.parametrize("persona", ALL)
def test_admin_compliance_dashboard_pages(client, world, persona):
    login(client, world, persona)
    expected = ADMIN_DASHBOARD[persona]
    dashboard = client.get(reverse("admin:policies_compliance_dashboard"))
    assert_outcome(dashboard, expected, f"{persona} on the dashboard")
    failing = client.get(reverse("admin:policies_compliance_failing_rule", args=["encryption_required"]))
    assert_outcome(failing, expected, f"{persona} on the failing-setting list")
    without = client.get(reverse("admin:policies_compliance_without_policy"))
    assert_outcome(without, expected, f"{persona} on devices without a policy")
    if expected == 200:
        cards = {card["state"]: card["count"] for card in dashboard.context["cards"]}
        assert cards[ComplianceState.NONCOMPLIANT] == NONCOMPLIANT_SEEN[persona]
        names = {row[0][0] for row in failing.context["rows"]}
        assert names == ({"EMEA-PHONE-1", "AMER-PHONE-1"} if NONCOMPLIANT_SEEN[persona] == 2 else {"EMEA-PHONE-1"})


# Profile deliveries need their own permission, which the helpdesk role does not hold.
ADMIN_EXPORT_DELIVERIES = ADMIN_DASHBOARD | {"helpdesk_a": 403}


@covers("admin:policies_compliance_export")
@pytest.mark.parametrize("persona", ALL)
def test_admin_compliance_exports(client, world, persona):
    login(client, world, persona)
    for report in ("summary", "trend", "failing-settings", "devices-without-policy", "profile-deliveries"):
        table = ADMIN_EXPORT_DELIVERIES if report == "profile-deliveries" else ADMIN_DASHBOARD
        response = client.get(reverse("admin:policies_compliance_export", args=[report]))
        assert_outcome(response, table[persona], f"{persona} exporting {report}")
        if table[persona] == 200:
            assert response["Content-Type"] == "text/csv; charset=utf-8"
    url = reverse("admin:policies_compliance_export", args=["failing-rule"]) + "?rule=encryption_required"
    response = client.get(url)
    assert_outcome(response, ADMIN_DASHBOARD[persona], f"{persona} exporting a failing rule's devices")
    if ADMIN_DASHBOARD[persona] == 200:
        body = b"".join(response.streaming_content).decode()
        assert "EMEA-PHONE-1" in body
        assert ("AMER-PHONE-1" in body) is (NONCOMPLIANT_SEEN[persona] == 2)
