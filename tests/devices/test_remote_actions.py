"""Remote actions (sync, lock, restart, rename, reset passcode) from the IT console and the API.

The command classes decide eligibility and validate inputs; ``core.authz`` decides who may do
what where; the one command service queues and audits. These tests drive the adapters: the device
page's buttons and confirmation pages, the changelist's bulk actions (a selection, or every device
matching a filter), the background path for large requests, the command list and its progress
page, and the API routes.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices import services as device_services
from devices import tasks_commands
from devices.admin import devices as device_admin
from devices.api import views as device_api_views
from devices.choices import CommandStatus, LifecycleState, Ownership, Platform
from devices.models import Device, DeviceCommand
from devices.services import device_command_queue, device_command_results_record
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant

pytestmark = pytest.mark.django_db

PASSCODE = "482913"
CHANGELIST = "admin:devices_device_changelist"


def action_url(device: Device, command_type: str) -> str:
    return reverse("admin:devices_device_action", args=[device.pk, command_type])


def change_url(device: Device) -> str:
    return reverse("admin:devices_device_change", args=[device.pk])


def buttons(response) -> dict[str, bool]:
    """The remote-action buttons on a device page: ``{type: enabled}``."""
    content = response.content.decode()
    found = {}
    for command_type in ("sync", "lock", "restart", "rename", "reset_passcode"):
        marker = f'data-action="{command_type}"'
        if marker in content:
            before = content[: content.index(marker)]
            found[command_type] = before.rfind("<a ") > before.rfind("<span ")
    return found


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def no_secret_anywhere(secret: str) -> None:
    assert not AuditEvent.objects.filter(changes__icontains=secret).exists()
    assert not AuditEvent.objects.filter(target_repr__icontains=secret).exists()


@pytest.fixture
def android_a(people):
    return DeviceFactory(name="EMEA-PIXEL-1", scope=people.scope_a, platform=Platform.ANDROID, os_version="14")


# The device page ---------------------------------------------------------------------------------


def test_global_admin_sees_every_action_on_a_corporate_iphone(client, people):
    client.force_login(people.global_admin)
    response = client.get(change_url(people.device_a))
    assert response.status_code == 200
    assert buttons(response) == dict.fromkeys(("sync", "lock", "restart", "rename", "reset_passcode"), True)
    assert f"?device__id__exact={people.device_a.pk}" in response.content.decode()


def test_helpdesk_sees_only_the_actions_of_their_role(client, people):
    client.force_login(people.helpdesk_a)
    response = client.get(change_url(people.device_a))
    assert response.status_code == 200
    assert buttons(response) == {"sync": True, "lock": True, "reset_passcode": True}


def test_read_only_operator_sees_no_action(client, people):
    client.force_login(people.read_only)
    response = client.get(change_url(people.device_a))
    assert buttons(response) == {}
    assert "Your role allows no remote actions on this device." in response.content.decode()


def test_an_action_the_device_cannot_take_is_greyed_with_the_reason(client, people):
    personal = DeviceFactory(name="BYOD-IPHONE", scope=people.scope_a, ownership=Ownership.PERSONAL)
    linux = DeviceFactory(name="BUILD-01", scope=people.scope_a, platform=Platform.LINUX, os_version="12")
    client.force_login(people.global_admin)

    response = client.get(change_url(personal))
    assert buttons(response)["restart"] is False
    assert "Restart works only on corporate (supervised) iPhones and iPads." in response.content.decode()

    response = client.get(change_url(linux))
    assert buttons(response)["reset_passcode"] is False
    assert "Reset passcode is not available on Linux." in response.content.decode()
    # Asking anyway is refused with the same sentence and queues nothing.
    response = client.post(action_url(linux, "reset_passcode"))
    assert response.status_code == 200
    assert "Reset passcode is not available on Linux." in response.content.decode()
    assert not DeviceCommand.objects.exists()


# One device, one action ----------------------------------------------------------------------------


def test_lock_asks_for_confirmation_with_its_inputs_then_queues(client, people):
    client.force_login(people.helpdesk_a)
    page = client.get(action_url(people.device_a, "lock"))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'name="message"' in content and 'name="phone_number"' in content
    assert not DeviceCommand.objects.exists()  # a GET only asks

    response = client.post(
        action_url(people.device_a, "lock"), {"message": "Found it? Call IT.", "phone_number": "+44 20 7946 0000"}
    )
    assert response.status_code == 302
    assert response["Location"] == change_url(people.device_a)
    command = DeviceCommand.objects.get()
    assert (command.device, command.command_type, command.status) == (people.device_a, "lock", "queued")
    assert command.payload == {"message": "Found it? Call IT.", "phone_number": "+44 20 7946 0000"}
    assert command.requested_by == people.helpdesk_a
    event = AuditEvent.objects.get(verb="device.command.lock")
    assert event.actor_user == people.helpdesk_a
    assert event.scope_id == people.scope_a.pk
    assert texts(response) == ["Lock is queued for EMEA-PHONE-1; the device receives it at its next check-in."]


def test_invalid_input_is_the_command_classes_sentence_and_queues_nothing(client, people):
    client.force_login(people.global_admin)
    response = client.post(action_url(people.device_a, "lock"), {"phone_number": "call me maybe"})
    assert response.status_code == 200
    assert "The phone number may contain only digits, spaces and + - ( )." in response.content.decode()
    response = client.post(action_url(people.device_a, "rename"), {"name": ""})
    assert "Enter the new device name." in response.content.decode()
    assert not DeviceCommand.objects.exists()


def test_rename_offers_the_current_name_and_renames_once_acknowledged(client, people):
    client.force_login(people.global_admin)
    page = client.get(action_url(people.device_a, "rename"))
    assert 'value="EMEA-PHONE-1"' in page.content.decode()
    client.post(action_url(people.device_a, "rename"), {"name": "EMEA-PHONE-RECEPTION"})
    command = DeviceCommand.objects.get()
    device_command_results_record(device=people.device_a, results=[{"id": str(command.uuid), "status": "acknowledged"}])
    people.device_a.refresh_from_db()
    assert people.device_a.name == "EMEA-PHONE-RECEPTION"


def test_sync_and_restart_take_no_input(client, people):
    client.force_login(people.global_admin)
    for command_type in ("sync", "restart"):
        page = client.get(action_url(people.device_a, command_type))
        assert "<fieldset" not in page.content.decode()
        assert client.post(action_url(people.device_a, command_type)).status_code == 302
    assert sorted(DeviceCommand.objects.values_list("command_type", flat=True)) == ["restart", "sync"]


@pytest.mark.parametrize("command_type", ["restart", "rename"])
def test_helpdesk_cannot_restart_or_rename_even_by_posting(client, people, command_type):
    client.force_login(people.helpdesk_a)
    data = {"name": "Hijacked"}
    assert client.get(action_url(people.device_a, command_type)).status_code == 403
    assert client.post(action_url(people.device_a, command_type), data).status_code == 403
    assert client.post(action_url(people.device_b, command_type), data).status_code == 404
    # Nor through the list's bulk action, which is not offered to them.
    response = client.post(
        reverse(CHANGELIST),
        {"action": f"queue_{command_type}", ACTION_CHECKBOX_NAME: [people.device_a.pk], "post": "yes", **data},
    )
    assert response.status_code in (200, 302)
    assert not DeviceCommand.objects.exists()
    assert not AuditEvent.objects.filter(verb__startswith="device.command").exists()


def test_helpdesk_cannot_act_on_another_scopes_device(client, people):
    client.force_login(people.helpdesk_a)
    for command_type in ("sync", "lock", "reset_passcode"):
        assert client.get(action_url(people.device_b, command_type)).status_code == 404
        assert client.post(action_url(people.device_b, command_type)).status_code == 404
    assert not DeviceCommand.objects.exists()


def test_unknown_action_is_a_404(client, people):
    client.force_login(people.global_admin)
    assert client.get(action_url(people.device_a, "selfdestruct")).status_code == 404


def test_a_new_passcode_is_never_echoed_shown_or_audited(client, people, android_a):
    client.force_login(people.helpdesk_a)
    # A bad passcode comes back as an error with the field empty.
    bad = "98765x"
    response = client.post(action_url(android_a, "reset_passcode"), {"new_passcode": bad})
    assert response.status_code == 200
    assert "A new passcode is 4 to 16 digits" in response.content.decode()
    assert bad not in response.content.decode()

    response = client.post(action_url(android_a, "reset_passcode"), {"new_passcode": PASSCODE}, follow=True)
    assert response.status_code == 200
    assert PASSCODE not in response.content.decode()
    command = DeviceCommand.objects.get()
    assert command.payload == {"new_passcode": PASSCODE}  # the device needs it, until it answers
    no_secret_anywhere(PASSCODE)

    # The command list and the command's page mask it.
    client.force_login(people.global_admin)
    for url in (
        reverse("admin:devices_devicecommand_changelist"),
        reverse("admin:devices_devicecommand_change", args=[command.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200
        assert PASSCODE not in page.content.decode()
    masked = client.get(reverse("admin:devices_devicecommand_change", args=[command.pk])).content.decode()
    # The payload is a key/value table: the key is named in words, its value masked.
    assert '<th scope="row">New passcode</th><td>••••••</td>' in masked
    # And so does the API.
    for url in (
        reverse("command-detail", kwargs={"id": command.uuid}),
        reverse("device-commands", kwargs={"id": android_a.uuid}),
        reverse("command-list"),
    ):
        body = client.get(url).content.decode()
        assert PASSCODE not in body and "[redacted]" in body


# Bulk from the device list ---------------------------------------------------------------------------


def fleet(scope, count: int, *, prefix: str, **kwargs) -> list[Device]:
    return [DeviceFactory(name=f"{prefix}-{n:04d}", scope=scope, **kwargs) for n in range(count)]


def bulk_post(client, query: str, command_type: str, *, page_ids, select_across: bool, confirm: dict | None = None):
    """The changelist's action form as the browser sends it: first the choice, then the confirmation."""
    url = reverse(CHANGELIST) + (f"?{query}" if query else "")
    data = {
        "action": f"queue_{command_type}",
        "select_across": "1" if select_across else "0",
        ACTION_CHECKBOX_NAME: [str(pk) for pk in page_ids],
    }
    if confirm is None:
        data["index"] = "0"
    else:
        data |= {"post": "yes", **confirm}
    return client.post(url, data)


