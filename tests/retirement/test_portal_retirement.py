"""The Company Portal's "Remove this device" and "Reset this device", over HTTP, with the device answering
through the real agent endpoints (the Django test client as the device)."""

import json

import pytest
from django.urls import reverse

from devices.choices import CommandStatus, LifecycleState
from devices.models import Device, DeviceCommand
from devices.services.enrollment import device_enroll, enrollment_code_create
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM, DeviceFactory

from .conftest import clean_report, give_managed_set

pytestmark = pytest.mark.django_db
Status = RetirementStatus


@pytest.fixture
def my_phone(people):
    """The employee's own personal Android phone, enrolled with a Company Portal code."""
    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="android", ownership="personal")
    return device_enroll(identity=identity(), code=code, inventory=inventory())


def agent_post(client, url, body, secret):
    return client.post(
        url, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Device {secret}"
    )


def url(name, device):
    return reverse(f"portal:{name}", kwargs={"uuid": device.uuid})


def test_remove_my_device_end_to_end(client, people, my_phone):
    device, secret = my_phone
    assert device.primary_user == people.employee
    give_managed_set(device)
    client.force_login(people.employee)

    detail = client.get(url("device_detail", device)).content.decode()
    assert url("device_remove", device) in detail and "Remove this device" in detail

    page = client.get(url("device_remove", device))
    assert page.status_code == 200
    text = page.content.decode()
    for words in ("Company apps", "Wi-Fi, VPN and email", "Company data", "personal photos, apps"):
        assert words in text
    assert 'name="csrfmiddlewaretoken"' in text
    assert url("device_reset", device) not in text

    response = client.post(url("device_remove", device))
    assert response.status_code == 302 and response["Location"] == url("device_removal", device)
    request = RetirementRequest.objects.get(device=device)
    assert (request.action, request.source, request.requested_by) == (
        RetirementAction.RETIRE,
        RetirementSource.PORTAL,
        people.employee,
    )

    progress = client.get(url("device_removal", device))
    assert progress.status_code == 200
    assert "Waiting for your Android device to check in" in progress.content.decode()
    status = client.get(url("device_removal_status", device)).json()
    assert status["status"] == Status.COMMAND_SENT and not status["finished"]
    # Back on the device's page, the way to the progress page is there.
    assert url("device_removal", device) in client.get(url("device_detail", device)).content.decode()

    # The device checks in, receives the retire command, carries it out and reports a clean inventory.
    reply = agent_post(client, "/agent/v1/checkin", {"inventory": inventory()}, secret)
    [command] = [c for c in reply.json()["commands"] if c["type"] == "retire"]
    results = {"results": [{"id": command["id"], "status": "acknowledged", "data": clean_report()}]}
    assert agent_post(client, "/agent/v1/commands/results", results, secret).status_code == 200

    status = client.get(url("device_removal_status", device)).json()
    assert status == {
        "id": str(request.uuid),
        "action": "retire",
        "status": Status.UNENROLLED,
        "done": True,
        "failed": False,
        "finished": True,
        "text": "Removed. This device no longer appears in My devices.",
    }
    page = client.get(url("device_removal", device)).content.decode()
    assert "Removed. This device no longer appears in My devices." in page and "<script>" not in page
    assert Device.objects.get(pk=device.pk).lifecycle_state == LifecycleState.RETIRED
    my_devices = client.get(reverse("portal:device_list"))
    assert device not in list(my_devices.context["devices"])
    assert device.name not in my_devices.content.decode()


def test_a_failed_removal_says_why_and_to_contact_it(client, people, my_phone):
    device, secret = my_phone
    client.force_login(people.employee)
    client.post(url("device_remove", device))
    reply = agent_post(client, "/agent/v1/checkin", {}, secret)
    [command] = [c for c in reply.json()["commands"] if c["type"] == "retire"]
    results = {"results": [{"id": command["id"], "status": "error", "error": "Outlook could not be removed"}]}
    agent_post(client, "/agent/v1/commands/results", results, secret)

    status = client.get(url("device_removal_status", device)).json()
    assert status["failed"] and status["finished"] and not status["done"]
    assert "Outlook could not be removed" in status["text"] and "Contact IT" in status["text"]
    assert Device.objects.get(pk=device.pk).lifecycle_state == LifecycleState.ENROLLED


