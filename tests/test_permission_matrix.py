"""The permission matrix: every endpoint against every persona (``people`` in ``tests/conftest.py``).

Personas: ``anonymous``; ``employee`` (owns ``device_a`` in scope A, not staff); ``no_role`` (staff,
no role); ``global_admin`` (Global administrator over all scopes); ``read_only`` (Read-only
operator over all scopes); ``helpdesk_a`` (Helpdesk operator over scope A). ``device_b`` is in scope B
and belongs to ``other_employee``.

The rules the tables encode (ARCHITECTURE.md, "Authorisation"):

* The IT console (admin) is for staff: anonymous people and employees are sent to its sign-in page;
  staff without the permission for a model anywhere get 403 on all its pages; an object outside the
  person's scopes is a 404, exactly like a missing one; a view-only person's write is refused (403)
  and changes nothing.
* The API answers 401 (with a JSON sentence) without valid credentials, 403 to a person who holds the
  permission nowhere, and 404 for an object outside their scopes; lists hold only their scopes' objects.
* The Company Portal shows a signed-in person their own devices only, whatever their IT role.

Each test declares the endpoints it covers with ``tests.matrix.covers``; ``test_matrix_complete``
fails when an endpoint has no matrix test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from devices import services as device_services
from devices.models import Device, DeviceGroup
from mdm_portal.core import services as core_services
from mdm_portal.core.models import APIToken, AuditEvent, Role, RoleAssignment, Scope, User, UserGroup
from mdm_portal.schedules import SCHEDULES
from tests.factories import PASSWORD, SYSTEM, DeviceFactory, StaffFactory, grant
from tests.matrix import admin_ids, admin_ids_for, covers

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "no_role", "global_admin", "read_only", "helpdesk_a")
STAFF_PERSONAS = ("no_role", "global_admin", "read_only", "helpdesk_a")

# Outcomes a cell can expect besides a plain status code.
ADMIN_LOGIN = "302 to the admin sign-in page"
PORTAL_LOGIN = "302 to the Company Portal sign-in page"


def sign_in(client, people: SimpleNamespace, persona: str) -> User | None:
    if persona == "anonymous":
        return None
    user = getattr(people, persona)
    client.force_login(user)
    return user


def assert_outcome(response, expected, what: str) -> None:
    if expected in (ADMIN_LOGIN, PORTAL_LOGIN):
        login = reverse("admin:login") if expected == ADMIN_LOGIN else reverse("portal:login")
        assert response.status_code == 302, f"{what}: expected {expected}, got {response.status_code}"
        assert response["Location"].startswith(f"{login}?next="), f"{what}: redirected to {response['Location']}"
    else:
        assert response.status_code == expected, f"{what}: expected {expected}, got {response.status_code}"


def admin_url(obj: models.Model, page: str = "change") -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_{page}", args=[obj.pk])


def changelist_url(model: type[models.Model]) -> str:
    return reverse(admin_ids(model)[0])


def snapshot(obj: models.Model) -> dict:
    """Every stored value of ``obj`` as the database has it now."""
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first()
    assert fresh is not None, f"{obj._meta.verbose_name} {obj.pk} was deleted"
    return {field.attname: getattr(fresh, field.attname) for field in obj._meta.concrete_fields}


# Admin: one row per registered ModelAdmin ---------------------------------------------------------


def _scopes(p):
    return p.scope_a, None


def _users(p):
    return p.employee, p.other_employee


def _user_group(p):
    return core_services.user_group_save(actor=SYSTEM, name="Field sales", members=[p.employee]), None


def _custom_role(p):
    view_device = Permission.objects.get(content_type__app_label="devices", codename="view_device")
    return core_services.role_save(actor=SYSTEM, name="Device viewer", permissions=[view_device]), None


def _role_assignment(p):
    return RoleAssignment.objects.get(users=p.helpdesk_a), None


def _api_token(p):
    token, _ = core_services.api_token_create(actor=SYSTEM, user=p.helpdesk_a, name="Inventory export")
    return token, None


def _audit_events(p):
    return AuditEvent.objects.filter(scope=p.scope_a).first(), AuditEvent.objects.filter(scope=p.scope_b).first()


def _synced_schedules() -> None:
    call_command("sync_schedules", stdout=StringIO())


def _periodic_task(p):
    _synced_schedules()
    return PeriodicTask.objects.get(name=SCHEDULES[0].name), None


def _interval(p):
    _synced_schedules()
    return IntervalSchedule.objects.get(every=SCHEDULES[0].every_seconds, period=IntervalSchedule.SECONDS), None


# django-celery-beat has no services of ours: its own models are the way to make these rows.
def _crontab(p):
    return CrontabSchedule.objects.create(minute="0", hour="3"), None


def _solar(p):
    return SolarSchedule.objects.create(event="sunrise", latitude="51.5", longitude="-0.12"), None


def _clocked(p):
    return ClockedSchedule.objects.create(clocked_time=timezone.now() + timedelta(days=1)), None


def _devices(p):
    return p.device_a, p.device_b


def _device_groups(p):
    in_a = device_services.device_group_save(
        actor=SYSTEM, name="EMEA phones", scope=p.scope_a, static_members=[p.device_a]
    )
    in_b = device_services.device_group_save(
        actor=SYSTEM, name="Americas phones", scope=p.scope_b, static_members=[p.device_b]
    )
    return in_a, in_b


@dataclass(frozen=True)
class AdminModel:
    """A registered ModelAdmin in the matrix.

    ``objects`` returns ``(obj, obj_b)``: an object for the change page and, for models scoped like
    devices, one in scope B. ``helpdesk_scoped`` says the Helpdesk operator's scoped role reaches the
    model: they see scope A's objects and scope B's are a 404. Otherwise the model is for global
    holders only and the helpdesk gets 403.
    """

    model: type[models.Model]
    objects: Callable[[SimpleNamespace], tuple[models.Model, models.Model | None]]
    helpdesk_scoped: bool = False

    def __str__(self) -> str:
        return self.model._meta.label_lower


ADMIN_MODELS: tuple[AdminModel, ...] = (
    AdminModel(Scope, _scopes),
    AdminModel(User, _users, helpdesk_scoped=True),
    AdminModel(UserGroup, _user_group),
    AdminModel(Role, _custom_role),
    AdminModel(RoleAssignment, _role_assignment),
    AdminModel(APIToken, _api_token),
    AdminModel(AuditEvent, _audit_events, helpdesk_scoped=True),
    AdminModel(PeriodicTask, _periodic_task),
    AdminModel(IntervalSchedule, _interval),
    AdminModel(CrontabSchedule, _crontab),
    AdminModel(SolarSchedule, _solar),
    AdminModel(ClockedSchedule, _clocked),
    AdminModel(Device, _devices, helpdesk_scoped=True),
    AdminModel(DeviceGroup, _device_groups, helpdesk_scoped=True),
)


def admin_expectation(case: AdminModel, persona: str):
    """What ``persona`` gets on the changelist and on the change page of an object they may reach."""
    return {
        "anonymous": ADMIN_LOGIN,
        "employee": ADMIN_LOGIN,
        "no_role": 403,
        "global_admin": 200,
        "read_only": 200,
        "helpdesk_a": 200 if case.helpdesk_scoped else 403,
    }[persona]


@covers(*admin_ids_for(case.model for case in ADMIN_MODELS))
@pytest.mark.parametrize("case", ADMIN_MODELS, ids=str)
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_changelist_and_change_page(client, people, case, persona):
    obj, obj_b = case.objects(people)
    sign_in(client, people, persona)
    expected = admin_expectation(case, persona)

    changelist = client.get(changelist_url(case.model))
    assert_outcome(changelist, expected, f"{persona} on the {case} changelist")
    assert_outcome(client.get(admin_url(obj)), expected, f"{persona} on a {case} change page")
    if obj_b is not None:
        # Out of scope is a 404 like a missing object; everyone else gets what they get for A.
        expected_b = 404 if persona == "helpdesk_a" else expected
        assert_outcome(client.get(admin_url(obj_b)), expected_b, f"{persona} on scope B's {case}")

    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(obj) in content, f"{persona} does not see {obj!r} in the {case} changelist"
        if obj_b is not None:
            assert (admin_url(obj_b) in content) is (persona != "helpdesk_a"), f"{persona} and {obj_b!r}"


def _refused_write_cells():
    for case in ADMIN_MODELS:
        yield pytest.param(case, "anonymous", "obj", ADMIN_LOGIN, id=f"{case}-anonymous")
        yield pytest.param(case, "employee", "obj", ADMIN_LOGIN, id=f"{case}-employee")
        yield pytest.param(case, "read_only", "obj", 403, id=f"{case}-read_only")
        yield pytest.param(case, "no_role", "obj", 403, id=f"{case}-no_role")
        # The helpdesk may view scope A's objects but change none; scope B's do not exist for them.
        yield pytest.param(case, "helpdesk_a", "obj", 403, id=f"{case}-helpdesk_a")
        if case.helpdesk_scoped:
            yield pytest.param(case, "helpdesk_a", "obj_b", 404, id=f"{case}-helpdesk_a-scope_b")


@pytest.mark.parametrize(("case", "persona", "target", "expected"), list(_refused_write_cells()))
def test_admin_writes_refused(client, people, case, persona, target, expected):
    obj, obj_b = case.objects(people)
    obj = obj if target == "obj" else obj_b
    sign_in(client, people, persona)  # first: signing in stamps the person's own last_login
    before, audit_count = snapshot(obj), AuditEvent.objects.count()

    edit = {"name": "Changed by a test", "description": "Changed by a test", "first_name": "Changed"}
    assert_outcome(client.post(admin_url(obj), edit), expected, f"{persona} saving a {case}")
    assert_outcome(client.post(admin_url(obj, "delete"), {"post": "yes"}), expected, f"{persona} deleting a {case}")

    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


def _device_form(device: Device, **changes) -> dict:
    data = {
        "name": device.name,
        "ownership": device.ownership,
        "scope": device.scope_id,
        "primary_user": device.primary_user_id or "",
    }
    return {**data, **changes}


def test_admin_global_admin_can_change_a_device(client, people):
    """The positive control for the refusals above: the same kind of POST works for a writer."""
    client.force_login(people.global_admin)
    response = client.post(admin_url(people.device_b), _device_form(people.device_b, name="AMER-PHONE-RENAMED"))
    assert response.status_code == 302, response.content.decode()[:2000]
    people.device_b.refresh_from_db()
    assert people.device_b.name == "AMER-PHONE-RENAMED"
    assert AuditEvent.objects.filter(verb="device.update", target_id=str(people.device_b.pk)).exists()


def test_admin_scoped_writer_cannot_write_outside_scope(client, people):
    """A device editor over scope A changes A's devices, cannot reach B's, and cannot move one to B."""
    editor = StaffFactory(username="device-editor-a")
    perms = Permission.objects.filter(
        content_type__app_label__in=["devices", "core"],
        codename__in=["view_device", "change_device", "view_user"],
    )
    role = core_services.role_save(actor=SYSTEM, name="Device editor", permissions=list(perms))
    grant(editor, role.name, [people.scope_a])
    client.force_login(editor)

    renamed = client.post(admin_url(people.device_a), _device_form(people.device_a, name="EMEA-PHONE-RENAMED"))
    assert renamed.status_code == 302, renamed.content.decode()[:2000]
    people.device_a.refresh_from_db()
    assert people.device_a.name == "EMEA-PHONE-RENAMED"

    before_b = snapshot(people.device_b)
    outside = client.post(admin_url(people.device_b), _device_form(people.device_b, name="HIJACKED"))
    assert outside.status_code == 404
    assert snapshot(people.device_b) == before_b

    before_a = snapshot(people.device_a)
    moved = client.post(admin_url(people.device_a), _device_form(people.device_a, scope=people.scope_b.pk))
    assert moved.status_code == 200  # the form again, with an error on the scope
    assert "scope" in moved.context["adminform"].form.errors
    assert snapshot(people.device_a) == before_a


@pytest.mark.parametrize(
    ("make", "action"),
    [
        (_periodic_task, "disable_tasks"),
        (_periodic_task, "toggle_tasks"),
        (_periodic_task, "run_tasks"),
        (_api_token, "revoke"),
    ],
    ids=["beat-disable", "beat-toggle", "beat-run", "token-revoke"],
)
def test_admin_changelist_actions_refused_to_read_only(client, people, make, action):
    """Bulk actions are writes too: a view-only person's action request changes nothing."""
    obj, _ = make(people)
    before, audit_count = snapshot(obj), AuditEvent.objects.count()
    client.force_login(people.read_only)
    assert f'value="{action}"' not in client.get(changelist_url(type(obj))).content.decode(), "action offered"

    response = client.post(changelist_url(type(obj)), {"action": action, "_selected_action": [obj.pk]})

    assert response.status_code in (200, 302)
    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


