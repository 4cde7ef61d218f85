"""Configuration profiles on the agent's side: the simulator applies them, the Linux agent installs them safely.

The simulator's devices behave as their users would (a passcode profile gets a passcode that meets
it) and report what they hold; ``--drift`` makes a chosen device drift on cue. The Linux executor
never touches the host without ``--allow-changes`` (every host access goes through the injected
``which``/``run``/``write``/``remove``, so the tests see all of it).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from agent.__main__ import EXIT_OK, EXIT_USAGE, main, run_agent
from agent.executor import CommandExecutor
from agent.fleet import PASSCODE_RANK, PlannedDrift, generate_fleet, parse_drift, plan_drift
from agent.inventory import validate_inventory
from agent.simulator import run_simulation
from agent.state import AgentState
from tests.agent.fake_portal import TOKEN

PROFILE = "5b0c8f0e-6f0c-4d3b-9a57-0f2f7c1d9e21"
IDENTIFIER = f"org.mdmportal.profile.{PROFILE}"
PSK = "correct horse battery staple"
NM_FILE = "4f7d3c1e-0000-5000-8000-000000000001.nmconnection"
CRT_FILE = "4f7d3c1e-0000-5000-8000-000000000002.crt"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def install(kind: str, settings: dict, *, version: int = 1, profile: str = PROFILE, **extra) -> dict:
    """An ``install_profile`` command as the portal sends it (the native content left out)."""
    payload = {
        "profile": profile,
        "version": version,
        "identifier": f"org.mdmportal.profile.{profile}",
        "name": f"{kind.title()} profile",
        "kind": kind,
        "format": "syncml",
        "content": "<SyncBody/>",
        "settings": settings,
        "not_applicable": [],
        **extra,
    }
    return {"id": f"install-{kind}-{version}", "type": "install_profile", "payload": payload}


def device_of(platform: str, seed: int = 7, **state):
    device = next(d for d in generate_fleet(60, {platform: 1}, seed=seed) if d.passcode_set is not False)
    for name, value in state.items():
        setattr(device, name, value)
    return device


# -- the simulator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["ios", "android", "windows", "macos"])
def test_a_passcode_profile_makes_the_next_inventory_meet_it(platform):
    device = device_of(platform, passcode_set=False, passcode_quality="none", passcode_length=0, encrypted=False)

    result = device.execute(install("passcode", {"require_passcode": True, "min_length": 10, "complexity": "complex"}))

    assert result == {"id": "install-passcode-1", "status": "acknowledged", "data": {}}
    inventory = device.inventory()
    assert inventory["passcode_set"] is True
    assert inventory["passcode_length"] >= 10
    assert PASSCODE_RANK[inventory["passcode_quality"]] >= PASSCODE_RANK["complex"]
    assert inventory["profiles"] == [{"identifier": IDENTIFIER, "version": 1}]
    assert validate_inventory(inventory) == []
    # An iPhone encrypts its data once it has a passcode (Data Protection).
    assert inventory["encrypted"] is (platform == "ios")


def test_a_passcode_that_already_meets_the_profile_is_kept():
    device = device_of("android", passcode_set=True, passcode_quality="alphanumeric", passcode_length=12)

    device.execute(install("passcode", {"min_length": 6, "complexity": "numeric"}))

    assert (device.passcode_quality, device.passcode_length) == ("alphanumeric", 12)


def test_settings_the_platform_cannot_express_are_ignored():
    device = device_of("android", passcode_set=True, passcode_quality="numeric", passcode_length=4)
    command = install(
        "passcode",
        {"min_length": 12},
        not_applicable=[{"setting": "min_length", "reason": "Not on this platform."}],
    )

    assert device.execute(command)["status"] == "acknowledged"
    assert device.passcode_length == 4


@pytest.mark.parametrize(
    ("platform", "passcode_set", "encrypted_after"),
    [
        ("windows", True, True),
        ("macos", True, True),
        ("android", True, True),
        ("ios", True, True),
        ("ios", False, False),
    ],
)
def test_an_encryption_profile_turns_encryption_on_except_an_iphone_without_a_passcode(
    platform, passcode_set, encrypted_after
):
    device = device_of(platform, encrypted=False, passcode_set=passcode_set)

    result = device.execute(install("encryption", {"require_encryption": True, "escrow_recovery_key": True}))

    assert result["status"] == "acknowledged"
    assert device.inventory()["encrypted"] is encrypted_after


def test_a_simulated_linux_host_cannot_encrypt_its_installed_root_disk():
    device = next(d for d in generate_fleet(40, {"linux": 1}, seed=3) if not d.encrypted)

    result = device.execute(install("encryption", {"require_encryption": True}))

    assert result["status"] == "error" and "reinstalled with encryption" in result["error"]
    assert "profiles" not in device.inventory()


def test_profiles_are_recorded_updated_and_removed():
    device = device_of("windows")
    other = "7d3c1e4f-1111-4222-8333-944455566677"

    device.execute(install("restrictions", {"allow_camera": False}))
    device.execute(install("wifi", {"ssid": "Office"}, profile=other))
    device.execute(install("restrictions", {"allow_camera": True}, version=2))

    assert device.inventory()["profiles"] == sorted(
        [{"identifier": IDENTIFIER, "version": 2}, {"identifier": f"org.mdmportal.profile.{other}", "version": 1}],
        key=lambda p: p["identifier"],
    )
    removal = {"id": "r1", "type": "remove_profile", "payload": {"profile": PROFILE, "identifier": IDENTIFIER}}
    assert device.execute(removal)["status"] == "acknowledged"
    assert device.execute(removal)["status"] == "acknowledged"  # idempotent
    assert device.inventory()["profiles"] == [{"identifier": f"org.mdmportal.profile.{other}", "version": 1}]


def test_a_profile_the_portal_could_not_build_is_an_error():
    device = device_of("windows")

    result = device.execute({"id": "c1", "type": "install_profile", "payload": {"profile": PROFILE, "error": "gone"}})

    assert result == {"id": "c1", "status": "error", "error": "The portal could not build this profile: gone"}


def test_notifications_are_recorded():
    device = device_of("android")

    shown = device.execute({"id": "n1", "type": "notify", "payload": {"title": "IT", "message": "Turn encryption on."}})
    empty = device.execute({"id": "n2", "type": "notify", "payload": {"title": "IT"}})

    assert shown["status"] == "acknowledged" and empty["status"] == "error"
    assert device.notifications == [{"title": "IT", "message": "Turn encryption on."}]


# -- planned drift ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("encryption_off", PlannedDrift("encryption_off", "0", 1)),
        ("3:passcode_removed", PlannedDrift("passcode_removed", "3", 1)),
        ("windows:encryption_off@4", PlannedDrift("encryption_off", "windows", 4)),
        (" Encryption_Off@2 ", PlannedDrift("encryption_off", "0", 2)),
    ],
)
def test_drift_specs_parse(text, expected):
    assert parse_drift(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("melt", "not a drift event"),
        ("phone:encryption_off", "neither a device number nor a platform"),
        ("encryption_off@0", "check-in 1"),
        ("encryption off", "not a drift"),
    ],
)
def test_wrong_drift_specs_say_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_drift(text)


def test_planned_drift_happens_at_its_check_in_only():
    fleet = generate_fleet(10, {"windows": 1, "linux": 1}, seed=2)
    windows = next(d for d in fleet if d.platform == "windows")
    windows.encrypted = True
    plan_drift(fleet, [parse_drift("windows:encryption_off@2")])

    assert windows.planned_drift() == [] and windows.encrypted is True  # check-in 1
    windows.checkins = 1
    assert windows.planned_drift() == ["encryption_off"] and windows.inventory()["encrypted"] is False
    windows.checkins = 2
    assert windows.planned_drift() == []


def test_a_drift_that_cannot_happen_is_refused_before_the_run():
    fleet = generate_fleet(4, {"linux": 1}, seed=2)

    with pytest.raises(ValueError, match="devices 0 to 3 only"):
        plan_drift(fleet, [parse_drift("9:encryption_off")])
    with pytest.raises(ValueError, match="no iOS device"):
        plan_drift(fleet, [parse_drift("ios:encryption_off")])
    with pytest.raises(ValueError, match="cannot report 'passcode_removed'"):
        plan_drift(fleet, [parse_drift("0:passcode_removed")])


def test_the_cli_refuses_a_wrong_drift(capsys):
    status = main(["simulate", "--server", "http://127.0.0.1:9", "--token", TOKEN, "--devices", "1", "--drift", "x"])

    assert status == EXIT_USAGE
    assert "not a drift event" in capsys.readouterr().err


def test_a_simulated_device_gets_a_profile_then_drifts_on_cue(portal):
    """Against a portal: the encryption profile turns BitLocker on, the planned drift turns it off."""

    def queue_profile():
        while not portal.devices:
            threading.Event().wait(0.005)
        portal.queue(
            next(iter(portal.devices)),
            "install_profile",
            install("encryption", {"require_encryption": True})["payload"],
        )

    helper = threading.Thread(target=queue_profile, daemon=True)
    helper.start()
    lines: list[str] = []

    report = run_simulation(
        portal.url,
        TOKEN,
        1,
        platform_mix={"windows": 1},
        duration=1.2,
        interval=0.05,
        concurrency=1,
        seed=4,
        drift_rate=0,
        drift=[parse_drift("encryption_off@12")],
        log=lines.append,
    )

    helper.join(timeout=5)
    assert report.commands_by_type.get("install_profile") == 1
    inventories = next(iter(portal.devices.values())).inventories
    assert len(inventories) > 12
    installed = [i for i in inventories if i.get("profiles")]
    assert installed and installed[0]["encrypted"] is True
    assert installed[0]["profiles"] == [{"identifier": IDENTIFIER, "version": 1}]
    assert inventories[12]["encrypted"] is False and inventories[-1]["encrypted"] is False
    assert any("encryption off, as planned" in line for line in lines)


# -- the Linux agent -------------------------------------------------------------------------------


class FakeHost:
    """Every way the executor can touch the host, recorded. ``tools`` are the installed executables."""

    def __init__(self, tools=("nmcli", "update-ca-certificates"), encrypted=True):
        self.tools = set(tools)
        self.encrypted = encrypted
        self.ran: list[list[str]] = []
        self.written: dict[Path, tuple[str, int]] = {}
        self.removed: list[Path] = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.tools else None

    def run(self, argv):
        self.ran.append(argv)
        return 0, ""

    def write(self, path, content, mode):
        self.written[path] = (content, mode)

    def remove(self, path):
        self.removed.append(path)

    def touched(self) -> bool:
        return bool(self.ran or self.written or self.removed)


def linux_executor(host: FakeHost, *, allow_changes: bool, profiles_path: Path | None = None) -> CommandExecutor:
    return CommandExecutor(
        allow_changes=allow_changes,
        which=host.which,
        run=host.run,
        write=host.write,
        remove=host.remove,
        encrypted=lambda: host.encrypted,
        profiles_path=profiles_path,
    )


def linux_install(kind: str, actions: list[dict], *, version: int = 1) -> dict:
    payload = {
        "profile": PROFILE,
        "version": version,
        "identifier": IDENTIFIER,
        "name": "Office Wi-Fi" if kind == "wifi" else f"{kind} profile",
        "kind": kind,
        "format": "linux-agent-profile",
        "content": {
            "schema": 1,
            "profile": {"uuid": PROFILE, "identifier": IDENTIFIER, "name": "Office Wi-Fi", "version": version},
            "actions": actions,
        },
        "settings": {},
        "not_applicable": [],
    }
    return {"id": f"c-{kind}-{version}", "type": "install_profile", "payload": payload}


WIFI = {
    "type": "networkmanager_connection",
    "file_name": NM_FILE,
    "mode": "0600",
    "content": f"[connection]\nid=Office\n\n[wifi-security]\nkey-mgmt=wpa-psk\npsk={PSK}\n",
}
ANCHOR = {"type": "trust_anchor", "name": "Example Root CA", "file_name": CRT_FILE, "pem": PEM}
ENCRYPTION_CHECK = {"type": "check", "check": "root_filesystem_encrypted", "expect": True}
REMOVE = {"id": "r1", "type": "remove_profile", "payload": {"profile": PROFILE, "identifier": IDENTIFIER}}


@pytest.mark.parametrize("action", [WIFI, ANCHOR], ids=["wifi", "certificate"])
def test_without_allow_changes_a_profile_says_what_it_would_do_and_touches_nothing(action):
    host = FakeHost()
    agent = linux_executor(host, allow_changes=False)

    result = agent.execute(linux_install("wifi", [action]))

    assert result["status"] == "error"
    assert "--allow-changes" in result["error"] and action["file_name"] in result["error"]
    assert PSK not in result["error"]
    assert not host.touched()
    assert agent.inventory() == {}


def test_with_allow_changes_a_wifi_profile_writes_a_private_keyfile_and_reloads_networkmanager(tmp_path):
    host = FakeHost()
    record = tmp_path / "profiles.json"

    result = linux_executor(host, allow_changes=True, profiles_path=record).execute(linux_install("wifi", [WIFI]))

    assert result == {"id": "c-wifi-1", "status": "acknowledged", "data": {}}
    path = Path("/etc/NetworkManager/system-connections") / NM_FILE
    assert host.written == {path: (WIFI["content"], 0o600)}
    assert host.ran == [["/usr/bin/nmcli", "connection", "reload"]]
    # The record survives a restart and feeds the inventory; it never holds the keyfile (the password).
    again = linux_executor(FakeHost(), allow_changes=True, profiles_path=record)
    assert again.inventory() == {"profiles": [{"identifier": IDENTIFIER, "version": 1}]}
    assert PSK not in record.read_text()
    assert json.loads(record.read_text())[PROFILE]["files"] == [str(path)]


@pytest.mark.parametrize(
    ("tools", "directory", "argv"),
    [
        (("update-ca-certificates",), "/usr/local/share/ca-certificates", ["/usr/bin/update-ca-certificates"]),
        (("update-ca-trust",), "/etc/pki/ca-trust/source/anchors", ["/usr/bin/update-ca-trust", "extract"]),
    ],
    ids=["debian", "fedora"],
)
def test_a_certificate_goes_into_the_distributions_trust_store(tools, directory, argv):
    host = FakeHost(tools=tools)

    result = linux_executor(host, allow_changes=True).execute(linux_install("certificate", [ANCHOR]))

    assert result["status"] == "acknowledged"
    assert host.written == {Path(directory) / CRT_FILE: (PEM, 0o644)}
    assert host.ran == [argv]


def test_a_host_without_the_tools_says_so_and_changes_nothing():
    host = FakeHost(tools=())

    wifi = linux_executor(host, allow_changes=True).execute(linux_install("wifi", [WIFI]))
    anchor = linux_executor(host, allow_changes=True).execute(linux_install("certificate", [ANCHOR]))

    assert "NetworkManager (nmcli) is not installed" in wifi["error"]
    assert "no system trust store tool" in anchor["error"]
    assert not host.touched()


@pytest.mark.parametrize("allow_changes", [False, True])
def test_the_encryption_check_only_reads_the_host(allow_changes):
    encrypted, plain = FakeHost(encrypted=True), FakeHost(encrypted=False)

    ok = linux_executor(encrypted, allow_changes=allow_changes).execute(linux_install("encryption", [ENCRYPTION_CHECK]))
    refused = linux_executor(plain, allow_changes=allow_changes).execute(
        linux_install("encryption", [ENCRYPTION_CHECK])
    )

    assert ok["status"] == "acknowledged"
    assert refused["status"] == "error" and "reinstalled with encryption" in refused["error"]
    assert not encrypted.touched() and not plain.touched()


@pytest.mark.parametrize(
    "command",
    [
        linux_install("wifi", [{**WIFI, "file_name": "../../../etc/shadow"}]),
        linux_install("wifi", [{**WIFI, "file_name": "/etc/passwd.nmconnection"}]),
        linux_install("certificate", [{**ANCHOR, "file_name": "..crt"}]),
        linux_install("wifi", [{"type": "shell", "command": "rm -rf /"}]),
        {**linux_install("wifi", [WIFI]), "payload": {**linux_install("wifi", [WIFI])["payload"], "format": "syncml"}},
    ],
    ids=["traversal", "absolute", "dots", "unknown-action", "other-format"],
)
def test_a_profile_the_agent_cannot_trust_is_refused_without_touching_the_host(command):
    host = FakeHost()

    result = linux_executor(host, allow_changes=True).execute(command)

    assert result["status"] == "error"
    assert not host.touched()


def test_remove_profile_removes_what_was_installed_and_only_with_allow_changes():
    host = FakeHost()
    agent = linux_executor(host, allow_changes=True)
    agent.execute(linux_install("wifi", [WIFI]))
    host.ran.clear()

    agent.allow_changes = False
    refused = agent.execute(REMOVE)
    assert refused["status"] == "error" and "--allow-changes" in refused["error"] and NM_FILE in refused["error"]
    assert host.removed == [] and host.ran == []

    agent.allow_changes = True
    assert agent.execute(REMOVE)["status"] == "acknowledged"
    assert host.removed == [Path("/etc/NetworkManager/system-connections") / NM_FILE]
    assert host.ran == [["/usr/bin/nmcli", "connection", "reload"]]
    assert agent.inventory() == {}
    assert agent.execute(REMOVE)["status"] == "acknowledged"  # nothing left to remove


def test_removing_a_profile_never_installed_here_is_done_already():
    host = FakeHost()

    assert linux_executor(host, allow_changes=False).execute(REMOVE)["status"] == "acknowledged"
    assert not host.touched()


def test_notify_is_logged_and_acknowledged(caplog):
    host = FakeHost()

    with caplog.at_level(logging.INFO, logger="agent.executor"):
        result = linux_executor(host, allow_changes=False).execute(
            {"id": "n1", "type": "notify", "payload": {"title": "IT", "message": "Please restart today."}}
        )

    assert result == {"id": "n1", "status": "acknowledged", "data": {}}
    assert "IT: Please restart today." in caplog.text
    assert not host.touched()


def test_the_running_agent_reports_its_installed_profiles(portal, tmp_path):
    main(["enroll", "--server", portal.url, "--token", TOKEN, "--state", str(tmp_path / "state.json")])
    device = next(iter(portal.devices.values()))
    state = AgentState(server_url=portal.url, device_id=device.device_id, device_secret=device.secret)
    host = FakeHost()
    agent = linux_executor(host, allow_changes=True)
    agent.execute(linux_install("wifi", [WIFI]))

    status = run_agent(state, tmp_path / "state.json", once=True, collect=lambda: {"name": "host"}, executor=agent)

    assert status == EXIT_OK
    assert device.inventories[-1] == {"name": "host", "profiles": [{"identifier": IDENTIFIER, "version": 1}]}