def test_bulk_over_a_filter_asks_then_queues_for_every_matching_device(client, people, scope_a, scope_b):
    ios_a = fleet(scope_a, 3, prefix="EMEA-IPHONE")
    ios_b = fleet(scope_b, 2, prefix="AMER-IPHONE")
    android = fleet(scope_a, 2, prefix="EMEA-PIXEL", platform=Platform.ANDROID, os_version="14")
    client.force_login(people.global_admin)

    # "Select all N devices matching the filter": the page sends only the rows it shows.
    page = bulk_post(client, "platform__exact=ios", "lock", page_ids=[ios_a[0].pk], select_across=True)
    assert page.status_code == 200
    content = page.content.decode()
    assert '<strong id="bulk-selected">7</strong>' in content  # 5 iPhones + the people fixture's two
    assert '<strong id="bulk-eligible">7</strong>' in content
    assert 'name="message"' in content
    assert not DeviceCommand.objects.exists()

    response = bulk_post(
        client,
        "platform__exact=ios",
        "lock",
        page_ids=[ios_a[0].pk],
        select_across=True,
        confirm={"message": "Office closed", "phone_number": ""},
    )
    assert response.status_code == 302
    commands = DeviceCommand.objects.all()
    expected = {d.pk for d in [*ios_a, *ios_b, people.device_a, people.device_b]}
    assert {c.device_id for c in commands} == expected
    assert not set(commands.values_list("device_id", flat=True)) & {d.pk for d in android}
    batch = commands[0].batch
    assert batch is not None and {c.batch for c in commands} == {batch}
    assert response["Location"] == reverse("admin:devices_devicecommand_batch", args=[batch])
    assert texts(response) == ["Lock queued for 7 devices."]
    event = AuditEvent.objects.get(verb="device.command.lock.bulk")
    assert event.changes["queued"] == 7 and event.changes["batch"] == str(batch)


