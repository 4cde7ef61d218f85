"""Linux inventory: the real host's probes never raise and send only protocol fields; each probe's
parsing is checked against fake hosts (os-release variants, LUKS stacks, DMI placeholders)."""

import json

import pytest

from agent.inventory import (
    INVENTORY_FIELDS,
    MACHINE_ID_SERIAL_PREFIX,
    LinuxInventory,
    collect_inventory,
    device_identity,
    validate_inventory,
)

MACHINE_ID = "3d1219c7c4c5404aaa1f6d2a48adfda4"


def no_tools(argv):
    return None


def no_which(name):
    return None


def fake_host(root, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


# -- the real host ---------------------------------------------------------------------------------


def test_the_real_hosts_inventory_has_only_protocol_fields_of_the_right_types():
    inventory = collect_inventory()

    assert set(inventory) <= set(INVENTORY_FIELDS)
    assert validate_inventory(inventory) == []
    for field, value in inventory.items():
        expected = INVENTORY_FIELDS[field]
        assert type(value) is expected, field  # bool is not an int here, and no None sneaks in
    # Whatever the host, these come from the kernel and the standard library.
    assert inventory["kernel"] and inventory["total_storage_mb"] > 0
    assert 0 <= inventory["free_storage_mb"] <= inventory["total_storage_mb"]


def test_every_probe_of_the_real_host_returns_without_raising():
    probes = LinuxInventory()
    for name in (
        "os_release",
        "os_version",
        "os_build",
        "kernel",
        "hostname",
        "name",
        "cpu",
        "memory_mb",
        "storage_mb",
        "serial_number",
        "manufacturer",
        "model",
        "encrypted",
        "installed_package_count",
        "screen_lock_enabled",
        "battery_percent",
    ):
        getattr(probes, name)()


def test_the_real_hosts_identity_is_a_linux_device_object():
    identity = device_identity(collect_inventory())

    assert identity["platform"] == "linux"
    assert set(identity) == {"platform", "name", "serial_number", "imei", "model", "manufacturer", "os_version"}
    assert all(isinstance(value, str) for value in identity.values())
    assert identity["imei"] == ""


# -- a host with nothing to read -------------------------------------------------------------------


def test_an_empty_host_gives_a_small_valid_inventory(tmp_path):
    inventory = LinuxInventory(tmp_path, run=no_tools, which=no_which).collect()

    assert validate_inventory(inventory) == []
    assert not {"os_version", "cpu", "memory_mb", "serial_number", "encrypted", "installed_package_count"} & set(
        inventory
    )


def test_a_probe_that_raises_is_left_out(tmp_path, monkeypatch):
    probes = LinuxInventory(tmp_path, run=no_tools, which=no_which)
    monkeypatch.setattr(probes, "cpu", lambda: 1 / 0)

    assert "cpu" not in probes.collect()


def test_files_that_cannot_be_read_are_left_out(tmp_path):
    for path in ("proc/meminfo", "proc/cpuinfo", "etc/os-release", "etc/machine-id", "sys/class/dmi/id/product_serial"):
        (tmp_path / path).mkdir(parents=True)  # a directory where a file should be: reading it fails
    fake_host(tmp_path, {"/proc/self/mountinfo": "\x00\xff garbage\n27 1 254:0 / /\n"})

    inventory = LinuxInventory(tmp_path, run=no_tools, which=no_which).collect()

    assert validate_inventory(inventory) == []
    assert not {"memory_mb", "cpu", "os_version", "serial_number", "encrypted"} & set(inventory)


# -- operating system ------------------------------------------------------------------------------

UBUNTU = """PRETTY_NAME="Ubuntu 24.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.3 LTS (Noble Numbat)"
ID=ubuntu
ID_LIKE=debian
"""
DEBIAN = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
"""
RHEL = """NAME="Red Hat Enterprise Linux"
VERSION="9.7 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.7"
"""
FEDORA = """NAME="Fedora Linux"
VERSION="43 (Workstation Edition)"
ID=fedora
VERSION_ID=43
"""
ARCH = """NAME="Arch Linux"
PRETTY_NAME="Arch Linux"
ID=arch
BUILD_ID=rolling
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"/etc/os-release": UBUNTU, "/etc/debian_version": "trixie/sid\n"}, "Ubuntu 24.04.3 LTS"),
        ({"/etc/os-release": DEBIAN, "/etc/debian_version": "12.8\n"}, "Debian 12.8"),
        ({"/etc/os-release": DEBIAN}, "Debian 12"),
        ({"/usr/lib/os-release": RHEL}, "Red Hat Enterprise Linux 9.7"),
        ({"/etc/os-release": FEDORA}, "Fedora Linux 43"),
        ({"/etc/os-release": ARCH}, "Arch Linux"),
    ],
)
def test_os_version_is_distribution_and_version(tmp_path, files, expected):
    fake_host(tmp_path, files)

    assert LinuxInventory(tmp_path).os_version() == expected


