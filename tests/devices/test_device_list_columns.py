"""The device list reads at a glance on a laptop: the person's name and how long ago a device checked in."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Device
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_device_list_shows_names_and_relative_check_ins(client, people):
    owner = UserFactory(username="dkim", first_name="Daniel", last_name="Kim")
    seen = DeviceFactory(name="SEEN-1", primary_user=owner)
    older = DeviceFactory(name="OLDER-1")
    never = DeviceFactory(name="NEVER-1")
    Device.objects.filter(pk=seen.pk).update(last_checkin_at=timezone.now() - timedelta(hours=3, minutes=5))
    Device.objects.filter(pk=older.pk).update(last_checkin_at=timezone.now() - timedelta(days=2, hours=1))
    Device.objects.filter(pk=never.pk).update(last_checkin_at=None)

    client.force_login(people.global_admin)
    page = client.get(reverse("admin:devices_device_changelist")).content.decode()

    assert '<span title="dkim">Daniel Kim</span>' in page
    assert "3\xa0hours ago</time>" in page  # one unit is enough in a list; the exact time is on hover
    assert "minutes ago" not in page
    row_never = page[page.index("NEVER-1") :]
    assert row_never.index("never") < row_never.index("</tr>")
    # Sorting by the column still sorts by the moment itself.
    ordered = client.get(reverse("admin:devices_device_changelist") + "?o=9").content.decode()
    assert ordered.index("OLDER-1") < ordered.index("SEEN-1")
    assert "2\xa0days ago</time>" in ordered