def test_admin_changelist_search_and_filters_stay_in_scope(client, people):
    client.force_login(people.helpdesk_a)
    url = changelist_url(Device)
    for query in ({"q": "AMER"}, {"scope__id__exact": people.scope_b.pk}, {"q": people.device_b.serial_number}):
        response = client.get(url, query)
        assert response.status_code == 200
        assert people.device_b.name not in response.content.decode(), query


def test_admin_device_changelist_query_count(client, people, django_assert_max_num_queries):
    for n in range(25):
        DeviceFactory(name=f"EMEA-LAPTOP-{n}", scope=people.scope_a, primary_user=people.employee)
        DeviceFactory(name=f"AMER-LAPTOP-{n}", scope=people.scope_b, primary_user=people.other_employee)
    # 52 devices on the page: a query per row would blow these bounds. The scoped operator's extra
    # queries are authz's per-action scope lookups (one per permission the page asks about).
    for persona, max_queries in (("global_admin", 10), ("helpdesk_a", 20)):
        client.force_login(getattr(people, persona))
        with django_assert_max_num_queries(max_queries):
            response = client.get(changelist_url(Device))
        assert response.status_code == 200


# Admin autocomplete ------------------------------------------------------------------------------


def _autocomplete(client, app_label: str, model_name: str, field_name: str):
    return client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": ""},
    )