def test_os_build_comes_from_build_id_except_rolling(tmp_path):
    fake_host(tmp_path, {"/etc/os-release": 'NAME="Fedora Linux"\nVERSION_ID=43\nBUILD_ID="20251126.0"\n'})
    assert LinuxInventory(tmp_path).os_build() == "20251126.0"

    fake_host(tmp_path, {"/etc/os-release": ARCH})
    assert LinuxInventory(tmp_path).os_build() is None


def test_a_malformed_os_release_does_not_raise(tmp_path):
    fake_host(tmp_path, {"/etc/os-release": 'NAME="Unterminated\n=\n\x00garbage\nVERSION_ID=\n'})

    assert LinuxInventory(tmp_path).os_version() == "Unterminated"


def test_name_prefers_the_pretty_host_name(tmp_path):
    fake_host(tmp_path, {"/etc/machine-info": 'PRETTY_HOSTNAME="Emma\'s ThinkPad"\nCHASSIS=laptop\n'})

    assert LinuxInventory(tmp_path).name() == "Emma's ThinkPad"


# -- hardware ----------------------------------------------------------------------------------------


INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) Ultra 7 155U\n"
RASPBERRY_PI = "processor\t: 0\nBogoMIPS\t: 108.00\nHardware\t: BCM2835\nModel\t: Raspberry Pi 4\n"
POWER = "processor\t: 0\ncpu\t\t: POWER9 (architected), altivec supported\n"


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        (INTEL, "Intel(R) Core(TM) Ultra 7 155U"),
        (RASPBERRY_PI, "BCM2835"),
        (POWER, "POWER9 (architected), altivec supported"),
        ("processor\t: 0\nprocessor\t: 1\n", None),
    ],
)
def test_cpu_model_from_cpuinfo(tmp_path, cpuinfo, expected):
    fake_host(tmp_path, {"/proc/cpuinfo": cpuinfo})

    assert LinuxInventory(tmp_path).cpu() == expected


def test_memory_from_meminfo(tmp_path):
    fake_host(tmp_path, {"/proc/meminfo": "MemTotal:       16318480 kB\nMemFree:  1000 kB\n"})

    assert LinuxInventory(tmp_path).memory_mb() == 15936


def test_dmi_identity(tmp_path):
    fake_host(
        tmp_path,
        {
            "/sys/class/dmi/id/product_serial": "PF3ABC12\n",
            "/sys/class/dmi/id/sys_vendor": "LENOVO\n",
            "/sys/class/dmi/id/product_name": "21HDCTO1WW\n",
            "/sys/class/dmi/id/product_version": "ThinkPad T14 Gen 4\n",
        },
    )
    probes = LinuxInventory(tmp_path)

    assert (probes.serial_number(), probes.manufacturer(), probes.model()) == (
        "PF3ABC12",
        "LENOVO",
        "ThinkPad T14 Gen 4",
    )


def test_firmware_placeholders_are_not_identities(tmp_path):
    fake_host(
        tmp_path,
        {
            "/sys/class/dmi/id/product_serial": "To Be Filled By O.E.M.\n",
            "/sys/class/dmi/id/sys_vendor": "System manufacturer\n",
            "/sys/class/dmi/id/product_name": "0000000000\n",
        },
    )
    probes = LinuxInventory(tmp_path)

    assert (probes.serial_number(), probes.manufacturer(), probes.model()) == (None, None, None)


