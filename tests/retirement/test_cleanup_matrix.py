"""Permission matrix of the cleanup rules: the ModelAdmin pages, the dry-run preview and "Run now".

Cleanup rules are organisation-wide, so only a global grant opens them: ``retirer_a`` (the Global
administrator role over scope A only) is refused (403) like the Helpdesk operator, and there is no
scope-B 404 to test on the rules themselves. What is scoped is the preview's content:
``cleanup_viewer_a`` sees the rules (global ``retirement.view_cleanuprule``) but the devices of scope A
only, so the preview lists ``device_a`` and not ``device_b``. Running is a global change: the
read-only operator and the scoped viewer are refused, and a refused run changes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from retirement.choices import CleanupAction
from retirement.models import CleanupRule, RetirementRequest
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import admin_ids, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_outcome, changelist_url

pytestmark = pytest.mark.django_db

MATRIX_PERSONAS = (*PERSONAS, "retirer_a", "cleanup_viewer_a")
VIEWERS = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 200,
    "helpdesk_a": 403,
    "retirer_a": 403,
    "cleanup_viewer_a": 200,
}
RUNNERS = VIEWERS | {"read_only": 403, "cleanup_viewer_a": 403}
# Who sees which of the two devices in the preview.
SEES_B = {"global_admin", "read_only"}


@pytest.fixture
def matrix_people(people):
    people.retirer_a = StaffFactory(username="retirer-a")
    grant(people.retirer_a, "Global administrator", [people.scope_a])
    role = core_services.role_save(
        actor=SYSTEM, name="Cleanup viewer", permissions=[Permission.objects.get(codename="view_cleanuprule")]
    )
    people.cleanup_viewer_a = StaffFactory(username="cleanup-viewer-a")
    grant(people.cleanup_viewer_a, role.name)
    grant(people.cleanup_viewer_a, "Helpdesk operator", [people.scope_a])
    # Both devices (iOS, one per scope) are silent long enough for the rule.
    Device.objects.filter(pk__in=[people.device_a.pk, people.device_b.pk]).update(
        last_checkin_at=timezone.now() - timedelta(days=100)
    )
    people.rule = CleanupRule.objects.create(platform="ios", days=90, action=CleanupAction.DELETE)
    return people


def sign_in(client, people, persona):
    if persona != "anonymous":
        client.force_login(getattr(people, persona))


@covers(*admin_ids(CleanupRule))
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_cleanup_rule_changelist_and_change_page(client, matrix_people, persona):
    people = matrix_people
    sign_in(client, people, persona)
    expected = VIEWERS[persona]
    changelist = client.get(changelist_url(CleanupRule))
    assert_outcome(changelist, expected, f"{persona} on the changelist")
    if expected == 200:
        assert admin_url(people.rule) in changelist.content.decode()
    assert_outcome(client.get(admin_url(people.rule)), expected, f"{persona} on the rule")
    missing = reverse("admin:retirement_cleanuprule_change", args=[999])
    assert_outcome(client.get(missing), 404 if expected == 200 else expected, f"{persona} on a missing rule")
    add = client.get(reverse("admin:retirement_cleanuprule_add"))
    assert_outcome(add, RUNNERS[persona], f"{persona} on the add page")


@covers("admin:retirement_cleanuprule_preview")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_cleanup_rule_preview(client, matrix_people, persona):
    people = matrix_people
    sign_in(client, people, persona)
    expected = VIEWERS[persona]
    response = client.get(reverse("admin:retirement_cleanuprule_preview", args=[people.rule.pk]))
    assert_outcome(response, expected, f"{persona} on the preview")
    if expected == 200:
        content = response.content.decode()
        assert people.device_a.name in content
        assert (people.device_b.name in content) is (persona in SEES_B)
    missing = client.get(reverse("admin:retirement_cleanuprule_preview", args=[999]))
    assert_outcome(missing, 404 if expected == 200 else expected, f"{persona} on a missing rule's preview")


@covers("admin:retirement_cleanuprule_run")
@pytest.mark.parametrize("persona", MATRIX_PERSONAS)
def test_cleanup_rule_run_confirmation(client, matrix_people, persona):
    sign_in(client, matrix_people, persona)
    response = client.get(reverse("admin:retirement_cleanuprule_run", args=[matrix_people.rule.pk]))
    assert_outcome(response, RUNNERS[persona], f"{persona} on the run confirmation")
    assert not RetirementRequest.objects.exists()


def _state(rule):
    return (
        list(CleanupRule.objects.values_list("platform", "days", "action", "enabled", "last_run_at")),
        list(Device.objects.order_by("pk").values_list("lifecycle_state", flat=True)),
        RetirementRequest.objects.count(),
        AuditEvent.objects.count(),
    )


REFUSED_WRITERS = [p for p in MATRIX_PERSONAS if RUNNERS[p] != 200]


@pytest.mark.parametrize("persona", REFUSED_WRITERS)
def test_refused_writes_change_nothing(client, matrix_people, persona):
    rule = matrix_people.rule
    sign_in(client, matrix_people, persona)
    before = _state(rule)
    expected = RUNNERS[persona]
    writes = {
        "run": (reverse("admin:retirement_cleanuprule_run", args=[rule.pk]), {}),
        "change": (admin_url(rule), {"platform": "ios", "days": 30, "action": "retire", "enabled": "on"}),
        "add": (reverse("admin:retirement_cleanuprule_add"), {"platform": "android", "days": 60, "action": "retire"}),
        "delete": (reverse("admin:retirement_cleanuprule_delete", args=[rule.pk]), {"post": "yes"}),
    }
    for name, (url, data) in writes.items():
        assert_outcome(client.post(url, data), expected, f"{persona} posting to {name}")
    assert _state(rule) == before


def test_the_global_administrator_runs_the_rule_over_every_scope(client, matrix_people):
    client.force_login(matrix_people.global_admin)
    response = client.post(reverse("admin:retirement_cleanuprule_run", args=[matrix_people.rule.pk]))
    assert response.status_code == 302
    taken = set(RetirementRequest.objects.values_list("device_id", flat=True))
    assert taken == {matrix_people.device_a.pk, matrix_people.device_b.pk}
