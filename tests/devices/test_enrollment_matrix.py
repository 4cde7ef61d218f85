"""Permission matrix of the enrolment admin pages: profiles (tokens), restrictions, failures, codes.

The same rules as ``tests/test_permission_matrix.py``: anonymous people and employees are sent to the
admin sign-in; staff without the permission anywhere get 403; an object outside the person's scopes
is a 404 like a missing one; a view-only person's write is refused (403) and changes nothing.
Enrolment failures are scoped by the person's home scope and the Helpdesk operator role reads them;
enrolment profiles are scoped by their own scope, managed by scoped IT through a custom role.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.db import models
from django.urls import reverse

from devices.choices import Ownership
from devices.models import EnrollmentCode, EnrollmentFailure, EnrollmentProfile, EnrollmentRestriction
from devices.services.enrollment import enrollment_code_create, enrollment_profile_create
from devices.services.restrictions import enrollment_restriction_default, enrollment_restriction_save
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import admin_ids_for, covers
from tests.test_permission_matrix import (
    ADMIN_LOGIN,
    PERSONAS,
    admin_url,
    assert_outcome,
    changelist_url,
    sign_in,
    snapshot,
)

pytestmark = pytest.mark.django_db


def _profiles(p):
    in_a, _ = enrollment_profile_create(
        actor=SYSTEM, name="EMEA kiosks", enrollment_manager=p.global_admin, scope=p.scope_a
    )
    in_b, _ = enrollment_profile_create(
        actor=SYSTEM, name="Americas kiosks", enrollment_manager=p.global_admin, scope=p.scope_b
    )
    return in_a, in_b


def _restrictions(p):
    targeted = enrollment_restriction_save(
        actor=SYSTEM, name="Apple only", priority=1, allowed_platforms=["ios"], device_limit=3
    )
    return targeted, None


def _default_restriction(p):
    return enrollment_restriction_default(), None


def _failure(user, message):
    return EnrollmentFailure.objects.create(
        user=user, platform="android", device_name=f"Phone of {user.username}", reason_code="enrollment_refused",
        message=message,
    )  # fmt: skip


def _failures(p):
    return _failure(p.employee, "Refused in EMEA."), _failure(p.other_employee, "Refused in the Americas.")


def _codes(p):
    code_a, _ = enrollment_code_create(actor=SYSTEM, user=p.employee, platform="ios", ownership=Ownership.PERSONAL)
    code_b, _ = enrollment_code_create(
        actor=SYSTEM, user=p.other_employee, platform="ios", ownership=Ownership.PERSONAL
    )
    return code_a, code_b


@dataclass(frozen=True)
class Case:
    model: type[models.Model]
    objects: Callable[[SimpleNamespace], tuple[models.Model, models.Model | None]]
    helpdesk_scoped: bool = False
    label: str = ""

    def __str__(self) -> str:
        return self.label or self.model._meta.label_lower


CASES = (
    Case(EnrollmentProfile, _profiles),
    Case(EnrollmentRestriction, _restrictions),
    Case(EnrollmentRestriction, _default_restriction, label="devices.enrollmentrestriction-default"),
    Case(EnrollmentFailure, _failures, helpdesk_scoped=True),
    Case(EnrollmentCode, _codes),
)


def expectation(case: Case, persona: str):
    return {
        "anonymous": ADMIN_LOGIN,
        "employee": ADMIN_LOGIN,
        "no_role": 403,
        "global_admin": 200,
        "read_only": 200,
        "helpdesk_a": 200 if case.helpdesk_scoped else 403,
    }[persona]


@covers(*admin_ids_for({case.model for case in CASES}))
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("persona", PERSONAS)
def test_enrollment_admin_changelist_and_change_page(client, people, case, persona):
    obj, obj_b = case.objects(people)
    sign_in(client, people, persona)
    expected = expectation(case, persona)

    changelist = client.get(changelist_url(case.model))
    assert_outcome(changelist, expected, f"{persona} on the {case} changelist")
    assert_outcome(client.get(admin_url(obj)), expected, f"{persona} on a {case} change page")
    if obj_b is not None:
        expected_b = 404 if (persona == "helpdesk_a" and case.helpdesk_scoped) else expected
        assert_outcome(client.get(admin_url(obj_b)), expected_b, f"{persona} on scope B's {case}")

    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(obj) in content, f"{persona} does not see {obj!r} in the {case} changelist"
        if obj_b is not None:
            visible = not (persona == "helpdesk_a" and case.helpdesk_scoped)
            assert (admin_url(obj_b) in content) is visible, f"{persona} and {obj_b!r}"


def _refused_write_cells():
    for case in CASES:
        yield pytest.param(case, "anonymous", "obj", ADMIN_LOGIN, id=f"{case}-anonymous")
        yield pytest.param(case, "employee", "obj", ADMIN_LOGIN, id=f"{case}-employee")
        yield pytest.param(case, "no_role", "obj", 403, id=f"{case}-no_role")
        yield pytest.param(case, "read_only", "obj", 403, id=f"{case}-read_only")
        yield pytest.param(case, "helpdesk_a", "obj", 403, id=f"{case}-helpdesk_a")
        if case.helpdesk_scoped:
            yield pytest.param(case, "helpdesk_a", "obj_b", 404, id=f"{case}-helpdesk_a-scope_b")
    # Profiles are never edited and failures and codes are facts: even a global administrator's
    # POST to their change or delete page is refused.
    for case in CASES:
        if case.model in (EnrollmentProfile, EnrollmentFailure, EnrollmentCode):
            yield pytest.param(case, "global_admin", "obj", 403, id=f"{case}-global_admin")
    yield pytest.param(CASES[2], "global_admin", "delete-only", 403, id="default-restriction-delete")


@pytest.mark.parametrize(("case", "persona", "target", "expected"), list(_refused_write_cells()))
def test_enrollment_admin_writes_refused(client, people, case, persona, target, expected):
    obj, obj_b = case.objects(people)
    obj = obj_b if target == "obj_b" else obj
    sign_in(client, people, persona)
    before, audit_count = snapshot(obj), AuditEvent.objects.count()

    edit = {"name": "Changed by a test", "description": "Changed by a test", "device_limit": 9, "priority": 7}
    if target != "delete-only":
        assert_outcome(client.post(admin_url(obj), edit), expected, f"{persona} saving a {case}")
    assert_outcome(client.post(admin_url(obj, "delete"), {"post": "yes"}), expected, f"{persona} deleting a {case}")

    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


@pytest.mark.parametrize("persona", ["read_only", "helpdesk_a", "no_role"])
def test_revoke_action_refused_to_those_who_cannot_change_profiles(client, people, persona):
    profile, _ = _profiles(people)
    before, audit_count = snapshot(profile), AuditEvent.objects.count()
    sign_in(client, people, persona)
    response = client.post(changelist_url(EnrollmentProfile), {"action": "revoke", "_selected_action": [profile.pk]})
    assert response.status_code in (200, 302, 403)
    if response.status_code == 200:
        assert 'value="revoke"' not in response.content.decode()
    assert snapshot(profile) == before
    assert AuditEvent.objects.count() == audit_count


# Scoped IT that manages its own scope's enrolment tokens ----------------------------------------------


@pytest.fixture
def manager_a(people):
    """Enrolment manager over scope A: views, creates and revokes scope A's profiles."""
    manager = StaffFactory(username="enrolment-manager-a")
    perms = Permission.objects.filter(
        content_type__app_label__in=["devices", "core"],
        codename__in=["view_enrollmentprofile", "add_enrollmentprofile", "change_enrollmentprofile", "view_user"],
    )
    role = core_services.role_save(actor=SYSTEM, name="Enrolment manager", permissions=list(perms))
    grant(manager, role.name, [people.scope_a])
    return manager