def test_without_a_dmi_serial_the_serial_is_a_marked_hash_of_the_machine_id(tmp_path):
    fake_host(tmp_path, {"/etc/machine-id": MACHINE_ID + "\n"})

    serial = LinuxInventory(tmp_path).serial_number()

    assert serial.startswith(MACHINE_ID_SERIAL_PREFIX)
    assert MACHINE_ID not in serial  # the machine id itself stays private
    assert len(serial) <= 64
    assert LinuxInventory(tmp_path).serial_number() == serial  # stable across runs


def test_storage_of_the_root_file_system(tmp_path):
    free, total = LinuxInventory(tmp_path).storage_mb()

    assert 0 <= free <= total


def test_battery_ignores_peripherals(tmp_path):
    fake_host(
        tmp_path,
        {
            "/sys/class/power_supply/AC/type": "Mains\n",
            "/sys/class/power_supply/hidpp_battery_0/type": "Battery\n",
            "/sys/class/power_supply/hidpp_battery_0/scope": "Device\n",
            "/sys/class/power_supply/hidpp_battery_0/capacity": "15\n",
            "/sys/class/power_supply/BAT0/type": "Battery\n",
            "/sys/class/power_supply/BAT0/capacity": "87\n",
        },
    )

    assert LinuxInventory(tmp_path).battery_percent() == 87


# -- encryption ----------------------------------------------------------------------------------


def mountinfo(major_minor: str, source: str, fstype: str = "ext4") -> str:
    return (
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
        f"27 1 {major_minor} / / rw,relatime shared:1 - {fstype} {source} rw\n"
        f"30 27 0:27 / /home rw,relatime - {fstype} {source} rw\n"
    )


def block_device(root, name: str, major_minor: str, *, dm_uuid: str | None = None, slaves=()) -> None:
    device = root / "sys" / "devices" / "virtual" / "block" / name
    (device / "slaves").mkdir(parents=True)
    if dm_uuid is not None:
        (device / "dm").mkdir()
        (device / "dm" / "uuid").write_text(dm_uuid + "\n")
    for slave in slaves:
        (device / "slaves" / slave).symlink_to(root / "sys" / "devices" / "virtual" / "block" / slave)
    for link in (root / "sys" / "dev" / "block" / major_minor, root / "sys" / "class" / "block" / name):
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(device)


def test_root_on_lvm_on_luks_is_encrypted(tmp_path):
    block_device(tmp_path, "nvme0n1p3", "259:3")
    block_device(
        tmp_path, "dm-0", "253:0", dm_uuid="CRYPT-LUKS2-6f1c0c1e8a3e4a4b9a531c1d4f0f5e11-luks", slaves=["nvme0n1p3"]
    )
    block_device(tmp_path, "dm-1", "253:1", dm_uuid="LVM-abcdef", slaves=["dm-0"])
    fake_host(tmp_path, {"/proc/self/mountinfo": mountinfo("253:1", "/dev/mapper/vg-root")})

    assert LinuxInventory(tmp_path, run=no_tools).encrypted() is True


def test_root_on_a_plain_partition_is_not_encrypted(tmp_path):
    block_device(tmp_path, "sda2", "8:2")
    block_device(tmp_path, "dm-0", "253:0", dm_uuid="LVM-abcdef", slaves=["sda2"])
    fake_host(tmp_path, {"/proc/self/mountinfo": mountinfo("253:0", "/dev/mapper/vg-root")})

    assert LinuxInventory(tmp_path, run=no_tools).encrypted() is False


def test_btrfs_root_is_found_through_its_source_device(tmp_path):
    block_device(tmp_path, "dm-0", "253:0", dm_uuid="CRYPT-LUKS2-abc-luks-root")
    (tmp_path / "dev" / "mapper").mkdir(parents=True)
    (tmp_path / "dev" / "dm-0").write_text("")
    (tmp_path / "dev" / "mapper" / "luks-root").symlink_to(tmp_path / "dev" / "dm-0")
    fake_host(tmp_path, {"/proc/self/mountinfo": mountinfo("0:35", "/dev/mapper/luks-root", "btrfs")})

    assert LinuxInventory(tmp_path, run=no_tools).encrypted() is True


