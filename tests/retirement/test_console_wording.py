"""The retire / wipe page: options across the page, a button that says what it does, and a sentence
when no option is chosen."""

from __future__ import annotations

import pytest
from django.urls import reverse

from retirement.models import RetirementRequest, RetirementSettings

pytestmark = pytest.mark.django_db


def request_url(device) -> str:
    return reverse("admin:retirement_retirementrequest_request", args=[device.pk])


def test_submitting_without_an_action_says_what_to_choose(client, people):
    client.force_login(people.global_admin)
    response = client.post(request_url(people.device_a), {"reason": "left"})
    assert response.status_code == 200
    errors = response.context["form"].errors["action"]
    assert errors == [
        "Choose what should happen to the device: retire (remove company data), "
        "full wipe (erase everything) or delete the record."
    ]
    assert "This field is required." not in response.content.decode()
    assert not RetirementRequest.objects.exists()


def test_the_options_use_djangos_radio_list_so_each_stays_on_one_line(client, people):
    client.force_login(people.global_admin)
    content = client.get(request_url(people.device_a)).content.decode()
    assert '<div id="id_action" class="radiolist">' in content


def test_the_button_says_what_happens_without_and_with_approval(client, people):
    client.force_login(people.global_admin)
    content = client.get(request_url(people.device_a)).content.decode()
    assert 'value="Send to the device"' in content and "Ask for it" not in content
    assert "approval-note" not in content
    settings = RetirementSettings.load()
    settings.require_approval = True
    settings.save()
    content = client.get(request_url(people.device_a)).content.decode()
    assert 'value="Request approval"' in content
    assert "A second administrator approves the request before the device receives it." in content