AUTOCOMPLETE_DEVICES = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": {"device_a", "device_b"},
    "read_only": {"device_a", "device_b"},
    "helpdesk_a": {"device_a"},
}


@covers("admin:autocomplete")
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_autocomplete_of_group_members_lists_only_visible_devices(client, people, persona):
    sign_in(client, people, persona)
    expected = AUTOCOMPLETE_DEVICES[persona]
    response = _autocomplete(client, "devices", "devicegroup", "static_members")
    if isinstance(expected, set):
        assert response.status_code == 200
        ids = {item["id"] for item in response.json()["results"]}
        wanted = {str(getattr(people, name).pk) for name in expected}
        assert ids == wanted
    else:
        assert_outcome(response, expected, f"{persona} on the device autocomplete")


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name"),
    [("devices", "device", "primary_user"), ("core", "usergroup", "members")],
)
def test_admin_autocomplete_of_people_stays_in_scope(client, people, app_label, model_name, field_name):
    client.force_login(people.helpdesk_a)
    response = _autocomplete(client, app_label, model_name, field_name)
    assert response.status_code == 200
    ids = {item["id"] for item in response.json()["results"]}
    assert str(people.employee.pk) in ids
    assert str(people.other_employee.pk) not in ids


# API ---------------------------------------------------------------------------------------------

