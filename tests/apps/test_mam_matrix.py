"""Permission matrix of the managed-app API (``/mam/v1/``).

Its callers are an employee's apps, not IT: nobody, a forged access token, a person's portal session
or automation API token, the employee's access token, and an instance secret (someone else's, or
the app's own). Each route serves only its own credential; every refusal is a 4xx with a sentence
and writes nothing.
"""

import pytest
from django.core.cache import cache

from apps.choices import WipeStatus
from apps.models import AppDataWipe, ManagedAppInstance
from apps.services.mam import app_data_wipe_request
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import PASSWORD, SYSTEM, UserFactory
from tests.matrix import covers

from .mam_helpers import access_token, catalog_app, post_json, protection_policy, registered, sign_in, user_group

pytestmark = pytest.mark.django_db

FORGED_TOKEN = "eyJ1IjoxLCJoIjoiMDAwMCJ9:1tQx0A:3q2-7w"
FORGED_SECRET = "mai_0123456789abcdef0123456789abcdef_forged"


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def world(client, people):
    """The employee and the other employee each with a registered Outlook; a wipe open on the employee's."""
    employee, other = people.employee, people.other_employee
    group = user_group("Everyone", [employee, other])
    outlook = catalog_app()
    protection_policy("Baseline", [outlook], include=[group])
    mine = registered(client, employee.username)
    theirs = registered(client, other.username)
    instance = ManagedAppInstance.objects.get(uuid=mine["instance_id"])
    wipe = app_data_wipe_request(actor=SYSTEM, instance=instance, reason="Lost phone")
    return {"mine": mine, "theirs": theirs, "wipe": wipe, "instance": instance}


def state():
    return (
        ManagedAppInstance.objects.count(),
        AuditEvent.objects.count(),
        list(ManagedAppInstance.objects.order_by("pk").values_list("last_checkin_at", "revoked_at", "policy_version")),
        list(AppDataWipe.objects.order_by("pk").values_list("status", "sent_at")),
    )


def authorization(caller: str, client, people, world) -> dict:
    if caller == "anonymous":
        return {}
    if caller == "forged token":
        return {"HTTP_AUTHORIZATION": f"Bearer {FORGED_TOKEN}"}
    if caller == "forged secret":
        return {"HTTP_AUTHORIZATION": f"Instance {FORGED_SECRET}"}
    if caller == "employee token":
        return {"HTTP_AUTHORIZATION": f"Bearer {access_token(client, people.employee.username)}"}
    if caller == "other user's instance secret":
        return {"HTTP_AUTHORIZATION": f"Instance {world['theirs']['instance_secret']}"}
    if caller == "own instance secret":
        return {"HTTP_AUTHORIZATION": f"Instance {world['mine']['instance_secret']}"}
    if caller == "portal session":
        client.force_login(people.employee)
        return {}
    if caller == "api token":
        _, token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="automation")
        return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    raise AssertionError(caller)


CALLERS = [
    "anonymous",
    "forged token",
    "forged secret",
    "employee token",
    "other user's instance secret",
    "own instance secret",
    "portal session",
    "api token",
]


@covers("mam:token")
@pytest.mark.parametrize("caller", CALLERS)
def test_sign_in_needs_the_password_whatever_else_the_caller_holds(client, people, world, caller):
    headers = authorization(caller, client, people, world)
    before = state()
    response = post_json(client, "/mam/v1/token", {"grant_type": "password", "username": "employee"}, **headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")
    response = sign_in(client, "employee", "wrong", **headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert state() == before
    assert sign_in(client, "employee", PASSWORD, **headers).status_code == 200


@covers("mam:register")
@pytest.mark.parametrize("caller", CALLERS)
def test_register_serves_only_an_access_token(client, people, world, caller):
    headers = authorization(caller, client, people, world)
    before = state()
    body = {"app_identifier": "com.microsoft.Office.Outlook", "platform": "ios"}
    response = post_json(client, "/mam/v1/register", body, **headers)
    if caller == "employee token":
        assert response.status_code == 201
        created = ManagedAppInstance.objects.get(uuid=response.json()["instance_id"])
        assert created.user == people.employee
        return
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("invalid_credentials", "invalid_token")
    assert response.json()["error"]["message"]
    assert response["WWW-Authenticate"] == "Bearer"
    assert state() == before


@covers("mam:checkin")
@pytest.mark.parametrize("caller", CALLERS)
def test_check_in_serves_only_an_instance_secret_and_only_its_instance(client, people, world, caller):
    headers = authorization(caller, client, people, world)
    before = state()
    checked_in = dict(ManagedAppInstance.objects.values_list("uuid", "last_checkin_at"))
    response = post_json(client, "/mam/v1/checkin", {}, **headers)
    if caller in ("own instance secret", "other user's instance secret"):
        assert response.status_code == 200
        mine = caller == "own instance secret"
        # The other employee's app never sees the employee's wipe.
        assert (response.json()["wipe"] or {}).get("id") == (str(world["wipe"].uuid) if mine else None)
        touched = ManagedAppInstance.objects.get(uuid=world["mine" if mine else "theirs"]["instance_id"])
        untouched = ManagedAppInstance.objects.get(uuid=world["theirs" if mine else "mine"]["instance_id"])
        assert touched.last_checkin_at > checked_in[touched.uuid]
        assert untouched.last_checkin_at == checked_in[untouched.uuid]
        return
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert response["WWW-Authenticate"] == "Instance"
    assert state() == before


@covers("mam:wipe-confirm")
@pytest.mark.parametrize("caller", CALLERS)
def test_a_wipe_is_confirmed_only_by_its_own_instance(client, people, world, caller):
    headers = authorization(caller, client, people, world)
    wipe = world["wipe"]
    before = state()
    response = post_json(client, f"/mam/v1/wipes/{wipe.uuid}/confirm", {}, **headers)
    wipe.refresh_from_db()
    if caller == "own instance secret":
        assert response.status_code == 200 and wipe.status == WipeStatus.CONFIRMED
        return
    expected = (404, "unknown_wipe") if caller == "other user's instance secret" else (401, "invalid_credentials")
    assert (response.status_code, response.json()["error"]["code"]) == expected
    assert wipe.status == WipeStatus.PENDING
    assert state() == before


@covers("mam:register", "mam:checkin", "mam:wipe-confirm")
def test_a_revoked_instance_and_a_disabled_account_are_refused(client, people, world):
    token = access_token(client, people.employee.username)
    people.employee.is_active = False
    people.employee.save()
    response = post_json(
        client,
        "/mam/v1/register",
        {"app_identifier": "com.microsoft.Office.Outlook", "platform": "ios"},
        f"Bearer {token}",
    )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")
    secret = world["theirs"]["instance_secret"]
    instance = ManagedAppInstance.objects.get(uuid=world["theirs"]["instance_id"])
    wipe = app_data_wipe_request(actor=SYSTEM, instance=instance)
    assert post_json(client, f"/mam/v1/wipes/{wipe.uuid}/confirm", {}, f"Instance {secret}").status_code == 200
    response = post_json(client, "/mam/v1/checkin", {}, f"Instance {secret}")
    assert (response.status_code, response.json()["error"]["code"]) == (410, "instance_revoked")
    other = UserFactory(username="third")
    assert sign_in(client, other.username).status_code == 200  # signing in is open to every active account