LSBLK_CRYPT = {
    "blockdevices": [
        {
            "name": "nvme0n1",
            "type": "disk",
            "mountpoint": None,
            "children": [
                {"name": "nvme0n1p1", "type": "part", "mountpoint": "/boot/efi"},
                {
                    "name": "nvme0n1p2",
                    "type": "part",
                    "mountpoint": None,
                    "children": [{"name": "luks-root", "type": "crypt", "mountpoints": ["/", "/home"]}],
                },
            ],
        }
    ]
}
LSBLK_PLAIN = {"blockdevices": [{"name": "vda", "type": "disk", "mountpoint": "/"}]}
LSBLK_CONTAINER = {"blockdevices": [{"name": "vda", "type": "disk", "mountpoint": None}]}


@pytest.mark.parametrize(
    ("lsblk", "expected"),
    [(LSBLK_CRYPT, True), (LSBLK_PLAIN, False), (LSBLK_CONTAINER, None), ("not json", None), (None, None)],
)
def test_without_a_visible_root_device_lsblk_decides(tmp_path, lsblk, expected):
    fake_host(tmp_path, {"/proc/self/mountinfo": mountinfo("0:52", "overlay", "overlay")})
    output = json.dumps(lsblk) if isinstance(lsblk, dict) else lsblk

    def run(argv):
        assert argv[0] == "lsblk"
        return output

    assert LinuxInventory(tmp_path, run=run).encrypted() is expected


def test_a_container_without_lsblk_omits_encryption(tmp_path):
    fake_host(tmp_path, {"/proc/self/mountinfo": mountinfo("0:52", "overlay", "overlay")})

    assert "encrypted" not in LinuxInventory(tmp_path, run=no_tools, which=no_which).collect()


# -- tools ---------------------------------------------------------------------------------------


def test_package_count_from_dpkg_counts_installed_packages_only(tmp_path):
    statuses = "install ok installed\ninstall ok installed\ndeinstall ok config-files\ninstall ok installed\n"

    def run(argv):
        return statuses if argv[0] == "dpkg-query" else None

    assert LinuxInventory(tmp_path, run=run).installed_package_count() == 3


def test_package_count_falls_back_to_rpm(tmp_path):
    def run(argv):
        return "bash-5.1.8-9.el9.x86_64\nkernel-5.14.0-611.el9.x86_64\n" if argv[0] == "rpm" else None

    assert LinuxInventory(tmp_path, run=run).installed_package_count() == 2


@pytest.mark.parametrize(("output", "expected"), [("true\n", True), ("false\n", False), ("", None), (None, None)])
def test_screen_lock_from_gsettings_on_a_gnome_desktop(tmp_path, output, expected):
    probes = LinuxInventory(tmp_path, run=lambda argv: output, which=lambda name: f"/usr/bin/{name}")

    assert probes.screen_lock_enabled() is expected


def test_screen_lock_is_omitted_without_a_desktop(tmp_path):
    probes = LinuxInventory(tmp_path, run=lambda argv: "true\n", which=no_which)

    assert probes.screen_lock_enabled() is None


# -- the protocol's table ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inventory", "problem"),
    [
        ({"distribution": "Debian"}, "distribution: not a protocol field"),
        ({"encrypted": 1}, "encrypted: not a boolean"),
        ({"memory_mb": True}, "memory_mb: not an integer"),
        ({"memory_mb": 1.5}, "memory_mb: not an integer"),
        ({"battery_percent": 101}, "battery_percent: 101 is outside"),
        ({"passcode_quality": "strong"}, "passcode_quality: 'strong' is not one of"),
        ({"installed_apps": [{"identifier": "a", "name": "A"}]}, "installed_apps.0: not an object with"),
        ({"cpu": None}, "cpu: not a str"),
    ],
)
def test_validate_inventory_finds_what_the_protocol_refuses(inventory, problem):
    problems = validate_inventory(inventory)

    assert len(problems) == 1 and problems[0].startswith(problem)
