"""Apps on the agent's side: the simulator installs and removes them, the Linux agent does it safely.

A simulated device's next inventory shows what ``install_app``/``remove_app`` changed, and now and
then an install fails for a reason the platform would give. The Linux executor downloads a ``.deb``
with the device secret, refuses a package whose size, SHA-256 or name is not what the portal
announced, and never runs ``dpkg``/``apt-get`` without ``--allow-changes`` (every host access goes
through the injected ``which``/``run``, so the tests see all of it).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.client import AgentClient, ProtocolError
from agent.executor import CommandExecutor
from agent.fleet import INSTALL_FAILURES, NO_STORAGE, generate_fleet
from agent.inventory import validate_inventory
from agent.packages import PackageError, deb_control
from agent.simulator import run_simulation
from apps.management.commands.demo_apps import build_deb
from tests.agent.fake_portal import TOKEN

APP = "7d1c3f0e-0000-4000-8000-000000000001"
PACKAGE = "example-vpn-helper"
DEB = build_deb(package=PACKAGE, version="1.4.2", summary="Example VPN helper", description="Connects to the VPN.")
DEB_SHA256 = hashlib.sha256(DEB).hexdigest()
DEB_SIZE = len(DEB)
URL = f"/agent/v1/apps/{APP}/package"


def install_app(kind="store", identifier="us.zoom.videomeetings", version="6.6.10", name="Zoom Workplace", **extra):
    payload = {"app": APP, "version": version, "kind": kind, "identifier": identifier, "name": name, **extra}
    return {"id": f"install-{identifier}", "type": "install_app", "payload": payload}


def remove_app(identifier="us.zoom.videomeetings", name="Zoom Workplace", kind="store"):
    payload = {"app": APP, "kind": kind, "identifier": identifier, "name": name}
    return {"id": f"remove-{identifier}", "type": "remove_app", "payload": payload}


def lob_install(*, sha256=DEB_SHA256, size=DEB_SIZE, package_format="deb", identifier=PACKAGE):
    """A line-of-business install as the portal sends it (``apps.commands.install_payload``)."""
    package = {"download_url": URL, "sha256": sha256, "size_bytes": size, "format": package_format}
    return install_app(kind="lob", identifier=identifier, version="1.4.2", name="VPN helper", **package)


def simulated(platform: str, **state):
    device = generate_fleet(1, {platform: 1}, seed=11, install_failure_rate=0)[0]
    for name, value in state.items():
        setattr(device, name, value)
    return device


def identifiers(inventory: dict) -> dict[str, str]:
    return {app["identifier"]: app["version"] for app in inventory.get("installed_apps", [])}


# -- the simulator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["ios", "android", "windows", "macos"])
def test_a_simulated_device_reports_an_app_after_install_app_and_not_after_remove_app(platform):
    device = simulated(platform)
    device.installed_apps = [app for app in device.installed_apps if app["identifier"] != "com.example.notes"]

    result = device.execute(install_app(identifier="com.example.notes", version="3.1", name="Notes"))

    assert result == {"id": "install-com.example.notes", "status": "acknowledged", "data": {"version": "3.1"}}
    assert device.sync_requested is True  # it reports the change at once
    inventory = device.inventory()
    assert identifiers(inventory)["com.example.notes"] == "3.1"
    assert validate_inventory(inventory) == []

    device.sync_requested = False
    assert device.execute(remove_app(identifier="com.example.notes"))["status"] == "acknowledged"
    assert "com.example.notes" not in identifiers(device.inventory())
    # Removing it again is done already.
    assert device.execute(remove_app(identifier="com.example.notes"))["status"] == "acknowledged"


def test_an_update_replaces_the_version_and_a_store_app_without_one_gets_the_stores_latest():
    device = simulated("windows")
    device.installed_apps = [{"identifier": "Zoom.Zoom", "name": "Zoom Workplace", "version": "6.6.5.21887"}]

    device.execute(install_app(identifier="Zoom.Zoom", version=""))

    assert device.inventory()["installed_apps"] == [
        {"identifier": "Zoom.Zoom", "name": "Zoom Workplace", "version": "6.6.10.22508"}
    ]


def test_a_simulated_linux_host_starts_reporting_the_packages_it_was_asked_to_manage():
    device = simulated("linux")
    assert "installed_apps" not in device.inventory()

    assert device.execute(lob_install())["status"] == "acknowledged"

    assert device.inventory()["installed_apps"] == [{"identifier": PACKAGE, "name": "VPN helper", "version": "1.4.2"}]


def test_a_package_of_another_platform_or_without_a_checksum_is_refused():
    device = simulated("ios")
    result = device.execute(lob_install())
    assert result["status"] == "error"
    assert result["error"] == "A .deb package cannot be installed on iOS; iOS installs .ipa packages."

    linux = simulated("linux")
    result = linux.execute(lob_install(sha256=""))
    assert result["status"] == "error" and "checksum" in result["error"]
    assert "installed_apps" not in linux.inventory()


def test_installs_fail_now_and_then_with_the_platforms_reason():
    device = simulated("android", install_failure_rate=1.0)

    result = device.execute(install_app(identifier="us.zoom.videomeetings"))

    assert result["status"] == "error"
    assert result["error"] in INSTALL_FAILURES["android"]


def test_a_full_device_cannot_install():
    device = simulated("ios", free_storage_mb=50)

    result = device.execute(install_app(identifier="com.example.big"))

    assert result == {"id": "install-com.example.big", "status": "error", "error": NO_STORAGE["ios"]}
    assert "com.example.big" not in identifiers(device.inventory())


def test_the_failure_rate_is_checked():
    with pytest.raises(ValueError, match="between 0 and 1"):
        generate_fleet(1, {"ios": 1}, install_failure_rate=2)


def test_against_a_portal_the_next_inventory_lists_the_installed_app(portal):
    def queue_install():
        while not portal.devices:
            threading.Event().wait(0.005)
        portal.queue(next(iter(portal.devices)), "install_app", install_app(identifier="com.example.crm")["payload"])

    helper = threading.Thread(target=queue_install, daemon=True)
    helper.start()
    lines: list[str] = []

    report = run_simulation(
        portal.url,
        TOKEN,
        1,
        platform_mix={"ios": 1},
        duration=0.6,
        interval=0.05,
        concurrency=1,
        seed=3,
        drift_rate=0,
        install_failure_rate=0,
        log=lines.append,
    )

    helper.join(timeout=5)
    assert report.commands_by_type.get("install_app") == 1
    device = next(iter(portal.devices.values()))
    assert device.results[-1]["status"] == "acknowledged"
    assert "com.example.crm" not in identifiers(device.inventories[0])
    assert "com.example.crm" in identifiers(device.inventories[-1])
    assert any("installed Zoom Workplace 6.6.10" in line for line in lines)


# -- the Linux agent -------------------------------------------------------------------------------


class FakeHost:
    """The host as the executor sees it: installed tools, dpkg's package database, every command run."""

    def __init__(self, tools=("apt-get", "dpkg", "dpkg-query"), packages=None):
        self.tools = set(tools)
        self.packages: dict[str, str] = dict(packages or {})  # installed package -> version
        self.ran: list[list[str]] = []
        self.records: dict[Path, str] = {}

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.tools else None

    def run(self, argv):
        self.ran.append(list(argv))
        tool = Path(argv[0]).name
        if tool == "dpkg-query":
            package = argv[-1]
            if package not in self.packages:
                return 1, f"dpkg-query: no packages found matching {package}"
            fmt = argv[argv.index("-f") + 1]
            return 0, fmt.replace("${Version}", self.packages[package]).replace("${db:Status-Abbrev}", "ii ")
        if tool == "apt-get" and argv[1] == "install":
            target = argv[-1]
            if target.endswith(".deb"):
                control = deb_control(Path(target))
                self.packages[control["Package"]] = control["Version"]
            else:
                self.packages[target] = "1.0"
        if tool == "dpkg" and argv[1] == "-r":
            self.packages.pop(argv[2], None)
        return 0, ""

    def changes(self) -> list[list[str]]:
        """What ran besides the read-only package queries."""
        return [argv for argv in self.ran if Path(argv[0]).name != "dpkg-query"]

    def write_record(self, path, content, mode):
        self.records[path] = content


