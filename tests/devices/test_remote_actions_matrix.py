"""Permission matrix of the remote-action pages and routes (personas: ``tests/test_permission_matrix.py``).

What the helpdesk operator of scope A (sync, lock, reset passcode; no restart, no rename) gets is the
point of most rows: A's devices and commands are theirs, B's are a 404, an action their role lacks
is a 403, and a refused write changes nothing and audits nothing. Employees, even the owner of the
device, reach none of this.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from devices import services as device_services
from devices.models import Device, DeviceCommand
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM
from tests.matrix import covers
from tests.test_permission_matrix import (
    ADMIN_LOGIN,
    PERSONAS,
    STAFF_PERSONAS,
    assert_api_error,
    assert_outcome,
    sign_in,
)

pytestmark = pytest.mark.django_db


def action_url(device: Device, command_type: str) -> str:
    return reverse("admin:devices_device_action", args=[device.pk, command_type])


def commands_written() -> tuple[int, int]:
    return DeviceCommand.objects.count(), AuditEvent.objects.filter(verb__startswith="device.command").count()


# Admin: the confirmation page of one action on one device -------------------------------------------

STAFF_ONLY = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403}
# Sync: the helpdesk holds it in A. Restart: their role does not grant it anywhere.
ADMIN_SYNC_A = STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 200}
ADMIN_SYNC_B = STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 404}
ADMIN_RESTART_A = STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 403}
ADMIN_RESTART_B = STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 404}


@covers("admin:devices_device_action")
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_action_page(client, people, persona):
    sign_in(client, people, persona)
    cells = [
        (people.device_a, "sync", ADMIN_SYNC_A),
        (people.device_b, "sync", ADMIN_SYNC_B),
        (people.device_a, "restart", ADMIN_RESTART_A),
        (people.device_b, "restart", ADMIN_RESTART_B),
    ]
    for device, command_type, table in cells:
        response = client.get(action_url(device, command_type))
        assert_outcome(response, table[persona], f"{persona} on {command_type} of {device.name}")
    assert commands_written() == (0, 0)


@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_action_post_is_refused_or_queues_only_where_allowed(client, people, persona):
    sign_in(client, people, persona)
    queued = 0
    for device, command_type, table in (
        (people.device_a, "sync", ADMIN_SYNC_A),
        (people.device_b, "sync", ADMIN_SYNC_B),
        (people.device_a, "restart", ADMIN_RESTART_A),
        (people.device_b, "restart", ADMIN_RESTART_B),
    ):
        response = client.post(action_url(device, command_type))
        expected = table[persona]
        if expected == 200:
            # Allowed: the POST queues and goes back to the device page.
            assert response.status_code == 302, f"{persona} posting {command_type} to {device.name}"
            queued += 1
        else:
            assert_outcome(response, expected, f"{persona} posting {command_type} to {device.name}")
    assert commands_written() == (queued, queued)


# Admin: the command list, a command's page and a bulk request's progress --------------------------------

# Commands follow their device: whoever may see the device sees its commands.
ADMIN_COMMANDS = STAFF_ONLY | {"global_admin": 200, "read_only": 200, "helpdesk_a": 200}


@pytest.fixture
def commands(people):
    """A sync for each scope's device, each queued as a bulk request of its own."""
    batches = {}
    for key, device in (("a", people.device_a), ("b", people.device_b)):
        outcome = device_services.device_command_queue_bulk(
            actor=SYSTEM, devices=Device.objects.filter(pk=device.pk), command_type="sync"
        )
        batches[key] = outcome["batch"]
    return {
        "a": DeviceCommand.objects.get(device=people.device_a),
        "b": DeviceCommand.objects.get(device=people.device_b),
        "batch_a": batches["a"],
        "batch_b": batches["b"],
    }


