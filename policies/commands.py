"""The desired-state command classes of this stage, registered with ``devices.commands``.

``install_profile`` stores only ``{"profile": uuid, "version": n}``; the native payload for the
device's platform is rendered when the device picks it up (cached per profile version and
platform), so a profile's secrets never sit in a hundred thousand command rows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError

from devices.choices import CommandType
from devices.commands import DeviceAction, register_system_action


@lru_cache(maxsize=512)
def _rendered(profile_uuid: str, version: int, platform: str) -> dict[str, Any]:
    from .models import ConfigurationProfile
    from .platforms import render
    from .services.profiles import profile_spec

    profile = ConfigurationProfile.objects.filter(uuid=profile_uuid).first()
    if profile is None:
        return {"profile": profile_uuid, "error": "This profile was deleted."}
    try:
        spec = profile_spec(profile)
    except ImproperlyConfigured as exc:
        return {"profile": profile_uuid, "error": str(exc)}
    rendered = render(spec, platform)
    return {
        "profile": profile_uuid,
        "version": profile.version,
        "identifier": spec.identifier,
        "name": profile.name,
        "kind": profile.kind,
        "format": rendered.format,
        "content": rendered.content,
        "settings": dict(profile.settings),
        "not_applicable": [{"setting": n.setting, "reason": n.reason} for n in rendered.not_applicable],
    }


class InstallProfileAction(DeviceAction):
    type = CommandType.INSTALL_PROFILE
    label = "Install configuration profile"
    permission = "policies.change_configurationprofile"
    priority = 35
    lifetime_hours = 24 * 14

    def clean(self, params):
        if set(params) != {"profile", "version"}:
            raise ValidationError("An install_profile command carries a profile and its version.")
        return params

    def delivery_payload(self, device, payload):
        return _rendered(str(payload.get("profile")), int(payload.get("version") or 0), device.platform)

    def result_recorded(self, device, command):
        from .services.profiles import delivery_result_record

        delivery_result_record(device=device, command=command)


class RemoveProfileAction(DeviceAction):
    type = CommandType.REMOVE_PROFILE
    label = "Remove configuration profile"
    permission = "policies.change_configurationprofile"
    priority = 36
    lifetime_hours = 24 * 14


class NotifyAction(DeviceAction):
    """A notification shown on the device (the agent's command channel stands in for APNs/FCM push)."""

    type = CommandType.NOTIFY
    label = "Notification"
    permission = "policies.change_compliancepolicy"
    priority = 60

    def clean(self, params):
        unknown = set(params) - {"title", "message"}
        if unknown:
            raise ValidationError(f"A notification does not take {', '.join(sorted(unknown))}.")
        message = str(params.get("message", "")).strip()
        if not message or len(message) > 1000:
            raise ValidationError("A notification needs a message of at most 1000 characters.")
        return {"title": str(params.get("title", ""))[:100], "message": message}


def register() -> None:
    for action in (InstallProfileAction(), RemoveProfileAction(), NotifyAction()):
        register_system_action(action)
