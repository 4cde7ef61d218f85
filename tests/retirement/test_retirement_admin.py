"""The retirement admin over HTTP: asking from the device page, the typed name of a full wipe, approval
by a second administrator, forcing with a reason, the evidence export, and what the helpdesk sees."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from devices.choices import LifecycleState
from devices.models import DeviceCommand
from devices.services import device_command_results_record
from mdm_portal.core.audit import Actor
from retirement.choices import RetirementAction, RetirementSource, RetirementStatus
from retirement.models import RetirementRequest
from retirement.services import retirement_request
from tests.factories import DeviceFactory, StaffFactory, grant

from .conftest import clean_report, give_managed_set

pytestmark = pytest.mark.django_db
Status = RetirementStatus


def request_url(device):
    return reverse("admin:retirement_retirementrequest_request", args=[device.pk])


def step_url(request, step):
    return reverse("admin:retirement_retirementrequest_step", args=[request.pk, step])


def change_url(request):
    return reverse("admin:retirement_retirementrequest_change", args=[request.pk])


def ask(admin, device, action=RetirementAction.RETIRE, **kwargs):
    return retirement_request(
        actor=Actor.for_user(admin), device=device, action=action, source=RetirementSource.ADMIN, **kwargs
    )


def answer(device, request, data):
    request.refresh_from_db()
    device_command_results_record(
        device=device, results=[{"id": str(request.command.uuid), "status": "acknowledged", "data": data, "error": ""}]
    )
    request.refresh_from_db()
    return request


def test_the_device_page_links_to_retire_and_the_request_retires(client, admins):
    device = DeviceFactory(name="EMEA-LAPTOP-7")
    client.force_login(admins[0])
    page = client.get(reverse("admin:devices_device_change", args=[device.pk]))
    assert request_url(device) in page.content.decode()

    form = client.get(request_url(device))
    assert form.status_code == 200
    assert "Full wipe (factory reset)" in form.content.decode()
    response = client.post(request_url(device), {"action": "retire", "reason": "Leaver"})
    created = RetirementRequest.objects.get(device=device)
    assert response.status_code == 302 and response["Location"] == change_url(created)
    assert (created.action, created.status, created.reason) == ("retire", Status.COMMAND_SENT, "Leaver")
    device.refresh_from_db()
    assert device.lifecycle_state == LifecycleState.RETIRING

    detail = client.get(change_url(created))
    assert detail.status_code == 200
    assert "Command sent" in detail.content.decode()
    requests_of_device = reverse("admin:retirement_retirementrequest_changelist") + f"?device__id__exact={device.pk}"
    assert requests_of_device.replace("&", "&amp;") in client.get(page.request["PATH_INFO"]).content.decode()
    listed = client.get(requests_of_device)
    assert listed.status_code == 200 and change_url(created) in listed.content.decode()


def test_a_full_wipe_needs_the_device_name_typed_exactly(client, admins):
    device = DeviceFactory(name="EMEA-LAPTOP-8")
    client.force_login(admins[0])
    refused = client.post(request_url(device), {"action": "wipe", "confirm_name": "emea-laptop-8"})
    assert refused.status_code == 200
    assert "Type the device&#x27;s name, EMEA-LAPTOP-8, exactly" in refused.content.decode()
    assert not RetirementRequest.objects.exists()

    client.post(request_url(device), {"action": "wipe", "confirm_name": "EMEA-LAPTOP-8", "keep_enrollment": "on"})
    created = RetirementRequest.objects.get(device=device)
    assert (created.action, created.keep_enrollment) == ("wipe", True)


def test_the_services_refusal_is_shown_as_its_sentence(client, admins):
    device = DeviceFactory(ownership="personal")
    client.force_login(admins[0])
    page = client.get(request_url(device))
    assert "does not allow a full wipe" in page.content.decode()
    response = client.post(request_url(device), {"action": "wipe", "confirm_name": device.name})
    assert response.status_code == 200
    assert "does not allow a full wipe" in response.content.decode()
    assert not RetirementRequest.objects.exists()


def test_approval_by_a_second_administrator_and_refused_for_the_requester(client, admins, retirement_settings):
    retirement_settings.require_approval = True
    retirement_settings.save()
    first, second = admins
    device = DeviceFactory()
    client.force_login(first)
    client.post(request_url(device), {"action": "retire"})
    waiting = RetirementRequest.objects.get(device=device)
    assert waiting.status == Status.AWAITING_APPROVAL

    detail = client.get(change_url(waiting)).content.decode()
    assert step_url(waiting, "approve") not in detail
    assert step_url(waiting, "cancel") in detail
    refused = client.post(step_url(waiting, "approve"))
    assert refused.status_code == 200
    assert "You asked for this yourself" in refused.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == Status.AWAITING_APPROVAL

    client.force_login(second)
    assert step_url(waiting, "approve") in client.get(change_url(waiting)).content.decode()
    assert client.get(step_url(waiting, "approve")).status_code == 200
    response = client.post(step_url(waiting, "approve"))
    assert response.status_code == 302 and response["Location"] == change_url(waiting)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.approved_by) == (Status.COMMAND_SENT, second)
    assert DeviceCommand.objects.filter(pk=waiting.command_id).exists()


def test_cancel_returns_the_device_to_enrolled(client, admins):
    device = DeviceFactory()
    request = ask(admins[0], device)
    client.force_login(admins[1])
    response = client.post(step_url(request, "cancel"), {"reason": "Wrong device"})
    assert response.status_code == 302
    request.refresh_from_db()
    device.refresh_from_db()
    assert (request.status, device.lifecycle_state) == (Status.CANCELLED, LifecycleState.ENROLLED)


def test_unenrol_a_verified_request(client, admins, retirement_settings):
    retirement_settings.auto_unenroll = False
    retirement_settings.save()
    device = DeviceFactory()
    request = answer(device, ask(admins[0], device), clean_report())
    assert request.status == Status.VERIFIED
    client.force_login(admins[0])
    assert step_url(request, "unenroll") in client.get(change_url(request)).content.decode()
    client.post(step_url(request, "unenroll"))
    request.refresh_from_db()
    assert request.status == Status.UNENROLLED


def test_force_needs_a_reason_and_the_permission(client, admins):
    device = DeviceFactory()
    request = ask(admins[0], device)
    client.force_login(admins[1])
    without = client.post(step_url(request, "force"), {"reason": "  "})
    assert without.status_code == 200
    assert "Say why you force the unenrolment" in without.content.decode()
    request.refresh_from_db()
    assert request.status == Status.COMMAND_SENT

    client.post(step_url(request, "force"), {"reason": "Stolen, never came back"})
    request.refresh_from_db()
    device.refresh_from_db()
    assert (request.status, request.forced_by, request.forced_reason) == (
        Status.FORCED,
        admins[1],
        "Stolen, never came back",
    )
    assert device.lifecycle_state == LifecycleState.RETIRED
    assert "Unverified: unenrolled by force by admin-two" in client.get(change_url(request)).content.decode()

    retirer = StaffFactory(username="retirer")
    grant(retirer, "Read-only operator")
    other = ask(admins[0], DeviceFactory())
    client.force_login(retirer)
    assert client.get(step_url(other, "force")).status_code == 403


def test_evidence_csv_names_leftovers_and_guards_formulas(client, admins):
    device = DeviceFactory(name="=HYPERLINK(1)")
    app, _ = give_managed_set(device)
    request = answer(
        device,
        ask(admins[0], device),
        {"installed_apps": [{"identifier": app.identifier, "name": "Outlook"}], "profiles": [], "corporate_data": {}},
    )
    assert request.status == Status.FAILED
    client.force_login(admins[1])
    response = client.get(reverse("admin:retirement_retirementrequest_evidence_csv", args=[request.pk]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["record", "device"] and header[-1] == "leftover"
    assert {row[1] for row in body} == {"'=HYPERLINK(1)"}
    after = [row for row in body if row[13] == "after"]
    assert [(r[15], r[17]) for r in after] == [(app.identifier, "yes")]
    before = {(r[14], r[15]) for r in body if r[13] == "before"}
    assert ("managed app", app.identifier) in before and ("other app", "com.spotify.client") in before
    assert body[0][12].startswith("Failed: still on the device after the command: Outlook (app)")

    detail = client.get(change_url(request)).content.decode()
    assert 'class="leftover"' in detail and "still there" in detail
    proof = client.get(reverse("admin:retirement_retirementrequest_proof", args=[request.pk])).content.decode()
    assert '<tr class="leftover"><td>app</td><td>com.microsoft.Office.Outlook</td>' in proof


def test_printable_proof_of_removal(client, admins):
    device = DeviceFactory(name="EMEA-PHONE-9")
    give_managed_set(device)
    request = answer(device, ask(admins[0], device, reason="Leaver"), clean_report())
    assert request.status == Status.UNENROLLED
    client.force_login(admins[1])
    page = client.get(reverse("admin:retirement_retirementrequest_proof", args=[request.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    for expected in (
        "Proof of removal: EMEA-PHONE-9",
        device.serial_number,
        "admin-one",
        "Verified: the device&#x27;s report after the command shows none of the managed apps",
        "com.microsoft.Office.Outlook",
        "Before the command",
        "After the command",
    ):
        assert expected in text
    assert 'class="leftover"' not in text


def test_helpdesk_sees_no_wipe_controls_and_is_refused(client, people):
    device = people.device_a
    client.force_login(people.helpdesk_a)
    page = client.get(reverse("admin:devices_device_change", args=[device.pk]))
    assert page.status_code == 200
    assert request_url(device) not in page.content.decode()
    assert "field-retirement_links" not in page.content.decode()  # no empty "Retire / wipe" section
    assert client.get(request_url(device)).status_code == 403
    assert client.post(request_url(device), {"action": "retire"}).status_code == 403
    assert client.get(request_url(people.device_b)).status_code == 403
    assert not RetirementRequest.objects.exists()


def test_the_request_list_runs_a_constant_number_of_queries(client, admins, django_assert_max_num_queries):
    for _ in range(5):
        ask(admins[0], DeviceFactory())
    client.force_login(admins[1])
    url = reverse("admin:retirement_retirementrequest_changelist")
    with django_assert_max_num_queries(12):
        response = client.get(url + "?status=command_sent&q=DEVICE")
    assert response.status_code == 200 and response.content.decode().count("retirement-status") == 5
