"""The simulator's emulated devices: identities, inventories, drift and answers to commands.

``generate_fleet`` builds N devices of every platform with realistic, varied identities (models,
OS versions, serial numbers, IMEIs with a valid Luhn digit), inventories (installed apps, storage,
encryption and passcode mostly good, a few bad) and behaviour. Everything is drawn from random
generators seeded by the fleet seed, so the same seed gives the same fleet.

Configuration profiles act on a device as they would on the real thing: a passcode profile makes
the simulated user choose a passcode that meets it, an encryption profile turns encryption on (on
an iPhone or iPad, encryption follows the passcode), and every installed profile is reported back
in the inventory (``profiles``). Apps are installed and removed as the portal asks
(``install_app``/``remove_app``): the next inventory's ``installed_apps`` shows the change, and now
and then an install fails with a reason the platform would give (``install_failure_rate``), or
because the device is out of storage. ``PlannedDrift`` (``--drift``) makes a chosen device drift in a
chosen way at a chosen check-in, so a demo can show a device falling out of compliance on cue.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from agent import catalogue
from agent.catalogue import APPS, HARDWARE, SERIAL_FORMATS, TAC, Hardware, OsRelease
from agent.client import PLATFORMS
from agent.executor import acknowledged, error, not_now
from agent.inventory import MACHINE_ID_SERIAL_PREFIX
from agent.packages import package_download
from agent.wipe import WIPE_COMMANDS, simulated_wipe

DEFAULT_PLATFORM_MIX = {"ios": 25, "ipados": 5, "android": 30, "windows": 20, "macos": 10, "linux": 10}
DEFAULT_CHECKIN_INTERVAL = 900
ACKNOWLEDGED_COMMANDS = frozenset({"sync", "lock", "restart", "rename", "reset_passcode"})
PROFILE_COMMANDS = frozenset({"install_profile", "remove_profile", "notify", "install_app", "remove_app"})
DEFAULT_INSTALL_FAILURE_RATE = 0.02
# The package format each platform installs (a line-of-business app of another format cannot be).
PACKAGE_FORMATS = {"ios": "ipa", "ipados": "ipa", "android": "apk", "windows": "msi", "macos": "pkg", "linux": "deb"}
# Size a store app takes when the store does not say (MiB): enough to matter on a full device.
STORE_APP_MB = 180
# What goes wrong now and then when an app is installed, in the words each platform reports it.
INSTALL_FAILURES = {
    "ios": (
        "The App Store could not be reached (NSURLErrorDomain -1001: the request timed out). It is tried again.",
        "The user cancelled the installation when asked to sign in to the App Store.",
    ),
    "android": (
        "Google Play could not download the app (error 927: the Play Store was updating itself).",
        "Installation failed: INSTALL_FAILED_VERIFICATION_FAILURE (Play Protect is still checking the package).",
    ),
    "windows": (
        "The installer exited with code 1618: another installation is already in progress.",
        "The Microsoft Store could not download the app (0x80072EE2: the operation timed out).",
    ),
    "macos": (
        "installer: the install failed (another installation is in progress: softwareupdated).",
        "The Mac App Store could not be reached (the request timed out).",
    ),
    "linux": (
        "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2214 (unattended-upgr).",
        "dpkg: error processing archive: dependency problems, leaving it unconfigured.",
    ),
}
INSTALL_FAILURES["ipados"] = INSTALL_FAILURES["ios"]
NO_STORAGE = {
    "ios": "There is not enough storage to install the app. Free up space in Settings > General > Storage.",
    "ipados": "There is not enough storage to install the app. Free up space in Settings > General > Storage.",
    "android": "Installation failed: INSTALL_FAILED_INSUFFICIENT_STORAGE. Free up space and try again.",
    "windows": "0x80070070: there is not enough space on the disk.",
    "macos": "There is not enough free disk space to install the app.",
    "linux": "E: You don't have enough free space in /var/cache/apt/archives/.",
}
# What a device reports as its passcode quality, weakest first; a fingerprint or face unlock sits
# on top of a numeric passcode (the portal ranks them the same way).
PASSCODE_RANK = {"none": 0, "numeric": 1, "biometric": 1, "alphanumeric": 2, "complex": 3}
# The minimum length a passcode of each quality has when a profile asks for no length.
PASSCODE_MIN_LENGTH = {"numeric": 4, "alphanumeric": 6, "complex": 8}
MAX_NOTIFICATIONS = 20  # the device keeps the latest ones, as a phone's notification centre does
POSTPONABLE_COMMANDS = {
    "lock": "The device is in a call; it will lock when the call ends.",
    "restart": "The user postponed the restart; try again later.",
    "reset_passcode": "The device is busy; try again later.",
}
_MIB_PER_GB = 1000**3 / 1024**2
_PLATFORM_LABELS = {
    "ios": "iOS",
    "ipados": "iPadOS",
    "android": "Android",
    "windows": "Windows",
    "macos": "macOS",
    "linux": "Linux",
}


# -- identities ---------------------------------------------------------------------------------


# -- planned drift ------------------------------------------------------------------------------

# Every way a device drifts, with what the device must be able to report for it to make sense.
DRIFT_EVENTS = (
    "storage",
    "os_update",
    "battery",
    "app_install",
    "app_remove",
    "app_update",
    "packages",
    "encryption_on",
    "encryption_off",
    "passcode_set",
    "passcode_removed",
)
_DRIFT_SPEC = re.compile(r"^(?:(?P<device>[a-z0-9]+):)?(?P<event>[a-z_]+)(?:@(?P<checkin>\d+))?$")


@dataclass(frozen=True)
class PlannedDrift:
    """``device`` (a fleet index, or a platform: its first device) drifts by ``event`` at check-in ``checkin``.

    Check-ins are counted from enrolment: 1 is the first check-in after it.
    """

    event: str
    device: str = "0"
    checkin: int = 1

    def describe(self) -> str:
        return f"{self.device}:{self.event}@{self.checkin}"


def parse_drift(text: str) -> PlannedDrift:
    """``"[DEVICE:]EVENT[@CHECKIN]"``, e.g. ``encryption_off``, ``windows:encryption_off@3``, ``4:passcode_removed``."""
    match = _DRIFT_SPEC.match(text.strip().lower())
    if not match:
        raise ValueError(
            f"'{text}' is not a drift; write [DEVICE:]EVENT[@CHECKIN], e.g. encryption_off or windows:encryption_off@3."
        )
    device, event, checkin = match.group("device") or "0", match.group("event"), match.group("checkin")
    if event not in DRIFT_EVENTS:
        raise ValueError(f"'{event}' is not a drift event; use one of {', '.join(DRIFT_EVENTS)}.")
    if not device.isdigit() and device not in PLATFORMS:
        raise ValueError(f"'{device}' is neither a device number nor a platform ({', '.join(PLATFORMS)}).")
    if checkin is not None and int(checkin) < 1:
        raise ValueError("A drift happens at check-in 1 (the first after enrolment) or later.")
    return PlannedDrift(event=event, device=device, checkin=int(checkin or 1))


def plan_drift(fleet: list[SimulatedDevice], plans: list[PlannedDrift]) -> list[tuple[SimulatedDevice, PlannedDrift]]:
    """Give each planned drift to its device; ``ValueError`` saying why when one cannot happen."""
    placed = []
    for plan in plans:
        if plan.device.isdigit():
            index = int(plan.device)
            if index >= len(fleet):
                raise ValueError(f"Drift {plan.describe()}: the fleet has devices 0 to {len(fleet) - 1} only.")
            device = fleet[index]
        else:
            device = next((d for d in fleet if d.platform == plan.device), None)
            if device is None:
                raise ValueError(f"Drift {plan.describe()}: the fleet has no {_PLATFORM_LABELS[plan.device]} device.")
        if not device.can_drift(plan.event):
            label = _PLATFORM_LABELS[device.platform]
            raise ValueError(f"Drift {plan.describe()}: device {device.index} ({label}) cannot report '{plan.event}'.")
        device.planned.append((plan.checkin, plan.event))
        placed.append((device, plan))
    return placed


def luhn_check_digit(digits: str) -> str:
    """The Luhn check digit to append to ``digits`` (as for an IMEI's first 14 digits)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # doubled: every second digit counting from the check digit's left
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def is_valid_imei(imei: str) -> bool:
    return len(imei) == 15 and imei.isdigit() and luhn_check_digit(imei[:14]) == imei[14]


def parse_platform_mix(text: str) -> dict[str, float]:
    """``"ios=30,android=30,linux=10"`` -> weights per platform (relative, need not add up to 100)."""
    mix: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, sep, weight = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in PLATFORMS:
            raise ValueError(f"'{part}' is not platform=weight; platforms are {', '.join(PLATFORMS)}.")
        try:
            value = float(weight)
        except ValueError:
            raise ValueError(f"The weight of {name} ('{weight}') is not a number.") from None
        if value < 0:
            raise ValueError(f"The weight of {name} cannot be negative.")
        mix[name] = mix.get(name, 0) + value
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("The platform mix gives no platform a weight above 0.")
    return mix


def platform_counts(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Split ``total`` devices by weight, exactly (largest remainder), in ``PLATFORMS`` order."""
    weight_sum = sum(mix.values())
    shares = {name: total * mix.get(name, 0) / weight_sum for name in PLATFORMS}
    counts = {name: int(share) for name, share in shares.items()}
    by_remainder = sorted(PLATFORMS, key=lambda name: (-(shares[name] - counts[name]), PLATFORMS.index(name)))
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return {name: count for name, count in counts.items() if count}


@dataclass
class SimulatedDevice:
    """One emulated device: identity, current inventory state and what it does with commands.

    All randomness (initial state, drift, command outcomes) comes from its own ``rng``, seeded from
    the fleet seed and its index, so a device behaves the same whichever thread runs it.
    """

    index: int
    platform: str
    hardware: Hardware
    track: tuple[OsRelease, ...]
    os_index: int
    name: str
    serial_number: str
    imei: str
    encrypted: bool
    passcode_set: bool | None
    passcode_quality: str | None
    passcode_length: int | None
    jailbroken: bool | None
    total_storage_mb: int
    free_storage_mb: int
    memory_mb: int
    battery_percent: int | None
    screen_lock_enabled: bool | None
    installed_apps: list[dict] | None
    installed_package_count: int | None
    transport: str
    rng: random.Random = field(repr=False)
    not_now_rate: float = 0.05
    install_failure_rate: float = DEFAULT_INSTALL_FAILURE_RATE
    device_id: str | None = None
    secret: str | None = field(default=None, repr=False)
    server_interval: int = DEFAULT_CHECKIN_INTERVAL
    stopped: str = ""  # why it stopped talking to the server ("" while it runs)
    checkins: int = 0
    sync_requested: bool = False
    immediate_checkins: int = 0
    # Installed configuration profiles by profile id: identifier, version, kind, name.
    profiles: dict[str, dict] = field(default_factory=dict)
    notifications: list[dict] = field(default_factory=list)
    planned: list[tuple[int, str]] = field(default_factory=list)  # (check-in number, drift event)
    managed_apps: set[str] = field(default_factory=set)  # identifiers installed through install_app
    retire_leftover_rate: float = 0.0  # chance a retire leaves one managed app behind (agent.wipe)
    wiped: str = ""  # "retire", "wipe" or "wipe (keeping enrolment)" once done: it stops checking in

    @property
    def release(self) -> OsRelease:
        return self.track[self.os_index]

    def identity(self) -> dict:
        """The enrolment request's ``device`` object."""
        return {
            "platform": self.platform,
            "name": self.name,
            "serial_number": self.serial_number,
            "imei": self.imei,
            "model": self.hardware.model,
            "manufacturer": self.hardware.manufacturer,
            "os_version": self.release.version,
        }

    def inventory(self) -> dict:
        """What the device reports now, in protocol fields (only those its platform can tell)."""
        release = self.release
        inventory: dict = {
            "name": self.name,
            "os_version": release.version,
            "model": self.hardware.model,
            "manufacturer": self.hardware.manufacturer,
            "serial_number": self.serial_number,
            "encrypted": self.encrypted,
            "free_storage_mb": self.free_storage_mb,
            "total_storage_mb": self.total_storage_mb,
            "memory_mb": self.memory_mb,
            "cpu": self.hardware.cpu,
        }
        optional = {
            "os_build": release.build,
            "kernel": release.kernel,
            "imei": self.imei,
            "passcode_set": self.passcode_set,
            "passcode_quality": self.passcode_quality,
            "passcode_length": self.passcode_length,
            "jailbroken": self.jailbroken,
            "battery_percent": self.battery_percent,
            "screen_lock_enabled": self.screen_lock_enabled,
            "installed_package_count": self.installed_package_count,
        }
        inventory.update({key: value for key, value in optional.items() if value not in (None, "")})
        if self.platform == "linux":
            inventory["hostname"] = self.name
        if self.installed_apps is not None:
            inventory["installed_apps"] = [dict(app) for app in self.installed_apps]
        if self.profiles:
            inventory["profiles"] = sorted(
                ({"identifier": p["identifier"], "version": p["version"]} for p in self.profiles.values()),
                key=lambda p: p["identifier"],
            )
        return inventory

    # -- drift --------------------------------------------------------------------------------

    def drift(self, rate: float) -> str:
        """Maybe change something, as a real device does between check-ins; what changed ("" if nothing)."""
        rng = self.rng
        if rng.random() >= rate:
            return ""
        events: list[tuple[str, int]] = [("storage", 15)]
        if self.os_index + 1 < len(self.track):
            events.append(("os_update", 25))
        if self.battery_percent is not None:
            events.append(("battery", 15))
        if self.installed_apps is not None:
            events += [("app_install", 15), ("app_remove", 8), ("app_update", 15)]
        if self.installed_package_count is not None:
            events.append(("packages", 20))
        events.append(("encryption_on", 6) if not self.encrypted else ("encryption_off", 2))
        if self.passcode_set is not None:
            events.append(("passcode_set", 6) if not self.passcode_set else ("passcode_removed", 2))
        event = rng.choices([name for name, _ in events], weights=[weight for _, weight in events])[0]
        getattr(self, f"_drift_{event}")()
        return event

    def can_drift(self, event: str) -> bool:
        """Whether ``event`` makes sense on this device (it reports what the event changes)."""
        needs = {
            "os_update": self.os_index + 1 < len(self.track),
            "battery": self.battery_percent is not None,
            "app_install": self.installed_apps is not None,
            "app_remove": self.installed_apps is not None,
            "app_update": self.installed_apps is not None,
            "packages": self.installed_package_count is not None,
            "passcode_set": self.passcode_set is not None,
            "passcode_removed": self.passcode_set is not None,
        }
        return event in DRIFT_EVENTS and needs.get(event, True)

    def planned_drift(self) -> list[str]:
        """Apply the planned drift due at the check-in about to happen; the events applied."""
        number = self.checkins + 1
        due = [event for at, event in self.planned if at <= number]
        self.planned = [(at, event) for at, event in self.planned if at > number]
        for event in due:
            getattr(self, f"_drift_{event}")()
        return due

    def _drift_storage(self) -> None:
        change = int(self.rng.uniform(-0.03, 0.03) * self.total_storage_mb)
        self.free_storage_mb = max(0, min(self.total_storage_mb, self.free_storage_mb + change))

    def _drift_os_update(self) -> None:
        self.os_index += 1
        if self.platform in ("ios", "ipados") and self.passcode_set:
            self.encrypted = True

    def _drift_battery(self) -> None:
        self.battery_percent = self.rng.randint(8, 100)

    def _drift_app_install(self) -> None:
        installed = {app["identifier"] for app in self.installed_apps}
        choices = [app for app in APPS[self.platform] if app[0] not in installed]
        if choices:
            identifier, name, versions = self.rng.choice(choices)
            self.installed_apps.append({"identifier": identifier, "name": name, "version": versions[1]})

    def _drift_app_remove(self) -> None:
        core = {app[0] for app in APPS[self.platform][:3]}
        removable = [app for app in self.installed_apps if app["identifier"] not in core]
        if removable:
            self.installed_apps.remove(self.rng.choice(removable))

    def _drift_app_update(self) -> None:
        latest = {identifier: versions[1] for identifier, _, versions in APPS[self.platform]}
        outdated = [app for app in self.installed_apps if app["version"] != latest[app["identifier"]]]
        if outdated:
            app = self.rng.choice(outdated)
            app["version"] = latest[app["identifier"]]

    def _drift_packages(self) -> None:
        self.installed_package_count = max(1, self.installed_package_count + self.rng.randint(-3, 12))

    def _drift_encryption_on(self) -> None:
        self.encrypted = True

    def _drift_encryption_off(self) -> None:
        self.encrypted = False

    def _drift_passcode_set(self) -> None:
        self.passcode_set = True
        self.passcode_quality, self.passcode_length = _passcode(self.rng, self.platform)
        if self.platform in ("ios", "ipados"):
            self.encrypted = True  # Data Protection follows the passcode

    def _drift_passcode_removed(self) -> None:
        self.passcode_set, self.passcode_quality, self.passcode_length = False, "none", 0
        if self.platform in ("ios", "ipados"):
            self.encrypted = False

    # -- commands -----------------------------------------------------------------------------

    def execute(self, command: dict) -> dict | None:
        """The result of a command: the usual ones acknowledged (now and then ``not_now``), others an error."""
        command_id = command.get("id") if isinstance(command, dict) else None
        if not isinstance(command_id, str) or not command_id:
            return None
        kind = command.get("type")
        payload = command.get("payload") if isinstance(command.get("payload"), dict) else {}
        if kind in PROFILE_COMMANDS:
            return getattr(self, f"_{kind}")(command_id, payload)
        if kind in WIPE_COMMANDS:
            return simulated_wipe(self, command_id, kind, payload)
        if kind not in ACKNOWLEDGED_COMMANDS:
            label = _PLATFORM_LABELS[self.platform]
            return error(command_id, f"This {label} device ({self.hardware.model}) cannot run '{kind}'.")
        if kind in POSTPONABLE_COMMANDS and self.rng.random() < self.not_now_rate:
            return not_now(command_id, POSTPONABLE_COMMANDS[kind])
        if kind == "rename":
            name = payload.get("name")
            if not isinstance(name, str) or not name.strip():
                return error(command_id, "The rename command has no name; send it again with the new name.")
            self.name = name.strip()
        elif kind == "sync":
            self.sync_requested = True
        elif kind == "reset_passcode" and self.passcode_set is not None:
            self.passcode_set = True
            self.passcode_quality, self.passcode_length = _passcode(self.rng, self.platform)
        return acknowledged(command_id)

    # -- configuration profiles ----------------------------------------------------------------

    def _install_profile(self, command_id: str, payload: dict) -> dict:
        """Install (or update) a profile: apply its settings as the device's user would, record it."""
        if payload.get("error"):
            return error(command_id, f"The portal could not build this profile: {payload['error']}")
        profile, version = payload.get("profile"), payload.get("version")
        if not isinstance(profile, str) or not profile or type(version) is not int:
            return error(command_id, "This install_profile command has no profile id or version; send it again.")
        settings = payload.get("settings") if isinstance(payload.get("settings"), dict) else {}
        skipped = {item.get("setting") for item in payload.get("not_applicable") or [] if isinstance(item, dict)}
        settings = {name: value for name, value in settings.items() if name not in skipped}
        kind = payload.get("kind")
        if kind == "passcode":
            self._apply_passcode(settings)
        elif kind == "encryption" and settings.get("require_encryption") is True:
            if self.platform in ("ios", "ipados"):
                # Data Protection: encrypted exactly when a passcode is set.
                self.encrypted = bool(self.passcode_set)
            elif self.platform == "linux" and not self.encrypted:
                return error(
                    command_id,
                    "The root file system is not encrypted. LUKS is set up when the disk is installed, so this "
                    "host must be reinstalled with encryption.",
                )
            else:
                self.encrypted = True
        self.profiles[profile] = {
            "identifier": str(payload.get("identifier") or profile),
            "version": version,
            "kind": kind,
            "name": str(payload.get("name") or ""),
        }
        return acknowledged(command_id)

    def _apply_passcode(self, settings: dict) -> None:
        if self.passcode_set is None:  # a Linux host: the agent reports no passcode
            return
        complexity = settings.get("complexity") if settings.get("complexity") in PASSCODE_MIN_LENGTH else None
        min_length = settings.get("min_length") if type(settings.get("min_length")) is int else 0
        if not (settings.get("require_passcode", True) or complexity or min_length):
            return
        if not self.passcode_set:
            self.passcode_set = True
            self.passcode_quality, self.passcode_length = _passcode(self.rng, self.platform)
        needed = PASSCODE_RANK.get(complexity, 1)
        if PASSCODE_RANK.get(self.passcode_quality or "none", 0) < needed:
            self.passcode_quality = complexity
            self.passcode_length = max(self.passcode_length or 0, PASSCODE_MIN_LENGTH[complexity])
        self.passcode_length = max(self.passcode_length or 0, min_length)
        if self.platform in ("ios", "ipados"):
            self.encrypted = True  # Data Protection follows the passcode

    def _remove_profile(self, command_id: str, payload: dict) -> dict:
        """Remove a profile; removing one that is not installed is done already (idempotent)."""
        profile = payload.get("profile")
        if not isinstance(profile, str) or not profile:
            return error(command_id, "This remove_profile command has no profile id; send it again.")
        self.profiles.pop(profile, None)
        return acknowledged(command_id)

    def _notify(self, command_id: str, payload: dict) -> dict:
        message = payload.get("message")
        if not isinstance(message, str) or not message.strip():
            return error(command_id, "This notification has no message; send it again with one.")
        title = payload.get("title") if isinstance(payload.get("title"), str) else ""
        self.notifications = [*self.notifications, {"title": title, "message": message}][-MAX_NOTIFICATIONS:]
        return acknowledged(command_id)

    # -- apps ------------------------------------------------------------------------------------

    def _install_app(self, command_id: str, payload: dict) -> dict:
        """Install (or update) an app from its store or its package; the next inventory lists it.

        A web link is added to the home screen and is no app: acknowledged, never in the inventory.
        """
        identifier, kind = payload.get("identifier"), payload.get("kind")
        name = str(payload.get("name") or identifier or "the app")
        if payload.get("error"):
            return error(command_id, f"The portal could not send {name}: {payload['error']}")
        if kind == "web":
            return acknowledged(command_id)
        if not isinstance(identifier, str) or not identifier:
            return error(command_id, f"The install_app command for {name} has no app identifier; send it again.")
        size_mb = STORE_APP_MB
        if kind == "lob":
            download = package_download(payload)
            wanted = PACKAGE_FORMATS[self.platform]
            if download.get("format") != wanted:
                label = _PLATFORM_LABELS[self.platform]
                return error(
                    command_id,
                    f"A .{download.get('format') or '?'} package cannot be installed on {label}; "
                    f"{label} installs .{wanted} packages.",
                )
            if not download.get("url") or not download.get("sha256"):
                return error(command_id, f"The package of {name} has no download address or checksum; send it again.")
            size = download.get("size")
            size_mb = max(1, size // (1024 * 1024)) if type(size) is int and size > 0 else 1
        if self.free_storage_mb < size_mb + 200:  # a device keeps some room free for itself
            return error(command_id, NO_STORAGE[self.platform])
        if self.rng.random() < self.install_failure_rate:
            return error(command_id, self.rng.choice(INSTALL_FAILURES[self.platform]))
        version = payload.get("version") if isinstance(payload.get("version"), str) and payload.get("version") else ""
        if not version:
            known = {app[0]: app[2][1] for app in APPS.get(self.platform, ())}
            version = known.get(identifier, "1.0")
        if self.installed_apps is None:
            self.installed_apps = []  # a Linux host reports the packages it was asked to manage
        current = next((app for app in self.installed_apps if app["identifier"] == identifier), None)
        if current is None:
            self.installed_apps.append({"identifier": identifier, "name": name, "version": version})
            self.free_storage_mb -= size_mb
        else:
            current["version"] = version
        self.managed_apps.add(identifier)
        self.sync_requested = True  # report the new inventory at once, as a device does after an install
        return acknowledged(command_id, {"version": version})

    def _remove_app(self, command_id: str, payload: dict) -> dict:
        """Remove an app; removing one that is not installed is done already (idempotent)."""
        identifier = payload.get("identifier")
        if payload.get("kind") == "web":
            return acknowledged(command_id)
        if not isinstance(identifier, str) or not identifier:
            return error(command_id, "This remove_app command has no app identifier; send it again.")
        installed = self.installed_apps or []
        kept = [app for app in installed if app["identifier"] != identifier]
        self.managed_apps.discard(identifier)
        if len(kept) != len(installed):
            self.installed_apps = kept
            self.free_storage_mb = min(self.total_storage_mb, self.free_storage_mb + STORE_APP_MB)
            self.sync_requested = True
        return acknowledged(command_id)


def _passcode(rng: random.Random, platform: str) -> tuple[str, int]:
    if platform in ("ios", "ipados"):
        quality = rng.choices(["biometric", "numeric", "alphanumeric"], weights=[55, 35, 10])[0]
        return quality, 6 if quality != "alphanumeric" else rng.randint(8, 14)
    if platform == "android":
        quality = rng.choices(["biometric", "numeric", "alphanumeric", "complex"], weights=[45, 35, 12, 8])[0]
        return quality, rng.randint(4, 8) if quality in ("numeric", "biometric") else rng.randint(6, 14)
    quality = rng.choices(["complex", "alphanumeric", "biometric"], weights=[50, 30, 20])[0]
    return quality, rng.randint(8, 20)


def _serial(rng: random.Random, hardware: Hardware) -> str:
    if hardware.serial == "vm":
        return MACHINE_ID_SERIAL_PREFIX + "".join(rng.choices("0123456789abcdef", k=20))
    prefix, alphabet, length = SERIAL_FORMATS[hardware.serial]
    return prefix + "".join(rng.choices(alphabet, k=length))


def _imei(rng: random.Random, manufacturer: str) -> str:
    body = rng.choice(TAC[manufacturer]) + "".join(rng.choices("0123456789", k=6))
    return body + luhn_check_digit(body)


def _device_name(rng: random.Random, hardware: Hardware) -> str:
    first = rng.choice(catalogue.FIRST_NAMES)
    if hardware.kind in ("server", "vm"):
        return f"{rng.choice(catalogue.SERVER_ROLES)}-{rng.randint(1, 40):02d}"
    if hardware.platform == "linux":
        return f"{first.lower()}-{hardware.short}"
    if hardware.platform == "windows":
        return f"{'LT' if hardware.kind == 'laptop' else 'WS'}-{rng.randint(10000, 99999)}"
    return f"{first}'s {hardware.short}"


def _new_device(
    index: int,
    platform: str,
    seed: object,
    not_now_rate: float,
    install_failure_rate: float = DEFAULT_INSTALL_FAILURE_RATE,
) -> SimulatedDevice:
    rng = random.Random(f"{seed}:{index}")  # noqa: S311 -- simulation, not security
    models = [hw for hw in HARDWARE if hw.platform == platform]
    hardware = rng.choices(models, weights=[hw.weight for hw in models])[0]
    if platform == "linux":
        tracks = catalogue.LINUX_SERVER_TRACKS if hardware.kind in ("server", "vm") else catalogue.LINUX_DESKTOP_TRACKS
        track = rng.choice(tracks)
    else:
        track = hardware.track
    # Most devices run one of the two newest releases of their track; a few lag behind.
    os_index = max(0, len(track) - 1 - min(len(track) - 1, rng.choices([0, 1, 2, 3], weights=[45, 35, 12, 8])[0]))
    total = int(rng.choice(hardware.storage_gb) * _MIB_PER_GB * 0.95)
    mobile = platform in ("ios", "ipados", "android")
    desktop_os = platform in ("windows", "macos") or (platform == "linux" and hardware.kind in ("laptop", "desktop"))
    if mobile:
        passcode_set = rng.random() < (0.96 if platform != "android" else 0.93)
        quality, length = _passcode(rng, platform) if passcode_set else ("none", 0)
        encrypted = passcode_set if platform != "android" else rng.random() < 0.98
        jailbroken = rng.random() < (0.005 if platform != "android" else 0.01)
    elif platform in ("windows", "macos"):
        passcode_set = rng.random() < 0.98
        quality, length = _passcode(rng, platform) if passcode_set else ("none", 0)
        encrypted = rng.random() < (0.92 if platform == "windows" else 0.95)
        jailbroken = None
    else:  # Linux reports what the real agent can tell: no passcode fields
        passcode_set, quality, length, jailbroken = None, None, None, None
        encrypted = rng.random() < {"laptop": 0.88, "desktop": 0.7, "server": 0.4}.get(hardware.kind, 0.1)
    apps = None
    if platform in APPS:
        catalogue_apps = APPS[platform]
        chosen = [app for app in catalogue_apps[:3] if rng.random() < 0.9]
        chosen += rng.sample(catalogue_apps[3:], k=rng.randint(3, min(12, len(catalogue_apps) - 3)))
        apps = [{"identifier": i, "name": n, "version": rng.choice(v)} for i, n, v in chosen]
    packages = None
    if platform == "linux":
        packages = rng.randint(1700, 2900) if desktop_os else rng.randint(420, 950)
    return SimulatedDevice(
        index=index,
        platform=platform,
        hardware=hardware,
        track=track,
        os_index=os_index,
        name=_device_name(rng, hardware),
        serial_number=_serial(rng, hardware),
        imei=_imei(rng, hardware.manufacturer) if rng.random() < hardware.cellular else "",
        encrypted=encrypted,
        passcode_set=passcode_set,
        passcode_quality=quality,
        passcode_length=length,
        jailbroken=jailbroken,
        total_storage_mb=total,
        free_storage_mb=int(total * rng.uniform(0.08, 0.75)),
        memory_mb=rng.choice(hardware.memory_mb),
        battery_percent=rng.randint(12, 100) if hardware.kind in ("phone", "tablet", "laptop") else None,
        screen_lock_enabled=(rng.random() < 0.95) if desktop_os else None,
        installed_apps=apps,
        installed_package_count=packages,
        transport="connected" if mobile and rng.random() < 0.05 else "over_the_air",
        rng=rng,
        not_now_rate=not_now_rate,
        install_failure_rate=install_failure_rate,
    )


def generate_fleet(
    count: int,
    platform_mix: dict[str, float] | None = None,
    seed: object = 0,
    *,
    not_now_rate: float = 0.05,
    install_failure_rate: float = DEFAULT_INSTALL_FAILURE_RATE,
) -> list[SimulatedDevice]:
    """``count`` devices split by ``platform_mix``, shuffled; the same seed gives the same fleet.

    ``install_failure_rate`` is the chance an app install fails for a reason the platform gives.

    Serial numbers and IMEIs are unique within the fleet (the portal allows one live device each).
    """
    if count < 0:
        raise ValueError("The number of devices cannot be negative.")
    if not 0 <= install_failure_rate <= 1:
        raise ValueError("The install failure rate is a chance between 0 and 1.")
    counts = platform_counts(count, platform_mix or DEFAULT_PLATFORM_MIX) if count else {}
    platforms = [name for name, n in counts.items() for _ in range(n)]
    random.Random(f"{seed}:order").shuffle(platforms)  # noqa: S311 -- simulation, not security
    fleet, serials, imeis = [], set(), set()
    for index, platform in enumerate(platforms):
        device = _new_device(index, platform, seed, not_now_rate, install_failure_rate)
        while device.serial_number in serials or (device.imei and device.imei in imeis):
            device.serial_number = _serial(device.rng, device.hardware)
            if device.imei:
                device.imei = _imei(device.rng, device.hardware.manufacturer)
        serials.add(device.serial_number)
        if device.imei:
            imeis.add(device.imei)
        fleet.append(device)
    return fleet
