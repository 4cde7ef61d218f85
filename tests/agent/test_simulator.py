"""The fleet simulator: valid, varied, reproducible identities; drift; commands; a run against a portal."""

import re
import threading
from collections import Counter

import pytest

from agent.fleet import (
    DEFAULT_PLATFORM_MIX,
    generate_fleet,
    is_valid_imei,
    luhn_check_digit,
    parse_platform_mix,
    platform_counts,
)
from agent.inventory import DEVICE_FIELDS, validate_inventory
from agent.simulator import SimulationReport, percentile, run_simulation
from tests.agent.fake_portal import TOKEN

# What each platform's OS version looks like, and the oldest major version a managed device runs.
OS_VERSION = {
    "ios": (re.compile(r"\d{2}\.\d+(\.\d+)?"), 16),
    "ipados": (re.compile(r"\d{2}\.\d+(\.\d+)?"), 16),
    "android": (re.compile(r"\d{2}"), 13),
    "windows": (re.compile(r"10\.0\.\d{5}\.\d+"), 10),
    "macos": (re.compile(r"\d{2}\.\d+(\.\d+)?"), 15),
}
LINUX_OS = re.compile(r"(Ubuntu \d{2}\.04\.\d LTS|Debian 1[23]\.\d+|Red Hat Enterprise Linux 9\.\d|Fedora 43)")
MODELS = {
    "ios": ("iPhone",),
    "ipados": ("iPad",),
    "android": ("Pixel", "Galaxy", "moto", "TC5"),
    "windows": ("Surface", "ThinkPad", "Latitude", "EliteBook", "OptiPlex"),
    "macos": ("MacBook", "Mac mini"),
    "linux": ("ThinkPad", "XPS", "Laptop", "Precision", "PowerEdge", "ProLiant", "Standard PC"),
}


@pytest.fixture(scope="module")
def fleet():
    return generate_fleet(3000, seed=42)


def identities(devices):
    return [(d.identity(), d.inventory()) for d in devices]


# -- identities ------------------------------------------------------------------------------------


@pytest.mark.parametrize("imei", ["490154203237518", "356938035643809", "352099001761481"])
def test_known_imeis_pass_the_luhn_check(imei):
    assert luhn_check_digit(imei[:14]) == imei[14]
    assert is_valid_imei(imei)


@pytest.mark.parametrize("imei", ["490154203237517", "49015420323751", "49015420323751X", ""])
def test_invalid_imeis_fail(imei):
    assert not is_valid_imei(imei)


def test_every_imei_is_valid_and_only_devices_with_a_modem_have_one(fleet):
    for device in fleet:
        if device.imei:
            assert is_valid_imei(device.imei), device
            assert device.platform in ("ios", "ipados", "android")
        if device.platform == "ios":
            assert device.imei, "every iPhone has a modem"
        if device.platform in ("windows", "macos", "linux"):
            assert device.imei == ""


def test_serial_numbers_and_imeis_are_unique(fleet):
    serials = [device.serial_number for device in fleet]
    imeis = [device.imei for device in fleet if device.imei]

    assert len(set(serials)) == len(serials)
    assert len(set(imeis)) == len(imeis)


def test_os_versions_and_models_fit_the_platform(fleet):
    for device in fleet:
        version, model = device.release.version, device.hardware.model
        if device.platform == "linux":
            assert LINUX_OS.fullmatch(version), version
            assert device.release.kernel
        else:
            pattern, oldest = OS_VERSION[device.platform]
            assert pattern.fullmatch(version), (device.platform, version)
            assert int(version.split(".")[0]) >= oldest
        assert model.startswith(MODELS[device.platform]), (device.platform, model)


def test_apple_devices_are_made_by_apple_and_the_others_are_not(fleet):
    for device in fleet:
        apple = device.platform in ("ios", "ipados", "macos")
        assert (device.hardware.manufacturer == "Apple") is apple


def test_the_fleet_is_varied(fleet):
    by_platform = Counter(device.platform for device in fleet)

    assert set(by_platform) == set(DEFAULT_PLATFORM_MIX)
    for platform in DEFAULT_PLATFORM_MIX:
        devices = [device for device in fleet if device.platform == platform]
        assert len({device.hardware.model for device in devices}) >= 3, platform
        assert len({device.release.version for device in devices}) >= 2, platform
    assert len({device.name for device in fleet}) > len(fleet) / 3


