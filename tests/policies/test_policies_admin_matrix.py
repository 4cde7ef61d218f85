"""Permission matrix of the configuration and compliance admin: every page and custom URL against every persona.

The rules of ``tests/test_permission_matrix.py``: anonymous people and employees are sent to the admin
sign-in; staff without the permission anywhere get 403; an object outside the person's scopes is a
404 like a missing one; a view-only person's write is refused (403) and changes nothing. Personas
add ``manager_a``: the Policy and profile manager role over scope A, looking at scope A's objects
(200) and at scope B's (404). The Helpdesk operator holds no ``policies`` permission: 403 everywhere.
Compliance settings are organisation-wide: global holders only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.db import models
from django.urls import reverse
from django.utils import timezone

from mdm_portal.core.models import AuditEvent
from policies.choices import ComplianceRule, DeliveryState
from policies.models import (
    ComplianceFailure,
    CompliancePolicy,
    ComplianceSettings,
    ConfigurationProfile,
    ProfileDelivery,
    RetireApproval,
)
from tests.matrix import admin_ids_for, covers
from tests.policies.admin_helpers import delivered, make_policy, make_profile, policy_manager
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_outcome, changelist_url, snapshot

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "manager_a")


@pytest.fixture
def matrix_people(people):
    people.manager_a = policy_manager(people.scope_a)
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


def _profiles(p):
    return make_profile("EMEA passcode", scope=p.scope_a), make_profile("Americas passcode", scope=p.scope_b)


def _policies(p):
    return (
        make_policy("EMEA iOS", scope=p.scope_a, encryption_required=True),
        make_policy("Americas iOS", scope=p.scope_b, encryption_required=True),
    )


def _deliveries(p):
    profile = make_profile("Everyone's passcode")
    delivered(profile)
    return (
        ProfileDelivery.objects.get(profile=profile, device=p.device_a),
        ProfileDelivery.objects.get(profile=profile, device=p.device_b),
    )


def _failures(p):
    policy = make_policy("iOS baseline", encryption_required=True)

    def failure(device):
        return ComplianceFailure.objects.create(
            device=device, policy=policy, rule=ComplianceRule.ENCRYPTION_REQUIRED, expected="encrypted",
            actual="not encrypted", since=timezone.now(),
        )  # fmt: skip

    return failure(p.device_a), failure(p.device_b)


def _approvals(p):
    def approval(device):
        return RetireApproval.objects.create(device=device, reason="Noncompliant.", requested_at=timezone.now())

    return approval(p.device_a), approval(p.device_b)


def _settings(p):
    return ComplianceSettings.load(), None


@dataclass(frozen=True)
class Case:
    model: type[models.Model]
    objects: Callable[[SimpleNamespace], tuple[models.Model, models.Model | None]]
    scoped: bool = True  # the manager of scope A reaches scope A's objects

    def __str__(self) -> str:
        return self.model._meta.label_lower


CASES = (
    Case(ConfigurationProfile, _profiles),
    Case(CompliancePolicy, _policies),
    Case(ProfileDelivery, _deliveries),
    Case(ComplianceFailure, _failures),
    Case(RetireApproval, _approvals),
    Case(ComplianceSettings, _settings, scoped=False),
)


def expectation(case: Case, persona: str):
    return {
        "anonymous": ADMIN_LOGIN,
        "employee": ADMIN_LOGIN,
        "no_role": 403,
        "global_admin": 200,
        "read_only": 200,
        "helpdesk_a": 403,
        "manager_a": 200 if case.scoped else 403,
    }[persona]


@covers(*admin_ids_for({case.model for case in CASES}))
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_policies_admin_changelist_and_change_page(client, matrix_people, case, persona):
    people = matrix_people
    obj, obj_b = case.objects(people)
    sign_in(client, people, persona)
    expected = expectation(case, persona)

    changelist = client.get(changelist_url(case.model))
    if case.model is ComplianceSettings and expected == 200:
        # A singleton: the list is the one row.
        assert changelist.status_code == 302 and changelist["Location"] == admin_url(obj)
    else:
        assert_outcome(changelist, expected, f"{persona} on the {case} changelist")
    assert_outcome(client.get(admin_url(obj)), expected, f"{persona} on a {case} change page")
    if obj_b is not None:
        expected_b = 404 if persona == "manager_a" else expected
        assert_outcome(client.get(admin_url(obj_b)), expected_b, f"{persona} on scope B's {case}")

    if expected == 200 and case.model is not ComplianceSettings:
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
        if case.scoped:
            yield pytest.param(case, "manager_a", "obj_b", 404, id=f"{case}-manager_a-scope_b")
        else:
            yield pytest.param(case, "manager_a", "obj", 403, id=f"{case}-manager_a")
    # Deliveries, failures and approvals are facts: nobody edits or deletes them as rows.
    for case in CASES:
        if case.model in (ProfileDelivery, ComplianceFailure, RetireApproval):
            yield pytest.param(case, "global_admin", "obj", 403, id=f"{case}-global_admin")


@pytest.mark.parametrize(("case", "persona", "target", "expected"), list(_refused_write_cells()))
def test_policies_admin_writes_refused(client, matrix_people, case, persona, target, expected):
    people = matrix_people
    obj, obj_b = case.objects(people)
    obj = obj_b if target == "obj_b" else obj
    sign_in(client, people, persona)
    before, audit_count = snapshot(obj), AuditEvent.objects.count()

    edit = {"name": "Changed by a test", "description": "Changed", "validity_days": "7", "status": "dismissed"}
    assert_outcome(client.post(admin_url(obj), edit), expected, f"{persona} saving a {case}")
    deleted = client.post(admin_url(obj, "delete"), {"post": "yes"})
    assert_outcome(deleted, expected, f"{persona} deleting a {case}")

    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


# Custom admin URLs ---------------------------------------------------------------------------------------


def _profile_page(name):
    def urls(p):
        a, b = _profiles(p)
        delivered(a, error_on=[p.device_a])
        delivered(b, error_on=[p.device_b])
        return (
            reverse(f"admin:policies_configurationprofile_{name}", args=[a.pk]),
            reverse(f"admin:policies_configurationprofile_{name}", args=[b.pk]),
        )

    return urls


def _effective_device(p):
    return (
        reverse("admin:policies_effective_device", args=[p.device_a.pk]),
        reverse("admin:policies_effective_device", args=[p.device_b.pk]),
    )


def _effective_user(p):
    return (
        reverse("admin:policies_effective_user", args=[p.employee.pk]),
        reverse("admin:policies_effective_user", args=[p.other_employee.pk]),
    )


def _decide(p):
    a, b = _approvals(p)
    return (
        reverse("admin:policies_retireapproval_decide", args=[a.pk]),
        reverse("admin:policies_retireapproval_decide", args=[b.pk]),
    )


BASE = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403, "helpdesk_a": 403}


@dataclass(frozen=True)
class Page:
    name: str
    urls: Callable[[SimpleNamespace], tuple[str, str]]
    # What each persona gets on scope A's object; on scope B's, the manager of A gets a 404.
    outcomes: dict

    def __str__(self) -> str:
        return self.name


VIEWERS = BASE | {"global_admin": 200, "read_only": 200, "manager_a": 200}
PAGES = (
    Page("policies_configurationprofile_deliveries", _profile_page("deliveries"), VIEWERS),
    # Resending is a write: the read-only operator is refused.
    Page("policies_configurationprofile_resend", _profile_page("resend"), VIEWERS | {"read_only": 403}),
    Page("policies_effective_device", _effective_device, VIEWERS),
    Page("policies_effective_user", _effective_user, VIEWERS),
    # The page explains a proposal to anyone who may see it; only deciding needs the right to retire.
    Page("policies_retireapproval_decide", _decide, VIEWERS),
)


@covers(*(f"admin:{page.name}" for page in PAGES))
@pytest.mark.parametrize("page", PAGES, ids=str)
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_policies_admin_custom_pages(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    sign_in(client, matrix_people, persona)
    expected = page.outcomes[persona]
    assert_outcome(client.get(url_a), expected, f"{persona} on {page} (scope A)")
    expected_b = 404 if persona == "manager_a" else expected
    assert_outcome(client.get(url_b), expected_b, f"{persona} on {page} (scope B)")


# Refused writes; the manager of scope A posts to scope B's object (a 404). Their own: below.
WRITES = {
    "policies_configurationprofile_resend": ({"post": "yes"}, BASE | {"read_only": 403}),
    "policies_retireapproval_decide": ({"decision": "approve"}, BASE | {"read_only": 403}),
}


@pytest.mark.parametrize("page", [p for p in PAGES if p.name in WRITES], ids=str)
@pytest.mark.parametrize("persona", ["anonymous", "employee", "no_role", "read_only", "helpdesk_a", "manager_a"])
def test_policies_admin_custom_writes_refused(client, matrix_people, page, persona):
    url_a, url_b = page.urls(matrix_people)
    body, outcomes = WRITES[page.name]
    sign_in(client, matrix_people, persona)
    deliveries = list(ProfileDelivery.objects.order_by("pk").values_list("state", flat=True))
    approvals = list(RetireApproval.objects.order_by("pk").values_list("status", flat=True))
    audit_count = AuditEvent.objects.count()

    targets = [url_b] if persona == "manager_a" else [url_a, url_b]
    expected = 404 if persona == "manager_a" else outcomes[persona]
    for url in targets:
        assert_outcome(client.post(url, body), expected, f"{persona} posting to {page}")

    assert list(ProfileDelivery.objects.order_by("pk").values_list("state", flat=True)) == deliveries
    assert list(RetireApproval.objects.order_by("pk").values_list("status", flat=True)) == approvals
    assert AuditEvent.objects.count() == audit_count


def test_manager_resends_in_their_scope(client, matrix_people):
    """The positive control for the refusals above."""
    url_a, _ = _profile_page("resend")(matrix_people)
    client.force_login(matrix_people.manager_a)
    assert client.post(url_a, {"post": "yes"}).status_code == 302
    assert not ProfileDelivery.objects.filter(device=matrix_people.device_a, state=DeliveryState.ERROR).exists()
    assert ProfileDelivery.objects.filter(device=matrix_people.device_b, state=DeliveryState.ERROR).exists()


ADD_PAGES = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 403,
    "helpdesk_a": 403,
    "manager_a": 200,
}


@covers("admin:policies_configurationprofile_add", "admin:policies_compliancepolicy_add")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_policies_admin_add_pages(client, matrix_people, persona):
    sign_in(client, matrix_people, persona)
    expected = ADD_PAGES[persona]
    for url in (
        reverse("admin:policies_configurationprofile_add"),
        reverse("admin:policies_configurationprofile_add") + "?kind=wifi",
        reverse("admin:policies_compliancepolicy_add"),
    ):
        assert_outcome(client.get(url), expected, f"{persona} on {url}")
    count = ConfigurationProfile.objects.count()
    response = client.post(reverse("admin:policies_configurationprofile_add") + "?kind=encryption", {"name": "X"})
    if expected != 200:
        assert_outcome(response, expected, f"{persona} adding a profile")
    assert ConfigurationProfile.objects.count() == count  # refused, or the incomplete form again
