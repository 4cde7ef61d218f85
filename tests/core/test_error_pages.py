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