def test_security_flags_are_mostly_good_with_a_few_bad(fleet):
    encrypted = sum(device.encrypted for device in fleet) / len(fleet)
    mobile = [device for device in fleet if device.platform in ("ios", "ipados", "android")]
    with_passcode = sum(bool(device.passcode_set) for device in mobile) / len(mobile)

    assert 0.75 < encrypted < 0.99
    assert 0.85 < with_passcode < 0.995
    assert any(device.jailbroken for device in mobile)


def test_every_identity_and_inventory_is_valid_for_the_protocol(fleet):
    for device in fleet:
        identity, inventory = device.identity(), device.inventory()
        assert tuple(identity) == DEVICE_FIELDS
        assert all(isinstance(value, str) for value in identity.values())
        assert validate_inventory(inventory) == [], device
        assert inventory["os_version"] == identity["os_version"]


def test_installed_apps_are_typical_for_the_platform(fleet):
    by_platform = {device.platform: device for device in fleet}

    def identifiers(platform):
        return {app["identifier"] for app in by_platform[platform].inventory().get("installed_apps", [])}

    assert all(re.fullmatch(r"[a-z]+(\.[A-Za-z0-9]+)+", app) for app in identifiers("ios"))
    assert all("." in app and " " not in app for app in identifiers("android"))
    assert "installed_apps" not in by_platform["linux"].inventory()
    assert by_platform["linux"].inventory()["installed_package_count"] > 100


def test_the_same_seed_gives_the_same_fleet():
    assert identities(generate_fleet(200, seed=7)) == identities(generate_fleet(200, seed=7))
    assert identities(generate_fleet(200, seed="7")) == identities(generate_fleet(200, seed=7))


def test_another_seed_gives_another_fleet():
    first, second = generate_fleet(50, seed=1), generate_fleet(50, seed=2)

    assert {d.serial_number for d in first}.isdisjoint({d.serial_number for d in second})


def test_platform_counts_follow_the_mix_exactly():
    counts = platform_counts(1000, parse_platform_mix("ios=30,android=30,windows=20,macos=10,linux=10"))

    assert counts == {"ios": 300, "android": 300, "windows": 200, "macos": 100, "linux": 100}
    assert sum(platform_counts(7, DEFAULT_PLATFORM_MIX).values()) == 7
    assert Counter(d.platform for d in generate_fleet(10, {"linux": 1}, seed=1)) == {"linux": 10}


@pytest.mark.parametrize("text", ["", "ios", "symbian=10", "ios=lots", "ios=-1", "ios=0,android=0"])
def test_a_bad_platform_mix_is_refused_with_a_sentence(text):
    with pytest.raises(ValueError, match=r"\w+ "):
        parse_platform_mix(text)


# -- behaviour ---------------------------------------------------------------------------------------


def test_drift_changes_the_inventory_now_and_then_and_reproducibly():
    def history(seed):
        device = generate_fleet(1, {"ios": 1}, seed=seed)[0]
        events = [device.drift(0.3) for _ in range(300)]
        return events, device.inventory()

    events, inventory = history(3)

    assert (events, inventory) == history(3)
    happened = Counter(event for event in events if event)
    assert 50 < sum(happened.values()) < 150
    assert {"os_update", "app_install", "battery", "storage"} & set(happened)
    assert validate_inventory(inventory) == []


def test_drift_at_rate_zero_changes_nothing(fleet):
    device = generate_fleet(1, seed=9)[0]
    before = device.inventory()

    assert not any(device.drift(0.0) for _ in range(100))
    assert device.inventory() == before


def test_os_updates_move_forward_only():
    device = next(d for d in generate_fleet(200, {"windows": 1}, seed=5) if d.os_index == 0)
    versions = [device.release.version]
    while device.os_index + 1 < len(device.track):
        device._drift_os_update()
        versions.append(device.release.version)

    assert len(versions) > 1
    assert versions == sorted(versions, key=lambda v: [int(n) for n in v.split(".")])