def test_bulk_of_a_selection_queues_only_the_ticked_devices(client, people, scope_a):
    devices = fleet(scope_a, 4, prefix="EMEA-IPHONE")
    client.force_login(people.global_admin)
    ticked = [devices[0].pk, devices[2].pk]
    page = bulk_post(client, "", "sync", page_ids=ticked, select_across=False)
    assert '<strong id="bulk-selected">2</strong>' in page.content.decode()
    bulk_post(client, "", "sync", page_ids=ticked, select_across=False, confirm={})
    assert set(DeviceCommand.objects.values_list("device_id", flat=True)) == set(ticked)


def test_helpdesk_bulk_over_everything_reaches_only_their_scope(client, people, scope_a, scope_b):
    in_a = fleet(scope_a, 3, prefix="EMEA-IPHONE")
    in_b = fleet(scope_b, 3, prefix="AMER-IPHONE")
    client.force_login(people.helpdesk_a)

    offered = client.get(reverse(CHANGELIST)).context["action_form"].fields["action"].choices
    assert {name for name, _ in offered if name} == {"queue_sync", "queue_lock", "queue_reset_passcode"}

    # Even the id of another scope's device in the form changes nothing: the list does not hold it.
    page = bulk_post(client, "", "sync", page_ids=[in_a[0].pk, in_b[0].pk], select_across=True)
    assert '<strong id="bulk-selected">4</strong>' in page.content.decode()
    bulk_post(client, "", "sync", page_ids=[in_a[0].pk, in_b[0].pk], select_across=True, confirm={})
    assert set(DeviceCommand.objects.values_list("device_id", flat=True)) == {d.pk for d in [*in_a, people.device_a]}


