"""The apps API over HTTP with API tokens: the catalog with nested assignments, package uploads, installs,
their status and retries, app protection policies, managed app instances and selective wipes.

Bad input is a 400 that names the field; nested assignments are all or nothing; a scoped caller
works in their scope only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.urls import reverse

from apps.management.commands.demo_apps import build_deb
from apps.models import App, AppDataWipe, AppInstall, AppProtectionPolicy, ManagedAppInstance
from apps.services import app_fanout
from devices import services as device_services
from devices.choices import CommandType
from devices.models import DeviceCommand
from mdm_portal.core import services as core_services
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploaded packages go to a temporary directory, never into the demo's var/media."""
    settings.MEDIA_ROOT = tmp_path


DEB = build_deb(package="example-vpn-helper", version="1.4.2", summary="VPN helper", description="Connects.")


class Api:
    """A client that sends a bearer token and JSON (or a multipart form)."""

    def __init__(self, client, token: str):
        self.client, self.auth = client, {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def get(self, url, params=None, **extra):
        return self.client.get(url, params or {}, **self.auth, **extra)

    def post(self, url, body=None):
        return self.client.post(url, json.dumps(body or {}), content_type="application/json", **self.auth)

    def upload(self, url, data):
        return self.client.post(url, data, **self.auth)

    def patch(self, url, body):
        return self.client.patch(url, json.dumps(body), content_type="application/json", **self.auth)

    def delete(self, url):
        return self.client.delete(url, **self.auth)


def token_for(user) -> str:
    return core_services.api_token_create(actor=SYSTEM, user=user, name=f"{user.username} automation")[1]


@pytest.fixture
def admin_api(client, people):
    return Api(client, token_for(people.global_admin))


@pytest.fixture
def manager_api(client, people):
    manager = StaffFactory(username="app-manager-a")
    grant(manager, "Application manager", [people.scope_a])
    return Api(client, token_for(manager))


@pytest.fixture
def everyone(people):
    return core_services.user_group_save(
        actor=SYSTEM, name="All employees", members=[people.employee, people.other_employee]
    )


def package(data: bytes = DEB, name: str = "example-vpn-helper_1.4.2_all.deb"):
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def zoom_body(**overrides):
    body = {
        "name": "Zoom Workplace",
        "publisher": "Zoom Video Communications",
        "description": "Video meetings.",
        "kind": "store",
        "platform": "ios",
        "identifier": "us.zoom.videomeetings",
        "store_id": "546505307",
        "assignments": [
            {"target": "user_group", "user_group": "All employees", "intent": "available"},
            {"target": "all_devices", "filter_ownership": "corporate", "intent": "required"},
            {"mode": "exclude", "target": "all_devices", "filter_os_max": "15.0"},
        ],
    }  # fmt: skip
    return {**body, **overrides}


def test_an_app_is_created_with_its_assignments_and_reaches_devices(admin_api, people, everyone):
    response = admin_api.post(reverse("app-list"), zoom_body())

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Zoom Workplace" and body["scope"] is None and body["kind"] == "store"
    rows = sorted((a["mode"], a["target"], a["intent"] if a["mode"] == "include" else "") for a in body["assignments"])
    assert rows == [
        ("exclude", "all_devices", ""),  # an exclude applies to every intent
        ("include", "all_devices", "required"),
        ("include", "user_group", "available"),
    ]
    assert body["current_version"] is None and body["icon"] is None
    assert body["installs"] == {
        "installed": 0, "pending": 0, "failed": 0, "conflict": 0, "not_installed": 0, "not_applicable": 0
    }  # fmt: skip

    app = App.objects.get(uuid=body["id"])
    version = admin_api.post(reverse("app-versions", kwargs={"id": app.uuid}), {"version": "6.6.10"})
    assert version.status_code == 201, version.content
    assert version.json()["version"] == "6.6.10" and version.json()["current"] is True
    app_fanout(app.pk)  # what the task queued on commit does

    detail = admin_api.get(reverse("app-detail", kwargs={"id": app.uuid})).json()
    assert detail["current_version"] == "6.6.10"
    assert detail["installs"]["pending"] == 2  # both corporate iPhones
    assert DeviceCommand.objects.filter(command_type=CommandType.INSTALL_APP).count() == 2


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (zoom_body(identifier=""), "identifier", "Enter the identifier devices report"),
        (zoom_body(store_id="zoom"), "store_id", "The App Store id is a number"),
        (zoom_body(platform="symbian"), "platform", "is not a valid choice"),
        (zoom_body(kind="web", url=""), "url", "Enter the web link"),
        (zoom_body(scope="nowhere"), "scope", "No scope 'nowhere'"),
        (zoom_body(assignments=[{"target": "user_group", "user_group": "Nobody", "intent": "required"}]),
         "assignments", "No user group named 'Nobody'"),
        (zoom_body(assignments=[{"target": "all_devices", "intent": "maybe"}]), "assignments", "not a valid choice"),
    ],
    ids=["no-identifier", "store-id", "platform", "web-without-url", "scope", "user-group", "intent"],
)  # fmt: skip
def test_bad_input_is_a_400_that_names_the_field(admin_api, everyone, body, field, words):
    response = admin_api.post(reverse("app-list"), body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert words in json.dumps(response.json())
    assert not App.objects.exists()


def test_kind_and_platform_never_change_and_an_identifier_is_unique(admin_api, everyone):
    app = admin_api.post(reverse("app-list"), zoom_body()).json()
    url = reverse("app-detail", kwargs={"id": app["id"]})

    assert "kind" in admin_api.patch(url, {"kind": "web"}).json()
    assert "platform" in admin_api.patch(url, {"platform": "android"}).json()
    clash = admin_api.post(reverse("app-list"), zoom_body(name="Zoom again", assignments=[]))
    assert clash.status_code == 400 and "already uses the identifier" in clash.json()["identifier"][0]
    changed = admin_api.patch(url, {"assignments": [{"target": "all_devices", "intent": "uninstall"}]})
    assert changed.status_code == 200
    assert [a["intent"] for a in changed.json()["assignments"]] == ["uninstall"]


def test_a_line_of_business_package_is_uploaded_as_multipart(admin_api, people):
    app = admin_api.post(reverse("app-list"), {"name": "VPN helper", "kind": "lob", "platform": "linux"}).json()
    url = reverse("app-versions", kwargs={"id": app["id"]})

    response = admin_api.upload(url, {"package": package(), "notes": "First release"})

    assert response.status_code == 201, response.content
    assert response.json() | {"created_at": None} == {
        "version": "1.4.2",  # read from the package
        "package_format": "deb",
        "size_bytes": len(DEB),
        "sha256": hashlib.sha256(DEB).hexdigest(),
        "min_os_version": "",
        "notes": "First release",
        "current": True,
        "created_at": None,
    }
    assert App.objects.get(uuid=app["id"]).identifier == "example-vpn-helper"
    again = admin_api.upload(url, {"package": package()})
    assert again.status_code == 400 and "already has version 1.4.2" in again.json()["version"][0]
    wrong = admin_api.upload(url, {"package": package(b"PK\x03\x04", "helper.apk")})
    assert wrong.status_code == 400 and "package" in wrong.json()
    missing = admin_api.upload(url, {"version": "2.0"})
    assert missing.status_code == 400 and "Upload the package" in missing.json()["package"][0]
    newer = build_deb(package="example-vpn-helper", version="1.5.0", summary="VPN helper", description="Faster.")
    assert admin_api.upload(url, {"package": package(newer, "helper_1.5.0.deb")}).status_code == 201
    listed = admin_api.get(url).json()["results"]
    assert [(v["version"], v["current"]) for v in listed] == [("1.5.0", True), ("1.4.2", False)]


def test_installs_their_status_in_json_and_csv_and_retrying_the_failed_ones(admin_api, people, everyone):
    app = App.objects.get(uuid=admin_api.post(reverse("app-list"), zoom_body()).json()["id"])
    admin_api.post(reverse("app-versions", kwargs={"id": app.uuid}), {"version": "6.6.10"})
    app_fanout(app.pk)
    AppInstall.objects.filter(device=people.device_b).update(state="failed", reason="Not enough storage.")

    installs = admin_api.get(reverse("app-installs", kwargs={"id": app.uuid}), {"state": "failed"}).json()
    assert [(i["device_name"], i["reason"], i["primary_user"]) for i in installs["results"]] == [
        ("AMER-PHONE-1", "Not enough storage.", "other-employee")
    ]
    assert admin_api.get(reverse("app-installs", kwargs={"id": app.uuid}), {"state": "lost"}).status_code == 400

    status = admin_api.get(reverse("app-install-status", kwargs={"id": app.uuid})).json()
    assert status["total"] == 2 and status["counts"]["failed"] == 1 and status["counts"]["pending"] == 1
    assert status["current_version"] == "6.6.10"
    exported = admin_api.get(reverse("app-install-status", kwargs={"id": app.uuid}), HTTP_ACCEPT="text/csv")
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0] == ["state", "label", "devices"]
    assert ["failed", "Failed", "1"] in rows and rows[-1] == ["total", "All devices", "2"]

    retried = admin_api.post(reverse("app-retry-failed", kwargs={"id": app.uuid}))
    assert retried.json() == {"retried": 1}
    assert AppInstall.objects.get(device=people.device_b, app=app).state == "pending"


