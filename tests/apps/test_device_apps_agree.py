"""The Company Portal and the IT console tell the same story about the apps on one device.

The demo laptop's inventory listed Adobe Reader, Slack and Zoom (installed before enrolment, not by
IT): the portal called them "Installed" while the console's "Apps on <device>" listed only the apps
IT had install rows for, and nobody said Zoom 6.6.5 was older than the catalogue's 6.6.10. Both pages
now list what the device reports, say which apps IT did not install, and say "Update available".
Also: the catalogue list's order and the wording of a blocked app's counts.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.models import App, AppInstall
from apps.services import app_fanout, app_save, app_version_add
from apps.services.installs import device_apps_reconcile
from devices.choices import CommandType, Platform
from devices.models import DeviceCommand, DeviceInventory
from tests.factories import SYSTEM, DeviceFactory

pytestmark = pytest.mark.django_db

ZOOM, SLACK, MIRO, TEAMS, TORRENT = (
    "Zoom.Zoom",
    "SlackTechnologies.Slack",
    "Miro.Miro",
    "Microsoft.Teams",
    "qBittorrent.qBittorrent",
)


def store_app(name, identifier, version, *, intent=None, platform=Platform.WINDOWS) -> App:
    rows = [{"mode": "include", "target": "all_devices", "intent": intent}] if intent else []
    app = app_save(
        actor=SYSTEM,
        data={"name": name, "kind": "store", "platform": platform, "identifier": identifier},
        assignments=rows,
    )
    app_version_add(actor=SYSTEM, app=app, version=version)
    app_fanout(app.pk)  # tests do not commit: the on-commit fan-out is run here
    return App.objects.select_related("current_version").get(pk=app.pk)


def report_inventory(device, apps: list[tuple[str, str]]) -> None:
    """The device checks in with these apps installed (what the agent's inventory does)."""
    DeviceInventory.objects.update_or_create(
        device=device,
        defaults={
            "installed_apps": [{"identifier": i, "name": i, "version": v} for i, v in apps],
            "reported_at": timezone.now(),
        },
    )
    device_apps_reconcile(device)


@pytest.fixture
def laptop(people):
    """LT-45189 as in the demo: Teams required (installed), Zoom and Slack available and installed
    before enrolment (Zoom at an older version), Miro available and absent, qBittorrent blocked."""
    device = DeviceFactory(
        name="LT-45189",
        platform=Platform.WINDOWS,
        os_version="10.0.26200.7171",
        scope=people.scope_a,
        primary_user=people.employee,
    )
    report_inventory(
        device,
        [(TEAMS, "25290.205.4069.4894"), (ZOOM, "6.6.5.21887"), (SLACK, "4.47.59"), ("Git.Git", "2.51.1")],
    )
    apps = {
        "teams": store_app("Microsoft Teams", TEAMS, "25290.205.4069.4894", intent="required"),
        "zoom": store_app("Zoom Workplace", ZOOM, "6.6.10.22508", intent="available"),
        "slack": store_app("Slack", SLACK, "4.47.59", intent="available"),
        "miro": store_app("Miro", MIRO, "0.10.81", intent="available"),
        "torrent": store_app("qBittorrent", TORRENT, "5.1.2", intent="blocked"),
    }
    return device, apps


def portal_states(client, device) -> dict[str, tuple[str, str, bool]]:
    """``{app name: (status, status text, update available)}`` of the Company Portal's page."""
    response = client.get(reverse("portal:device_apps", kwargs={"uuid": device.uuid}))
    assert response.status_code == 200
    items = [*response.context["available"], *response.context["required"]]
    return {i["app"].name: (i["entry"].status, i["status_text"], i["entry"].update_available) for i in items}


def console_page(client, device):
    response = client.get(reverse("admin:apps_appinstall_device", args=[device.pk]))
    assert response.status_code == 200
    return response


def console_installed(response) -> dict[str, tuple[str, bool]]:
    """``{app name: (installed version, update available)}`` of the apps the console shows installed."""
    installed = {
        i.app.name: (i.installed_version, i.update_available)
        for i in response.context["installs"]
        if i.state == "installed"
    }
    for found in response.context["detected"]:
        installed[found["app"].name] = (found["version"], found["update_available"])
    return installed


def test_portal_and_console_agree_on_what_is_installed_and_what_is_outdated(client, people, laptop):
    device, _apps = laptop

    client.force_login(people.employee)
    portal = portal_states(client, device)
    client.force_login(people.global_admin)
    console = console_page(client, device)
    installed = console_installed(console)

    in_portal = {name for name, (status, _text, _update) in portal.items() if status == "installed"}
    assert in_portal == {"Microsoft Teams", "Zoom Workplace", "Slack"}
    assert set(installed) == in_portal  # the same apps, on both pages
    assert {name: update for name, (_s, _t, update) in portal.items() if name in in_portal} == {
        name: update for name, (_version, update) in installed.items()
    }
    assert installed["Zoom Workplace"] == ("6.6.5.21887", True)
    assert portal["Zoom Workplace"][1] == "Installed (version 6.6.5.21887). Update available: version 6.6.10.22508."
    assert portal["Slack"][1] == "Installed (version 4.47.59)."
    assert portal["Miro"][1] == "Not installed."

    html = console.content.decode()
    assert "found on the device" in html and "(not installed by IT)" in html
    assert html.count('class="update-available"') == 1  # Zoom only
    assert "Git.Git" not in html  # not a catalogue app: the device's inventory page shows it
    assert [label for _state, label, _n in console.context["counts"]] == ["Installed", "Not installed"]
    assert dict((state, n) for state, _label, n in console.context["counts"]) == {"installed": 3, "not_installed": 1}


def test_the_owner_updates_an_outdated_app_found_on_the_device(client, people, laptop):
    device, apps = laptop
    client.force_login(people.employee)
    page = client.get(reverse("portal:device_apps", kwargs={"uuid": device.uuid})).content.decode()
    assert f'action="{reverse("portal:device_app_install", args=[device.uuid, apps["zoom"].uuid])}"' in page
    assert "Update<span" in page
    # Slack is current: nothing to press (it was not installed through the portal, so no Uninstall either).
    assert reverse("portal:device_app_install", args=[device.uuid, apps["slack"].uuid]) not in page

    response = client.post(reverse("portal:device_app_install", args=[device.uuid, apps["zoom"].uuid]))
    assert response.status_code == 302
    install = AppInstall.objects.get(device=device, app=apps["zoom"])
    assert (install.state, install.desired_version) == ("pending", "6.6.10.22508")
    assert DeviceCommand.objects.filter(device=device, command_type=CommandType.INSTALL_APP).count() == 1

    client.force_login(people.global_admin)
    console = console_page(client, device)
    assert [i.app.name for i in console.context["installs"] if i.state == "pending"] == ["Zoom Workplace"]
    assert "Zoom Workplace" not in [found["app"].name for found in console.context["detected"]]


def test_the_console_device_page_reads_a_constant_number_of_queries(
    client, people, laptop, django_assert_max_num_queries
):
    device, _apps = laptop
    client.force_login(people.global_admin)
    with django_assert_max_num_queries(40) as few:
        console_page(client, device)
    for index in range(10):
        store_app(f"Tool {index}", f"Example.Tool{index}", "2.0", intent="available")
    report_inventory(device, [(ZOOM, "6.6.5.21887"), *((f"Example.Tool{index}", "1.0") for index in range(10))])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = console_page(client, device)
    assert len(response.context["detected"]) == 11


def test_the_catalogue_sorts_by_name_whatever_its_case_and_words_a_blocked_app_for_what_blocking_means(
    client, people, laptop
):
    _device, apps = laptop
    store_app("qBittorrent", TORRENT, "4.6.4", intent="blocked", platform=Platform.LINUX)
    other = DeviceFactory(platform=Platform.WINDOWS, scope=people.scope_a)
    report_inventory(other, [(TORRENT, "5.1.2")])  # found: its removal is queued
    client.force_login(people.global_admin)

    response = client.get(reverse("admin:apps_app_changelist"))
    rows = list(response.context["cl"].result_list)
    assert [(app.name, app.platform) for app in rows] == [
        ("Microsoft Teams", "windows"),
        ("Miro", "windows"),
        ("qBittorrent", "linux"),
        ("qBittorrent", "windows"),
        ("Slack", "windows"),
        ("Zoom Workplace", "windows"),
    ]
    assert [app.same_name_as_previous for app in rows] == [False, False, False, True, False, False]
    html = response.content.decode()
    start = html.index(reverse("admin:apps_app_change", args=[apps["torrent"].pk]))
    torrent_row = html[start : html.index("</tr>", start)]
    assert "Blocked on 2 devices" in torrent_row
    assert "found on 1, removal queued" in torrent_row and "absent on 1" in torrent_row
    assert "pending</a>" not in torrent_row and "not installed" not in torrent_row


# The wipe of a managed app instance needs a reason: the page says so, before and after a blank one.


def test_a_blank_wipe_reason_re_renders_with_the_error_next_to_the_field_and_wipes_nothing(client, people):
    from apps.models import AppDataWipe
    from tests.apps.test_apps_admin import instance_of

    instance = instance_of(people.employee, device_name="Emma's iPhone")
    client.force_login(people.global_admin)
    changelist = reverse("admin:apps_managedappinstance_changelist")
    chosen = {"action": "wipe_org_data", "_selected_action": [str(instance.pk)]}

    confirm = client.post(changelist, chosen).content.decode()
    assert 'class="required">Reason <span class="required-mark" aria-hidden="true">*</span>' in confirm
    assert "(required)" in confirm and "Required: say why" in confirm
    assert 'id="wipe-reason-error"' not in confirm

    for blank in ("", "   "):
        again = client.post(changelist, {**chosen, "post": "yes", "reason": blank})
        assert again.status_code == 200
        html = again.content.decode()
        assert '<ul class="errorlist" id="wipe-reason-error"><li>Write a reason before wiping' in html
        assert html.index('id="wipe-reason-error"') < html.index('id="wipe-reason"')  # next to the field
        assert 'aria-invalid="true"' in html
    single = client.post(reverse("admin:apps_managedappinstance_wipe", args=[instance.pk]), {"post": "yes"})
    assert single.status_code == 200 and "Write a reason before wiping" in single.content.decode()
    assert not AppDataWipe.objects.exists()
    instance.refresh_from_db()
    assert instance.revoked_at is None