def test_commands_are_acknowledged_postponed_or_refused():
    devices = generate_fleet(300, seed=11)
    statuses = Counter()
    for index, device in enumerate(devices):
        for kind in ("sync", "lock", "restart", "rename", "reset_passcode"):
            result = device.execute({"id": f"{index}-{kind}", "type": kind, "payload": {"name": f"renamed-{index}"}})
            assert result["id"] == f"{index}-{kind}"
            statuses[result["status"]] += 1
            if kind == "sync":
                assert result["status"] == "acknowledged" and device.sync_requested
        assert device.name == f"renamed-{index}" and device.inventory()["name"] == device.name
        unknown = device.execute({"id": "w", "type": "enable_lost_mode", "payload": {}})
        assert unknown["status"] == "error" and "cannot run 'enable_lost_mode'" in unknown["error"]

    assert statuses["acknowledged"] > statuses["not_now"] > 0
    assert statuses["error"] == 0


def test_a_command_without_an_id_gets_no_result():
    device = generate_fleet(1, seed=1)[0]

    assert device.execute({"type": "sync"}) is None


def test_percentile():
    assert percentile([], 0.5) == 0
    assert percentile([3, 1, 2], 0.5) == 2
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([5], 0.99) == 5


# -- against a portal ----------------------------------------------------------------------------------


def test_a_simulation_enrols_checks_in_executes_commands_and_reports(portal):
    portal.interval = 900  # the run overrides it, as the benchmark does
    queued = threading.Event()

    def queue_commands():
        while len(portal.devices) < 30:
            threading.Event().wait(0.01)
        retired, *others = list(portal.devices)
        portal.retire(retired)
        for device_id in others:
            for kind, payload in (("sync", {}), ("rename", {"name": "renamed"}), ("enable_lost_mode", {})):
                portal.queue(device_id, kind, payload)
        queued.set()

    helper = threading.Thread(target=queue_commands, daemon=True)
    helper.start()

    report = run_simulation(portal.url, TOKEN, 30, duration=1.5, interval=0.2, concurrency=4, seed=1)

    helper.join(timeout=5)
    assert queued.is_set()
    assert isinstance(report, SimulationReport)
    assert (report.devices, report.enrolled, report.enroll_failed) == (30, 30, 0)
    assert report.checkins > 30 and report.checkins_per_second > 0
    assert 0 < report.checkin_p50_ms <= report.checkin_p99_ms
    assert report.retired == 1 and report.errors_by_code == {"device_retired": 1}
    assert report.commands_by_type["enable_lost_mode"] == report.commands_by_status["error"] == 29
    assert report.commands_by_type["sync"] == 29
    assert report.results_reported == report.commands_executed
    assert "check-ins/s" in report.summary()
    # What the portal saw: devices of every platform, valid, with their own identities.
    devices = list(portal.devices.values())
    assert {device.identity["platform"] for device in devices} == set(DEFAULT_PLATFORM_MIX)
    assert len({device.identity["serial_number"] for device in devices}) == 30
    renamed = [device for device in devices if any(i.get("name") == "renamed" for i in device.inventories)]
    assert len(renamed) >= 25


def test_check_ins_are_spread_not_in_lockstep(portal):
    report = run_simulation(portal.url, TOKEN, 40, duration=1.0, interval=2.0, concurrency=8, seed=3)

    # With a 2 s interval and 1 s to run, about half the devices are due; all at once would be 40.
    assert 8 <= report.checkins <= 32


def test_refused_enrolments_are_counted_by_code(portal):
    portal.refuse_tokens = True

    report = run_simulation(portal.url, TOKEN, 5, duration=0.5, interval=0.1, concurrency=2, seed=1)

    assert (report.enrolled, report.enroll_failed, report.checkins) == (0, 5, 0)
    assert report.errors_by_code == {"invalid_enrollment_token": 5}


def test_the_simulation_stops_when_asked(portal):
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()

    report = run_simulation(portal.url, TOKEN, 10, duration=60, interval=0.05, concurrency=2, seed=1, stop_event=stop)

    assert report.duration_seconds < 5 and report.checkins > 0


def test_the_simulator_refuses_a_server_that_is_not_on_this_machine():
    with pytest.raises(ValueError, match="not on this machine"):
        run_simulation("http://192.0.2.10:8000", TOKEN, 10, duration=1)