API_DEVICE_LIST = {
    "anonymous": 401,
    "employee": 403,
    "no_role": 403,
    "global_admin": {"device_a", "device_b"},
    "read_only": {"device_a", "device_b"},
    "helpdesk_a": {"device_a"},
}
# Device A's detail, and device B's where it differs.
API_DEVICE_DETAIL = {"anonymous": 401, "employee": 403, "no_role": 403, "global_admin": 200, "read_only": 200}
API_DEVICE_DETAIL_A = {**API_DEVICE_DETAIL, "helpdesk_a": 200}
API_DEVICE_DETAIL_B = {**API_DEVICE_DETAIL, "helpdesk_a": 404}


def assert_api_error(response, status: int) -> None:
    """Refusals are JSON with a sentence in ``detail``."""
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail[:1].isupper() and detail.endswith("."), detail


def device_ids(people, names) -> set[str]:
    return {str(getattr(people, name).uuid) for name in names}


@covers("api:device-list")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_device_list(client, people, persona):
    sign_in(client, people, persona)
    expected = API_DEVICE_LIST[persona]
    response = client.get(reverse("device-list"))
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {d["id"] for d in response.json()["results"]} == device_ids(people, expected)
    else:
        assert_api_error(response, expected)
        if expected == 401:
            assert response["WWW-Authenticate"] == "Bearer"


@covers("api:device-detail")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_device_detail(client, people, persona):
    sign_in(client, people, persona)
    for device, table in ((people.device_a, API_DEVICE_DETAIL_A), (people.device_b, API_DEVICE_DETAIL_B)):
        response = client.get(reverse("device-detail", kwargs={"id": device.uuid}))
        if table[persona] == 200:
            assert response.status_code == 200
            assert response.json()["id"] == str(device.uuid)
        else:
            assert_api_error(response, table[persona])


