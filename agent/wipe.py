"""``retire`` (selective wipe) and ``wipe`` (factory reset), on a simulated device and on a Linux host.

Both answer ``acknowledged`` with the device's *post-wipe report*, what is still there afterwards,
so the portal can verify the removal::

    {"installed_apps": [{"identifier", "name", "version"}],
     "profiles": [{"identifier", "version"}],
     "corporate_data": {"present": bool, "details": ["..."]}}

A simulated device removes what the portal installed on ``retire`` (the apps of ``install_app``,
the profiles of ``install_profile`` and the corporate data they brought) and keeps the person's own
apps; ``wipe`` leaves nothing (the OS's built-in apps are never listed in ``installed_apps``). With a
``retire_leftover_rate`` a managed app now and then "fails to uninstall" and is reported still
there, so the portal's verification can fail honestly. After either the device stops checking in.

The Linux agent retires only what it recorded installing (``profiles.json``: the NetworkManager
keyfiles and CA certificates it wrote; ``apps.json``: the packages it installed), and only with
``--allow-changes``; without it the answer is ``error`` listing exactly what it would remove. A full
wipe is not something an agent does to a Linux host: always ``error``.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from agent.executor import _Step, acknowledged, error

if TYPE_CHECKING:
    from agent.executor import CommandExecutor
    from agent.fleet import SimulatedDevice

logger = logging.getLogger(__name__)

WIPE_COMMANDS = frozenset({"retire", "wipe"})
DEFAULT_RETIRE_LEFTOVER_RATE = 0.0
LINUX_WIPE_REFUSED = (
    "A full wipe (factory reset) is not available on a Linux host: this agent only removes what the portal "
    "installed. Retire the device instead, or reinstall the host by hand."
)
# Why a managed app fails to uninstall, in the words each platform reports it (the leftover mode).
UNINSTALL_FAILURES = {
    "ios": "the app is in use and iOS postponed its removal",
    "ipados": "the app is in use and iPadOS postponed its removal",
    "android": "DELETE_FAILED_INTERNAL_ERROR from the package installer",
    "windows": "the uninstaller exited with code 1603",
    "macos": "the app bundle is locked by a running process",
    "linux": "dpkg: error processing package (--remove): subprocess pre-removal script returned error exit status 1",
}


def post_wipe_report(apps: list[dict], profiles: list[dict], corporate_details: list[str]) -> dict:
    """The protocol's post-wipe report (``data`` of an acknowledged ``retire``/``wipe``)."""
    return {
        "installed_apps": [
            {"identifier": app["identifier"], "name": app.get("name") or app["identifier"], "version": app["version"]}
            for app in apps
        ],
        "profiles": sorted(
            ({"identifier": p["identifier"], "version": p["version"]} for p in profiles),
            key=lambda p: p["identifier"],
        ),
        "corporate_data": {"present": bool(corporate_details), "details": list(corporate_details)},
    }


# -- the simulator ----------------------------------------------------------------------------------


def simulated_wipe(device: SimulatedDevice, command_id: str, kind: str, payload: dict) -> dict:
    """Run ``retire`` or ``wipe`` on a simulated device; it stops checking in afterwards (``device.wiped``)."""
    if kind == "wipe":
        keep = payload.get("keep_enrollment", False)
        if not isinstance(keep, bool):
            return error(command_id, "The wipe command's keep_enrollment is not true or false; send it again.")
        if device.installed_apps is not None:
            device.installed_apps = []
        device.profiles, device.managed_apps, device.notifications = {}, set(), []
        if device.passcode_set is not None:
            device.passcode_set, device.passcode_quality, device.passcode_length = False, "none", 0
        device.free_storage_mb = int(device.total_storage_mb * 0.9)
        device.wiped = "wipe (keeping enrolment)" if keep else "wipe"
        return acknowledged(command_id, post_wipe_report([], [], []))
    listed = payload.get("apps") if isinstance(payload.get("apps"), list) else []
    device.managed_apps |= {item for item in listed if isinstance(item, str) and item}  # the portal's list, too
    leftover_apps: list[dict] = []
    leftover_profiles: list[dict] = []
    details: list[str] = []
    managed = [app for app in device.installed_apps or [] if app["identifier"] in device.managed_apps]
    if device.retire_leftover_rate and device.rng.random() < device.retire_leftover_rate:
        reason = UNINSTALL_FAILURES[device.platform]
        if managed:
            stuck = managed[0]
            leftover_apps.append(stuck)
            details.append(f"The data of {stuck['name']} (it could not be uninstalled: {reason}).")
        elif device.profiles:
            stuck_id = sorted(device.profiles)[0]
            leftover_profiles.append(device.profiles[stuck_id])
            name = device.profiles[stuck_id].get("name") or device.profiles[stuck_id]["identifier"]
            details.append(f"The settings of the profile {name} (it could not be removed).")
    kept_ids = {app["identifier"] for app in leftover_apps}
    if device.installed_apps is not None:
        device.installed_apps = [
            app for app in device.installed_apps if app["identifier"] not in device.managed_apps - kept_ids
        ]
    device.managed_apps &= kept_ids
    device.profiles = {key: value for key, value in device.profiles.items() if value in leftover_profiles}
    device.wiped = "retire"
    return acknowledged(command_id, post_wipe_report(leftover_apps, leftover_profiles, details))


