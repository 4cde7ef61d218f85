"""Inventory of the real Linux host, in the fields the protocol's Inventory table lists.

Every probe tolerates missing files and tools (containers, minimal hosts, non-root agents) and
never raises: a value the host cannot tell is left out rather than guessed. ``INVENTORY_FIELDS``
and ``validate_inventory`` describe the protocol's fields, so the simulator and the tests check
what they send against the same table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The protocol's Inventory table: field -> JSON type. Nothing else may be sent.
INVENTORY_FIELDS: dict[str, type] = {
    "name": str,
    "os_version": str,
    "os_build": str,
    "model": str,
    "manufacturer": str,
    "serial_number": str,
    "imei": str,
    "encrypted": bool,
    "passcode_set": bool,
    "passcode_quality": str,
    "passcode_length": int,
    "jailbroken": bool,
    "free_storage_mb": int,
    "total_storage_mb": int,
    "memory_mb": int,
    "battery_percent": int,
    "cpu": str,
    "kernel": str,
    "hostname": str,
    "installed_apps": list,
    "installed_package_count": int,
    "screen_lock_enabled": bool,
    "profiles": list,
}
PASSCODE_QUALITIES = ("none", "numeric", "alphanumeric", "complex", "biometric")
APP_FIELDS = ("identifier", "name", "version")
MAX_INSTALLED_APPS = 2000
MAX_PROFILES = 500
# The enrolment request's ``device`` object.
DEVICE_FIELDS = ("platform", "name", "serial_number", "imei", "model", "manufacturer", "os_version")
_RANGES = {"passcode_length": (0, 64), "battery_percent": (0, 100)}
_NON_NEGATIVE = ("free_storage_mb", "total_storage_mb", "memory_mb", "installed_package_count")

# Serial fallback: marked so nobody mistakes it for a vendor serial number.
MACHINE_ID_SERIAL_PREFIX = "machine-id-"
# Placeholders firmware vendors leave in DMI tables instead of a real value.
_DMI_PLACEHOLDERS = {
    "",
    "0",
    "0123456789",
    "123456789",
    "default string",
    "invalid",
    "n/a",
    "na",
    "none",
    "not applicable",
    "not available",
    "not specified",
    "o.e.m.",
    "oem",
    "system manufacturer",
    "system product name",
    "system serial number",
    "system version",
    "chassis serial number",
    "to be filled by o.e.m.",
    "type1productconfigid",
    "unknown",
}
_MIB = 1024 * 1024


def validate_inventory(inventory: Any) -> list[str]:
    """What is wrong with ``inventory`` against the protocol's table (an empty list if nothing)."""
    if not isinstance(inventory, dict):
        return ["inventory is not an object"]
    problems = []
    for field, value in inventory.items():
        expected = INVENTORY_FIELDS.get(field)
        if expected is None:
            problems.append(f"{field}: not a protocol field")
        elif expected is bool and type(value) is not bool:
            problems.append(f"{field}: not a boolean")
        elif expected is int and (type(value) is not int):
            problems.append(f"{field}: not an integer")
        elif expected in (str, list) and not isinstance(value, expected):
            problems.append(f"{field}: not a {expected.__name__}")
        elif field in _RANGES and not _RANGES[field][0] <= value <= _RANGES[field][1]:
            problems.append(f"{field}: {value} is outside {_RANGES[field]}")
        elif field in _NON_NEGATIVE and value < 0:
            problems.append(f"{field}: negative")
        elif field == "passcode_quality" and value not in PASSCODE_QUALITIES:
            problems.append(f"passcode_quality: {value!r} is not one of {PASSCODE_QUALITIES}")
        elif field == "installed_apps":
            if len(value) > MAX_INSTALLED_APPS:
                problems.append(f"installed_apps: more than {MAX_INSTALLED_APPS} entries")
            for index, app in enumerate(value):
                if not isinstance(app, dict) or set(app) != set(APP_FIELDS):
                    problems.append(f"installed_apps.{index}: not an object with {', '.join(APP_FIELDS)}")
                elif not all(isinstance(app[key], str) for key in APP_FIELDS):
                    problems.append(f"installed_apps.{index}: values must be strings")
        elif field == "profiles":
            if len(value) > MAX_PROFILES:
                problems.append(f"profiles: more than {MAX_PROFILES} entries")
            for index, profile in enumerate(value):
                if not isinstance(profile, dict) or set(profile) != {"identifier", "version"}:
                    problems.append(f"profiles.{index}: not an object with identifier, version")
                elif not isinstance(profile["identifier"], str) or type(profile["version"]) is not int:
                    problems.append(f"profiles.{index}: identifier must be a string, version an integer")
    return problems