def test_bulk_reaches_only_the_scopes_where_the_person_holds_the_action(client, people, scope_a, scope_b):
    """Someone who sees every scope but may lock only in A: B's devices are counted and left alone."""
    operator = StaffFactory(username="viewer-and-emea-helpdesk")
    grant(operator, "Read-only operator")
    grant(operator, "Helpdesk operator", [scope_a])
    fleet(scope_b, 2, prefix="AMER-IPHONE")
    client.force_login(operator)
    page = bulk_post(client, "", "lock", page_ids=[people.device_a.pk], select_across=True)
    content = page.content.decode()
    assert '<strong id="bulk-selected">4</strong>' in content
    assert '<strong id="bulk-not-permitted">3</strong>' in content
    assert '<strong id="bulk-eligible">1</strong>' in content
    bulk_post(client, "", "lock", page_ids=[people.device_a.pk], select_across=True, confirm={})
    assert list(DeviceCommand.objects.values_list("device_id", flat=True)) == [people.device_a.pk]


def test_bulk_skips_devices_that_cannot_take_the_action_and_says_why(client, people, scope_a):
    fleet(scope_a, 3, prefix="BYOD-IPHONE", ownership=Ownership.PERSONAL)
    fleet(scope_a, 2, prefix="BUILD", platform=Platform.LINUX, os_version="12")
    DeviceFactory(name="NEW-IPHONE", scope=scope_a, state=LifecycleState.PENDING)
    client.force_login(people.global_admin)
    query = f"scope__id__exact={scope_a.pk}"
    page = bulk_post(client, query, "restart", page_ids=[people.device_a.pk], select_across=True)
    content = page.content.decode()
    assert '<strong id="bulk-selected">7</strong>' in content
    assert '<strong id="bulk-eligible">3</strong>' in content  # device_a and the two Linux hosts
    assert '<strong id="bulk-skipped">4</strong>' in content
    assert "3 devices: Restart works only on corporate (supervised) iPhones and iPads." in content
    assert "1 device: The device is not enrolled, so it cannot receive commands." in content

    response = bulk_post(client, query, "restart", page_ids=[people.device_a.pk], select_across=True, confirm={})
    assert texts(response) == ["Restart queued for 3 devices; 4 skipped (not eligible)."]
    assert DeviceCommand.objects.count() == 3


def test_bulk_with_nothing_eligible_offers_no_confirmation(client, people, scope_a):
    linux = fleet(scope_a, 2, prefix="BUILD", platform=Platform.LINUX, os_version="12")
    client.force_login(people.global_admin)
    page = bulk_post(client, "", "reset_passcode", page_ids=[d.pk for d in linux], select_across=False)
    content = page.content.decode()
    assert "None of the selected devices can take this command." in content
    assert 'name="post"' not in content


def test_bulk_input_errors_come_back_on_the_confirmation_page(client, people):
    client.force_login(people.global_admin)
    response = bulk_post(
        client, "", "lock", page_ids=[people.device_a.pk], select_across=False, confirm={"message": "x" * 201}
    )
    assert response.status_code == 200
    assert "The lock-screen message can be at most 200 characters long." in response.content.decode()
    assert not DeviceCommand.objects.exists()


def test_bulk_passcode_is_never_echoed_or_audited(client, people, android_a, scope_a):
    fleet(scope_a, 2, prefix="EMEA-PIXEL", platform=Platform.ANDROID, os_version="14")
    client.force_login(people.helpdesk_a)
    query = "platform__exact=android"
    bad = bulk_post(
        client, query, "reset_passcode", page_ids=[android_a.pk], select_across=True, confirm={"new_passcode": "12ab"}
    )
    assert "12ab" not in bad.content.decode()
    response = bulk_post(
        client, query, "reset_passcode", page_ids=[android_a.pk], select_across=True, confirm={"new_passcode": PASSCODE}
    )
    assert DeviceCommand.objects.count() == 3
    progress = client.get(response["Location"])
    assert PASSCODE not in progress.content.decode()
    no_secret_anywhere(PASSCODE)


def count_bulk_queries(client, query: str, page_ids) -> tuple[int, int]:
    """``(queries other than the command INSERTs, command INSERTs)`` of one confirmed bulk request."""
    with CaptureQueriesContext(connection) as queries:
        response = bulk_post(client, query, "sync", page_ids=page_ids, select_across=True, confirm={})
    assert response.status_code == 302
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "devices_devicecommand"')]
    return len(queries) - len(inserts), len(inserts)


