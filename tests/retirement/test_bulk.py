"""Bulk retire and full wipe over a device-list filter: the service, the preview, the confirmation,
the background run and the progress page."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.choices import LifecycleState, Ownership, Platform
from devices.models import Device
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from retirement import tasks
from retirement.admin import bulk as bulk_admin
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest, RetirementSettings
from retirement.selectors import (
    SKIP_LINUX_WIPE,
    SKIP_NOT_ENROLLED,
    SKIP_OPEN_REQUEST,
    SKIP_PERSONAL_WIPE,
)
from retirement.services import retirement_request, retirement_request_bulk
from tests.factories import DeviceFactory, StaffFactory, grant

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:devices_device_changelist"


def fleet(scope, count: int, *, prefix: str, **kwargs) -> list[Device]:
    return [DeviceFactory(name=f"{prefix}-{n:04d}", scope=scope, **kwargs) for n in range(count)]


@pytest.fixture
def mixed(people, scope_a):
    """Scope A: 3 corporate iPhones, 2 personal Androids, 1 Linux laptop, 1 pending device, 1 with an open request."""
    corporate = fleet(scope_a, 3, prefix="EMEA-IPHONE")
    personal = fleet(scope_a, 2, prefix="EMEA-PIXEL", platform=Platform.ANDROID, ownership=Ownership.PERSONAL)
    linux = fleet(scope_a, 1, prefix="EMEA-LAPTOP", platform=Platform.LINUX)
    pending = fleet(scope_a, 1, prefix="EMEA-NEW", state=LifecycleState.PENDING)
    busy = fleet(scope_a, 1, prefix="EMEA-BUSY")
    retirement_request(
        actor=Actor.for_user(people.global_admin),
        device=busy[0],
        action=RetirementAction.RETIRE,
        source=RetirementSource.ADMIN,
    )
    return {"corporate": corporate, "personal": personal, "linux": linux, "pending": pending, "busy": busy}


def emea(scope_a):
    return Device.objects.filter(scope=scope_a, name__startswith="EMEA-")


# The service ---------------------------------------------------------------------------------------------


def test_bulk_wipe_over_a_filter_counts_and_names_the_skipped(people, scope_a, mixed):
    actor = Actor.for_user(people.global_admin)
    outcome = retirement_request_bulk(
        actor=actor, devices=emea(scope_a), action=RetirementAction.WIPE, reason="Lease return"
    )
    # EMEA-PHONE-1 (the people fixture's device in scope A) is a corporate iPhone too.
    assert outcome["requested"] == 4
    assert outcome["sent"] == 4
    assert outcome["awaiting_approval"] == 0
    assert outcome["skipped"] == 5
    assert outcome["skipped_reasons"] == {
        SKIP_PERSONAL_WIPE: 2,
        SKIP_LINUX_WIPE: 1,
        SKIP_NOT_ENROLLED: 1,
        SKIP_OPEN_REQUEST: 1,
    }
    made = RetirementRequest.objects.filter(batch=outcome["batch"])
    assert made.count() == 4
    assert set(made.values_list("status", flat=True)) == {RetirementStatus.COMMAND_SENT}
    assert set(made.values_list("reason", flat=True)) == {"Lease return"}
    assert Device.objects.filter(pk__in=made.values("device_id"), lifecycle_state=LifecycleState.RETIRING).count() == 4
    event = AuditEvent.objects.get(verb="retirement.request.bulk")
    assert event.changes["requested"] == 4
    assert event.changes["skipped_reasons"][SKIP_PERSONAL_WIPE] == 2


def test_bulk_retire_takes_personal_and_linux_devices(people, scope_a, mixed):
    outcome = retirement_request_bulk(
        actor=Actor.for_user(people.global_admin), devices=emea(scope_a), action=RetirementAction.RETIRE
    )
    assert outcome["requested"] == 7
    assert outcome["skipped_reasons"] == {SKIP_NOT_ENROLLED: 1, SKIP_OPEN_REQUEST: 1}


def test_personal_wipe_allowed_by_the_settings(people, scope_a, mixed):
    settings = RetirementSettings.load()
    settings.allow_personal_full_wipe = True
    settings.save()
    outcome = retirement_request_bulk(
        actor=Actor.for_user(people.global_admin), devices=emea(scope_a), action=RetirementAction.WIPE
    )
    assert outcome["requested"] == 6
    assert SKIP_PERSONAL_WIPE not in outcome["skipped_reasons"]


def test_the_approval_setting_makes_bulk_requests_wait(people, scope_a, mixed):
    settings = RetirementSettings.load()
    settings.require_approval = True
    settings.save()
    outcome = retirement_request_bulk(
        actor=Actor.for_user(people.global_admin), devices=emea(scope_a), action=RetirementAction.RETIRE
    )
    assert outcome["requested"] == outcome["awaiting_approval"] == 7
    assert outcome["sent"] == 0
    made = RetirementRequest.objects.filter(batch=outcome["batch"])
    assert set(made.values_list("status", flat=True)) == {RetirementStatus.AWAITING_APPROVAL}
    assert not Device.objects.filter(pk__in=made.values("device_id"), lifecycle_state=LifecycleState.RETIRING).exists()


def test_a_scoped_operator_only_acts_on_their_scope(people, scope_a, scope_b):
    fleet(scope_a, 2, prefix="EMEA-IPHONE")
    fleet(scope_b, 3, prefix="AMER-IPHONE")
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    outcome = retirement_request_bulk(
        actor=Actor.for_user(retirer), devices=Device.objects.all(), action=RetirementAction.RETIRE
    )
    assert outcome["requested"] == 3
    assert outcome["skipped_reasons"] == {"outside the scopes where you may retire devices": 4}
    assert not RetirementRequest.objects.filter(scope=scope_b).exists()


def test_running_a_batch_again_makes_no_second_request(people, scope_a):
    fleet(scope_a, 2, prefix="EMEA-IPHONE")
    actor, batch = Actor.for_user(people.global_admin), uuid.uuid4()
    first = retirement_request_bulk(actor=actor, devices=emea(scope_a), action=RetirementAction.RETIRE, batch=batch)
    again = retirement_request_bulk(actor=actor, devices=emea(scope_a), action=RetirementAction.RETIRE, batch=batch)
    assert first["requested"] == 3
    assert again["requested"] == again["skipped"] == 0
    assert RetirementRequest.objects.filter(batch=batch).count() == 3


def test_delete_is_not_a_bulk_action(people, scope_a):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        retirement_request_bulk(
            actor=Actor.for_user(people.global_admin), devices=emea(scope_a), action=RetirementAction.DELETE
        )


# The console ---------------------------------------------------------------------------------------------


def bulk_post(client, query: str, action: str, *, page_ids, select_across: bool, confirm: dict | None = None):
    url = reverse(CHANGELIST) + (f"?{query}" if query else "")
    data = {
        "action": f"retirement_{action}_selected",
        "select_across": "1" if select_across else "0",
        ACTION_CHECKBOX_NAME: [str(pk) for pk in page_ids],
    }
    if confirm is None:
        data["index"] = "0"
    else:
        data |= {"post": "yes", **confirm}
    return client.post(url, data)


def test_preview_counts_selection_permission_and_eligibility(client, people, scope_a, scope_b, mixed):
    fleet(scope_b, 2, prefix="AMER-IPHONE")
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    # The retirer sees only scope A in the list; select-across over an empty filter takes what they see.
    page = bulk_post(client, "", "wipe", page_ids=[mixed["corporate"][0].pk], select_across=True)
    assert page.status_code == 200
    content = page.content.decode()
    assert '<strong id="bulk-selected">9</strong>' in content
    assert '<strong id="bulk-eligible">4</strong>' in content
    assert '<strong id="bulk-skipped">5</strong>' in content
    assert f"2 devices: {SKIP_PERSONAL_WIPE}" in content
    assert f"1 device: {SKIP_LINUX_WIPE}" in content
    assert "wipe 4 devices" in content


def test_preview_of_a_global_operator_counts_what_is_outside_their_permission(client, people, scope_a, scope_b):
    """A person who sees every device but may wipe only in scope A: the rest is counted as not permitted."""
    fleet(scope_b, 2, prefix="AMER-IPHONE")
    viewer_wiper = StaffFactory(username="viewer-wiper")
    grant(viewer_wiper, "Read-only operator")
    grant(viewer_wiper, "Global administrator", [scope_a])
    client.force_login(viewer_wiper)
    page = bulk_post(client, "", "retire", page_ids=[people.device_a.pk], select_across=True)
    content = page.content.decode()
    assert '<strong id="bulk-selected">4</strong>' in content
    assert '<strong id="bulk-not-permitted">3</strong>' in content
    assert '<strong id="bulk-eligible">1</strong>' in content


def test_full_wipe_needs_the_count_typed(client, people, scope_a, mixed):
    client.force_login(people.global_admin)
    ids = [d.pk for d in mixed["corporate"]]
    refused = bulk_post(
        client, "", "wipe", page_ids=ids, select_across=False, confirm={"confirm": "wipe 2 devices", "reason": "x"}
    )
    assert refused.status_code == 200
    assert "Type “wipe 3 devices” exactly" in refused.content.decode()
    assert not RetirementRequest.objects.exists() or RetirementRequest.objects.filter(batch__isnull=False).count() == 0
    done = bulk_post(
        client, "", "wipe", page_ids=ids, select_across=False, confirm={"confirm": "wipe 3 devices", "reason": "x"}
    )
    assert done.status_code == 302
    batch = RetirementRequest.objects.filter(batch__isnull=False).values_list("batch", flat=True).first()
    assert done["Location"] == reverse("admin:retirement_bulk_progress", args=[batch])
    assert set(RetirementRequest.objects.filter(batch=batch).values_list("device_id", flat=True)) == set(ids)


def test_retire_across_the_filter_as_a_scoped_operator(client, people, scope_a, scope_b, mixed):
    fleet(scope_b, 2, prefix="AMER-IPHONE")
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    response = bulk_post(
        client,
        "platform__exact=ios",
        "retire",
        page_ids=[mixed["corporate"][0].pk],
        select_across=True,
        confirm={"reason": "Office closes"},
    )
    assert response.status_code == 302
    made = RetirementRequest.objects.filter(batch__isnull=False)
    # 3 + EMEA-PHONE-1 (the busy one already has a request; pending is not enrolled); no scope B device.
    assert made.count() == 4
    assert set(made.values_list("scope_id", flat=True)) == {scope_a.pk}


def test_helpdesk_gets_no_retire_or_wipe_action(client, people):
    client.force_login(people.helpdesk_a)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    content = page.content.decode()
    assert "retirement_retire_selected" not in content
    assert "retirement_wipe_selected" not in content
    # Posting the action anyway does nothing.
    response = bulk_post(
        client, "", "retire", page_ids=[people.device_a.pk], select_across=False, confirm={"reason": "x"}
    )
    assert response.status_code in (200, 302)
    assert not RetirementRequest.objects.exists()


def test_global_admin_is_offered_both_actions(client, people):
    client.force_login(people.global_admin)
    content = client.get(reverse(CHANGELIST)).content.decode()
    assert "retirement_retire_selected" in content
    assert "retirement_wipe_selected" in content


# In the background ---------------------------------------------------------------------------------------


@pytest.fixture
def run_tasks_now(monkeypatch):
    """Run the bulk task in-process instead of sending it to the broker."""
    sent = []

    def apply_async(kwargs, **options):
        sent.append(kwargs)
        return tasks.retirement_request_bulk_task.apply(kwargs=kwargs)

    monkeypatch.setattr(tasks.retirement_request_bulk_task, "apply_async", apply_async)
    monkeypatch.setattr(bulk_admin, "BACKGROUND_THRESHOLD", 2)
    return sent


def test_a_large_bulk_request_runs_in_the_background_as_the_person(
    client, people, scope_a, scope_b, mixed, run_tasks_now, django_capture_on_commit_callbacks
):
    fleet(scope_b, 3, prefix="AMER-IPHONE")
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [scope_a])
    client.force_login(retirer)
    with django_capture_on_commit_callbacks(execute=True):
        response = bulk_post(
            client,
            "platform__exact=ios",
            "retire",
            page_ids=[mixed["corporate"][0].pk],
            select_across=True,
            confirm={"reason": "Office closes"},
        )
    assert response.status_code == 302
    assert response["Location"].endswith("?pending=1")
    [kwargs] = run_tasks_now
    assert kwargs["user_id"] == retirer.pk
    assert kwargs["selection"] == {"admin_query": "platform__exact=ios"}
    assert "instance" not in repr(kwargs)
    made = RetirementRequest.objects.filter(batch=kwargs["batch"])
    assert made.count() == 4
    assert set(made.values_list("scope_id", flat=True)) == {scope_a.pk}
    progress = client.get(response["Location"])
    assert progress.status_code == 200
    assert '<strong id="bulk-total">4</strong>' in progress.content.decode()


def test_the_background_run_takes_only_the_ticked_devices(
    client, people, scope_a, mixed, run_tasks_now, django_capture_on_commit_callbacks
):
    client.force_login(people.global_admin)
    ids = [d.pk for d in mixed["corporate"]]
    with django_capture_on_commit_callbacks(execute=True):
        bulk_post(client, "", "retire", page_ids=ids, select_across=False, confirm={"reason": ""})
    [kwargs] = run_tasks_now
    assert sorted(int(i) for i in kwargs["selection"]["ids"]) == sorted(ids)
    assert set(RetirementRequest.objects.filter(batch=kwargs["batch"]).values_list("device_id", flat=True)) == set(ids)


def test_the_task_of_a_deactivated_person_does_nothing(people, scope_a):
    people.global_admin.is_active = False
    people.global_admin.save()
    made = tasks.retirement_request_bulk_task.apply(
        kwargs={
            "user_id": people.global_admin.pk,
            "source_ip": None,
            "action": RetirementAction.RETIRE,
            "reason": "",
            "keep_enrollment": False,
            "batch": str(uuid.uuid4()),
            "selection": {"admin_query": ""},
        }
    ).get()
    assert made == 0
    assert not RetirementRequest.objects.exists()


# The progress page ---------------------------------------------------------------------------------------


def make_batch(people, scope, count: int, prefix: str) -> uuid.UUID:
    fleet(scope, count, prefix=prefix)
    outcome = retirement_request_bulk(
        actor=Actor.for_user(people.global_admin),
        devices=Device.objects.filter(name__startswith=prefix),
        action=RetirementAction.RETIRE,
    )
    return uuid.UUID(outcome["batch"])


def test_progress_page_counts_by_status(client, people, scope_a):
    batch = make_batch(people, scope_a, 4, "EMEA-IPHONE")
    made = list(RetirementRequest.objects.filter(batch=batch).order_by("pk"))
    RetirementRequest.objects.filter(pk=made[0].pk).update(status=RetirementStatus.UNENROLLED)
    RetirementRequest.objects.filter(pk=made[1].pk).update(status=RetirementStatus.ACKNOWLEDGED)
    RetirementRequest.objects.filter(pk=made[2].pk).update(status=RetirementStatus.FAILED)
    client.force_login(people.global_admin)
    page = client.get(reverse("admin:retirement_bulk_progress", args=[batch]))
    content = page.content.decode()
    assert page.status_code == 200
    assert '<strong id="bulk-total">4</strong>' in content
    assert '<progress id="bulk-progress-bar" max="4" value="2">' in content
    assert '<strong id="bulk-percent">50%</strong>' in content
    assert '<meta http-equiv="refresh"' in content
    assert f"?batch={batch}" in content
    for status, count in (("command_sent", 1), ("acknowledged", 1), ("unenrolled", 1), ("failed", 1)):
        assert f'<tr id="status-{status}"><td>' in content
        assert (
            content.split(f'<tr id="status-{status}">')[1].split("</tr>")[0].endswith(f'<td class="count">{count}</td>')
        )


def test_progress_page_stops_refreshing_when_finished(client, people, scope_a):
    batch = make_batch(people, scope_a, 2, "EMEA-IPHONE")
    RetirementRequest.objects.filter(batch=batch).update(status=RetirementStatus.UNENROLLED)
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:retirement_bulk_progress", args=[batch])).content.decode()
    assert '<strong id="bulk-percent">100%</strong>' in content
    assert 'http-equiv="refresh"' not in content


def test_progress_of_an_unknown_batch_is_a_404_unless_pending(client, people):
    client.force_login(people.global_admin)
    batch = uuid.uuid4()
    assert client.get(reverse("admin:retirement_bulk_progress", args=[batch])).status_code == 404
    pending = client.get(reverse("admin:retirement_bulk_progress", args=[batch]) + "?pending=1")
    assert pending.status_code == 200
    assert 'http-equiv="refresh"' in pending.content.decode()


def test_request_list_filters_by_batch(client, people, scope_a):
    batch = make_batch(people, scope_a, 2, "EMEA-IPHONE")
    other = make_batch(people, scope_a, 1, "EMEA-IPAD")
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:retirement_retirementrequest_changelist") + f"?batch={batch}").content.decode()
    assert "EMEA-IPHONE-0000" in content and "EMEA-IPHONE-0001" in content
    assert "EMEA-IPAD-0000" not in content
    assert other != batch


@pytest.mark.parametrize("rows", [2, 20])
def test_progress_page_query_count_does_not_grow(client, people, scope_a, rows, django_assert_max_num_queries):
    batch = make_batch(people, scope_a, rows, "EMEA-IPHONE")
    client.force_login(people.global_admin)
    url = reverse("admin:retirement_bulk_progress", args=[batch])
    client.get(url)
    with django_assert_max_num_queries(8):
        assert client.get(url).status_code == 200


def test_bulk_preview_query_count_does_not_grow(client, people, scope_a):
    fleet(scope_a, 3, prefix="EMEA-IPHONE")
    client.force_login(people.global_admin)
    bulk_post(client, "", "wipe", page_ids=[people.device_a.pk], select_across=True)
    with CaptureQueriesContext(connection) as small:
        bulk_post(client, "", "wipe", page_ids=[people.device_a.pk], select_across=True)
    fleet(scope_a, 15, prefix="EMEA-IPAD", platform=Platform.IPADOS)
    with CaptureQueriesContext(connection) as large:
        bulk_post(client, "", "wipe", page_ids=[people.device_a.pk], select_across=True)
    assert len(large) == len(small)
