"""The app delivery command classes, registered with ``devices.commands`` from ``AppsConfig.ready``.

``install_app`` stores only ``{"app": uuid, "version": "1.2.3"}``; what the device needs is
expanded when it picks the command up (``delivery_payload``, at most one query per app and version
every ``PAYLOAD_TTL_SECONDS`` per process): the app's kind and identifier, and per kind its store
ids, its web link, or the package's download path, SHA-256, size and format.
``remove_app`` stores what the device needs to remove the app (so it still works once the app is
deleted). The answer updates the ``AppInstall`` row of that very command.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.urls import reverse

from devices.choices import APPLE_PLATFORMS, CommandType
from devices.commands import DeviceAction, register_system_action


def install_payload(app_uuid: str, version: str, platform: str) -> dict[str, Any]:
    """What an ``install_app`` command tells the device (one query)."""
    from .choices import AppKind
    from .models import App, AppVersion

    app = App.objects.filter(uuid=app_uuid).first()
    if app is None:
        return {"app": app_uuid, "error": "This app was deleted from the catalog; nothing to install."}
    payload: dict[str, Any] = {
        "app": app_uuid,
        "name": app.name,
        "kind": app.kind,
        "platform": app.platform,
        "identifier": app.identifier,
        "version": version,
    }
    if app.kind == AppKind.STORE:
        payload["store_id"] = app.store_id
        if platform in APPLE_PLATFORMS and app.store_id.isdigit():
            payload["itunes_store_id"] = int(app.store_id)
    elif app.kind == AppKind.WEB:
        payload["url"] = app.url
    else:
        row = AppVersion.objects.filter(app=app, version=version).exclude(package="").first() if version else None
        if row is None:
            return {**payload, "error": f"Version {version or '(none)'} of {app.name} has no package any more."}
        path = reverse("agent:app-package", kwargs={"app_uuid": app.uuid})
        payload.update(
            download_url=f"{path}?{urlencode({'version': row.version})}",
            sha256=row.sha256,
            size_bytes=row.size_bytes,
            format=row.package_format,
        )
    return payload


# A wave of devices picks up the same install within seconds: its payload is read once per process
# for a short while (a version's package never changes; an edited link or store id shows up after it).
PAYLOAD_TTL_SECONDS = 30
_payloads: dict[tuple[str, str, str], tuple[float, dict[str, Any]]] = {}


def install_payload_cached(app_uuid: str, version: str, platform: str) -> dict[str, Any]:
    key = (app_uuid, version, platform)
    now = time.monotonic()
    hit = _payloads.get(key)
    if hit is not None and now - hit[0] < PAYLOAD_TTL_SECONDS:
        return dict(hit[1])
    payload = install_payload(app_uuid, version, platform)
    if "error" not in payload:
        if len(_payloads) >= 1024:
            _payloads.clear()
        _payloads[key] = (now, payload)
    return dict(payload)


class InstallAppAction(DeviceAction):
    type = CommandType.INSTALL_APP
    label = "Install app"
    permission = "apps.change_app"
    priority = 38
    lifetime_hours = 24 * 14

    def clean(self, params):
        if set(params) != {"app", "version"}:
            raise ValidationError("An install_app command carries an app and its version.")
        return params

    def delivery_payload(self, device, payload):
        return install_payload_cached(str(payload.get("app")), str(payload.get("version") or ""), device.platform)

    def result_recorded(self, device, command):
        from .services.installs import install_result_record

        install_result_record(device=device, command=command)


class RemoveAppAction(DeviceAction):
    type = CommandType.REMOVE_APP
    label = "Remove app"
    permission = "apps.change_app"
    priority = 37
    lifetime_hours = 24 * 14

    def result_recorded(self, device, command):
        from .services.installs import install_result_record

        install_result_record(device=device, command=command)


def register() -> None:
    for action in (InstallAppAction(), RemoveAppAction()):
        register_system_action(action)
