"""Company Portal: my device's compliance, every failing setting in plain words with fix steps, Check again."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from devices.choices import CommandStatus, CommandType, ComplianceState, LifecycleState
from devices.models import DeviceCommand
from devices.services.checkin import device_inventory_store, inventory_digest
from mdm_portal.core.models import AuditEvent
from policies.services.compliance import device_compliance_evaluate
from policies.services.policies import policy_save
from policies.views.portal import ASKED, step_parts
from tests.factories import SYSTEM, DeviceFactory
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome

pytestmark = pytest.mark.django_db

SCHEDULE = [
    {"action": "mark_noncompliant", "days_after": 1},
    {"action": "email", "days_after": 0},
    {"action": "email", "days_after": 3},
    {"action": "lock", "days_after": 7},
    {"action": "retire", "days_after": 30},
]


@pytest.fixture
def ios_policy(db):
    return policy_save(
        actor=SYSTEM,
        data={
            "name": "iOS baseline",
            "platform": "ios",
            "passcode_required": True,
            "passcode_min_length": 6,
            "encryption_required": True,
        },
        actions=SCHEDULE,
        assignments=[{"target": "all_devices"}],
    )


def drift(device, **inventory):
    """The device reports ``inventory`` and is evaluated, as at a check-in."""
    device_inventory_store(device=device, inventory=inventory, digest=inventory_digest(inventory))
    return device_compliance_evaluate(device)


@pytest.fixture
def failing_device(people, ios_policy):
    """The employee's iPhone with no passcode and no encryption: in its grace period."""
    device = people.device_a
    assert drift(device, encrypted=False, passcode_set=False, passcode_quality="none", passcode_length=0) == (
        ComplianceState.IN_GRACE
    )
    return device


def page(client, device):
    return client.get(reverse("portal:device_compliance", kwargs={"uuid": device.uuid}))


def check_again(client, device):
    return client.post(reverse("portal:device_compliance_check", kwargs={"uuid": device.uuid}))


def syncs(device):
    return DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC)


def test_the_owner_sees_every_failing_setting_in_plain_words_with_fix_steps(client, people, failing_device):
    client.force_login(people.employee)

    response = page(client, failing_device)

    assert response.status_code == 200
    detail = response.context["detail"]
    assert {item.rule for item in detail.failing} >= {"passcode_required", "encryption_required"}
    content = response.content.decode()
    assert "In grace period" in content and "Fix by" in content
    for item in detail.failing:
        assert escape(item.label) in content and escape(item.plain) in content
        assert item.fix_steps, f"{item.rule} has no steps to fix it"
        for step in item.fix_steps:
            for text, _code in step_parts(step):
                assert escape(text) in content
    # iPhone steps, not Android or Windows ones.
    assert escape("Face ID & Passcode") in content
    assert "Windows Update" not in content and "BitLocker" not in content
    assert "How to fix it on your iPhone" in content
    assert "iOS baseline" in content  # the policy that requires it
    assert "What happens if it is not fixed" in content
    check_url = reverse("portal:device_compliance_check", kwargs={"uuid": failing_device.uuid})
    assert f'action="{check_url}"' in content
    assert "csrfmiddlewaretoken" in content


def test_after_the_grace_period_the_device_is_noncompliant_and_the_page_says_what_follows(
    client, people, failing_device
):
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert device_compliance_evaluate(failing_device) == ComplianceState.NONCOMPLIANT
        client.force_login(people.employee)
        response = page(client, failing_device)

    content = response.content.decode()
    assert "Noncompliant" in content and "cannot reach company email" in content
    assert "Fix by" not in content
    assert "this device is locked remotely" in content


def test_my_devices_shows_the_state_in_words_and_links_to_what_to_fix(client, people, failing_device):
    client.force_login(people.employee)

    response = client.get(reverse("portal:device_list"))

    content = response.content.decode()
    assert "In grace period" in content
    assert reverse("portal:device_compliance", kwargs={"uuid": failing_device.uuid}) in content
    assert "See what to fix" in content
    detail = client.get(reverse("portal:device_detail", kwargs={"uuid": failing_device.uuid})).content.decode()
    assert "This device needs your attention" in detail


def test_a_compliant_device_has_nothing_to_fix(client, people, ios_policy):
    device = people.device_a
    drift(device, encrypted=True, passcode_set=True, passcode_quality="numeric", passcode_length=6)
    client.force_login(people.employee)

    response = page(client, device)

    content = response.content.decode()
    assert response.context["detail"].failing == []
    assert "Compliant" in content and "Nothing to do" in content and "What to fix" not in content
    assert "See what to fix" not in client.get(reverse("portal:device_list")).content.decode()