class Portal:
    """Serves the package to ``download``: every request recorded; ``body`` can be tampered with."""

    def __init__(self, body: bytes = DEB):
        self.body = body
        self.requests: list[str] = []

    def download(self, url, write, max_bytes):
        self.requests.append(url)
        if len(self.body) > max_bytes:
            raise ProtocolError(200, "download_too_large", "larger than announced")
        write(self.body)
        return len(self.body)


def linux_agent(host: FakeHost, *, allow_changes: bool, portal: Portal | None = None, apps_path=None, tmp_path=None):
    executor = CommandExecutor(
        allow_changes=allow_changes,
        which=host.which,
        run=host.run,
        write=lambda *args: pytest.fail("no file is written for an app"),
        remove=lambda *args: pytest.fail("no file is removed for an app"),
        encrypted=lambda: True,
        apps_path=apps_path,
        download=(portal or Portal()).download,
        downloads_dir=tmp_path,
    )
    executor.packages.write_record = host.write_record
    return executor


def test_without_allow_changes_a_deb_is_downloaded_and_verified_but_never_installed(tmp_path):
    host, portal = FakeHost(), Portal()
    agent = linux_agent(host, allow_changes=False, portal=portal, tmp_path=tmp_path)

    result = agent.execute(lob_install())

    assert result["status"] == "error"
    assert portal.requests == [URL]
    assert host.changes() == []
    assert "without --allow-changes, so it did not install VPN helper 1.4.2" in result["error"]
    assert f"downloaded and verified ({len(DEB)} bytes" in result["error"]
    assert "it would have run: apt-get install -y --no-install-recommends " in result["error"]
    assert result["error"].endswith(f"/{PACKAGE}.deb.")
    assert list(tmp_path.iterdir()) == []  # the download was deleted
    assert agent.inventory() == {}


