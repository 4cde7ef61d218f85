"""Company Portal: the app catalog of my device, Install and Uninstall, progress until the device reports.

The device is a simulated Windows laptop (``agent.fleet``) talking to the real agent endpoints
through the test client: it enrols with a token that makes the employee its primary user, checks
in, runs the commands it gets and reports their results and its new inventory, as the real agent
and the simulator do.
"""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils.html import escape

from agent.fleet import generate_fleet
from apps.models import App, AppInstall
from apps.services import app_save, app_version_add
from devices.choices import CommandType
from devices.models import Device, DeviceCommand
from devices.services.enrollment import enrollment_profile_create
from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, StaffFactory

pytestmark = pytest.mark.django_db

ZOOM, TEAMS, TORRENT, SLACK = "Zoom.Zoom", "Microsoft.Teams", "qBittorrent.qBittorrent", "SlackTechnologies.Slack"


def store_app(name, identifier, version, *, publisher="", description="", platform="windows", assignments=()):
    app = app_save(
        actor=SYSTEM,
        data={
            "name": name,
            "publisher": publisher,
            "description": description,
            "kind": "store",
            "platform": platform,
            "identifier": identifier,
        },
        assignments=list(assignments),
    )
    app_version_add(actor=SYSTEM, app=app, version=version)
    return App.objects.select_related("current_version").get(pk=app.pk)


@pytest.fixture
def catalog(people):
    everyone = core_services.user_group_save(
        actor=SYSTEM, name="All employees", members=[people.employee, people.other_employee]
    )
    to_everyone = {"target": "user_group", "user_group": everyone}
    return {
        "zoom": store_app(
            "Zoom Workplace",
            ZOOM,
            "6.6.10.22508",
            publisher="Zoom Video Communications",
            description="Video meetings, chat and phone.",
            assignments=[{**to_everyone, "intent": "available"}],
        ),
        "teams": store_app(
            "Microsoft Teams", TEAMS, "25290.205.4069.4894", assignments=[{**to_everyone, "intent": "required"}]
        ),
        "torrent": store_app("qBittorrent", TORRENT, "5.1.2", assignments=[{**to_everyone, "intent": "blocked"}]),
        "slack": store_app("Slack", SLACK, "4.47.59"),  # in the catalog, offered to nobody
    }


