"""Permission matrix of the apps API (personas: ``tests/test_permission_matrix.py``, plus ``appmgr_a``, an
Application manager over scope A).

What the tables encode: anonymous callers get 401; people without the permission anywhere (the
employee, staff without a role, the helpdesk, whose role has no app permission) get 403; scope A's
application manager sees and changes A's apps, protection policies and app instances, and B's and
organisation-wide ones are a 404, and creating in B is refused (400); the read-only operator reads
everything and changes nothing (403); a refused write changes nothing.
"""

from __future__ import annotations

import io
import json

import pytest
from django.urls import reverse

from apps.management.commands.demo_apps import build_deb
from apps.models import App, AppDataWipe, AppInstall, AppProtectionPolicy, AppVersion, ManagedAppInstance
from apps.services import app_fanout, app_save, app_version_add
from apps.services.protection import protection_policy_save
from mdm_portal.core import services as core_services
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant
from tests.matrix import covers
from tests.test_permission_matrix import PERSONAS, assert_api_error, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploaded packages go to a temporary directory, never into the demo's var/media."""
    settings.MEDIA_ROOT = tmp_path


ALL = (*PERSONAS, "appmgr_a")
API_REFUSED = {"anonymous": 401, "employee": 403, "no_role": 403, "helpdesk_a": 403}
# One object: (A, B, organisation-wide).
READ = API_REFUSED | {"global_admin": (200,) * 3, "read_only": (200,) * 3, "appmgr_a": (200, 404, 404)}
WRITE = API_REFUSED | {"global_admin": (200,) * 3, "read_only": (403,) * 3, "appmgr_a": (200, 404, 404)}
# Create in A, in B.
CREATE = API_REFUSED | {"global_admin": (201, 201), "read_only": (403, 403), "appmgr_a": (201, 400)}
KEYS = ("a", "b", "org")


def triple(table, persona, n=3):
    value = table[persona]
    return value if isinstance(value, tuple) else (value,) * n


@pytest.fixture
def world(people):
    """An iPhone app, a Linux package app and a protection policy in each scope and organisation-wide; the
    app's install failed on the device of its scope; a managed app instance of each employee."""
    manager = StaffFactory(username="app-manager-a")
    grant(manager, "Application manager", [people.scope_a])
    people.appmgr_a = manager
    linux_a = DeviceFactory(name="EMEA-LINUX-1", scope=people.scope_a, platform="linux", os_version="24.04")
    linux_b = DeviceFactory(name="AMER-LINUX-1", scope=people.scope_b, platform="linux", os_version="24.04")
    everyone = core_services.user_group_save(
        actor=SYSTEM, name="All employees", members=[people.employee, people.other_employee]
    )
    people.apps, people.linux, people.policies = {}, {}, {}
    for key, scope in (("a", people.scope_a), ("b", people.scope_b), ("org", None)):
        app = app_save(
            actor=SYSTEM,
            data={"name": f"Notes {key}", "kind": "store", "platform": "ios", "identifier": f"com.example.notes.{key}",
                  "scope": scope},
            assignments=[{"target": "all_devices", "intent": "required"}],
        )  # fmt: skip
        app_version_add(actor=SYSTEM, app=app, version="1.0")
        app_fanout(app.pk)  # what the task queued on commit does
        people.apps[key] = app
        people.linux[key] = app_save(
            actor=SYSTEM,
            data={"name": f"Helper {key}", "kind": "lob", "platform": "linux", "scope": scope},
        )
        people.policies[key] = protection_policy_save(
            actor=SYSTEM,
            data={"name": f"Protect {key}", "platform": "ios", "scope": scope},
            apps=[app],
            assignments=[{"user_group": everyone}],
        )
    AppInstall.objects.filter(device__in=[people.device_a, people.device_b]).update(state="failed", reason="No space.")
    people.linux_devices = {"a": linux_a, "b": linux_b}
    people.instances = {
        "a": ManagedAppInstance.objects.create(
            user=people.employee, app=people.apps["a"], app_identifier="com.example.notes.a", platform="ios",
            device_name="Emma's iPhone", secret_hash="0" * 64,
        ),
        "b": ManagedAppInstance.objects.create(
            user=people.other_employee, app=people.apps["b"], app_identifier="com.example.notes.b", platform="ios",
            device_name="Anita's iPhone", secret_hash="1" * 64,
        ),
    }  # fmt: skip
    return people


def login(client, world, persona):
    if persona == "appmgr_a":
        client.force_login(world.appmgr_a)
        return world.appmgr_a
    return sign_in(client, world, persona)