def device_identity(inventory: dict, platform_name: str = "linux") -> dict:
    """The enrolment request's ``device`` object, taken from an inventory ("" for what is unknown)."""
    identity = {field: str(inventory.get(field, "")) for field in DEVICE_FIELDS if field != "platform"}
    return {"platform": platform_name, **identity}


Runner = Callable[[list[str]], "str | None"]


def run_tool(argv: list[str], *, timeout: float = 10) -> str | None:
    """Run a host tool if it is installed; its stdout when it succeeds, else ``None``."""
    executable = shutil.which(argv[0])
    if executable is None:
        return None
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    try:
        completed = subprocess.run(  # noqa: S603 -- fixed argv, resolved executable, no shell
            [executable, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return completed.stdout if completed.returncode == 0 else None


class LinuxInventory:
    """Probes of one Linux host. ``root`` and ``run`` exist so tests can point them at a fake host."""

    def __init__(
        self,
        root: str | os.PathLike = "/",
        *,
        run: Runner = run_tool,
        which: Callable[[str], str | None] = shutil.which,
    ):
        self.root = Path(root)
        self.run = run
        self.which = which

    # -- helpers -----------------------------------------------------------------------------

    def _path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def _read(self, path: str | Path) -> str | None:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            return None

    def _dmi(self, name: str) -> str | None:
        value = self._read(self._path(f"/sys/class/dmi/id/{name}"))
        if value is None:
            return None
        value = " ".join(value.split())
        if value.lower() in _DMI_PLACEHOLDERS or len(set(value.lower()) - {" "}) <= 1:
            return None
        return value

    # -- probes (each returns None when it cannot tell) --------------------------------------

    def os_release(self) -> dict[str, str]:
        for path in ("/etc/os-release", "/usr/lib/os-release"):
            text = self._read(self._path(path))
            if text is not None:
                break
        else:
            return {}
        values = {}
        for line in text.splitlines():
            key, sep, raw = line.strip().partition("=")
            if not sep or key.startswith("#"):
                continue
            try:
                parts = shlex.split(raw)
            except ValueError:
                parts = [raw.strip("\"'")]
            values[key] = " ".join(parts)
        return values

    def os_version(self) -> str | None:
        """Distribution and version, e.g. ``Debian 12.11``, ``Ubuntu 24.04.3 LTS``, ``Fedora 43``."""
        release = self.os_release()
        distro = release.get("NAME") or release.get("ID", "").capitalize()
        distro = distro.replace(" GNU/Linux", "").strip()
        version_id = release.get("VERSION_ID", "")
        version = version_id
        detail = release.get("VERSION", "").split()
        if version_id and detail and detail[0].startswith(version_id) and re.fullmatch(r"[\d.]+", detail[0]):
            version = detail[0]
        if release.get("ID") == "debian" or "debian" in release.get("ID_LIKE", "").split():
            point = (self._read(self._path("/etc/debian_version")) or "").strip()
            if version_id and re.fullmatch(rf"{re.escape(version_id)}\.\d+", point):
                version = point
        if version and "LTS" in release.get("VERSION", "").split():
            version += " LTS"
        result = f"{distro} {version}".strip()
        return result or None

    def os_build(self) -> str | None:
        build = self.os_release().get("BUILD_ID", "")
        return build if build and build != "rolling" else None

    def kernel(self) -> str | None:
        return platform.release() or None

    def hostname(self) -> str | None:
        return platform.node() or None

    def name(self) -> str | None:
        """The pretty host name (``hostnamectl --pretty``) when set, else the host name."""
        for line in (self._read(self._path("/etc/machine-info")) or "").splitlines():
            key, _, raw = line.partition("=")
            if key.strip() == "PRETTY_HOSTNAME":
                try:
                    pretty = " ".join(shlex.split(raw))
                except ValueError:
                    pretty = raw.strip("\"' ")
                if pretty:
                    return pretty
        return self.hostname()

    def cpu(self) -> str | None:
        text = self._read(self._path("/proc/cpuinfo")) or ""
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() not in fields and value.strip():
                fields[key.strip()] = " ".join(value.split())
        for key in ("model name", "cpu model", "Processor", "cpu", "Hardware"):
            value = fields.get(key, "")
            if value and not value.isdigit():
                return value
        return None

    def memory_mb(self) -> int | None:
        for line in (self._read(self._path("/proc/meminfo")) or "").splitlines():
            if line.startswith("MemTotal:"):
                parts = line.split()
                if len(parts) >= 2 and parts[1].isdigit():
                    return int(parts[1]) // 1024
        return None

    def storage_mb(self) -> tuple[int, int] | None:
        """(free, total) of the root file system, in MiB."""
        try:
            usage = shutil.disk_usage(self.root)
        except OSError:
            return None
        return usage.free // _MIB, usage.total // _MIB

    def serial_number(self) -> str | None:
        """The DMI serial when readable (usually root only), else a value derived from machine-id.

        The fallback is a hash of ``/etc/machine-id`` (never the raw id, which should stay secret),
        stable across agent reinstalls and prefixed ``machine-id-`` so it reads as what it is.
        """
        serial = self._dmi("product_serial")
        if serial:
            return serial
        for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
            machine_id = (self._read(self._path(path)) or "").strip()
            if re.fullmatch(r"[0-9a-f]{32}", machine_id):
                digest = hashlib.sha256(b"mdm-agent serial:" + machine_id.encode()).hexdigest()
                return MACHINE_ID_SERIAL_PREFIX + digest[:20]
        return None

    def manufacturer(self) -> str | None:
        return self._dmi("sys_vendor")

    def model(self) -> str | None:
        # Lenovo puts the machine type ("21HDCTO1WW") in product_name and the name in product_version.
        vendor = (self.manufacturer() or "").upper()
        if vendor == "LENOVO":
            version = self._dmi("product_version")
            if version:
                return version
        return self._dmi("product_name")

    def _root_block_device(self) -> Path | None:
        """The sysfs directory of the block device mounted on ``/``, if it is one."""
        text = self._read(self._path("/proc/self/mountinfo")) or ""
        found = None
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 10 or fields[4] != "/":
                continue
            try:
                separator = fields.index("-", 6)
            except ValueError:
                continue
            if len(fields) > separator + 2:
                found = (fields[2], fields[separator + 2])  # the last mount on / is the visible one
        if found is None:
            return None
        major_minor, source = found
        if not major_minor.startswith("0:"):
            candidate = self._path(f"/sys/dev/block/{major_minor}")
            if candidate.exists():
                return candidate
        if source.startswith("/dev/"):
            try:
                name = os.path.basename(os.path.realpath(self._path(source)))
            except OSError:
                return None
            candidate = self._path(f"/sys/class/block/{name}")
            if candidate.exists():
                return candidate
        return None

    def _is_crypt_stack(self, device: Path, depth: int = 0) -> bool:
        """Whether ``device`` is, or sits on, a dm-crypt (LUKS) mapping."""
        if depth > 16:
            return False
        uuid = (self._read(device / "dm" / "uuid") or "").strip()
        if uuid.startswith("CRYPT-"):
            return True
        try:
            slaves = sorted((device / "slaves").iterdir())
        except OSError:
            return False
        return any(self._is_crypt_stack(slave.resolve(), depth + 1) for slave in slaves)

    def _encrypted_from_lsblk(self) -> bool | None:
        output = self.run(["lsblk", "-J", "-o", "NAME,TYPE,MOUNTPOINT"])
        if not output:
            return None
        try:
            devices = json.loads(output).get("blockdevices") or []
        except (ValueError, AttributeError):
            return None

        def walk(nodes: list, crypt_above: bool) -> bool | None:
            for node in nodes:
                if not isinstance(node, dict):
                    continue
                crypt = crypt_above or node.get("type") == "crypt"
                mounts = node.get("mountpoints") or [node.get("mountpoint")]
                if "/" in mounts:
                    return crypt
                below = walk(node.get("children") or [], crypt)
                if below is not None:
                    return below
            return None

        return walk(devices, False)

    def encrypted(self) -> bool | None:
        """Whether the root file system is on LUKS/dm-crypt; ``None`` when the root is not a block
        device this agent can see (a container's overlay, ZFS, NFS root)."""
        device = self._root_block_device()
        if device is not None:
            return self._is_crypt_stack(device.resolve())
        return self._encrypted_from_lsblk()

    def installed_package_count(self) -> int | None:
        queries = (
            (["dpkg-query", "-W", "-f", "${Status}\n"], lambda line: line.endswith(" installed")),
            (["rpm", "-qa"], bool),
            (["pacman", "-Qq"], bool),
            (["apk", "info"], bool),
        )
        for argv, counts in queries:
            output = self.run(argv)
            if output:
                count = sum(1 for line in output.splitlines() if counts(line.strip()))
                if count:
                    return count
        return None

    def screen_lock_enabled(self) -> bool | None:
        """GNOME's screen lock setting, only on a host with a GNOME desktop: elsewhere the key is
        just the schema's default and says nothing about a screen that does not exist."""
        if not any(self.which(shell) for shell in ("gnome-shell", "budgie-panel")):
            return None
        output = self.run(["gsettings", "get", "org.gnome.desktop.screensaver", "lock-enabled"])
        value = (output or "").strip()
        return {"true": True, "false": False}.get(value)

    def battery_percent(self) -> int | None:
        supplies = self._path("/sys/class/power_supply")
        try:
            entries = sorted(supplies.iterdir())
        except OSError:
            return None
        for entry in entries:
            if (self._read(entry / "type") or "").strip() != "Battery":
                continue
            if (self._read(entry / "scope") or "").strip() == "Device":  # a mouse's or a headset's
                continue
            capacity = (self._read(entry / "capacity") or "").strip()
            if capacity.isdigit():
                return max(0, min(100, int(capacity)))
        return None

    # -- the whole inventory -----------------------------------------------------------------

    def collect(self) -> dict:
        """Everything the host can tell, in protocol fields; probes that fail are left out."""
        inventory: dict[str, Any] = {}
        simple = {
            "name": self.name,
            "hostname": self.hostname,
            "os_version": self.os_version,
            "os_build": self.os_build,
            "kernel": self.kernel,
            "serial_number": self.serial_number,
            "manufacturer": self.manufacturer,
            "model": self.model,
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            "encrypted": self.encrypted,
            "installed_package_count": self.installed_package_count,
            "screen_lock_enabled": self.screen_lock_enabled,
            "battery_percent": self.battery_percent,
        }
        for field, probe in simple.items():
            value = _safely(probe)
            if value is not None and value != "":
                inventory[field] = value
        storage = _safely(self.storage_mb)
        if storage is not None:
            inventory["free_storage_mb"], inventory["total_storage_mb"] = storage
        return inventory


def _safely(probe: Callable[[], Any]) -> Any:
    try:
        return probe()
    except Exception:  # a probe must never take the agent down; the field is just left out
        logger.debug("inventory probe %s failed", getattr(probe, "__name__", probe), exc_info=True)
        return None


def collect_inventory(root: str | os.PathLike = "/") -> dict:
    """The real host's inventory (see ``LinuxInventory``)."""
    return LinuxInventory(root).collect()