class Laptop:
    """The employee's simulated Windows laptop on the agent endpoints."""

    def __init__(self, client, token: str):
        self.client = client
        self.sim = generate_fleet(1, {"windows": 1}, seed=7, install_failure_rate=0)[0]
        self.sim.installed_apps = [
            app for app in self.sim.installed_apps if app["identifier"] not in (ZOOM, TEAMS, TORRENT, SLACK)
        ]
        body = {
            "enrollment_token": token,
            "device": self.sim.identity(),
            "transport": "over_the_air",
            "inventory": self.sim.inventory(),
        }
        response = client.post("/agent/v1/enroll", json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
        self.secret = response.json()["device_secret"]
        self.device = Device.objects.get(uuid=response.json()["device_id"])
        self.run(response.json()["commands"])

    def post(self, path, body):
        response = self.client.post(
            f"/agent/v1/{path}",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {self.secret}",
        )
        assert response.status_code == 200, response.content
        return response.json()

    def check_in(self) -> list[dict]:
        """Check in, run the commands, report the results; the commands it ran."""
        return self.run(self.post("checkin", {"inventory": self.sim.inventory()})["commands"])

    def run(self, commands: list[dict]) -> list[dict]:
        results = [self.sim.execute(command) for command in commands]
        if results:
            self.post("commands/results", {"results": results})
        return commands

    def installed(self) -> set[str]:
        return {app["identifier"] for app in self.sim.installed_apps}


@pytest.fixture
def laptop(client, people, catalog):
    manager = StaffFactory(username="enrolment-manager")
    _, token = enrollment_profile_create(
        actor=SYSTEM,
        name="Emma's laptop",
        enrollment_manager=manager,
        scope=people.scope_a,
        primary_user=people.employee,
    )
    return Laptop(client, token)


def catalog_page(client, device):
    return client.get(reverse("portal:device_apps", kwargs={"uuid": device.uuid}))


def status(client, device):
    response = client.get(reverse("portal:device_apps_status", kwargs={"uuid": device.uuid}))
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store, private"
    return {app["id"]: app for app in response.json()["apps"]}, response.json()["busy"]


def install_url(device, app, action="install"):
    return reverse(f"portal:device_app_{action}", kwargs={"uuid": device.uuid, "app": app.uuid})


def test_the_catalog_offers_available_and_required_apps_of_my_device_only(client, people, laptop, catalog):
    client.force_login(people.employee)

    response = catalog_page(client, laptop.device)

    assert response.status_code == 200
    content = response.content.decode()
    assert [item["app"].name for item in response.context["available"]] == ["Zoom Workplace"]
    assert [item["app"].name for item in response.context["required"]] == ["Microsoft Teams"]
    assert "qBittorrent" not in content and "Slack" not in content  # blocked, and offered to nobody
    assert "Zoom Video Communications" in content and "Video meetings, chat and phone." in content
    assert "Version 6.6.10.22508" in content
    assert f'action="{install_url(laptop.device, catalog["zoom"])}"' in content
    assert "Required by your organisation" in content
    # A required app is neither installed nor removed from here.
    assert install_url(laptop.device, catalog["teams"]) not in content
    assert install_url(laptop.device, catalog["teams"], "uninstall") not in content
    assert "csrfmiddlewaretoken" in content
    assert 'class="app-icon tile' in content  # no icon uploaded: a letter tile


def test_install_over_http_until_the_device_reports_it_installed(client, people, laptop, catalog):
    zoom, device = catalog["zoom"], laptop.device
    # The required Teams arrived on its own with the enrolment.
    assert TEAMS in laptop.installed() and ZOOM not in laptop.installed()
    laptop.check_in()
    client.force_login(people.employee)

    response = client.post(install_url(device, zoom))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('portal:device_apps', kwargs={'uuid': device.uuid})}#app-{zoom.uuid}"
    install = AppInstall.objects.get(device=device, app=zoom)
    assert install.state == "pending" and install.requested_by_user
    assert AuditEvent.objects.filter(verb="app.install_request", actor_user=people.employee).exists()
    page = catalog_page(client, device).content.decode()
    assert "Installing… waiting for your Windows PC to check in." in page
    assert "will be installed the next time your Windows PC checks in" in page
    assert 'data-status-url="' in page  # the page polls until the device reports
    apps, busy = status(client, device)
    assert busy is True and apps[str(zoom.uuid)]["status"] == "installing"

    commands = laptop.check_in()

    assert [c["type"] for c in commands] == [CommandType.INSTALL_APP]
    assert commands[0]["payload"]["identifier"] == ZOOM and commands[0]["payload"]["version"] == "6.6.10.22508"
    assert ZOOM in laptop.installed()
    laptop.check_in()  # the next inventory lists it
    apps, busy = status(client, device)
    assert busy is False
    assert apps[str(zoom.uuid)] == {
        "id": str(zoom.uuid),
        "status": "installed",
        "busy": False,
        "text": "Installed (version 6.6.10.22508).",
        "version": "6.6.10.22508",
    }
    page = client.get(f"{reverse('portal:device_apps', kwargs={'uuid': device.uuid})}?updated={zoom.uuid}")
    content = page.content.decode()
    assert "Installed (version 6.6.10.22508)." in content and "just-updated" in content
    assert 'data-status-url="' not in content
    assert f'action="{install_url(device, zoom, "uninstall")}"' in content


def test_uninstall_over_http_until_the_device_reports_it_gone(client, people, laptop, catalog):
    zoom, device = catalog["zoom"], laptop.device
    client.force_login(people.employee)
    client.post(install_url(device, zoom))
    laptop.check_in()
    laptop.check_in()

    response = client.post(install_url(device, zoom, "uninstall"))

    assert response.status_code == 302
    assert "Uninstalling… waiting for your Windows PC to check in." in catalog_page(client, device).content.decode()
    commands = laptop.check_in()
    assert [c["type"] for c in commands] == [CommandType.REMOVE_APP]
    assert ZOOM not in laptop.installed()
    laptop.check_in()
    apps, busy = status(client, device)
    assert busy is False and apps[str(zoom.uuid)]["status"] == "not_installed"
    assert f'action="{install_url(device, zoom)}"' in catalog_page(client, device).content.decode()