def test_without_apt_the_agent_would_use_dpkg(tmp_path):
    host = FakeHost(tools=("dpkg", "dpkg-query"))
    result = linux_agent(host, allow_changes=False, tmp_path=tmp_path).execute(lob_install())
    assert "it would have run: dpkg -i " in result["error"]
    assert host.changes() == []


def test_with_allow_changes_the_verified_deb_is_installed_and_reported(tmp_path):
    host = FakeHost()
    record = tmp_path / "apps.json"
    agent = linux_agent(host, allow_changes=True, apps_path=record, tmp_path=tmp_path)

    result = agent.execute(lob_install())

    assert result == {"id": f"install-{PACKAGE}", "status": "acknowledged", "data": {"version": "1.4.2"}}
    [argv] = host.changes()
    assert argv[:5] == ["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", argv[4]]
    assert argv[4].endswith(f"{PACKAGE}.deb")
    assert agent.sync_requested is True
    assert agent.inventory() == {"installed_apps": [{"identifier": PACKAGE, "name": "VPN helper", "version": "1.4.2"}]}
    assert json.loads(host.records[record])["apps"][PACKAGE]["version"] == "1.4.2"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith("mdm-agent-")]


@pytest.mark.parametrize("allow_changes", [False, True])
def test_a_package_that_does_not_match_its_checksum_is_refused(tmp_path, allow_changes):
    host = FakeHost()
    tampered = DEB[:-1] + bytes([DEB[-1] ^ 1])
    agent = linux_agent(host, allow_changes=allow_changes, portal=Portal(tampered), tmp_path=tmp_path)

    result = agent.execute(lob_install())

    assert result["status"] == "error"
    assert "does not match its SHA-256 checksum" in result["error"]
    assert DEB_SHA256 in result["error"] and hashlib.sha256(tampered).hexdigest() in result["error"]
    assert host.changes() == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "install", "problem"),
    [
        (DEB + b"x", lob_install(), "larger than announced"),
        (DEB[:-10], lob_install(), f"is {len(DEB) - 10} bytes, not the {len(DEB)}"),
        (b"MZ" + b"\0" * 30, lob_install(sha256=hashlib.sha256(b"MZ" + b"\0" * 30).hexdigest(), size=32), "ar archive"),
        (DEB, lob_install(identifier="other-package"), "installs 'example-vpn-helper', not 'other-package'"),
    ],
    ids=["too-large", "truncated", "not-a-deb", "another-package"],
)
def test_a_package_that_is_not_what_was_announced_is_refused(tmp_path, body, install, problem):
    host = FakeHost()
    result = linux_agent(host, allow_changes=True, portal=Portal(body), tmp_path=tmp_path).execute(install)
    assert result["status"] == "error"
    assert problem in result["error"]
    assert host.changes() == []


def test_the_package_may_also_be_announced_as_a_download_object(tmp_path):
    host, portal = FakeHost(), Portal()
    command = install_app(
        kind="lob",
        identifier=PACKAGE,
        version="1.4.2",
        name="VPN helper",
        download={"url": URL, "sha256": DEB_SHA256, "size": DEB_SIZE, "format": "deb"},
    )

    assert linux_agent(host, allow_changes=True, portal=portal, tmp_path=tmp_path).execute(command)["status"] == (
        "acknowledged"
    )
    assert portal.requests == [URL]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"format": "msi"}, "A .msi package"),
        ({"sha256": "abc"}, "SHA-256 checksum"),
        ({"size_bytes": None}, "no valid size"),
        ({"error": "Version 1.4.2 of VPN helper has no package any more."}, "The portal could not send VPN helper"),
        ({"identifier": "--force-all"}, "no Debian package name"),
        ({"identifier": "../../etc/passwd"}, "no Debian package name"),
        ({"kind": "web", "url": "https://intranet.example.com"}, "is a web link (https://intranet.example.com)"),
    ],
    ids=["windows-package", "bad-checksum", "no-size", "portal-error", "option", "path", "web-link"],
)
def test_an_install_the_agent_cannot_trust_is_refused_without_downloading(tmp_path, payload, problem):
    host, portal = FakeHost(), Portal()
    command = lob_install()
    command["payload"].update(payload)

    result = linux_agent(host, allow_changes=True, portal=portal, tmp_path=tmp_path).execute(command)

    assert result["status"] == "error" and problem in result["error"]
    assert portal.requests == [] and host.changes() == []


