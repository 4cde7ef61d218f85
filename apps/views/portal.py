"""Company Portal pages of the app stage: my devices' catalogs, the app catalog of one device, Install and Uninstall.

Every page reaches the device through the ownership rule (``devices.selectors.portal_device_get``):
only its primary user sees it; anyone else (another employee, an IT administrator) gets the 404 of
a device that does not exist. The catalog lists what IT offers on that device
(``apps.selectors_portal``): available apps to install or uninstall at will, required apps marked
"Required by your organisation" (installed without asking, never uninstalled here).

Install and Uninstall are an owner's actions, not IT permissions: they go through
``apps.services.app_install_request`` / ``app_uninstall_request`` with the employee as the audited
actor, and the service's refusal (the app is not offered, it is required, the device is not
enrolled) becomes a message, never a 500. The page then shows the app's progress until the device
reports, by polling a small JSON status view, like the compliance page's "Check again".
"""

from __future__ import annotations

import hashlib

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from devices import selectors as device_selectors
from devices.choices import CommandStatus, LifecycleState
from mdm_portal.core.audit import Actor
from mdm_portal.core.views.portal import PortalView
from policies.views.portal import DEVICE_WORDS

from ..choices import AppKind, InstallState
from ..selectors_portal import INSTALLING, REMOVING, CatalogEntry, portal_app_catalog, portal_app_get
from ..services import app_install_request, app_uninstall_request

# How often the page asks whether the device has reported, and for how long (then it says so).
POLL_SECONDS = 4
POLL_MINUTES = 15
# Letter tiles for apps without an icon: dark enough for white text (WCAG AA at 1.5rem bold).
TILE_COLOURS = 8
DESCRIPTION_WORDS = 45


def device_word(device) -> str:
    return DEVICE_WORDS.get(device.platform, "device")


def status_text(entry: CatalogEntry, word: str) -> str:
    """Where the app stands on the device, in a sentence for its owner."""
    command = entry.command
    web = entry.app.kind == AppKind.WEB
    if entry.status in (INSTALLING, REMOVING):
        if entry.status == INSTALLING:
            doing = "Adding the shortcut" if web else "Installing"
        else:
            doing = "Removing the shortcut" if web else "Uninstalling"
        if command is not None and command.status == CommandStatus.QUEUED:
            return f"{doing}… waiting for your {word} to check in."
        if command is not None and command.status == CommandStatus.NOT_NOW:
            return f"{doing}… your {word} is busy and will do it shortly."
        if command is not None:
            return f"{doing}… your {word} is working on it."
        return f"{doing}… waiting for your {word} to report back."
    if entry.status == InstallState.INSTALLED:
        if web:
            return f"Added to your {word}."
        installed = f"Installed{f' (version {entry.version})' if entry.version else ''}."
        if entry.update_available:
            installed += f" Update available: version {entry.app.current_version.version}."
        return installed
    if entry.status == InstallState.FAILED:
        reason = entry.install.reason if entry.install is not None else ""
        return f"Could not be installed{f': {reason}' if reason else '.'}"
    if entry.status == InstallState.NOT_APPLICABLE:
        reason = entry.install.reason if entry.install is not None else ""
        return f"Not available for this {word}{f': {reason}' if reason else '.'}"
    if entry.status == InstallState.CONFLICT:
        return "IT is fixing conflicting settings for this app. Nothing to do for now."
    if entry.required:
        return f"Installed automatically the next time your {word} checks in."
    if web:
        return f"A web page: open it, or add a shortcut to your {word}."
    return "Not installed."


def tile(name: str) -> dict:
    """A letter tile for an app without an icon: its first letter, a colour chosen by its name."""
    letter = next((char for char in name if char.isalnum()), "?").upper()
    colour = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % TILE_COLOURS
    return {"letter": letter, "colour": colour}


def entry_context(entry: CatalogEntry, word: str) -> dict:
    app = entry.app
    return {
        "entry": entry,
        "app": app,
        "icon_url": app.icon.url if app.icon else "",
        "tile": tile(app.name),
        "status_text": status_text(entry, word),
    }


def entry_status(entry: CatalogEntry, word: str) -> dict:
    return {
        "id": str(entry.app.uuid),
        "status": entry.status,
        "busy": entry.busy,
        "text": status_text(entry, word),
        "version": entry.version,
    }


class PortalAppsView(PortalView):
    """Apps: my enrolled devices, each leading to its app catalog (the devices My devices lists)."""

    template_name = "portal/apps/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        devices = device_selectors.portal_device_list(user=self.request.user).filter(
            lifecycle_state=LifecycleState.ENROLLED
        )
        context["devices"] = [{"device": device, "word": device_word(device)} for device in devices.order_by("name")]
        return context


class PortalDeviceAppsView(PortalView):
    """The apps IT offers on one of my devices, with their install state, Install and Uninstall."""

    template_name = "portal/apps/device_apps.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = device_selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        word = device_word(device)
        entries = [entry_context(entry, word) for entry in portal_app_catalog(user=self.request.user, device=device)]
        context.update(
            device=device,
            device_word=word,
            enrolled=device.lifecycle_state == LifecycleState.ENROLLED,
            required=[item for item in entries if item["entry"].required],
            available=[item for item in entries if not item["entry"].required],
            busy=any(item["entry"].busy for item in entries),
            updated=self.request.GET.get("updated", ""),
            status_url=reverse("portal:device_apps_status", kwargs={"uuid": device.uuid}),
            poll_seconds=POLL_SECONDS,
            poll_minutes=POLL_MINUTES,
            description_words=DESCRIPTION_WORDS,
        )
        return context


class _AppActionView(PortalView):
    """Install or Uninstall (POST) one app of my device's catalog, through the service."""

    http_method_names = ["post"]

    def act(self, request, device, app) -> str:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        device = device_selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        entry = portal_app_get(user=request.user, device=device, uuid=kwargs["app"])
        if entry is None:
            # Not offered on this device (or no such app): the same 404 for both.
            raise Http404("No app matches the given query.")
        try:
            done = self.act(request, device, entry.app)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, done)
        return redirect(f"{reverse('portal:device_apps', kwargs={'uuid': device.uuid})}#app-{entry.app.uuid}")


class PortalDeviceAppInstallView(_AppActionView):
    """Install (POST): queue the app's installation on my device."""

    def act(self, request, device, app) -> str:
        app_install_request(actor=Actor.from_request(request), device=device, app=app)
        return (
            f"{app.name} will be installed the next time your {device_word(device)} checks in. "
            "This page shows when it is done."
        )


class PortalDeviceAppUninstallView(_AppActionView):
    """Uninstall (POST): queue the app's removal from my device (available apps only)."""

    def act(self, request, device, app) -> str:
        app_uninstall_request(actor=Actor.from_request(request), device=device, app=app)
        return (
            f"{app.name} will be removed the next time your {device_word(device)} checks in. "
            "This page shows when it is done."
        )


class PortalDeviceAppsStatusView(PortalView):
    """Where each app of my device's catalog stands (JSON, polled by the catalog page).

    ``{"busy": bool, "apps": [{"id", "status", "busy", "text", "version"}]}``.
    """

    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        device = device_selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        word = device_word(device)
        entries = portal_app_catalog(user=request.user, device=device)
        response = JsonResponse(
            {"busy": any(entry.busy for entry in entries), "apps": [entry_status(entry, word) for entry in entries]}
        )
        response["Cache-Control"] = "no-store, private"
        return response