def test_a_failed_install_shows_the_devices_reason_and_can_be_tried_again(client, people, laptop, catalog):
    zoom, device = catalog["zoom"], laptop.device
    client.force_login(people.employee)
    client.post(install_url(device, zoom))
    laptop.sim.install_failure_rate = 1.0

    laptop.check_in()

    content = catalog_page(client, device).content.decode()
    reason = AppInstall.objects.get(device=device, app=zoom).reason
    assert reason and escape(f"Could not be installed: {reason}") in content
    assert ">Try again<" in content
    laptop.sim.install_failure_rate = 0
    client.post(install_url(device, zoom))
    assert [c["type"] for c in laptop.check_in()] == [CommandType.INSTALL_APP]
    assert ZOOM in laptop.installed()


def test_another_employee_gets_a_404_and_changes_nothing(client, people, laptop, catalog):
    client.force_login(people.other_employee)
    zoom, device = catalog["zoom"], laptop.device

    assert catalog_page(client, device).status_code == 404
    assert client.get(reverse("portal:device_apps_status", kwargs={"uuid": device.uuid})).status_code == 404
    assert client.post(install_url(device, zoom)).status_code == 404
    assert client.post(install_url(device, zoom, "uninstall")).status_code == 404
    assert not AppInstall.objects.filter(device=device, app=zoom).exists()
    assert not DeviceCommand.objects.filter(
        device=device, command_type=CommandType.INSTALL_APP, subject__contains="Zoom"
    )


def test_an_app_that_is_not_offered_on_my_device_is_refused(client, people, laptop, catalog):
    client.force_login(people.employee)
    device = laptop.device
    ios_app = store_app("Zoom for iPhone", "us.zoom.videomeetings", "6.6.10", platform="ios")

    for app in (catalog["slack"], catalog["torrent"], ios_app):
        assert client.post(install_url(device, app)).status_code == 404, app.name
        assert not AppInstall.objects.filter(device=device, app=app, requested_by_user=True).exists()

    # A required app is installed by IT; the service says so and nothing is queued.
    before = DeviceCommand.objects.filter(device=device).count()
    response = client.post(install_url(device, catalog["teams"]), follow=True)
    assert "Microsoft Teams is required on" in response.content.decode()
    response = client.post(install_url(device, catalog["teams"], "uninstall"), follow=True)
    assert "Microsoft Teams is required on" in response.content.decode()
    assert DeviceCommand.objects.filter(device=device).count() == before


def test_install_and_uninstall_are_post_only(client, people, laptop, catalog):
    client.force_login(people.employee)
    for action in ("install", "uninstall"):
        assert client.get(install_url(laptop.device, catalog["zoom"], action)).status_code == 405


def test_the_device_page_links_to_the_catalog_and_an_unenrolled_device_has_none(client, people, laptop):
    client.force_login(people.employee)
    catalog_url = reverse("portal:device_apps", kwargs={"uuid": laptop.device.uuid})
    assert (
        catalog_url in client.get(reverse("portal:device_detail", kwargs={"uuid": laptop.device.uuid})).content.decode()
    )

    pending = DeviceFactory(scope=people.scope_a, primary_user=people.employee, state="pending", platform="windows")
    response = catalog_page(client, pending)
    assert response.status_code == 200
    assert "is not enrolled, so no apps can be installed on it" in response.content.decode()


def test_an_app_installed_another_way_shows_as_installed(client, people, laptop, catalog):
    laptop.sim.installed_apps.append({"identifier": ZOOM, "name": "Zoom Workplace", "version": "6.6.5.21887"})
    laptop.check_in()
    client.force_login(people.employee)

    apps, _ = status(client, laptop.device)

    assert apps[str(catalog["zoom"].uuid)]["text"] == (
        "Installed (version 6.6.5.21887). Update available: version 6.6.10.22508."
    )


def test_the_catalog_reads_a_constant_number_of_queries(client, people, laptop, catalog, django_assert_max_num_queries):
    everyone = catalog["zoom"].assignments.first().user_group
    for index in range(12):
        store_app(f"Tool {index}", f"Example.Tool{index}", "1.0", assignments=[
            {"target": "user_group", "user_group": everyone, "intent": "available"}
        ])  # fmt: skip
    client.force_login(people.employee)
    with django_assert_max_num_queries(14):
        response = catalog_page(client, laptop.device)
    assert len(response.context["available"]) == 13
    with django_assert_max_num_queries(12):
        status(client, laptop.device)
