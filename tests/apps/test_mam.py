"""App protection without enrolment (MAM): the effective policy, sign-in tokens, the managed-app
check-in, and selective wipe of app data with confirmation."""

import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.choices import ClipboardLevel, SharingLevel, WipeStatus
from apps.mam import access_decision, applicable_policies, effective_policy, fingerprint, merge
from apps.mam_api.views import MAX_BODY_BYTES
from apps.models import AppDataWipe, AppProtectionPolicy, ManagedAppInstance
from apps.services.mam import (
    ACCESS_TOKEN_SALT,
    app_data_wipe_cancel,
    app_data_wipe_request,
    app_data_wipe_user,
    app_instance_register,
)
from mdm_portal.core.models import AuditEvent
from tests.factories import PASSWORD, SYSTEM, UserFactory

from .mam_helpers import (
    OUTLOOK_IOS,
    TEAMS_IOS,
    access_token,
    catalog_app,
    checkin,
    confirm,
    post_json,
    protection_policy,
    register,
    registered,
    sign_in,
    user_group,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle():
    """The sign-in throttles count in the cache, which outlives a test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def setup(scope_a):
    """Emma (scope A) in the Sales group; Outlook and Teams for iOS protected by one policy for Sales."""
    employee = UserFactory(username="emma", scope=scope_a)
    sales = user_group("Sales", [employee])
    outlook, teams = catalog_app(), catalog_app(TEAMS_IOS, name="Teams")
    policy = protection_policy("iOS baseline", [outlook, teams], include=[sales])
    return employee, sales, outlook, teams, policy


# Effective policy ------------------------------------------------------------------------------------


def _policy(name, **settings):
    return AppProtectionPolicy(name=name, platform="ios", uuid=uuid.uuid5(uuid.NAMESPACE_URL, name), **settings)


def test_merge_takes_the_most_restrictive_value_of_every_setting():
    loose = _policy(
        "Loose",
        data_isolation=False,
        clipboard=ClipboardLevel.ANY_APP,
        block_backup=False,
        block_save_as=True,
        sharing=SharingLevel.ANY_APP,
        managed_browser_required=False,
        allowed_urls=["https://intranet.example.com", "https://wiki.example.com"],
        blocked_urls=["https://dropbox.com"],
        pin_required=True,
        pin_length=4,
        pin_recheck_minutes=60,
        offline_block_minutes=1440,
        offline_wipe_days=30,
        min_app_version="4.9",
        min_os_version="",
    )
    strict = _policy(
        "Strict",
        data_isolation=True,
        clipboard=ClipboardLevel.MANAGED_APPS_PASTE_IN,
        block_backup=True,
        block_save_as=False,
        sharing=SharingLevel.MANAGED_APPS,
        managed_browser_required=True,
        allowed_urls=["https://wiki.example.com"],
        blocked_urls=["https://pastebin.com"],
        pin_required=True,
        pin_length=8,
        pin_recheck_minutes=15,
        offline_block_minutes=60,
        offline_wipe_days=90,
        min_app_version="4.10",
        min_os_version="17.4",
    )
    no_pin = _policy("No PIN", pin_required=False, pin_length=16, pin_recheck_minutes=1, allowed_urls=[])
    merged = merge([loose, strict, no_pin])
    assert [ref["name"] for ref in merged.pop("policies")] == ["Loose", "Strict", "No PIN"]
    version = merged.pop("version")
    assert merged == {
        "data_isolation": True,
        "clipboard": "managed_apps",  # No PIN keeps the default: between managed apps
        "block_backup": True,
        "block_save_as": True,
        "sharing": "managed_apps",
        "web": {
            "managed_browser_required": True,
            "allowed_urls": ["https://wiki.example.com"],
            "blocked_urls": ["https://dropbox.com", "https://pastebin.com"],
        },
        "pin": {"required": True, "length": 8, "recheck_minutes": 15},
        "offline": {"block_after_minutes": 60, "wipe_after_days": 30},
        "min_app_version": "4.10",  # 4.10 is later than 4.9
        "min_os_version": "17.4",
    }
    assert 0 < version < 2**31


def test_merge_of_nothing_is_none_and_lists_are_optional():
    assert merge([]) is None
    only = merge([_policy("Only", pin_required=False, allowed_urls=[], blocked_urls=[])])
    assert only["web"]["allowed_urls"] is None  # no allow list: any URL that is not blocked
    assert only["pin"] == {"required": False, "length": None, "recheck_minutes": None}
    disjoint = merge(
        [_policy("A", allowed_urls=["https://a.example"]), _policy("B", allowed_urls=["https://b.example"])]
    )
    assert disjoint["web"]["allowed_urls"] == []  # no URL is on both lists


def test_the_version_fingerprint_follows_the_content():
    first = merge([_policy("P", clipboard=ClipboardLevel.BLOCKED)])
    again = merge([_policy("P", clipboard=ClipboardLevel.BLOCKED)])
    changed = merge([_policy("P", clipboard=ClipboardLevel.ANY_APP)])
    assert first["version"] == again["version"] == fingerprint(first)
    assert changed["version"] != first["version"]


def test_which_policies_apply(setup, scope_b):
    employee, sales, outlook, teams, baseline = setup
    leavers = user_group("Leavers", [employee])
    others = user_group("Others", [UserFactory()])
    org_wide = protection_policy("Org-wide", [outlook], include=[sales])
    protection_policy("Other scope", [outlook], include=[sales], scope=scope_b)
    protection_policy("Android", [outlook], include=[sales], platform="android")
    protection_policy("Teams only", [teams], include=[sales])
    protection_policy("Not my group", [outlook], include=[others])
    protection_policy("Excluded", [outlook], include=[sales], exclude=[leavers])
    own_scope = protection_policy("Own scope", [outlook], include=[sales], scope=employee.scope)
    found = applicable_policies(user=employee, app=outlook, platform="ios")
    assert set(found) == {baseline, org_wide, own_scope}
    assert effective_policy(user=employee, app=outlook, platform="android") is None
    assert effective_policy(user=employee, app=None, platform="ios") is None


def test_the_effective_policy_is_one_query(setup, django_assert_num_queries):
    employee, _, outlook, _, _ = setup
    with django_assert_num_queries(1):
        assert effective_policy(user=employee, app=outlook, platform="ios")["policies"][0]["name"] == "iOS baseline"


def test_access_decision_sentences():
    policy = {"min_app_version": "5.0", "min_os_version": "17.0"}
    assert access_decision(policy, app_version="5.0.1", os_version="17.0") == {
        "allowed": True,
        "code": "ok",
        "reason": "",
    }
    blocked = access_decision(policy, app_version="4.9", os_version="16.7")
    assert blocked["allowed"] is False and blocked["code"] == "app_version_too_old"
    assert "requires 5.0 or later. Update the app" in blocked["reason"]
    assert "requires 17.0 or later. Update the operating system" in blocked["reason"]
    assert access_decision(None, app_version="", os_version="")["allowed"] is True
    assert access_decision(policy, app_version="", os_version="17")["code"] == "app_version_too_old"


# Sign-in --------------------------------------------------------------------------------------------


def test_sign_in_gives_a_short_lived_bearer_token(client, setup):
    response = sign_in(client, "emma")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600 and body["access_token"]
    assert response["Cache-Control"] == "no-store"
    # JSON works too.
    response = post_json(client, "/mam/v1/token", {"grant_type": "password", "username": "emma", "password": PASSWORD})
    assert response.status_code == 200


@pytest.mark.parametrize("who", ["wrong password", "unknown user", "inactive user"])
def test_bad_credentials_are_invalid_grant_without_saying_which_part(client, setup, who):
    employee = setup[0]
    if who == "inactive user":
        employee.is_active = False
        employee.save()
    username, password = {"unknown user": ("nobody", PASSWORD), "wrong password": ("emma", "guess")}.get(
        who, ("emma", PASSWORD)
    )
    response = sign_in(client, username, password)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "The username or password is wrong, or this account cannot sign in. "
        "Check them and try again.",
    }


def test_sign_in_request_errors_follow_oauth(client, setup):
    form = "application/x-www-form-urlencoded"
    response = client.post("/mam/v1/token", "grant_type=client_credentials&username=emma&password=x", content_type=form)
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")
    response = client.post("/mam/v1/token", "grant_type=password&username=emma", content_type=form)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    assert "password" in response.json()["error_description"]
    repeated = "grant_type=password&username=emma&username=x&password=y"
    response = client.post("/mam/v1/token", repeated, content_type=form)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = client.post("/mam/v1/token", "{not json", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = client.post("/mam/v1/token", "x" * (MAX_BODY_BYTES + 1), content_type=form)
    assert response.status_code == 413
    assert client.get("/mam/v1/token").status_code == 405


def test_sign_in_attempts_are_limited_per_username(client, setup):
    for _ in range(10):
        assert sign_in(client, "emma", "guess").status_code == 400
    response = sign_in(client, "emma", PASSWORD)
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited" and int(response["Retry-After"]) > 0


def test_an_expired_token_is_refused(client, setup):
    token = access_token(client, "emma")
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        response = register(client, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert "expired" in response.json()["error"]["message"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert not ManagedAppInstance.objects.exists()


@pytest.mark.parametrize("forgery", ["tampered signature", "other salt", "garbage", "changed password"])
def test_a_forged_or_stale_token_is_refused(client, setup, forgery):
    employee = setup[0]
    token = access_token(client, "emma")
    if forgery == "tampered signature":
        token = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    elif forgery == "other salt":
        token = signing.dumps({"u": employee.pk, "h": ""}, salt="something-else")
    elif forgery == "garbage":
        token = "not-a-token"
    else:
        employee.set_password("a-new-password-123")
        employee.save()
    response = register(client, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    assert not ManagedAppInstance.objects.exists()


def test_a_token_signed_for_another_purpose_cannot_be_replayed(setup):
    # A value signed with the access-token salt but not issued by sign-in (no binding) is refused.
    from apps.services.mam import MamError, app_access_token_user

    token = signing.dumps({"u": setup[0].pk}, salt=ACCESS_TOKEN_SALT)
    with pytest.raises(MamError):
        app_access_token_user(token)


# Registration and check-in ------------------------------------------------------------------------------


def test_register_and_check_in_receive_the_policy_then_unchanged(client, setup):
    employee, _, outlook, _, policy = setup
    reply = registered(client, "emma")
    secret = reply["instance_secret"]
    assert secret.startswith("mai_")
    assert reply["policy_status"] == "changed" and reply["policy"]["version"] == reply["policy_version"]
    assert reply["policy"]["policies"] == [{"id": str(policy.uuid), "name": "iOS baseline", "version": 1}]
    assert reply["access"] == {"allowed": True, "code": "ok", "reason": ""}
    assert reply["wipe"] is None
    instance = ManagedAppInstance.objects.get(uuid=reply["instance_id"])
    assert (instance.user, instance.app, instance.policy, instance.policy_version) == (
        employee,
        outlook,
        policy,
        reply["policy_version"],
    )
    assert secret not in instance.secret_hash
    event = AuditEvent.objects.get(verb="mam.instance.register")
    assert event.actor_user == employee and event.scope_id == employee.scope_id
    assert secret[-20:] not in str(event.changes)

    version = reply["policy_version"]
    held = checkin(client, secret, {"policy_version": version, "state": {"pin_set": True, "org_data_present": True}})
    assert held.status_code == 200
    assert held.json()["policy_status"] == "unchanged" and held.json()["policy"] is None
    assert checkin(client, secret).json()["policy_status"] == "unchanged"  # the one last sent
    lost = checkin(client, secret, {"policy_version": 0}).json()  # the app lost it: sent again
    assert lost["policy_status"] == "changed" and lost["policy"]["version"] == version
    instance.refresh_from_db()
    assert instance.last_checkin_at is not None and instance.state["policy_version"] == 0

    policy.clipboard = ClipboardLevel.BLOCKED
    policy.save()
    new = checkin(client, secret, {"policy_version": version}).json()
    assert new["policy_status"] == "changed" and new["policy_version"] != version
    assert new["policy"]["clipboard"] == "blocked"

    policy.assignments.all().delete()
    gone = checkin(client, secret, {"policy_version": new["policy_version"]}).json()
    assert (gone["policy_status"], gone["policy_version"], gone["policy"]) == ("none", 0, None)


def test_check_in_records_what_the_app_reports(client, setup):
    reply = registered(client, "emma")
    checkin(client, reply["instance_secret"], {"app_version": "4.2545.0", "os_version": "18.2", "device_name": "Work"})
    instance = ManagedAppInstance.objects.get(uuid=reply["instance_id"])
    assert (instance.app_version, instance.os_version, instance.device_name) == ("4.2545.0", "18.2", "Work")


def test_an_app_outside_the_catalog_cannot_register(client, setup):
    response = register(client, access_token(client, "emma"), "com.example.notes")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "app_not_managed"
    assert "app_identifier" in response.json()["error"]["fields"]
    assert not ManagedAppInstance.objects.exists()


def test_minimum_app_and_os_versions_block_access(client, setup):
    policy = setup[4]
    policy.min_app_version = "4.3000"
    policy.min_os_version = "18.0"
    policy.save()
    reply = registered(client, "emma", app_version="4.2544.1", os_version="17.5")
    assert reply["access"]["allowed"] is False
    assert reply["access"]["code"] == "app_version_too_old"
    assert "Update the app from the store" in reply["access"]["reason"]
    assert "Update the operating system" in reply["access"]["reason"]
    updated = checkin(client, reply["instance_secret"], {"app_version": "4.3001.0", "os_version": "18.1"}).json()
    assert updated["access"] == {"allowed": True, "code": "ok", "reason": ""}


def test_check_in_query_count_is_constant(client, setup, django_assert_max_num_queries):
    reply = registered(client, "emma")
    app_data_wipe_request(
        actor=SYSTEM, instance=ManagedAppInstance.objects.get(uuid=reply["instance_id"]), reason="Lost phone"
    )
    # Authenticate, policies (one query however many), save, open wipe, deliver it, audit; two savepoints.
    with django_assert_max_num_queries(8):
        assert checkin(client, reply["instance_secret"], {"policy_version": 1}).status_code == 200
    with django_assert_max_num_queries(6):
        assert checkin(client, reply["instance_secret"], {"policy_version": 1}).status_code == 200


# Selective wipe -------------------------------------------------------------------------------------


def test_wipe_is_delivered_confirmed_and_revokes_the_instance(client, setup, people):
    employee = setup[0]
    reply = registered(client, "emma")
    secret = reply["instance_secret"]
    instance = ManagedAppInstance.objects.get(uuid=reply["instance_id"])

    wipe = app_data_wipe_request(actor=SYSTEM, instance=instance, reason="Phone lost")
    assert wipe.status == WipeStatus.PENDING
    assert app_data_wipe_request(actor=SYSTEM, instance=instance, reason="again") == wipe  # idempotent
    assert AuditEvent.objects.filter(verb="mam.wipe.request").count() == 1

    delivered = checkin(client, secret).json()
    assert delivered["wipe"]["id"] == str(wipe.uuid) and delivered["wipe"]["reason"] == "Phone lost"
    assert delivered["access"]["allowed"] is False and delivered["access"]["code"] == "wipe_pending"
    wipe.refresh_from_db()
    assert wipe.status == WipeStatus.SENT and wipe.sent_at is not None
    sent_at = wipe.sent_at
    # Until confirmed, the wipe is handed out again and stays visible as open.
    assert checkin(client, secret).json()["wipe"]["id"] == str(wipe.uuid)
    wipe.refresh_from_db()
    assert (wipe.status, wipe.sent_at) == (WipeStatus.SENT, sent_at)
    assert AuditEvent.objects.filter(verb="mam.wipe.sent").count() == 1
    with pytest.raises(ValidationError, match="can no longer be cancelled"):
        app_data_wipe_cancel(actor=SYSTEM, wipe=wipe)

    response = confirm(client, secret, str(wipe.uuid))
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed" and "Sign in again" in response.json()["message"]
    wipe.refresh_from_db()
    instance.refresh_from_db()
    assert wipe.status == WipeStatus.CONFIRMED and wipe.confirmed_at is not None
    assert instance.revoked_at is not None
    assert AuditEvent.objects.filter(verb="mam.wipe.confirm", scope_id=employee.scope_id).count() == 1

    refused = checkin(client, secret)
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "instance_revoked"
    assert confirm(client, secret, str(wipe.uuid)).status_code == 200  # a retry is answered again
    with pytest.raises(ValidationError, match="already wiped"):
        app_data_wipe_request(actor=SYSTEM, instance=instance)

    again = registered(client, "emma")  # starts clean
    assert again["instance_id"] != reply["instance_id"] and again["wipe"] is None
    assert checkin(client, again["instance_secret"]).json()["access"]["allowed"] is True


def test_wipe_every_instance_of_a_person(client, setup):
    employee = setup[0]
    outlook = registered(client, "emma")
    teams = registered(client, "emma", TEAMS_IOS)
    wiped_before = registered(client, "emma", device_name="Old iPhone")
    old = ManagedAppInstance.objects.get(uuid=wiped_before["instance_id"])
    old_wipe = app_data_wipe_request(actor=SYSTEM, instance=old)
    checkin(client, wiped_before["instance_secret"])
    confirm(client, wiped_before["instance_secret"], str(old_wipe.uuid))
    other = UserFactory(username="other", scope=employee.scope)
    setup[1].members.add(other)
    other_reply = registered(client, "other")

    wipes = app_data_wipe_user(actor=SYSTEM, user=employee, reason="Left the company")
    assert sorted(str(w.instance.uuid) for w in wipes) == sorted([outlook["instance_id"], teams["instance_id"]])
    assert app_data_wipe_user(actor=SYSTEM, user=employee) == wipes  # idempotent
    assert not AppDataWipe.objects.filter(instance__uuid=other_reply["instance_id"]).exists()
    for reply in (outlook, teams):
        assert checkin(client, reply["instance_secret"]).json()["wipe"]["reason"] == "Left the company"


def test_a_pending_wipe_can_be_cancelled_before_delivery(client, setup):
    reply = registered(client, "emma")
    instance = ManagedAppInstance.objects.get(uuid=reply["instance_id"])
    wipe = app_data_wipe_request(actor=SYSTEM, instance=instance)
    cancelled = app_data_wipe_cancel(actor=SYSTEM, wipe=wipe)
    assert cancelled.status == WipeStatus.CANCELLED
    assert app_data_wipe_cancel(actor=SYSTEM, wipe=wipe).status == WipeStatus.CANCELLED
    assert AuditEvent.objects.filter(verb="mam.wipe.cancel").count() == 1
    assert checkin(client, reply["instance_secret"]).json()["wipe"] is None
    response = confirm(client, reply["instance_secret"], str(wipe.uuid))
    assert (response.status_code, response.json()["error"]["code"]) == (409, "wipe_cancelled")
    assert app_data_wipe_request(actor=SYSTEM, instance=instance) != wipe  # a new one can be opened


def test_an_inactive_persons_app_still_receives_its_wipe(client, setup):
    employee = setup[0]
    reply = registered(client, "emma")
    employee.is_active = False
    employee.save()
    wipe = app_data_wipe_user(actor=SYSTEM, user=employee, reason="Offboarded")[0]
    delivered = checkin(client, reply["instance_secret"]).json()
    assert delivered["wipe"]["id"] == str(wipe.uuid)
    assert delivered["access"]["code"] == "account_disabled"
    assert "disabled" in delivered["access"]["reason"]


def test_unknown_wipe_ids_are_404(client, setup):
    reply = registered(client, "emma")
    for wipe_id in ("00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = confirm(client, reply["instance_secret"], wipe_id)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_wipe")


def test_register_service_refuses_a_disabled_account(setup):
    from apps.services.mam import MamError

    employee = setup[0]
    employee.is_active = False
    with pytest.raises(MamError) as refused:
        app_instance_register(user=employee, app_identifier=OUTLOOK_IOS, platform="ios")
    assert refused.value.code == "account_disabled"


# Bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ("[1, 2]", 400, None),
        ({"inventory": {}}, 400, "inventory"),
        ({"policy_version": "5"}, 400, "policy_version"),
        ({"policy_version": -1}, 400, "policy_version"),
        ({"state": {"pin_set": "yes"}}, 400, "state.pin_set"),
        ({"state": {"jailbroken": False}}, 400, "state.jailbroken"),
        ({"app_version": "x" * 65}, 400, "app_version"),
    ],
)
def test_malformed_check_ins_are_400_with_field_messages(client, setup, body, status, field):
    reply = registered(client, "emma")
    response = checkin(client, reply["instance_secret"], body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"]
    if field:
        assert field in error["fields"]


def test_malformed_registrations_are_400(client, setup):
    token = access_token(client, "emma")
    response = post_json(client, "/mam/v1/register", {"platform": "blackberry"}, f"Bearer {token}")
    assert response.status_code == 400
    assert {"app_identifier", "platform"} <= set(response.json()["error"]["fields"])
    response = post_json(client, "/mam/v1/register", "nope", f"Bearer {token}")
    assert response.status_code == 400
    response = client.post(
        "/mam/v1/register", "app_identifier=x", content_type="text/plain", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 415


def test_bodies_over_the_limit_are_413(client, setup):
    reply = registered(client, "emma")
    huge = {"device_name": "x" * (MAX_BODY_BYTES + 1)}
    response = checkin(client, reply["instance_secret"], huge)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "request_too_large")
