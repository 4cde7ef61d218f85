"""The retire and full-wipe command classes, registered as system actions from ``RetirementConfig.ready``.

People never queue them directly: every request goes through ``retirement.services.retirement_request``
(eligibility, approval, evidence), which queues the command with the subject ``retirement:<uuid>``.
The device's answer is handed back to the request by ``result_recorded``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from devices.choices import CommandType, LifecycleState, Ownership, Platform
from devices.commands import DeviceAction, Eligibility, register_system_action

# A retire or wipe waits for an offline device far longer than a routine command: the request's
# own offline timeout flags it, and IT decides (force or cancel).
RETIREMENT_COMMAND_LIFETIME_HOURS = 24 * 365


class RetireAction(DeviceAction):
    """Selective wipe: the device removes what the portal installed (listed in the payload) and corporate data."""

    type = CommandType.RETIRE
    label = "Retire"
    permission = "devices.retire_device"
    priority = 5
    lifetime_hours = RETIREMENT_COMMAND_LIFETIME_HOURS

    def clean(self, params):
        unknown = set(params) - {"request", "apps", "profiles"}
        if unknown:
            raise ValidationError(f"Retire does not take {', '.join(sorted(unknown))}.")
        return dict(params)

    def result_recorded(self, device, command):
        from .services import retirement_result_record

        retirement_result_record(device=device, command=command)


class WipeAction(DeviceAction):
    """Full wipe (factory reset): corporate devices always, personal ones only where the settings allow it."""

    type = CommandType.WIPE
    label = "Full wipe"
    permission = "devices.wipe_device"
    priority = 4
    lifetime_hours = RETIREMENT_COMMAND_LIFETIME_HOURS
    platforms = frozenset(Platform.values) - {Platform.LINUX}

    def eligibility(self, device) -> Eligibility:
        if device.lifecycle_state == LifecycleState.ENROLLED and device.platform == Platform.LINUX:
            return Eligibility(
                False,
                "A full wipe is not available on Linux: the agent cannot reset the computer. Retire it instead, "
                "which removes what the portal installed.",
            )
        base = super().eligibility(device)
        if not base.allowed:
            return base
        if device.ownership == Ownership.PERSONAL:
            from .models import RetirementSettings

            if not RetirementSettings.load().allow_personal_full_wipe:
                return Eligibility(
                    False,
                    f"{device.name} is a personal device, and this organisation does not allow a full wipe of "
                    "personal devices. Retire it instead (company data only), or turn on “allow a full wipe of "
                    "personal devices” in the retirement settings.",
                )
        return base

    def clean(self, params):
        unknown = set(params) - {"request", "keep_enrollment"}
        if unknown:
            raise ValidationError(f"A full wipe does not take {', '.join(sorted(unknown))}.")
        keep = params.get("keep_enrollment", False)
        if not isinstance(keep, bool):
            raise ValidationError("keep_enrollment must be true or false.")
        return {**params, "keep_enrollment": keep}

    def result_recorded(self, device, command):
        from .services import retirement_result_record

        retirement_result_record(device=device, command=command)


ACTIONS_BY_RETIREMENT = {"retire": RetireAction(), "wipe": WipeAction()}


def register() -> None:
    for action in ACTIONS_BY_RETIREMENT.values():
        register_system_action(action)