def test_bulk_query_count_is_the_same_for_10_and_500_devices(client, people, scope_a, scope_b, on_postgres):
    def add(count: int, start: int) -> None:
        for n in range(start, start + count):
            device_services.device_register(
                actor=SYSTEM,
                name=f"FLEET-{n:05d}",
                platform=Platform.ANDROID if n % 2 else Platform.IOS,
                ownership=Ownership.CORPORATE,
                scope=scope_a if n % 3 else scope_b,
                enrollment_method="admin_bulk",
                serial_number=f"FLEET{n:07d}",
            )
        Device.objects.filter(name__startswith="FLEET-").update(lifecycle_state=LifecycleState.ENROLLED)

    client.force_login(people.global_admin)
    add(10, 0)
    count_bulk_queries(client, "q=FLEET", [people.device_a.pk])  # warm per-process caches
    DeviceCommand.objects.all().delete()
    small, small_inserts = count_bulk_queries(client, "q=FLEET", [people.device_a.pk])
    assert DeviceCommand.objects.count() == 10
    add(490, 10)
    DeviceCommand.objects.all().delete()
    large, large_inserts = count_bulk_queries(client, "q=FLEET", [people.device_a.pk])
    assert DeviceCommand.objects.count() == 500
    assert small == large, f"{small} queries for 10 devices, {large} for 500"
    assert large <= 20
    # One INSERT per 2,000 commands; SQLite's limit on query parameters splits it into a few more.
    assert small_inserts == 1
    assert large_inserts == 1 if on_postgres else large_inserts <= 10

    with CaptureQueriesContext(connection) as queries:
        bulk_post(client, "q=FLEET", "sync", page_ids=[people.device_a.pk], select_across=True)
    assert len(queries) <= 15  # the confirmation page counts in SQL, not device by device


# Large requests run in the background ---------------------------------------------------------------


@pytest.fixture
def run_tasks_now(monkeypatch):
    """Send the bulk task to an in-process run instead of the broker; keep what Celery would have recorded."""
    sent = []

    def apply_async(kwargs, kwargsrepr, **options):
        sent.append(kwargsrepr)
        return tasks_commands.device_commands_queue_bulk_task.apply(kwargs=kwargs)

    monkeypatch.setattr(tasks_commands.device_commands_queue_bulk_task, "apply_async", apply_async)
    monkeypatch.setattr(device_admin, "BACKGROUND_THRESHOLD", 2)
    monkeypatch.setattr(device_api_views, "BACKGROUND_THRESHOLD", 2)
    return sent


def test_a_large_bulk_request_is_queued_by_a_task_as_the_person(
    client, people, scope_a, scope_b, android_a, run_tasks_now, django_capture_on_commit_callbacks
):
    fleet(scope_a, 3, prefix="EMEA-PIXEL", platform=Platform.ANDROID, os_version="14")
    fleet(scope_b, 3, prefix="AMER-PIXEL", platform=Platform.ANDROID, os_version="14")
    client.force_login(people.helpdesk_a)
    query = "platform__exact=android"
    with django_capture_on_commit_callbacks(execute=True):
        response = bulk_post(
            client,
            query,
            "reset_passcode",
            page_ids=[android_a.pk],
            select_across=True,
            confirm={"new_passcode": PASSCODE},
        )
    assert response.status_code == 302
    assert response["Location"].endswith("?pending=1")
    commands = DeviceCommand.objects.all()
    # Only scope A's Android devices, all in the batch the page links to.
    assert commands.count() == 4
    assert set(commands.values_list("device__scope", flat=True)) == {scope_a.pk}
    batch = commands[0].batch
    assert response["Location"] == reverse("admin:devices_devicecommand_batch", args=[batch]) + "?pending=1"
    assert set(commands.values_list("requested_by", flat=True)) == {people.helpdesk_a.pk}
    # Celery's record of the task masks the passcode.
    assert len(run_tasks_now) == 1 and PASSCODE not in run_tasks_now[0] and "[redacted]" in run_tasks_now[0]
    no_secret_anywhere(PASSCODE)
    progress = client.get(response["Location"])
    assert '<progress id="batch-progress-bar" max="4" value="0">' in progress.content.decode()


def test_the_background_task_is_idempotent_and_acts_with_current_permissions(people, scope_a):
    batch = "6d0f1f7e-0f43-4b1a-9a55-6b0c3f4cb111"
    kwargs = {
        "user_id": people.helpdesk_a.pk,
        "source_ip": "192.0.2.1",
        "command_type": "sync",
        "params": {},
        "batch": batch,
        "selection": {"admin_query": ""},
    }
    assert tasks_commands.device_commands_queue_bulk_task.apply(kwargs=kwargs).get() == 1
    assert tasks_commands.device_commands_queue_bulk_task.apply(kwargs=kwargs).get() == 0  # redelivered
    assert DeviceCommand.objects.filter(batch=batch).count() == 1
    # A person whose role went away in the meantime queues nothing.
    people.helpdesk_a.groups.clear()
    other = kwargs | {"batch": "6d0f1f7e-0f43-4b1a-9a55-6b0c3f4cb222"}
    assert tasks_commands.device_commands_queue_bulk_task.apply(kwargs=other).get() == 0
    assert not DeviceCommand.objects.filter(batch=other["batch"]).exists()