@covers("admin:devices_devicecommand_changelist", "admin:devices_devicecommand_change")
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_command_list_and_page(client, people, commands, persona):
    sign_in(client, people, persona)
    expected = ADMIN_COMMANDS[persona]
    changelist = client.get(reverse("admin:devices_devicecommand_changelist"))
    assert_outcome(changelist, expected, f"{persona} on the command list")
    page_a = client.get(reverse("admin:devices_devicecommand_change", args=[commands["a"].pk]))
    assert_outcome(page_a, expected, f"{persona} on scope A's command")
    page_b = client.get(reverse("admin:devices_devicecommand_change", args=[commands["b"].pk]))
    assert_outcome(page_b, 404 if persona == "helpdesk_a" else expected, f"{persona} on scope B's command")
    if expected == 200:
        shown = {c.pk for c in changelist.context["cl"].result_list}
        wanted = {commands["a"].pk} if persona == "helpdesk_a" else {commands["a"].pk, commands["b"].pk}
        assert shown == wanted


@covers("admin:devices_devicecommand_batch")
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_bulk_progress_page(client, people, commands, persona):
    sign_in(client, people, persona)
    expected = ADMIN_COMMANDS[persona]
    for batch, in_scope in ((commands["batch_a"], True), (commands["batch_b"], False)):
        response = client.get(reverse("admin:devices_devicecommand_batch", args=[batch]))
        wanted = 404 if (persona == "helpdesk_a" and not in_scope) else expected
        assert_outcome(response, wanted, f"{persona} on the progress of batch {'A' if in_scope else 'B'}")
    # An id that was never a bulk request is a 404 like another scope's.
    if expected == 200:
        missing = reverse("admin:devices_devicecommand_batch", args=["00000000-0000-0000-0000-000000000000"])
        assert client.get(missing).status_code == 404


@pytest.mark.parametrize("persona", STAFF_PERSONAS)
def test_admin_command_writes_refused(client, people, commands, persona):
    """Commands are never edited or deleted in the console; only the cancel action changes them."""
    sign_in(client, people, persona)
    before = list(DeviceCommand.objects.order_by("pk").values())
    for command in (commands["a"], commands["b"]):
        change = client.post(
            reverse("admin:devices_devicecommand_change", args=[command.pk]), {"status": "acknowledged"}
        )
        assert change.status_code in (403, 404)
        delete = client.post(reverse("admin:devices_devicecommand_delete", args=[command.pk]), {"post": "yes"})
        assert delete.status_code in (403, 404)
    assert client.get(reverse("admin:devices_devicecommand_add")).status_code == 403
    assert list(DeviceCommand.objects.order_by("pk").values()) == before


# API -------------------------------------------------------------------------------------------------

API_STAFF_ONLY = {"anonymous": 401, "employee": 403, "no_role": 403}
API_SYNC_A = API_STAFF_ONLY | {"global_admin": 202, "read_only": 403, "helpdesk_a": 202}
API_SYNC_B = API_STAFF_ONLY | {"global_admin": 202, "read_only": 403, "helpdesk_a": 404}
API_RESTART_A = API_STAFF_ONLY | {"global_admin": 202, "read_only": 403, "helpdesk_a": 403}


def post_json(client, url: str, body) -> object:
    return client.post(url, json.dumps(body), content_type="application/json")


@covers("api:device-action")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_device_action(client, people, persona):
    sign_in(client, people, persona)
    queued = 0
    for device, command_type, table in (
        (people.device_a, "sync", API_SYNC_A),
        (people.device_b, "sync", API_SYNC_B),
        (people.device_a, "restart", API_RESTART_A),
    ):
        url = reverse("device-action", kwargs={"id": device.uuid, "command_type": command_type})
        response = post_json(client, url, {})
        if table[persona] == 202:
            assert response.status_code == 202, f"{persona} {command_type} {device.name}: {response.content!r}"
            queued += 1
        else:
            assert_api_error(response, table[persona])
    assert commands_written() == (queued, queued)