def describe(device: SimulatedDevice, result: dict) -> str:
    """A log line for a retire or wipe: what it did, and what is left."""
    if result["status"] != "acknowledged":
        return f"{device.name} could not {device.wiped or 'wipe'}: {result.get('error', '')}"
    data = result.get("data") or {}
    left = [app["name"] for app in data.get("installed_apps", [])] + [p["identifier"] for p in data.get("profiles", [])]
    outcome = f"still holds {', '.join(left)}" if left else "is clean"
    if device.wiped == "retire":
        return f"{device.name} retired (selective wipe) and {outcome}; it stops checking in."
    if device.wiped == "wipe":
        return f"{device.name} was wiped (factory reset) and {outcome}; it stops checking in."
    return (
        f"{device.name} was wiped (factory reset, keeping its enrolment) and {outcome}; a real device would "
        "enrol again, the simulated one stops checking in."
    )


# -- the Linux agent --------------------------------------------------------------------------------


def linux_wipe(executor: CommandExecutor, command_id: str, payload: dict) -> dict:
    return error(command_id, LINUX_WIPE_REFUSED)


def linux_retire(executor: CommandExecutor, command_id: str, payload: dict) -> dict:
    """Remove exactly what the agent recorded installing: its profiles' files, then its packages."""
    profiles = dict(executor.profiles)
    steps = [_Step.removing(Path(path)) for record in profiles.values() for path in record.get("files", [])]
    reloads: list[tuple[str, ...]] = []
    for record in profiles.values():
        for argv in record.get("reload", []) if record.get("files") else []:
            if tuple(argv) not in reloads:
                reloads.append(tuple(argv))
    steps += [_Step.running(argv) for argv in reloads]
    packages = executor.packages
    apps = sorted(identifier for identifier in packages.apps if packages._installed(identifier))
    if (steps or apps) and not executor.allow_changes:
        planned = [step.describe for step in steps] + [f"run {shlex.join(['dpkg', '-r', app])}" for app in apps]
        return error(
            command_id,
            "This agent runs without --allow-changes, so it did not retire this host; "
            f"it would have: {'; '.join(planned)}.",
        )
    details: list[str] = []
    for profile, record in profiles.items():
        failed = False
        for path in record.get("files", []):
            try:
                executor.remove(Path(path))
            except OSError as exc:
                failed = True
                name = record.get("name") or profile
                details.append(f"{path} (of the profile {name}) could not be removed: {exc.strerror or exc}.")
        if not failed:
            executor._remember(profile, None)
    for argv in reloads:
        failure = executor._carry_out([_Step.running(argv)])
        if failure:
            logger.warning("Retire: %s", failure)
    for identifier in list(packages.apps):
        name = packages.apps[identifier].get("name") or identifier
        failure = packages.remove({"identifier": identifier, "name": name})
        if failure:
            logger.warning("Retire: %s", failure)
            details.append(f"The package {identifier} could not be removed: {failure}")
    remaining = packages.inventory().get("installed_apps", [])
    remaining_profiles = [
        {"identifier": record.get("identifier") or profile, "version": record.get("version", 0)}
        for profile, record in executor.profiles.items()
    ]
    executor.sync_requested = True
    return acknowledged(command_id, post_wipe_report(remaining, remaining_profiles, details))