def test_another_employee_gets_a_404_for_my_device(client, people, failing_device):
    client.force_login(people.other_employee)

    assert page(client, failing_device).status_code == 404
    assert check_again(client, failing_device).status_code == 404
    status = client.get(reverse("portal:device_compliance_status", kwargs={"uuid": failing_device.uuid}))
    assert status.status_code == 404
    assert not syncs(failing_device).exists()


def test_anonymous_is_sent_to_sign_in(client, failing_device):
    assert_outcome(page(client, failing_device), PORTAL_LOGIN, "anonymous on the compliance page")
    assert_outcome(check_again(client, failing_device), PORTAL_LOGIN, "anonymous checking again")
    assert not syncs(failing_device).exists()


def test_check_again_queues_one_audited_sync_and_refuses_a_second_while_it_is_open(client, people, failing_device):
    client.force_login(people.employee)
    url = reverse("portal:device_compliance", kwargs={"uuid": failing_device.uuid})

    first = check_again(client, failing_device)

    assert first.status_code == 302 and first["Location"] == url
    command = syncs(failing_device).get()
    assert command.status == CommandStatus.QUEUED and command.requested_by == people.employee
    event = AuditEvent.objects.get(verb="device.command.sync")
    assert (event.actor_user, event.actor_label, event.target_id) == (
        people.employee,
        "employee",
        str(failing_device.pk),
    )
    shown = client.get(url).content.decode()
    assert ASKED in shown
    assert "Waiting for your iPhone to check in" in shown
    assert ">Check again</button>" not in shown  # nothing to press while it is open

    second = check_again(client, failing_device)

    assert second.status_code == 302
    assert syncs(failing_device).count() == 1
    assert "was already asked to check in" in client.get(url).content.decode()
    assert AuditEvent.objects.filter(verb="device.command.sync").count() == 1

    # Once the device has answered, it may be asked again.
    DeviceCommand.objects.filter(pk=command.pk).update(status=CommandStatus.ACKNOWLEDGED)
    check_again(client, failing_device)
    assert syncs(failing_device).count() == 2


def test_the_status_says_when_the_device_has_answered(client, people, failing_device):
    client.force_login(people.employee)
    url = reverse("portal:device_compliance_status", kwargs={"uuid": failing_device.uuid})
    check_again(client, failing_device)

    waiting = client.get(url)
    assert waiting.status_code == 200 and waiting["Cache-Control"] == "no-store, private"
    assert waiting.json()["checking"] is True and waiting.json()["state"] == "in_grace"

    syncs(failing_device).update(status=CommandStatus.ACKNOWLEDGED)
    answered = client.get(url).json()
    assert answered["checking"] is False and answered["state_label"] == "In grace period"


def test_after_reloading_the_page_says_whether_the_device_answered(client, people, failing_device):
    client.force_login(people.employee)
    url = reverse("portal:device_compliance", kwargs={"uuid": failing_device.uuid}) + "?checked=1"
    check_again(client, failing_device)

    syncs(failing_device).update(status=CommandStatus.ACKNOWLEDGED)
    assert "has just checked in" in client.get(url).content.decode()

    syncs(failing_device).update(status=CommandStatus.EXPIRED, error="The device did not pick it up in time.")
    content = client.get(url).content.decode()
    assert "did not check in: The device did not pick it up in time." in content
    assert "has just checked in" not in content


def test_check_again_needs_the_csrf_token(people, failing_device):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.employee)

    assert check_again(client, failing_device).status_code == 403
    assert not syncs(failing_device).exists()


def test_a_device_that_is_not_enrolled_cannot_be_asked(client, people, ios_policy):
    device = DeviceFactory(name="Old phone", scope=people.scope_a, primary_user=people.employee)
    from devices import lifecycle

    lifecycle.start_retirement(device, actor=SYSTEM)
    client.force_login(people.employee)

    assert ">Check again</button>" not in page(client, device).content.decode()
    response = check_again(client, device)

    assert response.status_code == 302
    assert not syncs(device).exists()
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRING
    assert "not enrolled" in client.get(response["Location"]).content.decode()


def test_the_page_costs_a_fixed_number_of_queries(client, people, failing_device, django_assert_max_num_queries):
    client.force_login(people.employee)

    with django_assert_max_num_queries(16):
        assert page(client, failing_device).status_code == 200


def test_fix_steps_show_commands_as_code():
    assert step_parts("Run `sudo apt update` then restart.") == [
        ("Run ", False),
        ("sudo apt update", True),
        (" then restart.", False),
    ]
