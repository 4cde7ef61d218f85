"""Device pages of the IT console in plain words: a command page names the device and shows its
inputs and result as rows, a device page offers no way to edit or delete its scope, the group form
says which fields go with which membership type, the lock form's phone error stands by the phone
field, and the console spells "enrolment" one way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import DeviceCommand

pytestmark = pytest.mark.django_db


def test_a_command_page_names_the_device_and_shows_payload_and_result_as_rows(client, people):
    command = DeviceCommand.objects.create(
        device=people.device_a,
        command_type="lock",
        status="acknowledged",
        payload={"message": "Call IT", "phone_number": "+44 20 7946 0000"},
        result={},
        deadline_at=timezone.now() + timedelta(days=1),
    )
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:devices_devicecommand_change", args=[command.pk])).content.decode()
    assert "<title>Lock for EMEA-PHONE-1 (acknowledged) |" in content
    assert f"for {people.device_a.pk} (" not in content
    assert '<th scope="row">Message</th><td>Call IT</td>' in content
    assert '<th scope="row">Phone number</th><td>+44 20 7946 0000</td>' in content
    assert "{&quot;message&quot;" not in content and "{}" not in content
    # An empty result is a dash, and the delivery priority (an internal ordering) is not on the page.
    assert '<div class="readonly">—</div>' in content
    assert "Priority" not in content


def test_a_commands_name_costs_no_query_when_its_device_is_not_loaded(people, django_assert_num_queries):
    command = DeviceCommand.objects.create(
        device=people.device_a, command_type="sync", deadline_at=timezone.now() + timedelta(days=1)
    )
    fresh = DeviceCommand.objects.get(pk=command.pk)
    with django_assert_num_queries(0):
        assert str(fresh) == f"Sync for device {people.device_a.pk} (queued)"
    assert str(DeviceCommand.objects.select_related("device").get(pk=command.pk)) == "Sync for EMEA-PHONE-1 (queued)"


def test_the_device_page_offers_no_add_edit_or_delete_of_its_scope(client, people):
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])).content.decode()
    assert 'name="scope"' in content
    for link in ("change_id_scope", "add_id_scope", "delete_id_scope", "view_id_scope"):
        assert link not in content


def test_the_group_form_says_which_membership_type_each_field_is_for(client, people):
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:devices_devicegroup_add")).content.decode()
    assert "Used when the membership type is Rule-based" in content
    assert "Used when the membership type is Static" in content


def test_an_invalid_phone_number_stands_next_to_the_phone_field(client, people):
    client.force_login(people.global_admin)
    url = reverse("admin:devices_device_action", args=[people.device_a.pk, "lock"])
    response = client.post(url, {"message": "Found it?", "phone_number": "call me maybe"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["phone_number"] == ["The phone number may contain only digits, spaces and + - ( )."]
    assert not form.non_field_errors()
    # A missing input of a one-input action (rename's name) stands by that input too.
    response = client.post(reverse("admin:devices_device_action", args=[people.device_a.pk, "rename"]), {"name": ""})
    assert response.context["form"].errors["name"] == ["Enter the new device name."]
    assert not DeviceCommand.objects.exists()


def test_the_console_spells_enrolment_one_way(client, people):
    client.force_login(people.global_admin)
    index = client.get(reverse("admin:index")).content.decode()
    for name in ("Enrolment codes", "Enrolment failures", "Enrolment profiles", "Enrolment restrictions"):
        assert name in index
    assert "Enrollment" not in index
    devices = client.get(reverse("admin:devices_device_changelist")).content.decode()
    assert "By enrolment method" in devices and "enrollment method" not in devices.lower()