# The command list and a bulk request's progress --------------------------------------------------------


def test_progress_page_counts_answers_by_status(client, people, scope_a):
    devices = fleet(scope_a, 4, prefix="EMEA-IPHONE")
    client.force_login(people.global_admin)
    response = bulk_post(client, "", "sync", page_ids=[devices[0].pk], select_across=True, confirm={})
    progress_url = response["Location"]
    commands = {c.device_id: c for c in DeviceCommand.objects.all()}
    assert len(commands) == 6
    answers = [("acknowledged", devices[0]), ("acknowledged", devices[1]), ("error", devices[2])]
    for status, device in answers:
        device_command_results_record(
            device=device, results=[{"id": str(commands[device.pk].uuid), "status": status, "error": ""}]
        )
    page = client.get(progress_url).content.decode()
    assert '<progress id="batch-progress-bar" max="6" value="3">' in page
    assert '<strong id="batch-percent">50%</strong>' in page
    assert '<tr id="status-acknowledged"><td>' in page
    assert 'http-equiv="refresh"' in page  # three are still waiting
    for device in (people.device_a, people.device_b, devices[3]):
        device_command_results_record(
            device=device, results=[{"id": str(commands[device.pk].uuid), "status": "acknowledged"}]
        )
    page = client.get(progress_url).content.decode()
    assert '<strong id="batch-percent">100%</strong>' in page
    assert 'http-equiv="refresh"' not in page


def test_command_list_is_scoped_and_cancel_needs_the_actions_permission(client, people):
    lock_a = device_command_queue(actor=SYSTEM, device=people.device_a, command_type="lock")
    restart_a = device_command_queue(actor=SYSTEM, device=people.device_a, command_type="restart")
    lock_b = device_command_queue(actor=SYSTEM, device=people.device_b, command_type="lock")
    client.force_login(people.helpdesk_a)
    listing = client.get(reverse("admin:devices_devicecommand_changelist"))
    assert listing.status_code == 200
    shown = {c.pk for c in listing.context["cl"].result_list}
    assert shown == {lock_a.pk, restart_a.pk}

    response = client.post(
        reverse("admin:devices_devicecommand_changelist"),
        {"action": "cancel", ACTION_CHECKBOX_NAME: [lock_a.pk, restart_a.pk, lock_b.pk], "index": "0"},
    )
    assert response.status_code == 302
    statuses = dict(DeviceCommand.objects.values_list("pk", "status"))
    assert statuses == {lock_a.pk: "cancelled", restart_a.pk: "queued", lock_b.pk: "queued"}
    assert "1 not cancelled: you may not restart these devices." in texts(response)
    assert AuditEvent.objects.filter(verb="device.command.lock.cancel").count() == 1


def test_a_sent_command_cannot_be_cancelled(client, people):
    command = device_command_queue(actor=SYSTEM, device=people.device_a, command_type="sync")
    DeviceCommand.objects.filter(pk=command.pk).update(status=CommandStatus.SENT)
    client.force_login(people.global_admin)
    response = client.post(
        reverse("admin:devices_devicecommand_changelist"),
        {"action": "cancel", ACTION_CHECKBOX_NAME: [command.pk], "index": "0"},
    )
    assert "1 not cancelled: already sent or closed; only a queued command can be cancelled." in texts(response)
    assert DeviceCommand.objects.get(pk=command.pk).status == CommandStatus.SENT


def test_command_list_searches_by_device_name_and_filters_by_batch(client, people):
    device_command_queue(actor=SYSTEM, device=people.device_a, command_type="sync")
    outcome = device_services.device_command_queue_bulk(
        actor=SYSTEM, devices=Device.objects.filter(pk=people.device_b.pk), command_type="sync"
    )
    client.force_login(people.global_admin)
    url = reverse("admin:devices_devicecommand_changelist")
    by_name = client.get(url, {"q": "AMER-PHONE"}).context["cl"].result_list
    assert [c.device_id for c in by_name] == [people.device_b.pk]
    by_batch = client.get(url, {"batch": outcome["batch"]}).context["cl"].result_list
    assert [c.device_id for c in by_batch] == [people.device_b.pk]
    # The device page links here with its own filter.
    by_device = client.get(url, {"device__id__exact": people.device_a.pk}).context["cl"].result_list
    assert [c.device_id for c in by_device] == [people.device_a.pk]


# API ------------------------------------------------------------------------------------------------


def api_action(client, device: Device, command_type: str, body=None):
    return client.post(
        reverse("device-action", kwargs={"id": device.uuid, "command_type": command_type}),
        json.dumps(body if body is not None else {}),
        content_type="application/json",
    )


def api_bulk(client, command_type: str, body):
    return client.post(
        reverse("device-bulk-action", kwargs={"command_type": command_type}),
        json.dumps(body),
        content_type="application/json",
    )


