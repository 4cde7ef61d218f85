"""The policies API over HTTP with API tokens: profiles, compliance policies, reports, one device's compliance.

Secrets go in and never come out; bad input is a 400 that names the field; nested assignments are
all or nothing; a scoped caller works in their scope only.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from devices import services as device_services
from devices.choices import ComplianceState, Platform
from mdm_portal.core import services as core_services
from policies.choices import ComplianceRule, DeliveryState
from policies.models import (
    ComplianceFailure,
    CompliancePolicy,
    ConfigurationProfile,
    NoncomplianceAction,
    ProfileDelivery,
)
from policies.secrets import secrets_decrypt
from policies.services.policies import policy_save
from policies.services.profiles import profile_save
from tests.factories import SYSTEM, StaffFactory, grant

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"
WIFI = {"ssid": "Office", "security": "wpa2", "password": PASSWORD}


class Api:
    """A client that sends a bearer token and JSON."""

    def __init__(self, client, token: str):
        self.client, self.auth = client, {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, url, params=None, **extra):
        return self.client.get(url, params or {}, **self.auth, **extra)

    def post(self, url, body=None):
        return self.client.post(url, json.dumps(body or {}), content_type="application/json", **self.auth)

    def patch(self, url, body):
        return self.client.patch(url, json.dumps(body), content_type="application/json", **self.auth)

    def put(self, url, body):
        return self.client.put(url, json.dumps(body), content_type="application/json", **self.auth)

    def delete(self, url):
        return self.client.delete(url, **self.auth)


def token_for(user) -> str:
    return core_services.api_token_create(actor=SYSTEM, user=user, name=f"{user.username} automation")[1]


@pytest.fixture
def admin_api(client, people):
    return Api(client, token_for(people.global_admin))


@pytest.fixture
def manager_a(people):
    person = StaffFactory(username="policy-manager-a")
    grant(person, "Policy and profile manager", [people.scope_a])
    return person


@pytest.fixture
def manager_api(client, manager_a):
    return Api(client, token_for(manager_a))


@pytest.fixture
def groups(people):
    return {
        "a": device_services.device_group_save(actor=SYSTEM, name="EMEA phones", scope=people.scope_a),
        "b": device_services.device_group_save(actor=SYSTEM, name="Americas phones", scope=people.scope_b),
        "sales": core_services.user_group_save(actor=SYSTEM, name="Field sales", members=[people.employee]),
    }


def profile_url(profile=None, action: str = "") -> str:
    if profile is None:
        return reverse("profile-list")
    return reverse(
        f"profile-{action or 'detail'}", kwargs={"id": profile.uuid if hasattr(profile, "uuid") else profile}
    )


def policy_url(policy=None) -> str:
    if policy is None:
        return reverse("compliance-policy-list")
    return reverse("compliance-policy-detail", kwargs={"id": policy.uuid if hasattr(policy, "uuid") else policy})


# Profiles ---------------------------------------------------------------------------------------------------


def test_create_read_update_delete_a_profile(admin_api, people, groups):
    body = {
        "name": "Office Wi-Fi",
        "kind": "wifi",
        "scope": "emea",
        "platforms": ["ios", "android"],
        "settings": WIFI,
        "assignments": [
            {"target": "device_group", "device_group": "EMEA phones"},
            {"mode": "exclude", "target": "user_group", "user_group": "Field sales", "filter_ownership": "personal"},
        ],
    }
    created = admin_api.post(profile_url(), body)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["settings"] == {"ssid": "Office", "security": "wpa2"}
    assert data["secret_settings_set"] == ["password"]
    assert data["scope"] == "emea" and data["version"] == 1
    # Listed excludes first, then includes (the order the service keeps them in).
    assert [a["target"] for a in data["assignments"]] == ["user_group", "device_group"]
    assert data["assignments"][0] == {
        "mode": "exclude",
        "target": "user_group",
        "user_group": "Field sales",
        "device_group": None,
        "filter_platforms": [],
        "filter_ownership": "personal",
        "filter_os_min": "",
        "filter_os_max": "",
    }
    assert data["deliveries"] == dict.fromkeys(DeliveryState.values, 0)
    profile = ConfigurationProfile.objects.get(uuid=data["id"])
    assert secrets_decrypt(profile.secret_settings) == {"password": PASSWORD}

    detail = admin_api.get(profile_url(profile))
    assert detail.status_code == 200 and detail.json()["name"] == "Office Wi-Fi"
    listed = admin_api.get(profile_url(), {"kind": "wifi"})
    assert [p["id"] for p in listed.json()["results"]] == [data["id"]]

    renamed = admin_api.patch(profile_url(profile), {"name": "Office Wi-Fi (EMEA)", "description": "HQ"})
    assert renamed.status_code == 200, renamed.content
    assert renamed.json()["name"] == "Office Wi-Fi (EMEA)"
    assert len(renamed.json()["assignments"]) == 2  # omitted: unchanged
    profile.refresh_from_db()
    assert profile.version == 1 and secrets_decrypt(profile.secret_settings) == {"password": PASSWORD}

    deleted = admin_api.delete(profile_url(profile))
    assert deleted.status_code == 204
    assert not ConfigurationProfile.objects.filter(pk=profile.pk).exists()
    assert admin_api.get(profile_url(profile)).status_code == 404


def test_secrets_are_never_returned(admin_api, people):
    created = admin_api.post(profile_url(), {"name": "Guest Wi-Fi", "kind": "wifi", "scope": None, "settings": WIFI})
    assert created.status_code == 201, created.content
    profile_id = created.json()["id"]
    responses = [
        created,
        admin_api.get(profile_url()),
        admin_api.get(profile_url(profile_id)),
        admin_api.patch(profile_url(profile_id), {"settings": {"ssid": "Guest", "security": "wpa2"}}),
        admin_api.put(
            profile_url(profile_id),
            {"name": "Guest Wi-Fi", "kind": "wifi", "scope": None, "settings": {**WIFI, "password": "another secret"}},
        ),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.content
        text = response.content.decode()
        assert PASSWORD not in text and "another secret" not in text
    profile = ConfigurationProfile.objects.get(uuid=profile_id)
    # A blank or missing secret keeps the stored one; a new value replaces it.
    assert secrets_decrypt(profile.secret_settings) == {"password": "another secret"}
    assert responses[3].json()["secret_settings_set"] == ["password"]
    assert profile.version == 3  # each settings change is a new version


def test_settings_change_bumps_the_version_and_keeps_the_secret(admin_api):
    created = admin_api.post(profile_url(), {"name": "Wi-Fi", "kind": "wifi", "settings": WIFI}).json()
    changed = admin_api.patch(profile_url(created["id"]), {"settings": {"ssid": "Office-5G", "security": "wpa2"}})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2 and changed.json()["settings"]["ssid"] == "Office-5G"
    profile = ConfigurationProfile.objects.get(uuid=created["id"])
    assert secrets_decrypt(profile.secret_settings) == {"password": PASSWORD}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "P", "kind": "passcode", "settings": {"min_length": 2}}, "settings"),
        ({"name": "P", "kind": "passcode", "settings": {"colour": "red"}}, "settings"),
        ({"name": "P", "kind": "passcode", "settings": "six"}, "settings"),
        ({"name": "P", "kind": "wifi", "settings": {"security": "wpa2"}}, "settings"),
        ({"name": "P", "kind": "wifi", "settings": {"ssid": "x", "security": "wpa2", "password": "short"}}, "settings"),
        ({"name": "P", "kind": "teleport", "settings": {}}, "kind"),
        ({"name": "P", "kind": "passcode", "platforms": ["amiga"], "settings": {}}, "platforms"),
        ({"name": "P", "kind": "passcode", "scope": "atlantis", "settings": {}}, "scope"),
        ({"kind": "passcode", "settings": {}}, "name"),
        ({"name": "P", "kind": "passcode", "assignments": [{"target": "everyone"}]}, "assignments"),
        ({"name": "P", "kind": "passcode", "assignments": [{"target": "user_group"}]}, "assignments"),
        (
            {"name": "P", "kind": "passcode", "assignments": [{"target": "all_devices", "filter_os_min": "banana"}]},
            "assignments",
        ),
    ],
)
def test_bad_profile_input_is_a_400_naming_the_field(admin_api, body, field):
    response = admin_api.post(profile_url(), body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not ConfigurationProfile.objects.exists()


def test_setting_errors_name_the_setting(admin_api):
    response = admin_api.post(profile_url(), {"name": "P", "kind": "passcode", "settings": {"min_length": 30}})
    assert response.json() == {"settings": {"min_length": ["Minimum length must be at most 16."]}}


def test_duplicate_name_is_a_400(admin_api):
    assert admin_api.post(profile_url(), {"name": "P", "kind": "passcode", "settings": {}}).status_code == 201
    again = admin_api.post(profile_url(), {"name": "P", "kind": "passcode", "settings": {}})
    assert again.status_code == 400 and "name" in again.json()


def test_kind_cannot_change(admin_api):
    created = admin_api.post(profile_url(), {"name": "P", "kind": "passcode", "settings": {}}).json()
    response = admin_api.patch(profile_url(created["id"]), {"kind": "encryption"})
    assert response.status_code == 400 and "kind" in response.json()


def test_nested_assignments_are_all_or_nothing(admin_api, groups):
    body = {
        "name": "P",
        "kind": "passcode",
        "settings": {"min_length": 6},
        "assignments": [
            {"target": "all_devices"},
            {"target": "device_group", "device_group": "No such group"},
            {"target": "all_devices", "filter_platforms": ["amiga"]},
        ],
    }
    response = admin_api.post(profile_url(), body)
    assert response.status_code == 400
    assert response.json() == {"assignments": {"2": {"filter_platforms": {"0": ['"amiga" is not a valid choice.']}}}}
    response = admin_api.post(profile_url(), {**body, "assignments": body["assignments"][:2]})
    assert response.status_code == 400
    assert response.json() == {
        "assignments": {"1": {"device_group": ["No device group named 'No such group' that you can see."]}}
    }
    assert not ConfigurationProfile.objects.exists()

    created = admin_api.post(
        profile_url(), {**body, "assignments": [{"target": "device_group", "device_group": "EMEA phones"}]}
    )
    assert created.status_code == 201
    profile_id = created.json()["id"]
    update = admin_api.patch(
        profile_url(profile_id),
        {"name": "Renamed", "assignments": [{"target": "all_devices"}, {"target": "user_group", "user_group": ""}]},
    )
    assert update.status_code == 400
    assert update.json()["assignments"] == {
        "1": {"user_group": ["Choose the user group whose members' devices it applies to."]}
    }
    profile = ConfigurationProfile.objects.get(uuid=profile_id)
    assert profile.name == "P"
    assert [a.device_group.name for a in profile.assignments.all()] == ["EMEA phones"]


def test_a_scoped_manager_works_in_their_scope_only(manager_api, people, groups):
    other = profile_save(actor=SYSTEM, data={"name": "B's", "kind": "passcode", "scope": people.scope_b}, settings={})
    org = profile_save(actor=SYSTEM, data={"name": "Everyone's", "kind": "passcode", "scope": None}, settings={})
    in_b = manager_api.post(profile_url(), {"name": "Mine in B", "kind": "passcode", "scope": "americas"})
    assert in_b.status_code == 400
    assert in_b.json()["scope"] == ["No scope 'americas' where you may manage configuration profiles."]
    org_wide = manager_api.post(profile_url(), {"name": "Mine for all", "kind": "passcode", "scope": None})
    assert org_wide.status_code == 400 and "scope" in org_wide.json()
    no_scope = manager_api.post(profile_url(), {"name": "Mine for all", "kind": "passcode"})
    assert no_scope.status_code == 400 and "scope" in no_scope.json()
    their_group = manager_api.post(
        profile_url(),
        {
            "name": "Mine",
            "kind": "passcode",
            "scope": "emea",
            "assignments": [{"target": "device_group", "device_group": "Americas phones"}],
        },
    )
    assert their_group.status_code == 400
    assert their_group.json()["assignments"] == {
        "0": {"device_group": ["No device group named 'Americas phones' that you can see."]}
    }
    mine = manager_api.post(
        profile_url(),
        {
            "name": "Mine",
            "kind": "passcode",
            "scope": "emea",
            "assignments": [{"target": "device_group", "device_group": "EMEA phones"}],
        },
    )
    assert mine.status_code == 201, mine.content
    assert [p["name"] for p in manager_api.get(profile_url()).json()["results"]] == ["Mine"]
    for profile in (other, org):
        assert manager_api.get(profile_url(profile)).status_code == 404
        assert manager_api.patch(profile_url(profile), {"name": "Taken"}).status_code == 404
        assert manager_api.delete(profile_url(profile)).status_code == 404
    moved = manager_api.patch(profile_url(mine.json()["id"]), {"scope": "americas"})
    assert moved.status_code == 400
    assert set(ConfigurationProfile.objects.values_list("name", flat=True)) == {"B's", "Everyone's", "Mine"}


def test_deliveries_and_resend_failed(admin_api, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = admin_api.post(
            profile_url(),
            {
                "name": "P",
                "kind": "passcode",
                "settings": {"min_length": 6},
                "assignments": [{"target": "all_devices"}],
            },
        )
    assert created.status_code == 201
    profile = ConfigurationProfile.objects.get(uuid=created.json()["id"])
    assert ProfileDelivery.objects.filter(profile=profile).count() == 2  # the fan-out ran
    # The device answered with an error for one of them.
    ProfileDelivery.objects.filter(profile=profile, device=people.device_b).update(
        state=DeliveryState.ERROR, reason="MDM error 12021"
    )
    listed = admin_api.get(profile_url(profile, "deliveries"), {"state": "error"})
    assert listed.status_code == 200
    assert [(d["device"], d["state"], d["reason"]) for d in listed.json()["results"]] == [
        (str(people.device_b.uuid), "error", "MDM error 12021")
    ]
    assert admin_api.get(profile_url(profile, "deliveries"), {"state": "nonsense"}).status_code == 400
    assert admin_api.get(profile_url(profile)).json()["deliveries"]["error"] == 1
    resent = admin_api.post(profile_url(profile, "resend-failed"))
    assert resent.status_code == 200 and resent.json() == {"resent": 1}
    assert ProfileDelivery.objects.get(profile=profile, device=people.device_b).state == DeliveryState.PENDING


# Compliance policies ------------------------------------------------------------------------------------------


POLICY = {
    "name": "iOS baseline",
    "scope": "emea",
    "platform": "ios",
    "os_min": "17.0",
    "passcode_required": True,
    "passcode_min_length": 6,
    "encryption_required": True,
    "blocked_apps": ["com.example.game"],
    "actions": [
        {"action": "mark_noncompliant", "days_after": 3},
        {"action": "email", "days_after": 0, "message": "Please update."},
    ],
    "assignments": [{"target": "device_group", "device_group": "EMEA phones"}],
}


def test_create_read_update_delete_a_policy(admin_api, groups):
    created = admin_api.post(policy_url(), POLICY)
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["os_min"] == "17.0" and data["blocked_apps"] == ["com.example.game"] and data["version"] == 1
    assert sorted((a["action"], a["days_after"]) for a in data["actions"]) == [("email", 0), ("mark_noncompliant", 3)]
    assert data["assignments"][0]["device_group"] == "EMEA phones"
    policy = CompliancePolicy.objects.get(uuid=data["id"])
    assert admin_api.get(policy_url(policy)).json()["name"] == "iOS baseline"
    assert [p["id"] for p in admin_api.get(policy_url(), {"platform": "ios"}).json()["results"]] == [data["id"]]

    changed = admin_api.patch(policy_url(policy), {"os_min": "17.4", "actions": [{"action": "lock", "days_after": 10}]})
    assert changed.status_code == 200, changed.content
    assert changed.json()["version"] == 2
    assert [(a["action"], a["days_after"]) for a in changed.json()["actions"]] == [("lock", 10)]
    assert len(changed.json()["assignments"]) == 1  # omitted: unchanged

    assert admin_api.delete(policy_url(policy)).status_code == 204
    assert not CompliancePolicy.objects.exists() and not NoncomplianceAction.objects.exists()


def test_a_new_policy_without_a_schedule_marks_at_once(admin_api):
    created = admin_api.post(policy_url(), {"name": "Android", "platform": "android", "scope": None})
    assert created.status_code == 201
    assert created.json()["actions"] == [{"action": "mark_noncompliant", "days_after": 0, "message": ""}]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"os_min": "banana"}, "os_min"),
        ({"os_min": "18", "os_max": "17"}, "os_max"),
        ({"passcode_min_length": 2}, "passcode_min_length"),
        ({"checkin_max_days": 0}, "checkin_max_days"),
        ({"platform": "amiga"}, "platform"),
        ({"blocked_apps": ["not an app!"]}, "blocked_apps"),
        ({"actions": [{"action": "explode"}]}, "actions"),
        ({"actions": [{"action": "email", "days_after": 1}, {"action": "email", "days_after": 1}]}, "actions"),
        ({"actions": [{"action": "lock", "days_after": 400}]}, "actions"),
        ({"assignments": [{"target": "device_group", "device_group": "Americas phones"}]}, "assignments"),
        ({"scope": "atlantis"}, "scope"),
    ],
)
def test_bad_policy_input_is_a_400_naming_the_field(admin_api, groups, change, field):
    response = admin_api.post(policy_url(), {**POLICY, **change})
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not CompliancePolicy.objects.exists()


def test_a_policy_of_scope_a_cannot_target_a_group_of_scope_b(admin_api, groups):
    response = admin_api.post(
        policy_url(), {**POLICY, "assignments": [{"target": "device_group", "device_group": "Americas phones"}]}
    )
    assert response.status_code == 400
    assert "belongs to another scope" in response.json()["assignments"]["0"]["device_group"][0]


def test_a_scoped_manager_and_policies(manager_api, people, groups):
    other = policy_save(actor=SYSTEM, data={"name": "B", "platform": "ios", "scope": people.scope_b})
    assert manager_api.post(policy_url(), {**POLICY, "scope": "americas"}).status_code == 400
    mine = manager_api.post(policy_url(), POLICY)
    assert mine.status_code == 201, mine.content
    assert [p["name"] for p in manager_api.get(policy_url()).json()["results"]] == ["iOS baseline"]
    assert manager_api.get(policy_url(other)).status_code == 404
    assert manager_api.patch(policy_url(other), {"os_min": "1"}).status_code == 404
    assert manager_api.delete(policy_url(other)).status_code == 404
    assert CompliancePolicy.objects.get(pk=other.pk).os_min == ""


# Reports and one device's compliance ---------------------------------------------------------------------------


def test_reports_in_json_and_csv(admin_api, people):
    device_services.device_compliance_set(actor=SYSTEM, device=people.device_a, state=ComplianceState.NONCOMPLIANT)
    summary = admin_api.get(reverse("compliance-summary"))
    assert summary.status_code == 200
    assert summary.json()["total"] == 2 and summary.json()["counts"]["noncompliant"] == 1
    assert summary.json()["platforms"][0]["platform"] == "ios"
    trend = admin_api.get(reverse("compliance-trend")).json()
    assert len(trend["days"]) == 60 and trend["days"][-1]["counts"] is None
    assert admin_api.get(reverse("compliance-failing-settings")).json() == []
    without = admin_api.get(reverse("compliance-devices-without-policy")).json()
    assert without["count"] == 2 and {d["id"] for d in without["results"]} == {
        str(people.device_a.uuid),
        str(people.device_b.uuid),
    }
    as_csv = admin_api.get(reverse("compliance-summary"), {"format": "csv"})
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    lines = b"".join(as_csv.streaming_content).decode().splitlines()
    assert lines[0] == "platform,noncompliant,in_grace,error,not_evaluated,compliant,total"
    assert lines[1] == "all,1,0,0,1,0,2"
    accepted = admin_api.get(reverse("compliance-devices-without-policy"), HTTP_ACCEPT="text/csv")
    assert accepted["Content-Type"].startswith("text/csv")
    assert len(b"".join(accepted.streaming_content).decode().splitlines()) == 3


def test_csv_refusals_are_json(client, people):
    response = client.get(reverse("compliance-summary"), {"format": "csv"})
    assert response.status_code == 401 and response["Content-Type"].startswith("application/json")
    client.force_login(people.no_role)
    response = client.get(reverse("compliance-failing-settings"), HTTP_ACCEPT="text/csv")
    assert response.status_code == 403 and response.json()["detail"]


def test_device_compliance(admin_api, people):
    policy = policy_save(
        actor=SYSTEM,
        data={"name": "iOS encryption", "platform": Platform.IOS, "encryption_required": True},
        assignments=[{"target": "all_devices"}],
    )
    device_services.device_compliance_set(actor=SYSTEM, device=people.device_a, state=ComplianceState.NONCOMPLIANT)
    # The compliance engine's outcome, set directly.
    ComplianceFailure.objects.create(
        device=people.device_a,
        policy=policy,
        rule=ComplianceRule.ENCRYPTION_REQUIRED,
        expected="on",
        actual="off",
        since=timezone.now(),
    )
    response = admin_api.get(reverse("device-compliance", kwargs={"id": people.device_a.uuid}))
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["device"] == str(people.device_a.uuid)
    assert data["compliance_state"] == "noncompliant" and data["compliance_state_label"] == "Noncompliant"
    assert data["policies"] == ["iOS encryption"]
    failing = data["failing"][0]
    assert failing["rule"] == "encryption_required" and failing["policy_name"] == "iOS encryption"
    assert failing["plain"] and failing["fix_steps"] and failing["error"] is False
    missing = reverse("device-compliance", kwargs={"id": "00000000-0000-0000-0000-000000000000"})
    assert admin_api.get(missing).status_code == 404