# The devices each persona's bulk sync over "everything" reaches; None: refused with that status.
API_BULK = API_STAFF_ONLY | {"global_admin": {"device_a", "device_b"}, "read_only": 403, "helpdesk_a": {"device_a"}}


@covers("api:device-bulk-action")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_device_bulk_action(client, people, persona):
    sign_in(client, people, persona)
    response = post_json(client, reverse("device-bulk-action", kwargs={"command_type": "sync"}), {"filter": {}})
    expected = API_BULK[persona]
    if isinstance(expected, set):
        assert response.status_code == 202
        reached = set(DeviceCommand.objects.values_list("device__uuid", flat=True))
        assert reached == {getattr(people, name).uuid for name in expected}
        assert response.json()["queued"] == len(expected)
    else:
        assert_api_error(response, expected)
        assert commands_written() == (0, 0)


API_READ_A = API_STAFF_ONLY | {"global_admin": 200, "read_only": 200, "helpdesk_a": 200}
API_READ_B = API_STAFF_ONLY | {"global_admin": 200, "read_only": 200, "helpdesk_a": 404}


@covers("api:device-commands")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_device_commands(client, people, commands, persona):
    sign_in(client, people, persona)
    for device, key, table in ((people.device_a, "a", API_READ_A), (people.device_b, "b", API_READ_B)):
        response = client.get(reverse("device-commands", kwargs={"id": device.uuid}))
        if table[persona] == 200:
            assert response.status_code == 200
            assert [c["id"] for c in response.json()["results"]] == [str(commands[key].uuid)]
        else:
            assert_api_error(response, table[persona])


API_COMMAND_LIST = API_STAFF_ONLY | {"global_admin": {"a", "b"}, "read_only": {"a", "b"}, "helpdesk_a": {"a"}}


@covers("api:command-list")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_command_list(client, people, commands, persona):
    sign_in(client, people, persona)
    response = client.get(reverse("command-list"))
    expected = API_COMMAND_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {c["id"] for c in response.json()["results"]} == {str(commands[k].uuid) for k in expected}
    else:
        assert_api_error(response, expected)


@covers("api:command-detail")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_command_detail(client, people, commands, persona):
    sign_in(client, people, persona)
    for key, table in (("a", API_READ_A), ("b", API_READ_B)):
        response = client.get(reverse("command-detail", kwargs={"id": commands[key].uuid}))
        if table[persona] == 200:
            assert response.status_code == 200
            assert response.json()["id"] == str(commands[key].uuid)
        else:
            assert_api_error(response, table[persona])


# Cancelling needs the action's own permission on the device; seeing the command is not enough.
API_CANCEL_A = API_STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 200}
API_CANCEL_B = API_STAFF_ONLY | {"global_admin": 200, "read_only": 403, "helpdesk_a": 404}


@covers("api:command-cancel")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_command_cancel(client, people, commands, persona):
    sign_in(client, people, persona)
    for key, table in (("a", API_CANCEL_A), ("b", API_CANCEL_B)):
        response = client.post(reverse("command-cancel", kwargs={"id": commands[key].uuid}))
        status = DeviceCommand.objects.get(pk=commands[key].pk).status
        if table[persona] == 200:
            assert response.status_code == 200
            assert status == "cancelled"
        else:
            assert_api_error(response, table[persona])
            assert status == "queued"


@pytest.mark.parametrize("persona", STAFF_PERSONAS)
def test_api_command_routes_are_read_only_apart_from_cancel(client, people, commands, persona):
    sign_in(client, people, persona)
    detail = reverse("command-detail", kwargs={"id": commands["a"].uuid})
    responses = [
        post_json(client, reverse("command-list"), {"device": str(people.device_a.uuid)}),
        client.put(detail, "{}", content_type="application/json"),
        client.patch(detail, "{}", content_type="application/json"),
        client.delete(detail),
    ]
    assert [r.status_code for r in responses if r.status_code not in (403, 405)] == []
    assert DeviceCommand.objects.get(pk=commands["a"].pk).status == "queued"
