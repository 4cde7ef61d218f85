"""People who follow a wrong or foreign link get a page that says what happened, not a bare server page."""

import uuid

import pytest
from django.urls import reverse

from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_device_that_is_not_yours_is_a_404_page_that_explains(client):
    other = UserFactory()
    device = DeviceFactory(primary_user=other)
    client.force_login(UserFactory())

    for url in (
        reverse("portal:device_detail", kwargs={"uuid": device.uuid}),
        reverse("portal:device_detail", kwargs={"uuid": uuid.uuid4()}),
    ):
        response = client.get(url)
        assert response.status_code == 404
        page = response.content.decode()
        assert "This page does not exist, or it is not yours to see" in page
        assert device.name not in page
        assert 'href="/portal/"' in page


def test_a_page_your_role_does_not_allow_is_a_403_page_that_explains(client, people):
    client.force_login(people.helpdesk_a)
    response = client.get(reverse("admin:core_outboxmessage_changelist"))
    assert response.status_code == 403
    page = response.content.decode()
    assert "Your role does not allow this" in page
    assert "ask an IT administrator" in page
    assert 'href="/admin/"' in page


def test_an_api_request_django_will_not_read_is_a_json_400(client, people, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.force_login(people.global_admin)
    response = client.post("/api/v1/devices/actions/lock/", {"ids": [str(n) for n in range(20)]})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "Send JSON" in response.json()["detail"]


def test_a_form_with_too_many_fields_is_a_400_page_that_says_what_to_do(client, people, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.force_login(people.global_admin)
    response = client.post(reverse("admin:devices_device_changelist"), {"_selected_action": list(range(20))})
    assert response.status_code == 400
    assert "select fewer items at a time" in response.content.decode()


def test_a_method_the_api_does_not_offer_is_a_405_with_allow_not_a_403(client, people):
    device = DeviceFactory(scope=people.scope_a)
    url = f"/api/v1/devices/{device.uuid}/"
    assert client.delete(url).status_code == 401  # still: who are you?
    client.force_login(people.global_admin)
    response = client.delete(url)
    assert response.status_code == 405
    assert "DELETE" not in response["Allow"] and "GET" in response["Allow"]
    assert client.post("/api/v1/devices/", {}, content_type="application/json").status_code == 405
    client.force_login(people.employee)
    assert client.get(url).status_code == 403  # a method it offers still needs the permission
