"""``retire`` (selective wipe) and ``wipe`` (factory reset) on the agent's side.

A simulated device removes what the portal installed, keeps the person's own apps and reports a
clean post-wipe report (or, in leftover mode, the app that "failed to uninstall"); a full wipe
leaves nothing. The Linux agent removes only what it recorded installing, only with
``--allow-changes`` (every host access goes through the injected ``which``/``run``/``remove``), and
refuses a full wipe. A device the portal answers 410 stops.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from agent.__main__ import EXIT_OK, EXIT_RETIRED, main, run_agent
from agent.executor import CommandExecutor
from agent.fleet import generate_fleet
from agent.inventory import validate_inventory
from agent.simulator import run_simulation
from agent.state import load_state
from agent.wipe import LINUX_WIPE_REFUSED, UNINSTALL_FAILURES
from tests.agent.fake_portal import TOKEN

REPORT_KEYS = {"installed_apps", "profiles", "corporate_data"}
CLEAN = {"installed_apps": [], "profiles": [], "corporate_data": {"present": False, "details": []}}


def simulated(platform: str = "ios", **state):
    device = generate_fleet(1, {platform: 1}, seed=7, install_failure_rate=0)[0]
    for name, value in state.items():
        setattr(device, name, value)
    return device


def install_app(identifier: str, name: str, version: str = "1.0") -> dict:
    payload = {"app": f"app-{identifier}", "kind": "store", "identifier": identifier, "name": name, "version": version}
    return {"id": f"install-{identifier}", "type": "install_app", "payload": payload}


def install_profile(profile: str, kind: str = "email") -> dict:
    payload = {"profile": profile, "version": 2, "identifier": f"org.mdmportal.profile.{profile}", "name": profile}
    return {"id": f"profile-{profile}", "type": "install_profile", "payload": {**payload, "kind": kind}}


def managed_device(platform: str = "ios", **state):
    """A device with its own apps plus two the portal installed and two profiles."""
    device = simulated(platform, **state)
    device.free_storage_mb = device.total_storage_mb  # room for the installs
    for command in (
        install_app("com.example.crm", "CRM", "4.2"),
        install_app("com.example.expenses", "Expenses", "2.0"),
        install_profile("mail", "email"),
        install_profile("wifi", "wifi"),
    ):
        assert device.execute(command)["status"] == "acknowledged"
    return device


RETIRE = {"id": "r1", "type": "retire", "payload": {}}


# -- the simulator --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["ios", "android", "windows", "macos"])
def test_retire_removes_what_the_portal_installed_and_keeps_personal_apps(platform):
    device = managed_device(platform)
    personal = [dict(app) for app in device.installed_apps if app["identifier"] not in device.managed_apps]
    assert personal and device.profiles

    result = device.execute(RETIRE)

    assert result == {"id": "r1", "status": "acknowledged", "data": CLEAN}
    assert device.installed_apps == personal  # the person's own apps, untouched
    assert device.profiles == {} and device.managed_apps == set()
    assert device.wiped == "retire"
    inventory = device.inventory()
    assert validate_inventory(inventory) == [] and "profiles" not in inventory


def test_retire_in_leftover_mode_reports_the_app_that_failed_to_uninstall():
    device = managed_device("android", retire_leftover_rate=1.0)

    result = device.execute(RETIRE)

    assert result["status"] == "acknowledged"
    data = result["data"]
    assert set(data) == REPORT_KEYS
    assert data["installed_apps"] == [{"identifier": "com.example.crm", "name": "CRM", "version": "4.2"}]
    assert data["profiles"] == []
    assert data["corporate_data"]["present"] is True
    (detail,) = data["corporate_data"]["details"]
    assert "CRM" in detail and UNINSTALL_FAILURES["android"] in detail
    assert "com.example.crm" in {app["identifier"] for app in device.installed_apps}
    assert "com.example.expenses" not in {app["identifier"] for app in device.installed_apps}


def test_retire_in_leftover_mode_without_managed_apps_leaves_a_profile():
    device = simulated("ios", retire_leftover_rate=1.0)
    device.execute(install_profile("mail"))

    data = device.execute(RETIRE)["data"]

    assert data["profiles"] == [{"identifier": "org.mdmportal.profile.mail", "version": 2}]
    assert data["corporate_data"]["present"] is True


def test_an_app_the_portal_lists_as_managed_is_removed_too():
    device = simulated("android")
    own = device.installed_apps[0]["identifier"]
    listed = {"id": "r1", "type": "retire", "payload": {"request": "req-1", "apps": [own]}}

    assert device.execute(listed)["data"] == CLEAN
    assert own not in {app["identifier"] for app in device.installed_apps}


def test_an_app_removed_through_remove_app_is_not_managed_any_more():
    device = managed_device("ios")
    device.execute({"id": "x", "type": "remove_app", "payload": {"identifier": "com.example.crm", "kind": "store"}})

    assert device.managed_apps == {"com.example.expenses"}


@pytest.mark.parametrize("keep", [False, True])
def test_a_full_wipe_leaves_nothing(keep):
    device = managed_device("android")
    assert device.installed_apps

    result = device.execute({"id": "w1", "type": "wipe", "payload": {"keep_enrollment": keep}})

    assert result == {"id": "w1", "status": "acknowledged", "data": CLEAN}
    assert device.installed_apps == [] and device.profiles == {} and device.managed_apps == set()
    assert device.passcode_set is False
    assert device.wiped == ("wipe (keeping enrolment)" if keep else "wipe")


def test_a_wipe_with_a_wrong_keep_enrollment_is_an_error_and_wipes_nothing():
    device = managed_device("ios")
    apps = [dict(app) for app in device.installed_apps]

    result = device.execute({"id": "w1", "type": "wipe", "payload": {"keep_enrollment": "yes"}})

    assert result["status"] == "error" and "keep_enrollment" in result["error"]
    assert device.installed_apps == apps and device.wiped == ""


def test_a_simulated_device_reports_the_wipe_then_stops_and_a_410_stops_another(portal):
    seen = threading.Event()
    ids: dict[str, str] = {}

    def queue_commands():
        while len(portal.devices) < 3:
            threading.Event().wait(0.01)
        wiped, retired, wiped_fully = list(portal.devices)
        ids.update(
            retire=portal.queue(wiped, "retire"),
            wipe=portal.queue(wiped_fully, "wipe", {"keep_enrollment": True}),
            after=portal.queue(wiped, "sync"),
        )
        ids.update(wiped=wiped, retired=retired, wiped_fully=wiped_fully)
        portal.retire(retired)
        seen.set()

    helper = threading.Thread(target=queue_commands, daemon=True)
    helper.start()
    lines: list[str] = []

    report = run_simulation(
        portal.url,
        TOKEN,
        3,
        platform_mix={"ios": 1},
        duration=1.5,
        interval=0.1,
        concurrency=2,
        seed=4,
        log=lines.append,
    )

    helper.join(timeout=5)
    assert seen.is_set()
    assert report.wiped == 2 and report.retired == 1
    assert report.errors_by_code == {"device_retired": 1}
    wiped = portal.devices[ids["wiped"]]
    (result,) = [r for r in wiped.results if r["id"] == ids["retire"]]
    assert result["status"] == "acknowledged" and set(result["data"]) == REPORT_KEYS
    assert result["data"]["corporate_data"] == {"present": False, "details": []}
    # It stopped checking in once the wipe was reported: the sync queued after it never ran.
    assert [r["id"] for r in wiped.results] == [ids["retire"]]
    assert report.duration_seconds < 1.5  # no device was left checking in, so the run ended early
    (full,) = portal.devices[ids["wiped_fully"]].results
    assert full["status"] == "acknowledged" and full["data"]["installed_apps"] == []
    assert any("retired (selective wipe)" in line for line in lines)
    assert any("keeping its enrolment" in line for line in lines)
    assert "wiped:             2 (retire or wipe reported)" in report.summary()


def test_the_simulator_refuses_a_leftover_rate_that_is_not_a_chance(portal):
    with pytest.raises(ValueError, match="leftover"):
        run_simulation(portal.url, TOKEN, 1, duration=0, retire_leftover_rate=1.5)


def test_the_cli_takes_the_retire_leftover_rate(portal, capsys):
    args = ["simulate", "--server", portal.url, "--token", TOKEN, "--devices", "2", "--duration", "0"]
    status = main([*args, "--retire-leftover-rate", "0.5", "--json"])

    assert status == EXIT_OK
    assert json.loads(capsys.readouterr().out)["wiped"] == 0


# -- the Linux agent ------------------------------------------------------------------------------

NM_FILE = "/etc/NetworkManager/system-connections/mdm-office.nmconnection"
CRT_FILE = "/usr/local/share/ca-certificates/mdm-root.crt"
PROFILES = {
    "p-wifi": {
        "identifier": "org.mdmportal.profile.p-wifi",
        "version": 3,
        "name": "Office Wi-Fi",
        "files": [NM_FILE],
        "reload": [["nmcli", "connection", "reload"]],
    },
    "p-ca": {
        "identifier": "org.mdmportal.profile.p-ca",
        "version": 1,
        "name": "Root CA",
        "files": [CRT_FILE],
        "reload": [["update-ca-certificates"]],
    },
    "p-check": {"identifier": "org.mdmportal.profile.p-check", "version": 1, "name": "Encryption", "files": []},
}
APPS = {"example-vpn-helper": {"name": "VPN helper", "version": "1.4.2", "kind": "lob"}}


class FakeHost:
    """Installed packages and tools; records every run and removal (nothing touches the real host)."""

    def __init__(self, packages=("example-vpn-helper", "firefox"), fail=()):
        self.tools = {"nmcli", "update-ca-certificates", "dpkg", "dpkg-query", "apt-get"}
        self.packages = {name: "1.4.2" for name in packages}
        self.fail = set(fail)  # packages dpkg cannot remove
        self.ran: list[list[str]] = []
        self.removed: list[Path] = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.tools else None

    def run(self, argv):
        self.ran.append(argv)
        tool, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        if tool == "dpkg-query":
            package = args[-1]
            if package not in self.packages:
                return 1, f"dpkg-query: no packages found matching {package}"
            return 0, f"{self.packages[package]} ii " if "${Version}" in args[2] else "ii "
        if tool == "dpkg" and args[0] == "-r":
            if args[1] in self.fail:
                return 1, "subprocess pre-removal script returned error exit status 1"
            self.packages.pop(args[1], None)
        return 0, ""

    def remove(self, path):
        self.removed.append(path)

    def changes(self):
        return [argv for argv in self.ran if "dpkg-query" not in argv[0]] + self.removed


def linux_executor(host: FakeHost, tmp_path: Path, *, allow_changes: bool) -> CommandExecutor:
    (tmp_path / "profiles.json").write_text(json.dumps(PROFILES))
    (tmp_path / "apps.json").write_text(json.dumps({"apps": APPS}))
    return CommandExecutor(
        allow_changes=allow_changes,
        which=host.which,
        run=host.run,
        write=lambda *args: pytest.fail("retire never writes a host file"),
        remove=host.remove,
        profiles_path=tmp_path / "profiles.json",
        apps_path=tmp_path / "apps.json",
    )


def test_without_allow_changes_retire_lists_exactly_what_it_would_remove_and_changes_nothing(tmp_path):
    host = FakeHost()

    result = linux_executor(host, tmp_path, allow_changes=False).execute(RETIRE)

    assert result["status"] == "error" and "--allow-changes" in result["error"]
    for step in (
        f"remove {NM_FILE}",
        f"remove {CRT_FILE}",
        "run nmcli connection reload",
        "run update-ca-certificates",
        "run dpkg -r example-vpn-helper",
    ):
        assert step in result["error"]
    assert "firefox" not in result["error"]  # a package the portal did not install is never touched
    assert host.changes() == []
    assert json.loads((tmp_path / "profiles.json").read_text()) == PROFILES  # the records are kept


def test_with_allow_changes_retire_removes_only_the_recorded_items(tmp_path):
    host = FakeHost()
    agent = linux_executor(host, tmp_path, allow_changes=True)

    result = agent.execute(RETIRE)

    assert result == {"id": "r1", "status": "acknowledged", "data": CLEAN}
    assert sorted(map(str, host.removed)) == sorted([NM_FILE, CRT_FILE])
    runs = [argv for argv in host.ran if "dpkg-query" not in argv[0]]
    assert runs == [
        ["/usr/bin/nmcli", "connection", "reload"],
        ["/usr/bin/update-ca-certificates"],
        ["/usr/bin/dpkg", "-r", "example-vpn-helper"],
    ]  # argv lists, never a shell line
    assert "firefox" in host.packages and "example-vpn-helper" not in host.packages
    assert json.loads((tmp_path / "profiles.json").read_text()) == {}
    assert json.loads((tmp_path / "apps.json").read_text()) == {"apps": {}}
    assert agent.inventory() == {"installed_apps": []}


def test_a_package_that_cannot_be_removed_is_reported_still_there(tmp_path):
    host = FakeHost(fail={"example-vpn-helper"})

    result = linux_executor(host, tmp_path, allow_changes=True).execute(RETIRE)

    assert result["status"] == "acknowledged"
    data = result["data"]
    assert data["installed_apps"] == [{"identifier": "example-vpn-helper", "name": "VPN helper", "version": "1.4.2"}]
    assert data["profiles"] == [] and data["corporate_data"]["present"] is True
    assert "example-vpn-helper" in data["corporate_data"]["details"][0]


def test_a_file_that_cannot_be_deleted_keeps_its_profile_in_the_report(tmp_path):
    host = FakeHost()

    def remove(path):
        if str(path) == NM_FILE:
            raise PermissionError(13, "Permission denied")
        host.removed.append(path)

    agent = linux_executor(host, tmp_path, allow_changes=True)
    agent.remove = remove

    data = agent.execute(RETIRE)["data"]

    assert data["profiles"] == [{"identifier": "org.mdmportal.profile.p-wifi", "version": 3}]
    assert data["corporate_data"]["present"] is True and NM_FILE in data["corporate_data"]["details"][0]


def test_retire_with_nothing_recorded_is_clean_even_without_allow_changes():
    host = FakeHost()
    agent = CommandExecutor(allow_changes=False, which=host.which, run=host.run, remove=host.remove)

    assert agent.execute(RETIRE) == {"id": "r1", "status": "acknowledged", "data": CLEAN}
    assert host.changes() == []


@pytest.mark.parametrize("allow_changes", [False, True])
def test_a_full_wipe_is_refused_on_linux(tmp_path, allow_changes):
    host = FakeHost()
    command = {"id": "w1", "type": "wipe", "payload": {"keep_enrollment": False}}

    result = linux_executor(host, tmp_path, allow_changes=allow_changes).execute(command)

    assert result == {"id": "w1", "status": "error", "error": LINUX_WIPE_REFUSED}
    assert host.changes() == []


def test_the_linux_agent_reports_its_retire_then_stops_at_the_410(portal, tmp_path):
    state_path = tmp_path / "agent" / "state.json"
    assert main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(state_path)]) == EXIT_OK
    state = load_state(state_path)
    device = portal.devices[state.device_id]
    retire = portal.queue(device.device_id, "retire")
    host = FakeHost(packages=())
    agent = CommandExecutor(allow_changes=False, which=host.which, run=host.run, remove=host.remove)

    assert run_agent(state, state_path, once=True, collect=dict, executor=agent) == EXIT_OK
    assert device.results == [{"id": retire, "status": "acknowledged", "data": CLEAN}]

    portal.retire(device.device_id)  # the portal unenrols it once the wipe is verified
    assert run_agent(state, state_path, once=True, collect=dict, executor=agent) == EXIT_RETIRED
    assert not state_path.exists()
