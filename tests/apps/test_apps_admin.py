"""The IT console for apps and app protection, through HTTP: store and line-of-business apps (with real
.deb and .ipa packages built here), the assignments editor and its preview, versions and supersedence,
install status with its chart, retry, per-device installs, protection policies, managed app instances
and selective wipes, scopes, query counts."""

from __future__ import annotations

import hashlib
import io
import plistlib
import tarfile
import zipfile
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.choices import AppIntent, InstallState, WipeStatus
from apps.models import App, AppAssignment, AppDataWipe, AppInstall, AppProtectionPolicy
from apps.services import app_data_wipe_request, app_fanout, app_instance_register, app_save, app_version_add
from apps.targeting import targeted_devices
from devices.choices import LifecycleState
from devices.models import DeviceCommand
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from policies.choices import AssignmentTarget
from tests.factories import SYSTEM, DeviceFactory, StaffFactory, grant
from tests.policies.admin_helpers import device_group, formset

pytestmark = pytest.mark.django_db

REQUIRED_ALL = {"mode": "include", "target": AssignmentTarget.ALL_DEVICES, "intent": AppIntent.REQUIRED}


# Helpers (also used by the matrix module) ---------------------------------------------------------------


def app_manager(scope, username="app-manager-a"):
    manager = StaffFactory(username=username)
    grant(manager, "Application manager", [scope])
    return manager


def make_app(name, *, scope=None, platform="ios", identifier=None, rows=(REQUIRED_ALL,), version="") -> App:
    app = app_save(
        actor=SYSTEM,
        data={
            "name": name,
            "kind": "store",
            "platform": platform,
            "scope": scope,
            "identifier": identifier or f"com.example.{name.lower().replace(' ', '')}",
        },
        assignments=list(rows),
    )
    if version:
        app_version_add(actor=SYSTEM, app=app, version=version)
    return app


def fanned_out(app: App, *, failed_on=(), reason="The device said: not enough storage.") -> App:
    """Run the fan-out now (tests do not commit, so its on-commit task never runs), then fail some."""
    app_fanout(app.pk)
    for device in failed_on:
        AppInstall.objects.filter(app=app, device=device).update(state=InstallState.FAILED, reason=reason)
    return app


def user_group(name, members):
    return core_services.user_group_save(actor=SYSTEM, name=name, members=list(members))


def instance_of(user, *, app=None, device_name="iPhone"):
    app = app or App.objects.filter(platform="ios", identifier="com.microsoft.Office.Outlook").first()
    if app is None:
        app = App.objects.create(
            name="Outlook", kind="store", platform="ios", identifier="com.microsoft.Office.Outlook"
        )
    instance, _secret = app_instance_register(
        user=user, app_identifier=app.identifier, platform=app.platform, device_name=device_name, app_version="4.1"
    )
    return instance