def test_a_scoped_manager_works_in_their_scope_only(manager_api, admin_api, people, everyone):
    group_b = device_services.device_group_save(actor=SYSTEM, name="Americas phones", scope=people.scope_b)

    made = manager_api.post(reverse("app-list"), zoom_body(scope="emea"))
    assert made.status_code == 201, made.content
    assert made.json()["scope"] == "emea"
    outside = manager_api.post(reverse("app-list"), zoom_body(scope="americas", identifier="x"))
    assert outside.status_code == 400 and "scope" in outside.json()
    organisation_wide = manager_api.post(reverse("app-list"), zoom_body(identifier="y", scope=None))
    assert organisation_wide.status_code == 400 and "scope" in organisation_wide.json()
    other_group = manager_api.post(
        reverse("app-list"),
        zoom_body(scope="emea", identifier="z",
                  assignments=[{"target": "device_group", "device_group": group_b.name, "intent": "required"}]),
    )  # fmt: skip
    assert other_group.status_code == 400 and "No device group named 'Americas phones'" in json.dumps(
        other_group.json()
    )
    theirs = App.objects.get(uuid=made.json()["id"])
    org_app = admin_api.post(reverse("app-list"), zoom_body(identifier="org.app", assignments=[])).json()
    assert manager_api.get(reverse("app-detail", kwargs={"id": org_app["id"]})).status_code == 404
    assert manager_api.get(reverse("app-detail", kwargs={"id": theirs.uuid})).status_code == 200


