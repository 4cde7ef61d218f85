"""Permission matrix of the apps console: every ModelAdmin page and custom admin URL against every persona.

The rules of ``tests/test_permission_matrix.py``: anonymous people and employees are sent to the admin
sign-in; staff without the permission anywhere get 403; an object outside the person's scopes is a
404 like a missing one; a view-only person's write is refused (403) and changes nothing. Personas
add ``manager_a``: the Application manager role over scope A, looking at scope A's objects (200) and
at scope B's (404). The Helpdesk operator holds no ``apps`` permission: 403 everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.db import models
from django.urls import reverse

from apps.choices import InstallState, WipeStatus
from apps.models import App, AppDataWipe, AppInstall, AppProtectionPolicy, ManagedAppInstance
from apps.services import app_data_wipe_request
from mdm_portal.core.models import AuditEvent
from tests.apps.test_apps_admin import app_manager, fanned_out, instance_of, make_app, user_group
from tests.factories import SYSTEM
from tests.matrix import admin_ids_for, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_outcome, changelist_url, snapshot

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "manager_a")


@pytest.fixture
def matrix_people(people):
    people.manager_a = app_manager(people.scope_a)
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


def _apps(p):
    return make_app("EMEA Outlook", scope=p.scope_a, version="4.1"), make_app("Americas Outlook", scope=p.scope_b)


def _installs(p):
    app = fanned_out(make_app("Everyone's Outlook", version="4.1"), failed_on=[p.device_a, p.device_b])
    return AppInstall.objects.get(app=app, device=p.device_a), AppInstall.objects.get(app=app, device=p.device_b)


def _protection_policies(p):
    outlook = make_app("Outlook", identifier="com.microsoft.Office.Outlook", rows=())
    group = user_group("Everyone", [p.employee, p.other_employee])

    def policy(name, scope):
        item = AppProtectionPolicy.objects.create(name=name, platform="ios", scope=scope)
        item.apps.set([outlook])
        item.assignments.create(user_group=group)
        return item

    return policy("EMEA mail", p.scope_a), policy("Americas mail", p.scope_b)


def _instances(p):
    return instance_of(p.employee), instance_of(p.other_employee)


def _wipes(p):
    a, b = _instances(p)
    return (
        app_data_wipe_request(actor=SYSTEM, instance=a, reason="Lost phone"),
        app_data_wipe_request(actor=SYSTEM, instance=b, reason="Lost phone"),
    )


@dataclass(frozen=True)
class Case:
    model: type[models.Model]
    objects: Callable[[SimpleNamespace], tuple[models.Model, models.Model]]

    def __str__(self) -> str:
        return self.model._meta.label_lower


CASES = (
    Case(App, _apps),
    Case(AppInstall, _installs),
    Case(AppProtectionPolicy, _protection_policies),
    Case(ManagedAppInstance, _instances),
    Case(AppDataWipe, _wipes),
)
VIEWERS = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 200,
    "helpdesk_a": 403,
    "manager_a": 200,
}


@covers(*admin_ids_for({case.model for case in CASES}))
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_apps_admin_changelist_and_change_page(client, matrix_people, case, persona):
    people = matrix_people
    obj, obj_b = case.objects(people)
    sign_in(client, people, persona)
    expected = VIEWERS[persona]

    changelist = client.get(changelist_url(case.model))
    assert_outcome(changelist, expected, f"{persona} on the {case} changelist")
    assert_outcome(client.get(admin_url(obj)), expected, f"{persona} on a {case} change page")
    expected_b = 404 if persona == "manager_a" else expected
    assert_outcome(client.get(admin_url(obj_b)), expected_b, f"{persona} on scope B's {case}")

    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(obj) in content, f"{persona} does not see {obj!r} in the {case} changelist"
        assert (admin_url(obj_b) in content) is (persona != "manager_a"), f"{persona} and {obj_b!r}"


def _refused_write_cells():
    for case in CASES:
        for persona, expected in (
            ("anonymous", ADMIN_LOGIN),
            ("employee", ADMIN_LOGIN),
            ("no_role", 403),
            ("read_only", 403),
            ("helpdesk_a", 403),
        ):
            yield pytest.param(case, persona, "obj", expected, id=f"{case}-{persona}")
        yield pytest.param(case, "manager_a", "obj_b", 404, id=f"{case}-manager_a-scope_b")
    # Installs, instances and wipes are facts: nobody edits or deletes them as rows.
    for case in CASES:
        if case.model in (AppInstall, ManagedAppInstance, AppDataWipe):
            yield pytest.param(case, "global_admin", "obj", 403, id=f"{case}-global_admin")


@pytest.mark.parametrize(("case", "persona", "target", "expected"), list(_refused_write_cells()))
def test_apps_admin_writes_refused(client, matrix_people, case, persona, target, expected):
    people = matrix_people
    obj, obj_b = case.objects(people)
    obj = obj_b if target == "obj_b" else obj
    sign_in(client, people, persona)
    before, audit_count = snapshot(obj), AuditEvent.objects.count()

    edit = {"name": "Changed by a test", "kind": "store", "state": "installed", "status": "cancelled"}
    assert_outcome(client.post(admin_url(obj), edit), expected, f"{persona} saving a {case}")
    deleted = client.post(admin_url(obj, "delete"), {"post": "yes"})
    assert_outcome(deleted, expected, f"{persona} deleting a {case}")

    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


# Custom admin URLs -------------------------------------------------------------------------------------------


def _app_page(name):
    def urls(p):
        a, b = _apps(p)
        fanned_out(a, failed_on=[p.device_a])
        fanned_out(b, failed_on=[p.device_b])
        return reverse(f"admin:apps_app_{name}", args=[a.pk]), reverse(f"admin:apps_app_{name}", args=[b.pk])

    return urls


def _device_installs(p):
    return (
        reverse("admin:apps_appinstall_device", args=[p.device_a.pk]),
        reverse("admin:apps_appinstall_device", args=[p.device_b.pk]),
    )


def _wipe_page(p):
    a, b = _instances(p)
    return (
        reverse("admin:apps_managedappinstance_wipe", args=[a.pk]),
        reverse("admin:apps_managedappinstance_wipe", args=[b.pk]),
    )


@dataclass(frozen=True)
class Page:
    name: str
    urls: Callable[[SimpleNamespace], tuple[str, str]]
    # What each persona gets on scope A's object; on scope B's, the manager of A gets a 404.
    outcomes: dict

    def __str__(self) -> str:
        return self.name


PAGES = (
    Page("apps_app_versions", _app_page("versions"), VIEWERS),
    Page("apps_app_installs", _app_page("installs"), VIEWERS),
    # Retrying and wiping are writes: the read-only operator is refused.
    Page("apps_app_retry", _app_page("retry"), VIEWERS | {"read_only": 403}),
    Page("apps_appinstall_device", _device_installs, VIEWERS),
    Page("apps_managedappinstance_wipe", _wipe_page, VIEWERS | {"read_only": 403}),
)


@covers(*(f"admin:{page.name}" for page in PAGES))
@pytest.mark.parametrize("page", PAGES, ids=str)
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_apps_admin_custom_pages(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    sign_in(client, matrix_people, persona)
    expected = page.outcomes[persona]
    assert_outcome(client.get(url_a), expected, f"{persona} on {page} (scope A)")
    expected_b = 404 if persona == "manager_a" else expected
    assert_outcome(client.get(url_b), expected_b, f"{persona} on {page} (scope B)")


# Refused writes; the manager of scope A posts to scope B's object (a 404). Their own: below.
WRITES = {
    "apps_app_retry": {"post": "yes"},
    "apps_managedappinstance_wipe": {"post": "yes", "reason": "Refused"},
    "apps_app_versions": {"version": "9.9", "notes": "Refused"},
}
REFUSED = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403, "read_only": 403, "helpdesk_a": 403}


def _state():
    return (
        list(AppInstall.objects.order_by("pk").values_list("state", flat=True)),
        list(AppDataWipe.objects.order_by("pk").values_list("status", flat=True)),
        list(App.objects.order_by("pk").values_list("current_version_id", flat=True)),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("page", [p for p in PAGES if p.name in WRITES], ids=str)
@pytest.mark.parametrize("persona", [*REFUSED, "manager_a"])
def test_apps_admin_custom_writes_refused(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    sign_in(client, matrix_people, persona)
    before = _state()
    targets = [url_b] if persona == "manager_a" else [url_a, url_b]
    expected = 404 if persona == "manager_a" else REFUSED[persona]
    for url in targets:
        assert_outcome(client.post(url, WRITES[page.name]), expected, f"{persona} posting to {page}")
    assert _state() == before


def test_manager_retries_and_wipes_in_their_scope(client, matrix_people):
    """The positive controls for the refusals above."""
    p = matrix_people
    retry_a, _ = _app_page("retry")(p)
    client.force_login(p.manager_a)
    assert client.post(retry_a, {"post": "yes"}).status_code == 302
    assert not AppInstall.objects.filter(device=p.device_a, state=InstallState.FAILED).exists()
    assert AppInstall.objects.filter(device=p.device_b, state=InstallState.FAILED).exists()

    wipe_a, _ = _wipe_page(p)
    assert client.post(wipe_a, {"post": "yes", "reason": "Left"}).status_code == 302
    assert AppDataWipe.objects.get().status == WipeStatus.PENDING
    assert AppDataWipe.objects.get().instance.user == p.employee


ADD_PAGES = VIEWERS | {"read_only": 403}


@covers("admin:apps_app_add", "admin:apps_appprotectionpolicy_add")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_apps_admin_add_pages(client, matrix_people, persona):
    sign_in(client, matrix_people, persona)
    expected = ADD_PAGES[persona]
    for url in (
        reverse("admin:apps_app_add"),
        reverse("admin:apps_app_add") + "?kind=lob",
        reverse("admin:apps_appprotectionpolicy_add"),
        reverse("admin:apps_appprotectionpolicy_add") + "?platform=android",
    ):
        assert_outcome(client.get(url), expected, f"{persona} on {url}")
    for model in (AppInstall, ManagedAppInstance, AppDataWipe):
        add = reverse(f"admin:apps_{model._meta.model_name}_add")
        expected_add = 403 if expected == 200 else expected
        assert_outcome(client.get(add), expected_add, f"{persona} adding a {model._meta.verbose_name}")
    count = App.objects.count()
    response = client.post(reverse("admin:apps_app_add") + "?kind=web", {"name": "X"})
    if expected != 200:
        assert_outcome(response, expected, f"{persona} adding an app")
    assert App.objects.count() == count  # refused, or the incomplete form again
