"""Device actions, each defined once as a command class.

A command class says who may queue it (``permission``), on which devices (platform, ownership,
lifecycle state), what input it takes, what payload the device receives, which payload fields are
secret (never audited, cleared once the command closes), and what happens on acknowledgement.
The admin, the API, the Company Portal and automation all queue commands through
``devices.services.device_command_queue``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ValidationError

from .choices import CommandType, LifecycleState, Ownership, Platform

ALL_PLATFORMS = frozenset(Platform.values)


@dataclass(frozen=True)
class Eligibility:
    allowed: bool
    reason: str = ""


class DeviceAction:
    """Base class: override the class attributes, and ``clean``/``payload_for``/``acknowledged`` as needed."""

    type: ClassVar[str]
    label: ClassVar[str]
    permission: ClassVar[str]
    priority: ClassVar[int] = 50
    platforms: ClassVar[frozenset[str]] = ALL_PLATFORMS
    ownerships: ClassVar[frozenset[str]] = frozenset(Ownership.values)
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # How long a device has to pick the command up and answer before it expires.
    lifetime_hours: ClassVar[int] = 72

    def eligibility(self, device) -> Eligibility:
        if device.lifecycle_state != LifecycleState.ENROLLED:
            return Eligibility(False, f"{device.name} is not enrolled, so it cannot receive commands.")
        if device.platform not in self.platforms:
            return Eligibility(False, f"{self.label} is not available on {device.get_platform_display()}.")
        if device.ownership not in self.ownerships:
            return Eligibility(
                False, f"{self.label} is not available on {device.get_ownership_display().lower()} devices."
            )
        return Eligibility(True)

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validate what the person typed; raise ``ValidationError`` with a sentence."""
        if params:
            raise ValidationError(f"{self.label} takes no options.")
        return {}

    def payload_for(self, device, params: dict[str, Any]) -> dict[str, Any]:
        """The payload the device receives (platform-specific where it matters)."""
        return dict(params)

    def acknowledged(self, device, command, data: dict[str, Any]) -> dict[str, Any]:
        """Device fields to update once the device confirms (``devices.services`` writes them)."""
        return {}

    def delivery_payload(self, device, payload: dict[str, Any]) -> dict[str, Any]:
        """What the device receives at check-in, from the stored payload.

        Desired-state commands store a reference and render here, so a payload (and any secret in
        it) is never copied into every device's command row.
        """
        return payload

    def result_recorded(self, device, command) -> None:
        """Called once the device's final answer (acknowledged or error) is stored, in its transaction."""


class SyncAction(DeviceAction):
    type = CommandType.SYNC
    label = "Sync"
    permission = "devices.sync_device"
    priority = 40


class LockAction(DeviceAction):
    type = CommandType.LOCK
    label = "Lock"
    permission = "devices.lock_device"
    priority = 10

    def clean(self, params):
        unknown = set(params) - {"message", "phone_number"}
        if unknown:
            raise ValidationError(f"Lock does not take {', '.join(sorted(unknown))}.")
        message = str(params.get("message", "")).strip()
        phone = str(params.get("phone_number", "")).strip()
        if len(message) > 200:
            raise ValidationError("The lock-screen message can be at most 200 characters long.")
        if phone and not all(c.isdigit() or c in "+-() " for c in phone):
            raise ValidationError("The phone number may contain only digits, spaces and + - ( ).")
        return {"message": message, "phone_number": phone}


class RestartAction(DeviceAction):
    type = CommandType.RESTART
    label = "Restart"
    permission = "devices.restart_device"
    priority = 30
    # Apple lets MDM restart only supervised (corporate) iPhones and iPads.
    platforms = ALL_PLATFORMS

    def eligibility(self, device):
        base = super().eligibility(device)
        if (
            base.allowed
            and device.platform in (Platform.IOS, Platform.IPADOS)
            and device.ownership != Ownership.CORPORATE
        ):
            return Eligibility(False, "Restart works only on corporate (supervised) iPhones and iPads.")
        return base


class RenameAction(DeviceAction):
    type = CommandType.RENAME
    label = "Rename"
    permission = "devices.change_device"
    priority = 45

    def clean(self, params):
        unknown = set(params) - {"name"}
        if unknown:
            raise ValidationError(f"Rename does not take {', '.join(sorted(unknown))}.")
        name = str(params.get("name", "")).strip()
        if not name:
            raise ValidationError("Enter the new device name.")
        if len(name) > 63 or any(ord(c) < 32 for c in name):
            raise ValidationError("A device name is at most 63 printable characters.")
        return {"name": name}

    def acknowledged(self, device, command, data):
        return {"name": command.payload.get("name") or device.name}


class ResetPasscodeAction(DeviceAction):
    type = CommandType.RESET_PASSCODE
    label = "Reset passcode"
    permission = "devices.reset_passcode_device"
    priority = 20
    platforms = frozenset({Platform.IOS, Platform.IPADOS, Platform.ANDROID, Platform.WINDOWS})
    secret_fields = ("new_passcode",)

    def clean(self, params):
        unknown = set(params) - {"new_passcode"}
        if unknown:
            raise ValidationError(f"Reset passcode does not take {', '.join(sorted(unknown))}.")
        passcode = str(params.get("new_passcode", ""))
        if passcode and not (4 <= len(passcode) <= 16 and passcode.isdigit()):
            raise ValidationError("A new passcode is 4 to 16 digits, or leave it empty to clear the passcode.")
        return {"new_passcode": passcode} if passcode else {}

    def payload_for(self, device, params):
        if device.platform in (Platform.IOS, Platform.IPADOS):
            # Apple's ClearPasscode: the passcode is removed and the user sets a new one.
            return {"clear": True}
        return dict(params)


# The actions people queue (admin, API, Company Portal).
ACTIONS: dict[str, DeviceAction] = {
    action.type: action
    for action in (SyncAction(), LockAction(), RestartAction(), RenameAction(), ResetPasscodeAction())
}
# Actions only automation queues (a profile's fan-out, a noncompliance schedule); other stage apps
# register theirs here from their ``AppConfig.ready``.
SYSTEM_ACTIONS: dict[str, DeviceAction] = {}


def register_system_action(action: DeviceAction) -> None:
    SYSTEM_ACTIONS[action.type] = action


def get_action(command_type: str) -> DeviceAction:
    action = ACTIONS.get(command_type) or SYSTEM_ACTIONS.get(command_type)
    if action is None:
        raise ValidationError(f"Unknown command {command_type!r}. Use one of: {', '.join(sorted(ACTIONS))}.")
    return action
