"""The agent's package download (``GET /agent/v1/apps/<uuid>/package``) and its permission matrix.

Only a device the app is assigned to for installation, or that has an open install command for
it, gets the file; every other caller is refused like on every agent route, and nothing is written.
"""

from __future__ import annotations

import hashlib

import pytest

from apps.choices import AppKind
from apps.services import app_fanout, app_install_request, app_save, app_version_add
from devices import lifecycle
from devices.choices import Platform
from devices.models import DeviceCommand
from devices.services import device_commands_deliver
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from tests.apps import packages as build
from tests.factories import SYSTEM, StaffFactory, UserFactory
from tests.matrix import covers

pytestmark = pytest.mark.django_db

DEB = build.deb(package="field-agent", version="2.4.1")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def token(scope_a):
    _profile, token = enrollment_profile_create(
        actor=SYSTEM, name="Hosts", enrollment_manager=StaffFactory(username="enrolment-manager"), scope=scope_a
    )
    return token


def enrol(token, serial, **identity):
    data = {"platform": "linux", "name": serial, "serial_number": serial, "os_version": "12.8", **identity}
    return device_enroll(identity=data, token=token)


@pytest.fixture
def app(scope_a):
    app = app_save(actor=SYSTEM, data={"name": "Field agent", "kind": AppKind.LOB, "platform": Platform.LINUX})
    app_version_add(actor=SYSTEM, app=app, package=build.upload("field-agent.deb", DEB))
    app.refresh_from_db()
    return app


def url(app, version="2.4.1"):
    path = f"/agent/v1/apps/{app.uuid}/package"
    return f"{path}?version={version}" if version else path


def get(client, path, secret=None, **headers):
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = f"Device {secret}"
    return client.get(path, **headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_an_assigned_device_downloads_the_package_named_in_its_install_command(client, token, app):
    device, secret = enrol(token, "HOST-1")
    app_save(actor=SYSTEM, app=app, data={}, assignments=[{"target": "all_devices", "intent": "required"}])
    app_fanout(app.pk)
    device.refresh_from_db()
    (command,) = device_commands_deliver(device=device)
    payload = command["payload"]
    assert payload["download_url"] == url(app)
    assert (payload["format"], payload["size_bytes"], payload["identifier"]) == ("deb", len(DEB), "field-agent")

    response = get(client, payload["download_url"], secret)
    assert response.status_code == 200
    data = body(response)
    assert data == DEB
    assert hashlib.sha256(data).hexdigest() == payload["sha256"] == response["X-Content-SHA256"]
    assert response["Content-Type"] == "application/octet-stream"
    assert 'filename="field-agent-2.4.1.deb"' in response["Content-Disposition"]
    # Without a version: the current one.
    assert body(get(client, url(app, version=None), secret)) == DEB


def test_an_open_install_command_is_enough_for_an_available_app(client, token, app, scope_a):
    owner = UserFactory(scope=scope_a)
    device, secret = enrol(token, "HOST-2")
    device.primary_user = owner
    device.save(update_fields=["primary_user"])
    app_save(actor=SYSTEM, app=app, data={}, assignments=[{"target": "all_devices", "intent": "available"}])
    assert get(client, url(app), secret).status_code == 404  # available, not asked for
    app_install_request(actor=Actor.for_user(owner), device=device, app=app)
    assert get(client, url(app), secret).status_code == 200


@covers("agent:app-package")
@pytest.mark.parametrize(
    "caller",
    [
        "anonymous",
        "forged secret",
        "malformed header",
        "person session",
        "person api token",
        "retired device",
        "unassigned device",
        "blocked device",
        "other platform",
        "unknown version",
        "unknown app",
        "post",
    ],
)
def test_everyone_but_an_assigned_device_is_refused(client, people, token, app, caller):
    device, secret = enrol(token, "HOST-1")
    other, other_secret = enrol(token, "HOST-2")
    rows = [{"target": "all_devices", "intent": "required"}]
    if caller == "unassigned device":
        rows = [{**rows[0], "filter_os_min": "13"}]  # the hosts run 12.8
    elif caller == "blocked device":
        rows = [{"target": "all_devices", "intent": "blocked"}]
    app_save(actor=SYSTEM, app=app, data={}, assignments=rows)
    app_fanout(app.pk)
    path, headers, expected = url(app), {"HTTP_AUTHORIZATION": f"Device {secret}"}, 404
    if caller == "anonymous":
        headers, expected = {}, 401
    elif caller == "forged secret":
        headers["HTTP_AUTHORIZATION"] = f"Device {secret[:-4]}AAAA"
        expected = 401
    elif caller == "malformed header":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        expected = 401
    elif caller == "person session":
        client.force_login(people.global_admin)
        headers, expected = {}, 401
    elif caller == "person api token":
        _, api_token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="t")
        headers["HTTP_AUTHORIZATION"] = f"Bearer {api_token}"
        expected = 401
    elif caller == "retired device":
        lifecycle.start_retirement(device, actor=SYSTEM)
        lifecycle.finish_retirement(device, actor=SYSTEM)
        expected = 410
    elif caller == "other platform":
        _android, android_secret = enrol(token, "PHONE-1", platform="android", os_version="14")
        headers["HTTP_AUTHORIZATION"] = f"Device {android_secret}"
    elif caller == "unknown version":
        path = url(app, version="9.9")
    elif caller == "unknown app":
        path = f"/agent/v1/apps/{other.uuid}/package"
    before = AuditEvent.objects.count(), DeviceCommand.objects.count()
    if caller == "post":
        response = client.post(path, data="{}", content_type="application/json", **headers)
        expected = 405
    else:
        response = client.get(path, **headers)
    assert response.status_code == expected, response.content
    error = response.json()["error"]
    assert error["code"] and error["message"].endswith(".")
    assert (AuditEvent.objects.count(), DeviceCommand.objects.count()) == before
    assert other_secret  # another enrolled device exists; its existence changes nothing above


def test_the_route_is_in_the_agent_namespace():
    from django.urls import reverse

    assert reverse("agent:app-package", kwargs={"app_uuid": "6f1c0c1e-8a3e-4a4b-9a53-1c1d4f0f5e11"}) == (
        "/agent/v1/apps/6f1c0c1e-8a3e-4a4b-9a53-1c1d4f0f5e11/package"
    )