def send(client, method: str, url: str, body=None):
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    return getattr(client, method)(url, json.dumps(body or {}), content_type="application/json")


def check(response, expected: int, what: str) -> None:
    assert response.status_code == expected, f"{what}: expected {expected}, got {response.status_code}"
    if expected in (401, 403, 404):
        assert_api_error(response, expected)


# Apps ---------------------------------------------------------------------------------------------------------------

APP_LIST = API_REFUSED | {
    "global_admin": {"Notes a", "Notes b", "Notes org", "Helper a", "Helper b", "Helper org"},
    "read_only": {"Notes a", "Notes b", "Notes org", "Helper a", "Helper b", "Helper org"},
    "appmgr_a": {"Notes a", "Helper a"},
}


@covers("api:app-list")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_list_and_create(client, world, persona):
    login(client, world, persona)
    response = client.get(reverse("app-list"))
    expected = APP_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {a["name"] for a in response.json()["results"]} == expected
    else:
        assert_api_error(response, expected)
    before = App.objects.count()
    made = 0
    for scope, wanted in zip(("emea", "americas"), triple(CREATE, persona, 2), strict=True):
        body = {"name": f"Zoom {scope}", "kind": "store", "platform": "android", "identifier": f"us.zoom.{scope}",
                "scope": scope, "assignments": [{"target": "all_devices", "intent": "available"}]}  # fmt: skip
        check(send(client, "post", reverse("app-list"), body), wanted, f"{persona} creating an app in {scope}")
        made += wanted == 201
    assert App.objects.count() == before + made


@covers("api:app-detail")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_detail(client, world, persona):
    login(client, world, persona)
    for key, read, write in zip(KEYS, triple(READ, persona), triple(WRITE, persona), strict=True):
        app = world.apps[key]
        url = reverse("app-detail", kwargs={"id": app.uuid})
        check(client.get(url), read, f"{persona} reading {app}")
        check(send(client, "patch", url, {"description": "changed"}), write, f"{persona} changing {app}")
        app.refresh_from_db()
        assert (app.description == "changed") is (write == 200)
        check(client.delete(url), 204 if write == 200 else write, f"{persona} deleting {app}")
        assert App.objects.filter(pk=app.pk).exists() is (write != 200)


@covers("api:app-versions")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_versions(client, world, persona):
    login(client, world, persona)
    for key, read, write in zip(KEYS, triple(READ, persona), triple(WRITE, persona), strict=True):
        app = world.linux[key]
        url = reverse("app-versions", kwargs={"id": app.uuid})
        check(client.get(url), read, f"{persona} listing the versions of {app}")
        deb = build_deb(package=f"helper-{key}", version="2.0", summary="Helper", description="Helps.")
        package = io.BytesIO(deb)
        package.name = f"helper-{key}_2.0_all.deb"
        response = client.post(url, {"package": package})
        check(response, 201 if write == 200 else write, f"{persona} uploading a version of {app}")
        assert AppVersion.objects.filter(app=app).exists() is (write == 200)


@covers("api:app-installs")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_installs(client, world, persona):
    login(client, world, persona)
    for key, read in zip(KEYS, triple(READ, persona), strict=True):
        response = client.get(reverse("app-installs", kwargs={"id": world.apps[key].uuid}), {"state": "failed"})
        check(response, read, f"{persona} listing the installs of {world.apps[key]}")
        if read == 200:
            devices = {row["device_name"] for row in response.json()["results"]}
            expected = {"a": {"EMEA-PHONE-1"}, "b": {"AMER-PHONE-1"}, "org": {"EMEA-PHONE-1", "AMER-PHONE-1"}}[key]
            assert devices == expected


@covers("api:app-install-status")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_install_status(client, world, persona):
    login(client, world, persona)
    for key, read in zip(KEYS, triple(READ, persona), strict=True):
        url = reverse("app-install-status", kwargs={"id": world.apps[key].uuid})
        response = client.get(url)
        check(response, read, f"{persona} reading the install status of {world.apps[key]}")
        if read == 200:
            assert response.json()["counts"]["failed"] == (2 if key == "org" else 1)
        csv = client.get(url, {"format": "csv"})
        assert csv.status_code == read
        if read != 200:
            assert csv["Content-Type"].startswith("application/json")  # an error is never a file