@pytest.mark.parametrize("persona", STAFF_PERSONAS)
def test_api_device_writes_refused(client, people, persona):
    """The device API is read-only; an unmapped method is refused, never served."""
    sign_in(client, people, persona)
    before, audit_count = snapshot(people.device_a), AuditEvent.objects.count()
    detail = reverse("device-detail", kwargs={"id": people.device_a.uuid})
    body = json.dumps({"name": "Changed by a test"})
    responses = [
        client.post(reverse("device-list"), body, content_type="application/json"),
        client.put(detail, body, content_type="application/json"),
        client.patch(detail, body, content_type="application/json"),
        client.delete(detail),
    ]
    assert [r.status_code for r in responses if r.status_code not in (403, 405)] == []
    assert snapshot(people.device_a) == before
    assert AuditEvent.objects.count() == audit_count


def test_api_device_list_query_count(client, people, django_assert_max_num_queries):
    for n in range(25):
        DeviceFactory(name=f"EMEA-LAPTOP-{n}", scope=people.scope_a, primary_user=people.employee)
        DeviceFactory(name=f"AMER-LAPTOP-{n}", scope=people.scope_b, primary_user=people.other_employee)
    client.force_login(people.helpdesk_a)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("device-list"))
    assert response.json()["count"] == 26


# The schema and its viewer are documentation for anyone signed in; they hold no data.
API_DOCS = {persona: 200 for persona in PERSONAS} | {"anonymous": 401}


@covers("api:api-schema", "api:api-docs")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_schema_and_docs(client, people, persona):
    sign_in(client, people, persona)
    for name in ("api-schema", "api-docs"):
        response = client.get(reverse(name))
        # The refusal is rendered in the schema's own format (OpenAPI YAML), so only its status is checked.
        assert response.status_code == API_DOCS[persona], name


# API tokens ----------------------------------------------------------------------------------------


@pytest.fixture
def helpdesk_token(people):
    return core_services.api_token_create(actor=SYSTEM, user=people.helpdesk_a, name="Helpdesk script")


def bearer(client, token: str):
    return client.get(reverse("device-list"), HTTP_AUTHORIZATION=f"Bearer {token}")


def test_api_token_of_helpdesk_lists_only_scope_a(client, people, helpdesk_token):
    token, plaintext = helpdesk_token
    response = bearer(client, plaintext)
    assert response.status_code == 200
    assert {d["id"] for d in response.json()["results"]} == device_ids(people, ["device_a"])
    detail_b = client.get(
        reverse("device-detail", kwargs={"id": people.device_b.uuid}), HTTP_AUTHORIZATION=f"Bearer {plaintext}"
    )
    assert detail_b.status_code == 404
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_api_token_whose_secret_contains_underscores_works(client, people, monkeypatch):
    """Secrets are URL-safe base64, so "_" and "-" occur in them (in about half of real tokens)."""
    monkeypatch.setattr(core_services.secrets, "token_urlsafe", lambda nbytes: "a_b-c_" + "x" * 37)
    _, plaintext = core_services.api_token_create(actor=SYSTEM, user=people.helpdesk_a, name="Underscores")
    response = bearer(client, plaintext)
    assert response.status_code == 200, response.content
    assert {d["id"] for d in response.json()["results"]} == device_ids(people, ["device_a"])


def test_api_token_of_employee_is_refused(client, people):
    _, plaintext = core_services.api_token_create(actor=SYSTEM, user=people.employee, name="Curious")
    assert_api_error(bearer(client, plaintext), 403)


def _revoked(token: APIToken, plaintext: str) -> str:
    core_services.api_token_revoke(actor=SYSTEM, token=token)
    return plaintext


def _expired(token: APIToken, plaintext: str) -> str:
    # The service refuses a past expiry, so age the token in place instead.
    APIToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    return plaintext


def _forged(token: APIToken, plaintext: str) -> str:
    """The real prefix with a made-up secret."""
    return f"mdm_{token.prefix}_{'A' * 43}"


def _deactivated(token: APIToken, plaintext: str) -> str:
    User.objects.filter(pk=token.user_id).update(is_active=False)
    return plaintext