def test_api_queues_one_action_with_202_and_the_command(client, people):
    client.force_login(people.helpdesk_a)
    response = api_action(client, people.device_a, "lock", {"message": "Call IT", "phone_number": "+1 555 0100"})
    assert response.status_code == 202
    body = response.json()
    command = DeviceCommand.objects.get()
    assert body["id"] == str(command.uuid) and body["status"] == "queued"
    assert body["device"] == str(people.device_a.uuid) and body["command_type"] == "lock"
    assert AuditEvent.objects.filter(verb="device.command.lock", actor_user=people.helpdesk_a).count() == 1

    detail = client.get(reverse("command-detail", kwargs={"id": command.uuid}))
    assert detail.status_code == 200 and detail.json()["id"] == str(command.uuid)
    listing = client.get(reverse("device-commands", kwargs={"id": people.device_a.uuid}))
    assert [c["id"] for c in listing.json()["results"]] == [str(command.uuid)]


@pytest.mark.parametrize(
    ("command_type", "body", "sentence"),
    [
        ("lock", {"colour": "red"}, "Lock does not take colour."),
        ("lock", {"phone_number": "call me"}, "The phone number may contain only digits, spaces and + - ( )."),
        ("rename", {}, "Enter the new device name."),
        ("sync", {"now": True}, "Sync takes no options."),
        ("lock", ["not", "an", "object"], "Send the action's inputs as a JSON object, for example {}."),
    ],
)
def test_api_validation_errors_are_400_with_the_actions_sentence(client, people, command_type, body, sentence):
    client.force_login(people.global_admin)
    response = api_action(client, people.device_a, command_type, body)
    assert response.status_code == 400
    assert sentence in json.dumps(response.json())
    assert not DeviceCommand.objects.exists()


def test_api_refuses_an_ineligible_device_with_the_reason(client, people):
    personal = DeviceFactory(name="BYOD-IPHONE", scope=people.scope_a, ownership=Ownership.PERSONAL)
    client.force_login(people.global_admin)
    response = api_action(client, personal, "restart")
    assert response.status_code == 400
    assert response.json() == {"detail": "Restart works only on corporate (supervised) iPhones and iPads."}


def test_api_helpdesk_has_no_restart_or_rename_and_no_other_scope(client, people):
    client.force_login(people.helpdesk_a)
    assert api_action(client, people.device_a, "restart").status_code == 403
    assert api_action(client, people.device_a, "rename", {"name": "x"}).status_code == 403
    assert api_bulk(client, "restart", {"filter": {}}).status_code == 403
    assert api_action(client, people.device_b, "sync").status_code == 404
    unknown = reverse("device-detail", kwargs={"id": people.device_a.uuid}) + "actions/selfdestruct/"
    assert client.post(unknown, "{}", content_type="application/json").status_code == 404
    assert not DeviceCommand.objects.exists()


def test_api_passcode_is_never_echoed(client, people, android_a):
    client.force_login(people.helpdesk_a)
    response = api_action(client, android_a, "reset_passcode", {"new_passcode": PASSCODE})
    assert response.status_code == 202
    assert PASSCODE not in response.content.decode()
    assert response.json()["payload"] == {"new_passcode": "[redacted]"}
    body = {"filter": {"platform": ["android"]}, "params": {"new_passcode": PASSCODE}}
    bulk = api_bulk(client, "reset_passcode", body)
    assert bulk.status_code == 202 and PASSCODE not in bulk.content.decode()
    no_secret_anywhere(PASSCODE)


def test_api_bulk_by_filter_reaches_only_the_callers_scope(client, people, scope_a, scope_b, android_a):
    fleet(scope_a, 2, prefix="EMEA-IPHONE")
    fleet(scope_b, 2, prefix="AMER-IPHONE")
    fleet(scope_a, 1, prefix="BYOD", ownership=Ownership.PERSONAL)
    client.force_login(people.helpdesk_a)

    response = api_bulk(client, "lock", {"filter": {"platform": ["ios"]}, "params": {"message": "Closed"}})
    assert response.status_code == 202
    body = response.json()
    assert {k: body[k] for k in ("matched", "not_permitted", "queued", "skipped", "background")} == {
        "matched": 4,
        "not_permitted": 0,
        "queued": 4,
        "skipped": 0,
        "background": False,
    }
    commands = DeviceCommand.objects.filter(batch=body["batch"])
    assert set(commands.values_list("device__scope", flat=True)) == {scope_a.pk}
    assert all(c.payload == {"message": "Closed", "phone_number": ""} for c in commands)

    progress = client.get(reverse("command-list"), {"batch": body["batch"], "status": "queued"})
    assert progress.json()["count"] == 4

    # The other scope by name matches nothing; ids narrow the set.
    assert api_bulk(client, "sync", {"filter": {"scope": "americas"}}).json()["matched"] == 0
    by_id = api_bulk(client, "sync", {"filter": {"ids": [str(android_a.uuid), str(people.device_b.uuid)]}}).json()
    assert (by_id["matched"], by_id["queued"]) == (1, 1)


