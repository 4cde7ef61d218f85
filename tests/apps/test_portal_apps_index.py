"""Company Portal: the Apps page in the top menu lists my enrolled devices, each linking to its apps."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.choices import LifecycleState
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def test_the_menu_leads_to_apps_which_lists_my_enrolled_devices(client, people):
    laptop = DeviceFactory(name="LT-0001", platform="windows", scope=people.scope_a, primary_user=people.employee)
    pending = DeviceFactory(
        name="NEW-PHONE", scope=people.scope_a, primary_user=people.employee, state=LifecycleState.PENDING
    )
    client.force_login(people.employee)

    home = client.get(reverse("portal:device_list")).content.decode()
    assert f'href="{reverse("portal:apps")}"' in home and ">Apps</a>" in home

    response = client.get(reverse("portal:apps"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'aria-current="page">Apps</a>' in page
    for device in (people.device_a, laptop):
        assert reverse("portal:device_apps", kwargs={"uuid": device.uuid}) in page
    assert "Company apps for this Windows PC" in page
    assert reverse("portal:device_apps", kwargs={"uuid": pending.uuid}) not in page  # nothing to install yet
    assert reverse("portal:device_apps", kwargs={"uuid": people.device_b.uuid}) not in page  # someone else's

    apps = client.get(reverse("portal:device_apps", kwargs={"uuid": laptop.uuid})).content.decode()
    assert 'aria-current="page">Apps</a>' in apps


def test_someone_without_devices_is_told_how_to_get_apps(client, people):
    client.force_login(people.no_role)
    page = client.get(reverse("portal:apps")).content.decode()
    assert "You have no enrolled devices" in page and reverse("portal:enroll") in page


def test_the_apps_page_costs_the_same_queries_for_two_devices_as_for_twelve(client, people):
    client.force_login(people.employee)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("portal:apps")).status_code == 200
        return len(captured)

    DeviceFactory(scope=people.scope_a, primary_user=people.employee, platform="windows")
    few = queries()
    for n in range(10):
        DeviceFactory(scope=people.scope_a, primary_user=people.employee, platform=("ios", "android", "macos")[n % 3])
    assert queries() == few