@pytest.mark.parametrize(
    ("spoil", "sentence"),
    [
        (_revoked, "This API token was revoked. Create a new one in the admin."),
        (_expired, "This API token has expired. Create a new one in the admin."),
        (_forged, "This API token is not valid. Create a new one in the admin."),
        (_deactivated, "The account this API token belongs to is deactivated."),
        (lambda token, plaintext: "not-a-token", "This API token is not valid. Create a new one in the admin."),
        (lambda token, plaintext: plaintext[:-1], "This API token is not valid. Create a new one in the admin."),
        (lambda token, plaintext: f"{plaintext} extra", "Send the token as 'Authorization: Bearer mdm_...'."),
        (lambda token, plaintext: "mdm_short_x", "This API token is not valid. Create a new one in the admin."),
    ],
    ids=["revoked", "expired", "forged", "deactivated", "malformed", "truncated", "two-words", "bad-prefix"],
)
def test_api_bad_tokens_are_401_with_a_sentence(client, people, helpdesk_token, spoil, sentence):
    token, plaintext = helpdesk_token
    response = bearer(client, spoil(token, plaintext))
    assert_api_error(response, 401)
    assert response.json() == {"detail": sentence}
    assert response["WWW-Authenticate"] == "Bearer"


def test_api_bad_token_is_refused_even_with_a_session(client, people):
    """A bad token is an error, not a fallback to the browser session."""
    client.force_login(people.global_admin)
    assert_api_error(bearer(client, "mdm_000000000000_forged"), 401)


# Company Portal ----------------------------------------------------------------------------------

PORTAL_DEVICE_LIST = {"anonymous": PORTAL_LOGIN, "employee": {"device_a"}} | {p: set() for p in STAFF_PERSONAS}
# Only the owner reaches a device in the portal: an IT role does not make a device "yours".
PORTAL_DEVICE_DETAIL_A = {"anonymous": PORTAL_LOGIN, "employee": 200} | {p: 404 for p in STAFF_PERSONAS}
PORTAL_DEVICE_DETAIL_B = {"anonymous": PORTAL_LOGIN, "employee": 404} | {p: 404 for p in STAFF_PERSONAS}


@covers("portal:device_list")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_list(client, people, persona, django_assert_max_num_queries):
    sign_in(client, people, persona)
    expected = PORTAL_DEVICE_LIST[persona]
    with django_assert_max_num_queries(6):
        response = client.get(reverse("portal:device_list"))
    if isinstance(expected, set):
        assert response.status_code == 200
        content = response.content.decode()
        for name in ("device_a", "device_b"):
            device = getattr(people, name)
            assert (device.name in content) is (name in expected), f"{persona} and {device.name}"
    else:
        assert_outcome(response, expected, f"{persona} on the portal device list")


@covers("portal:device_detail")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_detail(client, people, persona):
    sign_in(client, people, persona)
    for device, table in ((people.device_a, PORTAL_DEVICE_DETAIL_A), (people.device_b, PORTAL_DEVICE_DETAIL_B)):
        response = client.get(reverse("portal:device_detail", kwargs={"uuid": device.uuid}))
        assert_outcome(response, table[persona], f"{persona} on the portal page of {device.name}")
        if table[persona] == 200:
            assert device.name in response.content.decode()


@covers("portal:login")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_login(client, people, persona):
    sign_in(client, people, persona)
    response = client.get(reverse("portal:login"))
    if persona == "anonymous":
        assert response.status_code == 200
    else:
        assert response.status_code == 302
        assert response["Location"] == reverse("portal:home")


def test_portal_login_signs_an_employee_in(client, people):
    response = client.post(reverse("portal:login"), {"username": "employee", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("portal:device_list")).status_code == 200


@covers("portal:home")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_home(client, people, persona):
    sign_in(client, people, persona)
    response = client.get(reverse("portal:home"), follow=True)
    landing = reverse("portal:login") if persona == "anonymous" else reverse("portal:device_list")
    assert response.status_code == 200
    assert response.request["PATH_INFO"] == landing


@covers("portal:logout")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_logout(client, people, persona):
    sign_in(client, people, persona)
    assert client.get(reverse("portal:logout")).status_code == 405  # signing out is a POST (CSRF-protected)
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login")
    assert_outcome(client.get(reverse("portal:device_list")), PORTAL_LOGIN, f"{persona} after signing out")