@covers("api:app-retry-failed")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_retry_failed(client, world, persona):
    login(client, world, persona)
    for key, write in zip(KEYS, triple(WRITE, persona), strict=True):
        app = world.apps[key]
        response = send(client, "post", reverse("app-retry-failed", kwargs={"id": app.uuid}))
        check(response, write, f"{persona} retrying {app}")
        failed = AppInstall.objects.filter(app=app, state="failed").count()
        if write == 200:
            assert response.json() == {"retried": 2 if key == "org" else 1}
            assert failed == 0
        else:
            assert failed == (2 if key == "org" else 1)


# App protection policies --------------------------------------------------------------------------------------------

POLICY_LIST = API_REFUSED | {
    "global_admin": {"Protect a", "Protect b", "Protect org"},
    "read_only": {"Protect a", "Protect b", "Protect org"},
    "appmgr_a": {"Protect a"},
}


@covers("api:app-protection-policy-list")
@pytest.mark.parametrize("persona", ALL)
def test_api_protection_policy_list_and_create(client, world, persona):
    login(client, world, persona)
    response = client.get(reverse("app-protection-policy-list"))
    expected = POLICY_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {p["name"] for p in response.json()["results"]} == expected
    else:
        assert_api_error(response, expected)
    before = AppProtectionPolicy.objects.count()
    made = 0
    for scope, wanted in zip(("emea", "americas"), triple(CREATE, persona, 2), strict=True):
        body = {"name": f"Protect new {scope}", "platform": "android", "scope": scope, "pin_length": 6}
        response = send(client, "post", reverse("app-protection-policy-list"), body)
        check(response, wanted, f"{persona} creating a protection policy in {scope}")
        made += wanted == 201
    assert AppProtectionPolicy.objects.count() == before + made


@covers("api:app-protection-policy-detail")
@pytest.mark.parametrize("persona", ALL)
def test_api_protection_policy_detail(client, world, persona):
    login(client, world, persona)
    for key, read, write in zip(KEYS, triple(READ, persona), triple(WRITE, persona), strict=True):
        policy = world.policies[key]
        url = reverse("app-protection-policy-detail", kwargs={"id": policy.uuid})
        check(client.get(url), read, f"{persona} reading {policy}")
        check(send(client, "patch", url, {"pin_length": 8}), write, f"{persona} changing {policy}")
        policy.refresh_from_db()
        assert (policy.pin_length == 8) is (write == 200)
        check(client.delete(url), 204 if write == 200 else write, f"{persona} deleting {policy}")
        assert AppProtectionPolicy.objects.filter(pk=policy.pk).exists() is (write != 200)


# Managed app instances ------------------------------------------------------------------------------------------------

INSTANCE_LIST = API_REFUSED | {
    "global_admin": {"employee", "other-employee"},
    "read_only": {"employee", "other-employee"},
    "appmgr_a": {"employee"},
}
# (the employee's instance in A, the other employee's in B)
INSTANCE_READ = API_REFUSED | {"global_admin": (200, 200), "read_only": (200, 200), "appmgr_a": (200, 404)}
INSTANCE_WIPE = API_REFUSED | {"global_admin": (202, 202), "read_only": (403, 403), "appmgr_a": (202, 404)}


@covers("api:app-instance-list")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_instance_list(client, world, persona):
    login(client, world, persona)
    response = client.get(reverse("app-instance-list"))
    expected = INSTANCE_LIST[persona]
    if isinstance(expected, set):
        assert response.status_code == 200
        assert {i["user"] for i in response.json()["results"]} == expected
    else:
        assert_api_error(response, expected)
    assert client.post(reverse("app-instance-list"), {}).status_code in (401, 403, 405)  # read-only


@covers("api:app-instance-detail")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_instance_detail(client, world, persona):
    login(client, world, persona)
    for key, read in zip(("a", "b"), triple(INSTANCE_READ, persona, 2), strict=True):
        url = reverse("app-instance-detail", kwargs={"id": world.instances[key].uuid})
        check(client.get(url), read, f"{persona} reading the instance in {key}")
        assert client.delete(url).status_code in (401, 403, 404, 405)
        assert ManagedAppInstance.objects.filter(pk=world.instances[key].pk).exists()


@covers("api:app-instance-wipe")
@pytest.mark.parametrize("persona", ALL)
def test_api_app_instance_wipe(client, world, persona):
    login(client, world, persona)
    for key, wanted in zip(("a", "b"), triple(INSTANCE_WIPE, persona, 2), strict=True):
        instance = world.instances[key]
        response = send(client, "post", reverse("app-instance-wipe", kwargs={"id": instance.uuid}), {"reason": "Left"})
        check(response, wanted, f"{persona} wiping the instance in {key}")
        assert AppDataWipe.objects.filter(instance=instance).exists() is (wanted == 202)