# App protection -------------------------------------------------------------------------------------------------------


def test_a_protection_policy_is_created_changed_and_deleted(admin_api, everyone):
    outlook = admin_api.post(
        reverse("app-list"),
        {"name": "Outlook", "kind": "store", "platform": "ios", "identifier": "com.microsoft.Office.Outlook"},
    ).json()
    body = {
        "name": "Protect Outlook",
        "platform": "ios",
        "apps": [outlook["id"]],
        "clipboard": "managed_apps_paste_in",
        "pin_length": 6,
        "blocked_urls": ["https://files.example.net"],
        "assignments": [{"user_group": "All employees"}],
    }
    response = admin_api.post(reverse("app-protection-policy-list"), body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["apps"] == [outlook["id"]]
    assert created["assignments"] == [{"user_group": "All employees", "exclude": False}]
    assert created["version"] == 1 and created["scope"] is None
    url = reverse("app-protection-policy-detail", kwargs={"id": created["id"]})

    changed = admin_api.patch(url, {"pin_length": 8})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2 and changed.json()["apps"] == [outlook["id"]]
    assert changed.json()["assignments"] == created["assignments"]  # omitted: unchanged

    assert admin_api.delete(url).status_code == 204
    assert not AppProtectionPolicy.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clipboard": "everywhere"}, "clipboard"),
        ({"pin_length": 2}, "pin_length"),
        ({"assignments": [{"user_group": "Nobody"}]}, "assignments"),
        ({"apps": ["00000000-0000-4000-8000-000000000000"]}, "apps"),
        ({"platform": "android"}, "apps"),  # Outlook for iPhone cannot be protected by an Android policy
    ],
    ids=["clipboard", "pin", "group", "unknown-app", "app-of-another-platform"],
)
def test_a_wrong_protection_policy_is_a_400(admin_api, everyone, change, field):
    outlook = admin_api.post(
        reverse("app-list"),
        {"name": "Outlook", "kind": "store", "platform": "ios", "identifier": "com.microsoft.Office.Outlook"},
    ).json()
    body = {"name": "Protect Outlook", "platform": "ios", "apps": [outlook["id"]], **change}

    response = admin_api.post(reverse("app-protection-policy-list"), body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not AppProtectionPolicy.objects.exists()


def instance(user, identifier="com.microsoft.Office.Outlook", **extra):
    return ManagedAppInstance.objects.create(
        user=user, app_identifier=identifier, platform="ios", device_name=f"{user.username}'s iPhone",
        secret_hash=hashlib.sha256(identifier.encode() + user.username.encode()).hexdigest(), **extra,
    )  # fmt: skip


def test_app_instances_are_listed_per_person_and_wiped_until_confirmed(admin_api, people):
    mine = instance(people.employee)
    instance(people.other_employee)

    listed = admin_api.get(reverse("app-instance-list"), {"user": "employee"}).json()["results"]
    assert [(i["id"], i["user"], i["wipes"]) for i in listed] == [(str(mine.uuid), "employee", [])]
    assert "secret_hash" not in listed[0]

    url = reverse("app-instance-wipe", kwargs={"id": mine.uuid})
    first = admin_api.post(url, {"reason": "Left the company"})
    assert first.status_code == 202
    assert first.json()["status"] == "pending" and first.json()["reason"] == "Left the company"
    again = admin_api.post(url, {})
    assert again.json()["id"] == first.json()["id"]  # one open wipe
    detail = admin_api.get(reverse("app-instance-detail", kwargs={"id": mine.uuid})).json()
    assert [w["status"] for w in detail["wipes"]] == ["pending"]
    assert AppDataWipe.objects.count() == 1

    too_long = admin_api.post(url, {"reason": "x" * 300})
    assert too_long.status_code == 400 and "reason" in too_long.json()


def test_an_instance_already_wiped_says_so(admin_api, people):
    from django.utils import timezone

    wiped = instance(people.employee, revoked_at=timezone.now())

    response = admin_api.post(reverse("app-instance-wipe", kwargs={"id": wiped.uuid}), {})

    assert response.status_code == 400
    assert "already wiped" in json.dumps(response.json())


def test_the_schema_names_every_route(admin_api):
    schema = admin_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = set(schema["paths"])
    assert {
        "/api/v1/apps/",
        "/api/v1/apps/{id}/",
        "/api/v1/apps/{id}/versions/",
        "/api/v1/apps/{id}/installs/",
        "/api/v1/apps/{id}/install-status/",
        "/api/v1/apps/{id}/retry-failed/",
        "/api/v1/app-protection-policies/",
        "/api/v1/app-protection-policies/{id}/",
        "/api/v1/app-instances/",
        "/api/v1/app-instances/{id}/",
        "/api/v1/app-instances/{id}/wipe/",
    } <= paths
    assert "multipart/form-data" in schema["paths"]["/api/v1/apps/{id}/versions/"]["post"]["requestBody"]["content"]


def test_a_scoped_caller_lists_the_installs_of_their_scopes_devices(manager_api, admin_api, people):
    DeviceFactory(name="EMEA-PHONE-2", scope=people.scope_a, primary_user=people.employee)
    body = zoom_body(scope="emea", assignments=[{"target": "all_devices", "intent": "required"}])
    app = App.objects.get(uuid=admin_api.post(reverse("app-list"), body).json()["id"])
    admin_api.post(reverse("app-versions", kwargs={"id": app.uuid}), {"version": "6.6.10"})
    app_fanout(app.pk)

    installs = manager_api.get(reverse("app-installs", kwargs={"id": app.uuid})).json()["results"]

    assert {i["device_name"] for i in installs} == {"EMEA-PHONE-1", "EMEA-PHONE-2"}
