"""Cleanup rules: what a rule takes, the run (retire and delete), the beat job, and the admin pages."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.choices import CommandStatus, CommandType, LifecycleState, Platform
from devices.models import Device, DeviceCommand
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from retirement.choices import CleanupAction, RetirementAction, RetirementSource, RetirementStatus
from retirement.models import CleanupRule, RetirementRequest, RetirementSettings
from retirement.services import cleanup as cleanup_module
from retirement.services import (
    cleanup_candidates,
    cleanup_rule_delete,
    cleanup_rule_run,
    cleanup_rule_save,
    cleanup_rules_run_all,
    retirement_cancel,
    retirement_request,
)
from retirement.tasks import cleanup_rules_run_task
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, UserFactory, grant

pytestmark = pytest.mark.django_db
Status = RetirementStatus
DAYS = 90


def silent_for(device: Device, now, *, days: float, never: bool = False) -> Device:
    """The device last checked in ``days`` before ``now`` (``never``: it never did, and enrolled then)."""
    when = now - timedelta(days=days)
    if never:
        Device.objects.filter(pk=device.pk).update(last_checkin_at=None, enrolled_at=when)
    else:
        Device.objects.filter(pk=device.pk).update(last_checkin_at=when)
    device.refresh_from_db()
    return device


def rule_for(platform=Platform.IOS, *, days=DAYS, action=CleanupAction.RETIRE, enabled=True) -> CleanupRule:
    return cleanup_rule_save(
        actor=SYSTEM, rule=CleanupRule(platform=platform, days=days, action=action, enabled=enabled)
    )


@pytest.fixture
def fleet(scope_a, scope_b, admins):
    """Devices on both sides of a 90-day iOS rule, and those it must leave alone whatever their silence."""
    now = timezone.now()
    minute = 1 / (24 * 60)
    d = {}
    d["over"] = silent_for(DeviceFactory(name="IOS-OVER", scope=scope_a), now, days=DAYS + minute)
    d["long"] = silent_for(DeviceFactory(name="IOS-LONG", scope=scope_b), now, days=200)
    d["under"] = silent_for(DeviceFactory(name="IOS-UNDER", scope=scope_a), now, days=DAYS - minute)
    d["recent"] = silent_for(DeviceFactory(name="IOS-RECENT", scope=scope_a), now, days=1)
    d["never_old"] = silent_for(DeviceFactory(name="IOS-NEVER-OLD", scope=scope_b), now, days=DAYS + 1, never=True)
    d["never_new"] = silent_for(DeviceFactory(name="IOS-NEVER-NEW", scope=scope_a), now, days=DAYS - 1, never=True)
    d["android"] = silent_for(
        DeviceFactory(name="ANDROID-OLD", platform=Platform.ANDROID, scope=scope_a), now, days=200
    )
    d["retired"] = silent_for(
        DeviceFactory(name="IOS-RETIRED", serial_number="", state=LifecycleState.RETIRED, scope=scope_a), now, days=200
    )
    d["pending"] = DeviceFactory(name="IOS-PENDING", state=LifecycleState.PENDING, scope=scope_a)
    Device.objects.filter(pk=d["pending"].pk).update(created_at=now - timedelta(days=200))
    # An open request that leaves the device enrolled (it waits for approval).
    settings = RetirementSettings.load()
    settings.require_approval = True
    settings.save()
    d["open"] = silent_for(DeviceFactory(name="IOS-OPEN-REQUEST", scope=scope_a), now, days=200)
    retirement_request(
        actor=Actor.for_user(admins[0]), device=d["open"], action=RetirementAction.RETIRE, source=RetirementSource.ADMIN
    )
    # A finished (cancelled) request does not protect a device.
    d["cancelled"] = silent_for(DeviceFactory(name="IOS-CANCELLED-REQUEST", scope=scope_b), now, days=200)
    cancelled = retirement_request(
        actor=Actor.for_user(admins[0]),
        device=d["cancelled"],
        action=RetirementAction.RETIRE,
        source=RetirementSource.ADMIN,
    )
    retirement_cancel(actor=Actor.for_user(admins[0]), request=cancelled)
    settings.require_approval = False
    settings.save()
    return now, d


TAKEN = {"over", "long", "never_old", "cancelled"}


def cleanup_requests():
    return RetirementRequest.objects.filter(source=RetirementSource.CLEANUP)


# What a rule takes ------------------------------------------------------------------------------------


def test_candidates_are_the_silent_enrolled_devices_of_the_platform_without_an_open_request(fleet):
    now, d = fleet
    rule = rule_for()
    assert set(cleanup_candidates(rule, now)) == {d[k] for k in TAKEN}


def test_the_run_takes_exactly_the_dry_run(fleet):
    now, _ = fleet
    rule = rule_for()
    preview = set(cleanup_candidates(rule, now).values_list("pk", flat=True))

    result = cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)

    assert set(cleanup_requests().values_list("device_id", flat=True)) == preview
    assert result["taken"] == len(preview) == 4 and result["skipped"] == 0
    assert not cleanup_candidates(rule, now).exists()
    # One run's requests share a batch id.
    assert set(cleanup_requests().values_list("batch", flat=True)) == {uuid.UUID(result["batch"])}


def test_retire_action_queues_the_retire_command(fleet):
    now, d = fleet
    rule = rule_for()
    cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)

    request = cleanup_requests().get(device=d["long"])
    assert request.action == RetirementAction.RETIRE
    assert request.status == Status.COMMAND_SENT
    assert request.reason == "Cleanup rule: no check-in for 90 days"
    assert request.requested_by_label == "system:tests"
    command = DeviceCommand.objects.get(pk=request.command_id)
    assert (command.command_type, command.status) == (CommandType.RETIRE, CommandStatus.QUEUED)
    d["long"].refresh_from_db()
    assert d["long"].lifecycle_state == LifecycleState.RETIRING


def test_the_run_is_recorded_on_the_rule_and_audited_once(fleet):
    now, _ = fleet
    rule = rule_for()
    cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)

    rule.refresh_from_db()
    assert (rule.last_run_at, rule.last_run_count) == (now, 4)
    [event] = AuditEvent.objects.filter(verb="retirement.cleanup.run")
    assert event.changes["taken"] == 4 and event.changes["skipped"] == 0
    assert event.changes["platform"] == "ios" and event.changes["days"] == DAYS


def test_a_device_that_became_ineligible_is_skipped_with_its_reason_and_the_run_goes_on(fleet, monkeypatch):
    now, d = fleet
    rule = rule_for()
    real = cleanup_module._take

    def take(*, device, **kwargs):
        if device.pk == d["over"].pk:
            # The device checks in between the selection and its turn.
            Device.objects.filter(pk=device.pk).update(last_checkin_at=now)
        return real(device=device, **kwargs)

    monkeypatch.setattr(cleanup_module, "_take", take)
    result = cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)

    assert (result["taken"], result["skipped"]) == (3, 1)
    [(reason, count)] = result["skipped_reasons"].items()
    assert count == 1 and "no longer a candidate" in reason and "IOS-OVER" not in reason
    assert not cleanup_requests().filter(device=d["over"]).exists()
    rule.refresh_from_db()
    assert rule.last_run_count == 3


def test_a_refusal_of_the_request_service_is_counted_not_raised(fleet, monkeypatch):
    now, d = fleet
    rule = rule_for()
    real = cleanup_module.requests_service.retirement_request

    def refuse_one(*, device, **kwargs):
        if device.pk == d["long"].pk:
            raise ValidationError(f"{device.name} refuses.")
        return real(device=device, **kwargs)

    monkeypatch.setattr(cleanup_module.requests_service, "retirement_request", refuse_one)
    result = cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)
    assert result["skipped_reasons"] == {"The device refuses.": 1}
    assert result["taken"] == 3
    d["long"].refresh_from_db()
    assert d["long"].lifecycle_state == LifecycleState.ENROLLED


# Delete: removed from management at once ----------------------------------------------------------------


@pytest.fixture
def enrolled(scope_a):
    _, token = enrollment_profile_create(
        actor=SYSTEM,
        name="Field phones",
        enrollment_manager=StaffFactory(username="manager"),
        scope=scope_a,
        capacity=5,
    )
    return device_enroll(identity=identity(), token=token, inventory=inventory())


def post(client, url, body, secret):
    return client.post(
        url, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {secret}"
    )


def test_delete_action_forces_the_unenrolment_and_the_device_is_refused_with_410(client, enrolled):
    device, secret = enrolled
    assert post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret).status_code == 200
    now = timezone.now()
    silent_for(device, now, days=31)
    rule = rule_for(Platform.ANDROID, days=30, action=CleanupAction.DELETE)

    result = cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)

    assert result["taken"] == 1
    request = cleanup_requests().get(device=device)
    assert request.action == RetirementAction.DELETE
    assert request.status == Status.FORCED
    assert request.forced_reason == "Cleanup rule: no check-in for 30 days"
    assert request.command_id is None and request.unenrolled_at is not None
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRED
    assert AuditEvent.objects.filter(verb="retirement.force", target_id=str(request.pk)).exists()

    reply = post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret)
    assert reply.status_code == 410 and reply.json()["error"]["code"] == "device_retired"


def test_a_person_running_a_delete_rule_needs_no_force_permission(enrolled):
    device, _ = enrolled
    now = timezone.now()
    silent_for(device, now, days=45)
    rule = rule_for(Platform.ANDROID, days=30, action=CleanupAction.DELETE)
    runner = StaffFactory(username="runner")  # holds nothing: the admin checks the rule permission, not this

    cleanup_rule_run(rule=rule, actor=Actor.for_user(runner), now=now)

    request = cleanup_requests().get(device=device)
    assert (request.status, request.forced_by, request.requested_by) == (Status.FORCED, runner, runner)


# Rules: days within 30 to 270, audited --------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, 29, 271, 1000])
def test_days_outside_30_to_270_are_refused_with_a_sentence(days):
    with pytest.raises(ValidationError) as refused:
        rule_for(days=days)
    assert refused.value.message_dict["days"] == [cleanup_module.DAYS_SENTENCE]
    assert "between 30 and 270 days" in cleanup_module.DAYS_SENTENCE
    assert not CleanupRule.objects.exists()


@pytest.mark.parametrize("days", [30, 270])
def test_the_limits_themselves_are_accepted(days):
    assert rule_for(days=days).days == days


def test_rule_save_and_delete_are_audited():
    rule = rule_for()
    rule.days = 120
    cleanup_rule_save(actor=SYSTEM, rule=rule)
    cleanup_rule_delete(actor=SYSTEM, rule=rule)
    events = list(AuditEvent.objects.filter(verb__startswith="retirement.cleanup_rule.").order_by("pk"))
    assert [e.verb for e in events] == [
        "retirement.cleanup_rule.create",
        "retirement.cleanup_rule.update",
        "retirement.cleanup_rule.delete",
    ]
    assert events[1].changes == {"days": [DAYS, 120]}
    assert not CleanupRule.objects.exists()


# Beat ---------------------------------------------------------------------------------------------------


def test_beat_runs_only_the_enabled_rules(fleet):
    _, d = fleet
    ios = rule_for()
    android = rule_for(Platform.ANDROID, days=30, enabled=False)

    assert cleanup_rules_run_task() == {"ios": 4}

    assert set(cleanup_requests().values_list("device_id", flat=True)) == {d[k].pk for k in TAKEN}
    ios.refresh_from_db()
    android.refresh_from_db()
    assert ios.last_run_count == 4 and android.last_run_at is None
    assert AuditEvent.objects.get(verb="retirement.cleanup.run").actor_label == "system:retirement.cleanup"
    # A second run finds nothing left: each taken device now has its open request.
    assert [run["taken"] for run in cleanup_rules_run_all()] == [0]


def test_the_daily_schedule_names_the_task():
    from mdm_portal.celery import app
    from mdm_portal.schedules import SCHEDULES

    [schedule] = [s for s in SCHEDULES if s.name == "Run device cleanup rules"]
    assert schedule.every_seconds == 24 * 60 * 60
    app.loader.import_default_modules()
    assert schedule.task in app.tasks


# Queries: the selection is one query per batch ------------------------------------------------------------

SELECTION = re.compile(r'FROM "devices_device".*NOT.*EXISTS.*ORDER BY .* LIMIT (\d+)$', re.S)
# Per device: lock and re-check, the request service (lock, open-request check, settings, snapshot, insert,
# audit, lifecycle transition and its audit, command cancel and queue, dispatch audit).
PER_DEVICE = 30
FIXED = 12


def _stale_ios(n: int, scope):
    now = timezone.now()
    devices = [DeviceFactory(scope=scope) for _ in range(n)]
    Device.objects.filter(pk__in=[x.pk for x in devices]).update(last_checkin_at=now - timedelta(days=DAYS + 5))
    return now


@pytest.mark.parametrize("n", [5, 20])
def test_a_run_selects_candidates_in_one_query_per_batch(n, scope_a, django_assert_max_num_queries, monkeypatch):
    now = _stale_ios(n, scope_a)
    rule = rule_for()
    monkeypatch.setattr(cleanup_module, "RUN_BATCH", 8)
    batches = n // 8 + 1
    bound = FIXED + PER_DEVICE * n + 2 * batches
    with django_assert_max_num_queries(bound), CaptureQueriesContext(connection) as queries:
        result = cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)
    selections = [q["sql"] for q in queries.captured_queries if SELECTION.search(q["sql"])]
    assert result["taken"] == n and result["batches"] == batches
    assert len(selections) == batches
    assert all(SELECTION.search(sql).group(1) == "8" for sql in selections)


def test_per_device_work_does_not_grow_with_the_fleet(scope_a):
    """One more device costs the same at 5 and at 20: nothing per device scans the whole set."""
    rule = rule_for()
    cleanup_rule_run(rule=rule, actor=SYSTEM, now=_stale_ios(1, scope_a))  # warms the caches (content types)
    costs = {}
    for n in (5, 20):
        now = _stale_ios(n, scope_a)
        with CaptureQueriesContext(connection) as queries:
            assert cleanup_rule_run(rule=rule, actor=SYSTEM, now=now)["taken"] == n
        costs[n] = len(queries.captured_queries)
    per_device, remainder = divmod(costs[20] - costs[5], 15)
    assert remainder == 0 and per_device <= PER_DEVICE
    assert costs[5] - 5 * per_device <= FIXED


# Admin ---------------------------------------------------------------------------------------------------


def preview_url(rule):
    return reverse("admin:retirement_cleanuprule_preview", args=[rule.pk])


def run_url(rule):
    return reverse("admin:retirement_cleanuprule_run", args=[rule.pk])


DEVICE_CELL = re.compile(r'<td><a href="/admin/devices/device/\d+/change/">([^<]+)</a></td>')


def names_on(response) -> set[str]:
    return set(DEVICE_CELL.findall(response.content.decode()))


def test_the_preview_lists_what_the_run_then_takes(client, fleet, admins):
    _, d = fleet
    rule = rule_for()
    client.force_login(admins[0])

    page = client.get(preview_url(rule))
    assert page.status_code == 200
    previewed = names_on(page)
    assert previewed == {d[k].name for k in TAKEN}
    assert "<strong>4</strong> devices" in page.content.decode()

    confirm = client.get(run_url(rule))
    assert confirm.status_code == 200 and not cleanup_requests().exists()
    assert '<strong class="cleanup-count">4</strong>' in confirm.content.decode()

    done = client.post(run_url(rule), follow=True)
    assert done.redirect_chain[-1][0] == preview_url(rule)
    assert set(cleanup_requests().values_list("device_name", flat=True)) == previewed
    assert "4 device(s) taken" in done.content.decode()
    assert cleanup_requests().first().requested_by == admins[0]
    assert names_on(done) == set()


def test_preview_rows_say_user_scope_last_checkin_and_days_silent(client, scope_a, admins):
    now = timezone.now()
    owner = UserFactory(username="ana", first_name="Ana", last_name="Silva", scope=scope_a)
    silent_for(DeviceFactory(name="IOS-ANA", scope=scope_a, primary_user=owner), now, days=100)
    silent_for(DeviceFactory(name="IOS-NEVER", scope=scope_a), now, days=120, never=True)
    client.force_login(admins[0])
    content = client.get(preview_url(rule_for())).content.decode()
    assert "Ana Silva" in content and "EMEA" in content
    assert "<td>100</td>" in content and "<td>120</td>" in content
    assert "never (enrolled" in content


def test_the_preview_is_paginated_with_the_full_count(client, scope_a, admins, monkeypatch):
    monkeypatch.setattr("retirement.admin.cleanup.PREVIEW_PER_PAGE", 2)
    _stale_ios(5, scope_a)
    rule = rule_for()
    client.force_login(admins[0])
    first = client.get(preview_url(rule))
    last = client.get(preview_url(rule) + "?p=3")
    assert len(names_on(first)) == 2 and len(names_on(last)) == 1
    assert "<strong>5</strong> devices" in first.content.decode()
    assert "page 1 of 3" in first.content.decode()


@pytest.fixture
def cleanup_viewer_a(scope_a):
    """May see the cleanup rules (a global grant) but the devices of scope A only."""
    role = core_services.role_save(
        actor=SYSTEM,
        name="Cleanup viewer",
        permissions=[Permission.objects.get(codename="view_cleanuprule")],
    )
    user = StaffFactory(username="cleanup-viewer-a")
    grant(user, role.name)
    grant(user, "Helpdesk operator", [scope_a])
    return user


def test_a_scoped_viewer_sees_only_their_scope_in_the_preview_and_may_not_run(client, fleet, cleanup_viewer_a):
    _, d = fleet
    rule = rule_for()
    client.force_login(cleanup_viewer_a)
    page = client.get(preview_url(rule))
    assert page.status_code == 200
    assert names_on(page) == {d["over"].name}  # scope A's part of the four
    content = page.content.decode()
    assert "in the scopes you may see" in content and "Run now" not in content
    changelist = client.get(reverse("admin:retirement_cleanuprule_changelist")).content.decode()
    assert f'<a href="{preview_url(rule)}">1</a>' in changelist
    assert client.get(run_url(rule)).status_code == 403
    assert client.post(run_url(rule)).status_code == 403
    assert not cleanup_requests().exists()


def test_changelist_shows_the_rules_with_what_they_would_take_now(client, fleet, admins):
    rule = rule_for()
    client.force_login(admins[0])
    content = client.get(reverse("admin:retirement_cleanuprule_changelist")).content.decode()
    assert f'<a href="{preview_url(rule)}">4</a>' in content
    change = client.get(reverse("admin:retirement_cleanuprule_change", args=[rule.pk])).content.decode()
    assert preview_url(rule) in change


def test_the_add_form_refuses_days_outside_the_range_with_the_sentence(client, admins):
    client.force_login(admins[0])
    url = reverse("admin:retirement_cleanuprule_add")
    for days in (10, 300):
        response = client.post(url, {"platform": "ios", "days": days, "action": "retire", "enabled": "on"})
        assert response.status_code == 200
        assert "Choose between 30 and 270 days" in response.content.decode()
    assert not CleanupRule.objects.exists()
    response = client.post(url, {"platform": "ios", "days": 60, "action": "delete", "enabled": "on"})
    assert response.status_code == 302
    rule = CleanupRule.objects.get()
    assert (rule.days, rule.action) == (60, CleanupAction.DELETE)
    event = AuditEvent.objects.get(verb="retirement.cleanup_rule.create")
    assert event.actor_user == admins[0]


def test_one_rule_per_platform_in_the_form(client, admins):
    rule_for()
    client.force_login(admins[0])
    response = client.post(
        reverse("admin:retirement_cleanuprule_add"), {"platform": "ios", "days": 60, "action": "retire"}
    )
    assert response.status_code == 200 and CleanupRule.objects.count() == 1


def test_deleting_a_rule_in_the_admin_is_audited(client, admins):
    rule = rule_for()
    client.force_login(admins[0])
    response = client.post(reverse("admin:retirement_cleanuprule_delete", args=[rule.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not CleanupRule.objects.exists()
    assert AuditEvent.objects.filter(verb="retirement.cleanup_rule.delete", actor_user=admins[0]).exists()


def test_a_missing_rule_is_a_404(client, admins):
    client.force_login(admins[0])
    assert client.get(reverse("admin:retirement_cleanuprule_preview", args=[999])).status_code == 404
    assert client.post(reverse("admin:retirement_cleanuprule_run", args=[999])).status_code == 404
