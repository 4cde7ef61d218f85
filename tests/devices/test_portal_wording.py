"""Company Portal wording an employee relies on: "just now", the agent's name when enrolling, and what
removing a device means for a company device and for a personal one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from devices.services.checkin import device_checkin
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 20, 31, tzinfo=UTC)


def test_a_check_in_under_a_minute_ago_is_just_now(client, people):
    with time_machine.travel(T0, tick=False):
        device_checkin(device=people.device_a, inventory=None, digest=None)
    client.force_login(people.employee)
    detail = reverse("portal:device_detail", kwargs={"uuid": people.device_a.uuid})
    with time_machine.travel(T0 + timedelta(seconds=40), tick=False):
        listing = client.get(reverse("portal:device_list")).content.decode()
        compliance = client.get(reverse("portal:device_compliance", kwargs={"uuid": people.device_a.uuid}))
    assert ">just now</time>" in listing and "0\xa0minutes" not in listing
    assert ">just now</time>" in compliance.content.decode()
    # timesince separates the number from its unit with a no-break space.
    with time_machine.travel(T0 + timedelta(minutes=3, seconds=5), tick=False):
        assert ">3\xa0minutes ago</time>" in client.get(reverse("portal:device_list")).content.decode()
        assert client.get(detail).status_code == 200


@pytest.mark.parametrize(
    ("platform", "where"), [("android", "from Google Play"), ("ios", "from the App Store"), ("windows", "for Windows")]
)
def test_the_enrolment_steps_name_the_agent_to_install(client, people, settings, platform, where):
    settings.MDM_AGENT_NAME = "Acme Device Agent"
    client.force_login(people.employee)
    form = client.get(reverse("portal:enroll"))
    nonce = form.context["form"]["nonce"].value()
    page = client.post(reverse("portal:enroll"), {"platform": platform, "ownership": "personal", "nonce": nonce})
    text = page.content.decode()
    assert f"Install <strong>Acme Device Agent</strong> {where}" in text
    assert "IT recommends" not in text and "the device agent app" not in text


def remove_page(client, device) -> str:
    return client.get(reverse("portal:device_remove", kwargs={"uuid": device.uuid})).content.decode()


def test_removing_a_personal_device_keeps_personal_data(client, people):
    phone = DeviceFactory(name="MY-PHONE", ownership="personal", scope=people.scope_a, primary_user=people.employee)
    client.force_login(people.employee)
    page = remove_page(client, phone)
    assert "only company apps, settings and data are removed" in page
    assert "Your personal photos, apps, contacts, messages and files." in page
    assert "This is a company" not in page
    detail = client.get(reverse("portal:device_detail", kwargs={"uuid": phone.uuid})).content.decode()
    assert "your personal photos, apps and data stay" in detail


def test_removing_a_company_laptop_says_it_is_retired_or_reset_by_it(client, people):
    laptop = DeviceFactory(
        name="LT-45189", platform="windows", ownership="corporate", scope=people.scope_a, primary_user=people.employee
    )
    client.force_login(people.employee)
    page = remove_page(client, laptop)
    assert "This is a company Windows PC" in page
    assert "IT retires it or resets it to factory settings as company policy says" in page
    assert "personal photos" not in page and "What you keep" not in page
    detail = client.get(reverse("portal:device_detail", kwargs={"uuid": laptop.uuid})).content.decode()
    assert "personal photos" not in detail and "IT then retires or resets it" in detail