def test_remove_with_an_open_request_goes_to_its_progress(client, people, my_phone):
    device, _ = my_phone
    client.force_login(people.employee)
    client.post(url("device_remove", device))
    # The device is retiring: the confirmation page now leads to the progress.
    response = client.get(url("device_remove", device))
    assert response.status_code == 302 and response["Location"] == url("device_removal", device)
    assert RetirementRequest.objects.filter(device=device).count() == 1


def test_a_retired_device_cannot_be_removed_again(client, people):
    device = DeviceFactory(name="OLD-PHONE", scope=people.scope_a, primary_user=people.employee, state="retired")
    client.force_login(people.employee)
    response = client.get(url("device_remove", device))
    assert response.status_code == 200 and "cannot be removed from here" in response.content.decode()
    response = client.post(url("device_remove", device), follow=True)
    assert not RetirementRequest.objects.filter(device=device).exists()
    assert "OLD-PHONE is not enrolled" in response.content.decode()


def test_no_progress_page_without_a_request(client, people):
    client.force_login(people.employee)
    assert client.get(url("device_removal", people.device_a)).status_code == 404
    assert client.get(url("device_removal_status", people.device_a)).status_code == 404


def test_another_employee_gets_404_and_changes_nothing(client, people):
    client.force_login(people.other_employee)
    for name in ("device_remove", "device_reset", "device_removal", "device_removal_status"):
        assert client.get(url(name, people.device_a)).status_code == 404, name
    assert client.post(url("device_remove", people.device_a)).status_code == 404
    assert client.post(url("device_reset", people.device_a), {"confirm_name": people.device_a.name}).status_code == 404
    assert not RetirementRequest.objects.exists()
    assert not DeviceCommand.objects.filter(device=people.device_a).exists()


def test_reset_is_hidden_unless_the_organisation_allows_it(client, people, retirement_settings):
    device = people.device_a  # corporate
    client.force_login(people.employee)
    assert url("device_reset", device) not in client.get(url("device_remove", device)).content.decode()
    assert client.get(url("device_reset", device)).status_code == 404
    assert client.post(url("device_reset", device), {"confirm_name": device.name}).status_code == 404
    assert not RetirementRequest.objects.exists()

    retirement_settings.allow_user_reset = True
    retirement_settings.save()
    assert url("device_reset", device) in client.get(url("device_remove", device)).content.decode()
    assert client.get(url("device_reset", device)).status_code == 200


def test_reset_is_never_offered_on_a_personal_device(client, people, my_phone, retirement_settings):
    retirement_settings.allow_user_reset = retirement_settings.allow_personal_full_wipe = True
    retirement_settings.save()
    device, _ = my_phone
    client.force_login(people.employee)
    assert url("device_reset", device) not in client.get(url("device_remove", device)).content.decode()
    assert client.get(url("device_reset", device)).status_code == 404


def test_reset_needs_the_device_name_typed(client, people, retirement_settings):
    retirement_settings.allow_user_reset = True
    retirement_settings.save()
    device = people.device_a
    client.force_login(people.employee)

    page = client.get(url("device_reset", device)).content.decode()
    assert "Everything on it is erased" in page and 'name="confirm_name"' in page

    response = client.post(url("device_reset", device), {"confirm_name": "emea-phone"})
    assert response.status_code == 400
    assert f"name exactly as shown ({device.name}) to confirm the reset." in response.content.decode()
    assert 'aria-invalid="true"' in response.content.decode()
    assert not RetirementRequest.objects.exists()

    response = client.post(url("device_reset", device), {"confirm_name": f" {device.name} "})
    assert response.status_code == 302 and response["Location"] == url("device_removal", device)
    request = RetirementRequest.objects.get(device=device)
    assert (request.action, request.source, request.keep_enrollment) == ("wipe", "portal", False)
    command = DeviceCommand.objects.get(device=device, command_type="wipe")
    assert command.status == CommandStatus.QUEUED
    assert "Resetting" in client.get(url("device_removal", device)).content.decode()


def test_pages_fit_a_phone_and_are_labelled(client, people, retirement_settings):
    retirement_settings.allow_user_reset = True
    retirement_settings.save()
    client.force_login(people.employee)
    for name in ("device_remove", "device_reset"):
        page = client.get(url(name, people.device_a)).content.decode()
        assert 'name="viewport" content="width=device-width' in page
        assert "<h1>" in page
    reset = client.get(url("device_reset", people.device_a)).content.decode()
    assert '<label for="id_confirm_name">' in reset and 'id="id_confirm_name"' in reset
    client.post(url("device_remove", people.device_a))
    progress = client.get(url("device_removal", people.device_a)).content.decode()
    assert 'role="status" aria-live="polite"' in progress