def deb_package(package="corp-vpn-client", version="1.2.3") -> bytes:
    """A real (tiny) Debian package: an ar archive of debian-binary, control.tar.gz and data.tar.gz."""

    def tar_gz(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        return buffer.getvalue()

    control = (
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: IT <it@example.com>\n"
        "Description: Corporate VPN client\n"
    ).encode()
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", tar_gz({"./control": control})),
        ("data.tar.gz", tar_gz({"./usr/share/doc/corp-vpn-client/README": b"VPN\n"})),
    ]
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, content in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(content):<10}`\n".encode()
        assert len(header) == 60
        out.write(header + content + (b"\n" if len(content) % 2 else b""))
    return out.getvalue()


def ipa_package(bundle_id="com.example.fieldservice", version="1.2", min_os="16.0") -> bytes:
    """A real (tiny) iOS app archive: Payload/<App>.app/Info.plist in a zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        plist = {
            "CFBundleIdentifier": bundle_id,
            "CFBundleShortVersionString": version,
            "CFBundleVersion": "42",
            "MinimumOSVersion": min_os,
        }
        archive.writestr("Payload/FieldService.app/Info.plist", plistlib.dumps(plist))
        archive.writestr("Payload/FieldService.app/FieldService", b"\x00" * 64)
    return buffer.getvalue()


def assignment_row(target=AssignmentTarget.ALL_DEVICES, mode="include", intent="required", **extra) -> dict[str, Any]:
    row = {
        "mode": mode,
        "intent": intent,
        "target": target,
        "user_group": "",
        "device_group": "",
        "filter_ownership": "",
        "filter_os_min": "",
        "filter_os_max": "",
    }
    row.update(extra)
    return row


def app_form(name="Outlook", *, kind="store", platform="ios", scope="", rows=None, initial=0, **fields) -> dict:
    data: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "publisher": "Microsoft",
        "description": "",
        "scope": scope,
        "platform": platform,
    }
    if kind == "store":
        data.update({"identifier": "com.microsoft.Office.Outlook", "store_id": "951937596"})
    elif kind == "web":
        data.update({"url": "https://intranet.example.com/"})
    data.update(fields)
    data.update(formset("assignments", rows if rows is not None else [assignment_row()], initial=initial))
    return data


def add_url(kind: str | None = None) -> str:
    url = reverse("admin:apps_app_add")
    return f"{url}?kind={kind}" if kind else url


def change_url(obj) -> str:
    return reverse(f"admin:apps_{obj._meta.model_name}_change", args=[obj.pk])


def _errors(response) -> str:
    context = response.context
    if context is None or "form" not in context:
        return f"{response.status_code}"
    return f"{context['form'].errors} {context['assignments'].errors} {context['assignments'].non_form_errors()}"


def _row_html(content: str, row_id: str) -> str:
    start = content.index(f'id="{row_id}"')
    end = content.index("</tr>", start)
    return content[content.rindex("<tr", 0, start) : end]


@pytest.fixture
def manager_a(people):
    return app_manager(people.scope_a)


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


# Creating apps ----------------------------------------------------------------------------------------------


def test_adding_starts_with_the_kind(client, people):
    client.force_login(people.global_admin)
    content = client.get(add_url()).content.decode()
    for kind in ("store", "lob", "web"):
        assert f"?kind={kind}" in content
    store = client.get(add_url("store")).content.decode()
    assert 'name="identifier"' in store and 'name="package"' not in store
    lob = client.get(add_url("lob")).content.decode()
    assert 'name="package"' in lob and 'enctype="multipart/form-data"' in lob
    assert 'name="url"' in client.get(add_url("web")).content.decode()


def test_create_a_store_app_with_a_required_assignment(client, people):
    client.force_login(people.global_admin)
    response = client.post(add_url("store"), app_form())
    assert response.status_code == 302, _errors(response)
    app = App.objects.get(name="Outlook")
    assert (app.kind, app.platform, app.identifier, app.store_id) == (
        "store",
        "ios",
        "com.microsoft.Office.Outlook",
        "951937596",
    )
    assert [(a.mode, a.target, a.intent) for a in app.assignments.all()] == [("include", "all_devices", "required")]
    assert AuditEvent.objects.filter(verb="app.create", target_id=str(app.pk)).exists()
    assert AuditEvent.objects.filter(verb="app.assignments", target_id=str(app.pk)).exists()


def test_create_a_line_of_business_app_from_a_deb_uploaded_through_the_admin(client, people):
    package = deb_package(version="1.2.3")
    client.force_login(people.global_admin)
    data = app_form("Corp VPN", kind="lob", platform="linux", publisher="IT")
    data["package"] = SimpleUploadedFile(
        "corp-vpn-client_1.2.3_all.deb", package, "application/vnd.debian.binary-package"
    )
    response = client.post(add_url("lob"), data)
    assert response.status_code == 302, _errors(response)
    app = App.objects.get(name="Corp VPN")
    version = app.current_version
    assert app.identifier == "corp-vpn-client"  # read from the package's control file
    assert (version.version, version.package_format, version.size_bytes) == ("1.2.3", "deb", len(package))
    assert version.sha256 == hashlib.sha256(package).hexdigest()
    with version.package.open("rb") as stored:
        assert stored.read() == package


def test_a_damaged_package_is_refused_next_to_the_field_and_nothing_is_saved(client, people):
    client.force_login(people.global_admin)
    data = app_form("Corp VPN", kind="lob", platform="linux")
    data["package"] = SimpleUploadedFile("corp-vpn.deb", b"this is not a debian package", "application/octet-stream")
    response = client.post(add_url("lob"), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "package" in errors and "not a Debian package" in " ".join(errors["package"])
    assert "nothing was saved" in response.content.decode()
    assert not App.objects.exists()


def test_a_new_ipa_version_supersedes_the_old_one(client, people):
    device = DeviceFactory(name="EMEA-PAD-9", scope=people.scope_a)
    client.force_login(people.global_admin)
    data = app_form("Field Service", kind="lob", platform="ios")
    data["package"] = SimpleUploadedFile("FieldService.ipa", ipa_package(version="1.2"), "application/octet-stream")
    assert client.post(add_url("lob"), data).status_code == 302
    app = App.objects.get(name="Field Service")
    assert (app.identifier, app.current_version.version, app.current_version.min_os_version) == (
        "com.example.fieldservice",
        "1.2",
        "16.0",
    )
    fanned_out(app)
    AppInstall.objects.filter(app=app, device=device).update(state=InstallState.INSTALLED, installed_version="1.2")

    versions_url = reverse("admin:apps_app_versions", args=[app.pk])
    upload = SimpleUploadedFile("FieldService.ipa", ipa_package(version="1.3"), "application/octet-stream")
    response = client.post(versions_url, {"package": upload, "version": "", "notes": "Offline mode"}, follow=True)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Devices with 1.2 (1 device) will be updated to 1.3 at their next check-in." in content
    app.refresh_from_db()
    assert app.current_version.version == "1.3"
    assert list(app.versions.values_list("version", flat=True)) == ["1.3", "1.2"]
    assert 'data-version="1.3"' in content and "(current)" in content

    older = SimpleUploadedFile("FieldService.ipa", ipa_package(version="1.1"), "application/octet-stream")
    refused = client.post(versions_url, {"package": older})
    assert refused.status_code == 200
    assert "not newer than the current version 1.3" in " ".join(refused.context["form"].errors["version"])


# The assignments editor -------------------------------------------------------------------------------------


def test_assignment_errors_stay_on_their_rows_and_nothing_is_saved(client, people):
    group_a = device_group("EMEA phones", people.scope_a, [people.device_a])
    app = make_app(
        "Teams", rows=[{"mode": "include", "target": "device_group", "device_group": group_a, "intent": "available"}]
    )
    client.force_login(people.global_admin)
    rows = [
        assignment_row("device_group", intent="available", device_group=group_a.pk),
        assignment_row("all_devices", intent=""),  # an include without an intent
        assignment_row("device_group", intent="required"),  # no group chosen
        assignment_row("all_devices", mode="exclude", intent="", filter_os_min="not a version"),
    ]
    data = app_form("Teams renamed", rows=rows, initial=1, identifier=app.identifier)
    response = client.post(change_url(app), data)

    assert response.status_code == 200
    content = response.content.decode()
    assert "nothing was saved" in content
    assert "has-errors" not in _row_html(content, "assignments-0-row")
    assert "Choose what this row does" in _row_html(content, "assignments-1-row")
    assert "Choose a device group you can see." in _row_html(content, "assignments-2-row")
    assert "has-errors" in _row_html(content, "assignments-3-row")
    app.refresh_from_db()
    assert app.name == "Teams"
    assert [(a.target, a.intent) for a in app.assignments.all()] == [("device_group", "available")]


def test_preview_counts_devices_by_intent_and_conflicts_and_saves_nothing(client, people):
    for n in range(3):
        DeviceFactory(name=f"EMEA-IPHONE-{n}", scope=people.scope_a)
    DeviceFactory(name="EMEA-ANDROID", scope=people.scope_a, platform="android")
    conflicted = device_group("Kiosks", people.scope_a, [people.device_a])
    client.force_login(people.global_admin)
    rows = [
        assignment_row(intent="required"),
        assignment_row("device_group", intent="uninstall", device_group=conflicted.pk),
    ]
    data = app_form(rows=rows)
    data["_preview"] = "1"
    response = client.post(add_url("store"), data)

    assert response.status_code == 200
    preview = response.context["preview"]
    everyone = targeted_devices(App(kind="store", platform="ios"), [AppAssignment(**REQUIRED_ALL)])
    assert preview.total == everyone.count() == 5  # four iPhones in A (with device_a) and one in B
    assert dict(preview.by_intent)["required"] == 4
    assert preview.conflicts == 1
    content = response.content.decode()
    assert "This will apply to 5 devices: 4 required, 1 in conflict." in content
    assert 'id="preview-conflicts"' in content
    assert not App.objects.exists()


def test_web_link_is_offered_as_available(client, people):
    client.force_login(people.global_admin)
    response = client.post(add_url("web"), app_form("Intranet", kind="web", rows=[assignment_row(intent="available")]))
    assert response.status_code == 302, _errors(response)
    app = App.objects.get(name="Intranet")
    assert app.url == "https://intranet.example.com/"
    assert app.assignments.get().intent == "available"


# Install status, retry -----------------------------------------------------------------------------------------


def test_install_status_page_counts_and_chart(client, people):
    extra = [DeviceFactory(name=f"EMEA-IPHONE-{n}", scope=people.scope_a) for n in range(3)]
    app = fanned_out(make_app("Outlook", version="4.1"), failed_on=[extra[0], extra[1]])
    AppInstall.objects.filter(app=app, device=extra[2]).update(state=InstallState.INSTALLED, installed_version="4.1")
    client.force_login(people.global_admin)

    response = client.get(reverse("admin:apps_app_installs", args=[app.pk]))
    assert response.status_code == 200
    counts = {state: n for state, _label, n, _color in response.context["counts"]}
    assert counts["failed"] == 2 and counts["installed"] == 1 and counts["pending"] == 2
    assert response.context["total"] == 5
    content = response.content.decode()
    assert '<svg class="chart" id="install-chart"' in content
    assert content.count('class="bar bar-') == 3  # one bar per state with devices
    assert "Devices per install state of Outlook: 1 installed, 2 pending, 2 failed" in content
    assert "The device said: not enough storage." in content

    failed_only = client.get(reverse("admin:apps_app_installs", args=[app.pk]) + "?state=failed")
    assert len(failed_only.context["rows"]) == 2

    listing = client.get(reverse("admin:apps_app_changelist")).content.decode()
    assert "2 failed" in listing and "1 installed" in listing


def test_retry_failed_from_the_app_asks_first(client, people):
    app = fanned_out(make_app("Outlook", version="4.1"), failed_on=[people.device_a, people.device_b])
    client.force_login(people.global_admin)
    url = reverse("admin:apps_app_retry", args=[app.pk])

    confirm = client.get(url)
    assert confirm.status_code == 200 and confirm.context["failed"] == 2
    assert "not enough storage" in confirm.content.decode()
    assert AppInstall.objects.filter(app=app, state=InstallState.FAILED).count() == 2  # nothing yet

    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not AppInstall.objects.filter(app=app, state=InstallState.FAILED).exists()
    assert DeviceCommand.objects.filter(device=people.device_a, command_type="install_app").exists()
    assert AuditEvent.objects.filter(verb="app.retry_failed", target_id=str(app.pk)).exists()


def test_bulk_retry_only_on_devices_the_person_may_retry(client, people, manager_a):
    app = fanned_out(make_app("Outlook", scope=None, version="4.1"), failed_on=[people.device_a, people.device_b])
    installs = AppInstall.objects.filter(app=app).order_by("pk")
    # An org-wide app is not in the manager's list; the rows of their scope's devices are.
    client.force_login(manager_a)
    changelist = reverse("admin:apps_appinstall_changelist")
    ids = [str(pk) for pk in installs.values_list("pk", flat=True)]
    confirm = client.post(changelist, {"action": "retry_failed", "_selected_action": ids})
    assert confirm.status_code == 200
    # The B row is not even selectable: the list holds what the person may see.
    assert confirm.context["failed"] == 1

    client.post(changelist, {"action": "retry_failed", "_selected_action": ids, "post": "yes"})
    assert AppInstall.objects.get(app=app, device=people.device_a).state == InstallState.PENDING
    assert AppInstall.objects.get(app=app, device=people.device_b).state == InstallState.FAILED


def test_read_only_sees_installs_but_cannot_retry(client, people):
    app = fanned_out(make_app("Outlook", version="4.1"), failed_on=[people.device_a])
    client.force_login(people.read_only)
    page = client.get(reverse("admin:apps_app_installs", args=[app.pk]))
    assert page.status_code == 200 and page.context["retry_url"] is None
    assert client.post(reverse("admin:apps_app_retry", args=[app.pk]), {"post": "yes"}).status_code == 403
    assert AppInstall.objects.get(app=app, device=people.device_a).state == InstallState.FAILED


def test_device_page_links_to_its_apps(client, people, manager_a):
    app = fanned_out(make_app("Outlook", scope=people.scope_a, version="4.1"), failed_on=[people.device_a])
    client.force_login(manager_a)
    device_page = client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])).content.decode()
    apps_url = reverse("admin:apps_appinstall_device", args=[people.device_a.pk])
    assert f'href="{apps_url}"' in device_page
    response = client.get(apps_url)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Outlook" in content and "not enough storage" in content
    assert reverse("admin:apps_app_installs", args=[app.pk]) in content

    client.force_login(people.helpdesk_a)  # sees the device, not its apps
    device_page = client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])).content.decode()
    assert apps_url not in device_page


# Scopes -------------------------------------------------------------------------------------------------------


def test_an_application_manager_of_scope_a_cannot_see_or_assign_scope_b(client, people, manager_a):
    app_a = make_app("EMEA Outlook", scope=people.scope_a)
    app_b = make_app("Americas Outlook", scope=people.scope_b)
    group_b = device_group("Americas phones", people.scope_b, [people.device_b])
    client.force_login(manager_a)

    listing = client.get(reverse("admin:apps_app_changelist")).content.decode()
    assert change_url(app_a) in listing and change_url(app_b) not in listing
    for name in ("change", "installs", "versions", "retry"):
        url = change_url(app_b) if name == "change" else reverse(f"admin:apps_app_{name}", args=[app_b.pk])
        assert client.get(url).status_code == 404, name
    assert client.get(reverse("admin:apps_appinstall_device", args=[people.device_b.pk])).status_code == 404

    form = client.get(add_url("store")).context["form"]
    assert list(form.fields["scope"].queryset) == [people.scope_a]
    assert form.fields["scope"].required

    # Putting an app in scope B, or pointing a row at scope B's group, is refused.
    refused = client.post(add_url("store"), app_form("Sneaky", scope=people.scope_b.pk))
    assert refused.status_code == 200 and "scope" in refused.context["form"].errors
    rows = [assignment_row("device_group", device_group=group_b.pk)]
    refused = client.post(
        change_url(app_a),
        app_form("EMEA Outlook", scope=people.scope_a.pk, rows=rows, initial=1, identifier=app_a.identifier),
    )
    assert refused.status_code == 200
    assert "has-errors" in _row_html(refused.content.decode(), "assignments-0-row")
    assert not App.objects.filter(name="Sneaky").exists()
    assert [a.target for a in app_a.assignments.all()] == ["all_devices"]

    # Writing to B's app is a 404 like reading it, and changes nothing.
    before = app_b.name
    assert client.post(change_url(app_b), app_form("Taken", scope=people.scope_b.pk)).status_code == 404
    app_b.refresh_from_db()
    assert app_b.name == before


def test_app_list_query_count_does_not_grow_with_the_page(client, people, manager_a, django_assert_max_num_queries):
    def fill(n, start=0):
        for i in range(start, start + n):
            fanned_out(make_app(f"App {i:02d}", scope=people.scope_a, version="1.0"))

    client.force_login(manager_a)
    url = reverse("admin:apps_app_changelist")
    fill(1)
    client.get(url)  # warm caches (content types, sessions)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    fill(29, start=1)
    with CaptureQueriesContext(connection) as thirty:
        response = client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 30
    assert len(thirty) == len(one), [q["sql"] for q in thirty.captured_queries]
    with django_assert_max_num_queries(len(one)):
        client.get(url)


# App protection ---------------------------------------------------------------------------------------------


def test_create_a_protection_policy_with_apps_of_its_platform(client, people, manager_a):
    outlook_a = make_app("Outlook", scope=people.scope_a, identifier="com.microsoft.Office.Outlook", rows=())
    make_app("Outlook B", scope=people.scope_b, identifier="com.example.b", rows=())
    android = make_app(
        "Outlook Android", scope=people.scope_a, platform="android", identifier="com.microsoft.office.outlook", rows=()
    )
    group = user_group("EMEA staff", [people.employee])
    client.force_login(manager_a)

    chooser = client.get(reverse("admin:apps_appprotectionpolicy_add")).content.decode()
    assert "?platform=ios" in chooser and "?platform=android" in chooser
    url = reverse("admin:apps_appprotectionpolicy_add") + "?platform=ios"
    form = client.get(url).context["form"]
    assert list(form.fields["apps"].queryset) == [outlook_a]  # iOS, and only what the manager may see
    assert android not in form.fields["apps"].queryset
    # User groups are organisation-wide (listed by global roles only): a global administrator targets them.
    client.force_login(people.global_admin)

    data = {
        "platform": "ios",
        "name": "EMEA mail protection",
        "description": "",
        "scope": people.scope_a.pk,
        "apps": [outlook_a.pk],
        "data_isolation": "on",
        "clipboard": "managed_apps_paste_in",
        "block_backup": "on",
        "sharing": "managed_apps",
        "allowed_urls": "https://intranet.example.com\nhttps://wiki.example.com",
        "blocked_urls": "",
        "pin_required": "on",
        "pin_length": "6",
        "pin_recheck_minutes": "30",
        "offline_block_minutes": "720",
        "offline_wipe_days": "90",
        "min_app_version": "4.0",
        "min_os_version": "17.0",
        **formset("assignments", [{"mode": "include", "user_group": group.pk}]),
    }
    preview = client.post(url, {**data, "_preview": "1"})
    assert preview.status_code == 200, _errors(preview)
    assert preview.context["preview"] is not None, _errors(preview)
    assert preview.context["preview"].total == 1
    assert "This will apply to 1 person" in preview.content.decode()
    assert not AppProtectionPolicy.objects.exists()

    response = client.post(url, data)
    assert response.status_code == 302, _errors(response)
    policy = AppProtectionPolicy.objects.get(name="EMEA mail protection")
    assert (policy.platform, policy.scope, policy.clipboard, policy.block_save_as) == (
        "ios",
        people.scope_a,
        "managed_apps_paste_in",
        False,
    )
    assert policy.allowed_urls == ["https://intranet.example.com", "https://wiki.example.com"]
    assert list(policy.apps.all()) == [outlook_a]
    assert [(a.user_group, a.exclude) for a in policy.assignments.all()] == [(group, False)]
    assert policy.version == 1

    data["pin_length"] = "8"
    assert client.post(change_url(policy), data).status_code == 302
    policy.refresh_from_db()
    assert (policy.pin_length, policy.version) == (8, 2)
    assert AuditEvent.objects.filter(verb="protection_policy.change", target_id=str(policy.pk)).exists()


def test_protection_rows_only_exclusions_is_refused(client, people):
    group = user_group("Contractors", [people.employee])
    client.force_login(people.global_admin)
    url = reverse("admin:apps_appprotectionpolicy_add") + "?platform=android"
    data = {
        "platform": "android",
        "name": "Nobody",
        "clipboard": "blocked",
        "sharing": "none",
        "pin_length": "6",
        "pin_recheck_minutes": "30",
        "offline_block_minutes": "720",
        "offline_wipe_days": "90",
        **formset("assignments", [{"mode": "exclude", "user_group": group.pk}]),
    }
    response = client.post(url, data)
    assert response.status_code == 200
    assert "Only exclusions" in response.content.decode()
    assert not AppProtectionPolicy.objects.exists()


def test_wipe_org_data_asks_for_a_reason_and_keeps_the_wipe_pending(client, people, manager_a):
    mine = instance_of(people.employee, device_name="Emma's iPhone")
    theirs = instance_of(people.other_employee, device_name="Other iPhone")
    client.force_login(manager_a)
    changelist = reverse("admin:apps_managedappinstance_changelist")
    listing = client.get(changelist).content.decode()
    assert "Emma&#x27;s iPhone" in listing and "Other iPhone" not in listing

    ids = [str(mine.pk), str(theirs.pk)]
    confirm = client.post(changelist, {"action": "wipe_org_data", "_selected_action": ids})
    assert confirm.status_code == 200 and confirm.context["wipeable"] == 1
    no_reason = client.post(changelist, {"action": "wipe_org_data", "_selected_action": ids, "post": "yes"})
    assert no_reason.status_code == 200 and "Write a reason before wiping" in no_reason.content.decode()
    assert not AppDataWipe.objects.exists()

    done = client.post(
        changelist,
        {"action": "wipe_org_data", "_selected_action": ids, "post": "yes", "reason": "Left the company"},
        follow=True,
    )
    assert done.status_code == 200
    wipe = AppDataWipe.objects.get()
    assert (wipe.instance, wipe.status, wipe.reason, wipe.requested_by) == (
        mine,
        WipeStatus.PENDING,
        "Left the company",
        manager_a,
    )
    assert "will be wiped from 1 app instance" in done.content.decode()
    open_wipes = client.get(changelist + "?wipe=open")
    assert list(open_wipes.context["cl"].result_list) == [mine]
    assert "Wipe pending" in open_wipes.content.decode()
    wipes = client.get(reverse("admin:apps_appdatawipe_changelist")).content.decode()
    assert "Left the company" in wipes


def test_wipe_one_instance_from_its_page(client, people):
    instance = instance_of(people.employee)
    client.force_login(people.global_admin)
    page = client.get(change_url(instance)).content.decode()
    wipe_url = reverse("admin:apps_managedappinstance_wipe", args=[instance.pk])
    assert f'href="{wipe_url}"' in page
    assert client.get(wipe_url).status_code == 200
    assert client.post(wipe_url, {"post": "yes", "reason": "Lost phone"}).status_code == 302
    assert AppDataWipe.objects.get(instance=instance).reason == "Lost phone"


def test_cancel_a_pending_wipe_but_not_a_sent_one(client, people):
    pending = app_data_wipe_request(actor=SYSTEM, instance=instance_of(people.employee), reason="Lost phone")
    sent = app_data_wipe_request(actor=SYSTEM, instance=instance_of(people.other_employee), reason="Left")
    AppDataWipe.objects.filter(pk=sent.pk).update(status=WipeStatus.SENT)
    client.force_login(people.global_admin)
    changelist = reverse("admin:apps_appdatawipe_changelist")
    response = client.post(
        changelist, {"action": "cancel_wipes", "_selected_action": [pending.pk, sent.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "Cancelled 1 wipe." in response.content.decode()
    pending.refresh_from_db()
    sent.refresh_from_db()
    assert (pending.status, sent.status) == (WipeStatus.CANCELLED, WipeStatus.SENT)


def test_read_only_cannot_wipe_or_cancel(client, people):
    instance = instance_of(people.employee)
    wipe = app_data_wipe_request(actor=SYSTEM, instance=instance, reason="Lost phone")
    client.force_login(people.read_only)
    assert (
        client.post(
            reverse("admin:apps_managedappinstance_wipe", args=[instance.pk]), {"post": "yes", "reason": "x"}
        ).status_code
        == 403
    )
    client.post(reverse("admin:apps_appdatawipe_changelist"), {"action": "cancel_wipes", "_selected_action": [wipe.pk]})
    wipe.refresh_from_db()
    assert wipe.status == WipeStatus.PENDING
    assert AppDataWipe.objects.count() == 1


def test_user_page_links_to_their_app_instances(client, people, manager_a):
    instance_of(people.employee, device_name="Emma's iPhone")
    client.force_login(manager_a)
    page = client.get(reverse("admin:core_user_change", args=[people.employee.pk])).content.decode()
    url = reverse("admin:apps_managedappinstance_changelist") + f"?user__id__exact={people.employee.pk}"
    assert 'id="app-instances-link"' in page and url.replace("&", "&amp;") in page
    listing = client.get(url)
    assert listing.status_code == 200
    assert f"App instances of {people.employee.get_full_name()}" in listing.content.decode()

    client.force_login(people.helpdesk_a)  # may see the person, not their app instances
    page = client.get(reverse("admin:core_user_change", args=[people.employee.pk])).content.decode()
    assert 'id="app-instances-link"' not in page


def test_instance_list_query_count_is_bounded(client, people, django_assert_max_num_queries):
    for n in range(3):
        instance_of(people.employee, device_name=f"Phone {n}")
    client.force_login(people.global_admin)
    url = reverse("admin:apps_managedappinstance_changelist")
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(3, 20):
        app_data_wipe_request(actor=SYSTEM, instance=instance_of(people.employee, device_name=f"Phone {n}"))
    with django_assert_max_num_queries(len(few)):
        assert client.get(url).status_code == 200


def test_retired_devices_are_not_retried(client, people):
    retired = DeviceFactory(name="OLD-PHONE", scope=people.scope_a)
    app = fanned_out(make_app("Outlook", version="4.1"), failed_on=[people.device_a, retired])
    from devices import lifecycle

    lifecycle.start_retirement(retired, actor=SYSTEM)
    assert retired.lifecycle_state == LifecycleState.RETIRING
    client.force_login(people.global_admin)
    client.post(reverse("admin:apps_app_retry", args=[app.pk]), {"post": "yes"})
    assert AppInstall.objects.get(app=app, device=people.device_a).state == InstallState.PENDING
    assert AppInstall.objects.get(app=app, device=retired).state == InstallState.FAILED
