import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_helpdesk_sees_only_own_scope_in_admin_changelist(client, people):
    client.force_login(people.helpdesk_a)
    response = client.get(reverse("admin:devices_device_changelist"))
    assert response.status_code == 200
    assert b"EMEA-PHONE-1" in response.content
    assert b"AMER-PHONE-1" not in response.content
    other = reverse("admin:devices_device_change", args=[people.device_b.pk])
    assert client.get(other).status_code == 404
