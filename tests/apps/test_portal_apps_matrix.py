"""Permission matrix of the Company Portal's app catalog: the device's owner only.

Another employee and every IT role (a global administrator who is not the owner included) get the
404 of a device that does not exist; IT manages apps in the admin and the API, not here. Anonymous
visitors are sent to the portal's sign-in page. Install and Uninstall queue a command for the
owner and for nobody else.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.models import AppInstall
from apps.services import app_save, app_version_add
from devices.choices import CommandType
from devices.models import DeviceCommand
from tests.factories import SYSTEM
from tests.matrix import covers
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "other_employee", "no_role", "global_admin", "read_only", "helpdesk_a")
# device_a is the employee's, device_b the other employee's (both iPhones, in scopes A and B).
OWNERS = {"device_a": "employee", "device_b": "other_employee"}


def expected(persona: str, device: str):
    if persona == "anonymous":
        return PORTAL_LOGIN
    return "owner" if OWNERS[device] == persona else 404


@pytest.fixture
def app(people):
    """An iPhone app offered to every device, organisation-wide."""
    app = app_save(
        actor=SYSTEM,
        data={"name": "Zoom Workplace", "kind": "store", "platform": "ios", "identifier": "us.zoom.videomeetings"},
        assignments=[{"target": "all_devices", "intent": "available"}],
    )
    app_version_add(actor=SYSTEM, app=app, version="6.6.10")
    return app


def installs(device, command_type):
    return DeviceCommand.objects.filter(device=device, command_type=command_type).count()


@covers("portal:device_apps")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_apps(client, people, app, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        response = client.get(reverse("portal:device_apps", kwargs={"uuid": device.uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200, f"{persona} on the app catalog of their {name}"
            assert [item["app"] for item in response.context["available"]] == [app]
        else:
            assert_outcome(response, outcome, f"{persona} on the app catalog of {name}")


@covers("portal:device_apps_status")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_apps_status(client, people, app, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        response = client.get(reverse("portal:device_apps_status", kwargs={"uuid": device.uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200
            assert response.json()["apps"][0]["status"] == "not_installed"
        else:
            assert_outcome(response, outcome, f"{persona} polling the apps of {name}")


@covers("portal:device_app_install")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_app_install(client, people, app, persona):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        url = reverse("portal:device_app_install", kwargs={"uuid": device.uuid, "app": app.uuid})
        response = client.post(url)
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 302
            assert installs(device, CommandType.INSTALL_APP) == 1
        else:
            assert_outcome(response, outcome, f"{persona} installing on {name}")
            assert installs(device, CommandType.INSTALL_APP) == 0
        if persona != "anonymous":
            assert client.get(url).status_code == 405  # POST only, for everyone


@covers("portal:device_app_uninstall")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_device_app_uninstall(client, people, app, persona):
    for name in OWNERS:
        device = getattr(people, name)
        # The app is on both devices (as if installed from the portal and reported).
        AppInstall.objects.create(
            device=device, app=app, intent="available", state="installed", installed_version="6.6.10"
        )
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        url = reverse("portal:device_app_uninstall", kwargs={"uuid": device.uuid, "app": app.uuid})
        response = client.post(url)
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 302
            assert installs(device, CommandType.REMOVE_APP) == 1
        else:
            assert_outcome(response, outcome, f"{persona} uninstalling from {name}")
            assert installs(device, CommandType.REMOVE_APP) == 0
        if persona != "anonymous":
            assert client.get(url).status_code == 405