def _add_form(people, **changes):
    data = {
        "name": "Scoped kiosks",
        "description": "",
        "enrollment_manager": people.employee.pk,
        "scope": people.scope_a.pk,
        "ownership": Ownership.CORPORATE,
        "device_group": "",
        "primary_user": "",
        "capacity": 10,
        "expires_at_0": "",
        "expires_at_1": "",
        "provisioning_minutes": "",
        "provisioning_action": "notify",
    }
    return {**data, **changes}


def test_scoped_manager_sees_and_creates_profiles_only_in_their_scope(client, people, manager_a):
    in_a, in_b = _profiles(people)
    client.force_login(manager_a)

    listing = client.get(changelist_url(EnrollmentProfile)).content.decode()
    assert admin_url(in_a) in listing and admin_url(in_b) not in listing
    assert client.get(admin_url(in_a)).status_code == 200
    assert client.get(admin_url(in_b)).status_code == 404

    add = client.get(reverse("admin:devices_enrollmentprofile_add"))
    assert list(add.context["adminform"].form.fields["scope"].queryset) == [people.scope_a]

    count = EnrollmentProfile.objects.count()
    outside = client.post(reverse("admin:devices_enrollmentprofile_add"), _add_form(people, scope=people.scope_b.pk))
    assert outside.status_code == 200
    assert "scope" in outside.context["adminform"].form.errors
    assert EnrollmentProfile.objects.count() == count

    inside = client.post(reverse("admin:devices_enrollmentprofile_add"), _add_form(people))
    assert inside.status_code == 302
    assert EnrollmentProfile.objects.get(name="Scoped kiosks").scope == people.scope_a


def test_scoped_manager_revokes_only_their_scopes_profiles(client, people, manager_a):
    in_a, in_b = _profiles(people)
    client.force_login(manager_a)
    response = client.post(
        changelist_url(EnrollmentProfile), {"action": "revoke", "_selected_action": [in_a.pk, in_b.pk]}
    )
    assert response.status_code == 302
    in_a.refresh_from_db()
    in_b.refresh_from_db()
    assert in_a.revoked_at is not None
    assert in_b.revoked_at is None


def test_helpdesk_sees_failures_of_their_scope_only(client, people):
    mine, theirs = _failures(people)
    client.force_login(people.helpdesk_a)
    for query in ({"q": "Americas"}, {"q": people.other_employee.username}, {"platform": "android"}):
        content = client.get(changelist_url(EnrollmentFailure), query).content.decode()
        assert admin_url(theirs) not in content, query
    assert admin_url(mine) in client.get(changelist_url(EnrollmentFailure), {"q": "EMEA"}).content.decode()