def test_api_bulk_skips_ineligible_devices(client, people, scope_a):
    fleet(scope_a, 2, prefix="BYOD", ownership=Ownership.PERSONAL)
    client.force_login(people.global_admin)
    body = api_bulk(client, "restart", {"filter": {"scope": "emea"}}).json()
    assert (body["matched"], body["queued"], body["skipped"]) == (3, 1, 2)


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({}, 'Send {"filter": {...}, "params": {...}}'),
        ({"filter": {"platfrom": ["ios"]}}, "Unknown filter platfrom."),
        ({"filter": {"platform": ["palm"]}}, "is not a valid choice"),
        ({"filter": {}, "params": {"message": "x" * 201}}, "The lock-screen message can be at most 200 characters"),
        # An empty list (a script's computed list that came out empty) never widens to every device.
        ({"filter": {"platform": []}}, "An empty list matches no device"),
        ({"filter": {"ids": []}}, "An empty list matches no device"),
        ({"filter": {"compliance_state": [], "scope": "emea"}}, "An empty list matches no device"),
    ],
)
def test_api_bulk_bad_requests_are_400(client, people, body, sentence):
    client.force_login(people.global_admin)
    response = api_bulk(client, "lock", body)
    assert response.status_code == 400
    assert sentence in str(response.json())
    assert not DeviceCommand.objects.exists()


def test_api_large_bulk_runs_in_the_background(
    client, people, scope_a, run_tasks_now, django_capture_on_commit_callbacks
):
    fleet(scope_a, 3, prefix="EMEA-IPHONE")
    client.force_login(people.helpdesk_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_bulk(client, "sync", {"filter": {"platform": ["ios"]}})
    assert response.status_code == 202
    body = response.json()
    assert body["background"] is True and body["queued"] is None and body["matched"] == 4
    assert DeviceCommand.objects.filter(batch=body["batch"]).count() == 4
    assert set(DeviceCommand.objects.values_list("device__scope", flat=True)) == {scope_a.pk}


def test_api_cancel(client, people):
    lock_a = device_command_queue(actor=SYSTEM, device=people.device_a, command_type="lock")
    restart_a = device_command_queue(actor=SYSTEM, device=people.device_a, command_type="restart")
    lock_b = device_command_queue(actor=SYSTEM, device=people.device_b, command_type="lock")
    client.force_login(people.helpdesk_a)

    def cancel(command):
        return client.post(reverse("command-cancel", kwargs={"id": command.uuid}))

    response = cancel(lock_a)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = cancel(lock_a)
    assert again.status_code == 400
    assert "only a queued command can be cancelled" in json.dumps(again.json())
    refused = cancel(restart_a)
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Your role does not allow restart on this device, so you cannot cancel it."
    assert cancel(lock_b).status_code == 404
    assert dict(DeviceCommand.objects.values_list("pk", "status")) == {
        lock_a.pk: "cancelled",
        restart_a.pk: "queued",
        lock_b.pk: "queued",
    }


def test_api_schema_documents_the_action_routes(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for route in (
        "/api/v1/devices/{id}/actions/{command_type}/",
        "/api/v1/devices/actions/{command_type}/",
        "/api/v1/devices/{id}/commands/",
        "/api/v1/commands/{id}/",
        "/api/v1/commands/{id}/cancel/",
    ):
        assert route in text


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_command_list_runs_the_same_queries_for_10_and_500_commands(client, people, scope_a, scope_b, persona):
    def queue(count: int, start: int) -> None:
        for n in range(start, start + count):
            device_services.device_register(
                actor=SYSTEM,
                name=f"FLEET-{n:05d}",
                platform=Platform.IOS,
                ownership=Ownership.CORPORATE,
                scope=scope_a if n % 2 else scope_b,
                enrollment_method="admin_bulk",
                serial_number=f"FLEET{n:07d}",
            )
        fleet = Device.objects.filter(name__startswith="FLEET-", commands__isnull=True)
        fleet.update(lifecycle_state=LifecycleState.ENROLLED)
        device_services.device_command_queue_bulk(actor=SYSTEM, devices=fleet, command_type="sync")

    client.force_login(getattr(people, persona))
    url = reverse("admin:devices_devicecommand_changelist")
    queue(10, 0)
    client.get(url)  # warm per-process caches
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    queue(490, 10)
    with CaptureQueriesContext(connection) as large:
        response = client.get(url)
    assert len(small) == len(large) <= 15
    assert len(response.context["cl"].result_list) == 50