def test_a_store_app_comes_from_the_hosts_repositories_only_with_allow_changes():
    host = FakeHost()
    command = install_app(identifier="zoom", name="Zoom Workplace", version="")

    refused = linux_agent(host, allow_changes=False).execute(command)
    assert refused["error"].endswith("it would have run: apt-get install -y --no-install-recommends zoom.")
    assert host.changes() == []

    assert linux_agent(host, allow_changes=True).execute(command)["status"] == "acknowledged"
    assert host.changes() == [["/usr/bin/apt-get", "install", "-y", "--no-install-recommends", "zoom"]]


def test_remove_app_runs_dpkg_r_only_with_allow_changes(tmp_path):
    host = FakeHost(packages={PACKAGE: "1.4.2"})
    record = tmp_path / "apps.json"
    command = remove_app(identifier=PACKAGE, name="VPN helper", kind="lob")

    refused = linux_agent(host, allow_changes=False, apps_path=record).execute(command)
    assert refused["error"] == (
        "This agent runs without --allow-changes, so it did not remove VPN helper; "
        f"it would have run: dpkg -r {PACKAGE}."
    )
    assert host.changes() == []

    agent = linux_agent(host, allow_changes=True, apps_path=record)
    assert agent.execute(command)["status"] == "acknowledged"
    assert host.changes() == [["/usr/bin/dpkg", "-r", PACKAGE]]
    assert agent.inventory() == {"installed_apps": []}  # it still says it reports the apps it manages


def test_removing_a_package_that_is_not_installed_is_done_already():
    host = FakeHost()
    result = linux_agent(host, allow_changes=False).execute(remove_app(identifier=PACKAGE))
    assert result["status"] == "acknowledged"
    assert host.changes() == []


def test_a_package_removed_by_hand_disappears_from_the_inventory(tmp_path):
    host = FakeHost()
    agent = linux_agent(host, allow_changes=True, apps_path=tmp_path / "apps.json", tmp_path=tmp_path)
    agent.execute(lob_install())
    del host.packages[PACKAGE]  # sudo apt remove example-vpn-helper

    assert agent.inventory() == {"installed_apps": []}


def test_a_failing_package_tool_is_reported(tmp_path):
    host = FakeHost()
    host.run = lambda argv: (100, "E: Unable to locate package zoom") if "install" in argv else (1, "")
    result = linux_agent(host, allow_changes=True).execute(install_app(identifier="zoom", version=""))
    assert result["error"] == "apt-get could not install Zoom Workplace: E: Unable to locate package zoom."


def test_the_demo_package_is_a_valid_debian_package(tmp_path):
    path = tmp_path / "demo.deb"
    path.write_bytes(DEB)
    assert deb_control(path)["Package"] == PACKAGE
    assert (
        build_deb(package=PACKAGE, version="1.4.2", summary="Example VPN helper", description="Connects to the VPN.")
        == DEB
    )
    path.write_bytes(b"!<arch>\nnot really")
    with pytest.raises(PackageError):
        deb_control(path)


# -- downloading with the device secret ------------------------------------------------------------


@pytest.fixture
def package_server():
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            if self.headers.get("Authorization") != "Device dsk_secret":
                body = json.dumps({"error": {"code": "invalid_credentials", "message": "Unknown device."}}).encode()
                self.send_response(401)
            else:
                body = DEB
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    server.seen = seen
    yield server
    server.shutdown()
    server.server_close()


def test_the_client_downloads_a_package_with_the_device_secret(package_server):
    base = f"http://127.0.0.1:{package_server.server_address[1]}"
    received: list[bytes] = []
    with AgentClient(base, secret="dsk_secret") as client:
        for url in (URL, base + URL):
            chunks: list[bytes] = []
            assert client.download(url, chunks.append, max_bytes=len(DEB)) == len(DEB)
            received.append(b"".join(chunks))
        with pytest.raises(ProtocolError) as too_large:
            client.download(URL, chunks.append, max_bytes=100)
        with pytest.raises(ProtocolError) as foreign:
            client.download("http://downloads.example.com/x.deb", chunks.append, max_bytes=len(DEB))
    assert received == [DEB, DEB]
    assert too_large.value.code == "download_too_large"
    assert foreign.value.code == "foreign_download"
    assert all(auth == "Device dsk_secret" for _, auth in package_server.seen)
    assert len(package_server.seen) == 3  # never to the foreign address

    with AgentClient(base, secret="dsk_wrong") as client, pytest.raises(ProtocolError) as refused:
        client.download(URL, chunks.append, max_bytes=len(DEB))
    assert refused.value.status == 401 and refused.value.message == "Unknown device."
