"""Reads of the Company Portal's app catalog: the apps offered to one person on one of their devices.

The device comes through the ownership rule (``devices.selectors.portal_device_get``), so only its
primary user gets here. An app is in the catalog of a device when its *available* or *required*
assignments reach that device (``apps.targeting``: scope, platform, includes minus excludes), after
the conflict rule (``targeting.resolve``): an app that is to be uninstalled or is blocked on the
device is not offered; one whose intents conflict is listed, with nothing to press, until IT fixes it.

Everything is read in a constant number of queries, whatever the size of the catalog: the apps with
their assignments, one query that evaluates every assignment against the device, the device's
install rows with their last command, and (when an offered app has no row) the device's reported
apps, so an app installed another way shows as installed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BooleanField, Case, Q, Value, When

from devices.choices import CommandType, LifecycleState
from devices.models import OPEN_STATUSES, Device, DeviceCommand, DeviceInventory

from .choices import AppIntent, InstallState
from .models import App, AppInstall
from .selectors import version_outdated
from .services.delivery import inventory_versions
from .targeting import intent_qs, resolve

OFFERED = (AppIntent.AVAILABLE, AppIntent.REQUIRED)

# On their way to the device: an install or a removal was queued and the device has not reported.
INSTALLING, REMOVING = "installing", "removing"


@dataclass(frozen=True)
class CatalogEntry:
    """One app in the catalog of one device, with where it stands there."""

    app: App
    required: bool
    conflict: bool
    install: AppInstall | None
    # installed, installing, removing, failed, not_installed, not_applicable, conflict
    status: str
    # The open command on its way to the device (install or remove), if any.
    command: DeviceCommand | None

    @property
    def busy(self) -> bool:
        return self.status in (INSTALLING, REMOVING)

    # The version the device's inventory lists when it has the app without an install row (it was
    # installed another way): shown as installed, and there is nothing to press.
    reported_version: str | None = None

    @property
    def detected(self) -> bool:
        """On the device without IT having installed it (the inventory lists it, there is no install row)."""
        return self.install is None and self.reported_version is not None

    @property
    def update_available(self) -> bool:
        """Installed at a version older than the catalogue's current one (the console says the same)."""
        if self.status != InstallState.INSTALLED:
            return False
        installed = self.install.installed_version if self.install is not None else self.reported_version
        return version_outdated(installed or "", self.app.current_version)

    @property
    def can_install(self) -> bool:
        # A required app is installed (and retried) by IT, never from here. An app found on the
        # device at an older version can be updated from here (an install of the current version).
        if self.required:
            return False
        if self.detected and self.update_available:
            return True
        return self.status in (InstallState.NOT_INSTALLED, InstallState.FAILED)

    @property
    def can_uninstall(self) -> bool:
        return not self.required and self.install is not None and self.status == InstallState.INSTALLED

    @property
    def version(self) -> str:
        if self.status == InstallState.INSTALLED:
            installed = self.install.installed_version if self.install is not None else self.reported_version
            if installed:
                return installed
        current = self.app.current_version
        return current.version if current is not None else ""


def _status(install: AppInstall | None, conflict: bool) -> tuple[str, DeviceCommand | None]:
    if conflict:
        return InstallState.CONFLICT, None
    if install is None:
        return InstallState.NOT_INSTALLED, None
    command = install.command
    open_command = command if command is not None and command.status in OPEN_STATUSES else None
    if install.state == InstallState.PENDING or open_command is not None:
        if command is not None and command.command_type == CommandType.REMOVE_APP:
            return REMOVING, open_command
        return INSTALLING, open_command
    if install.state == InstallState.CONFLICT:
        return InstallState.CONFLICT, None
    return install.state, None


def _offered_intents(device: Device, apps: list[App]) -> dict[int, set[str]]:
    """``{app id: the intents reaching the device}``, for every app at once: one query."""
    annotations = {}
    for app in apps:
        for intent, q in intent_qs(app, list(app.assignments.all())).items():
            annotations[f"a{app.pk}_{intent}"] = Case(
                When(q, then=Value(True)), default=Value(False), output_field=BooleanField()
            )
    if not annotations:
        return {}
    row = Device.objects.filter(pk=device.pk).values(**annotations).first() or {}
    reached: dict[int, set[str]] = {}
    for key, matched in row.items():
        if matched:
            app_id, _, intent = key[1:].partition("_")
            reached.setdefault(int(app_id), set()).add(intent)
    return reached


def _candidates(device: Device):
    scoped = Q(scope__isnull=True) | Q(scope_id=device.scope_id) if device.scope_id else Q(scope__isnull=True)
    return (
        App.objects.filter(scoped, platform=device.platform, assignments__intent__in=OFFERED)
        .distinct()
        .select_related("current_version")
        .prefetch_related("assignments__user_group", "assignments__device_group")
        .order_by("name", "pk")
    )


def portal_app_catalog(*, user, device: Device) -> list[CatalogEntry]:
    """The apps offered to ``user`` on their ``device``: required ones first, then by name."""
    if device.primary_user_id != getattr(user, "pk", None) or device.lifecycle_state != LifecycleState.ENROLLED:
        return []
    apps = list(_candidates(device))
    reached = _offered_intents(device, apps)
    offered: list[tuple[App, bool, bool]] = []
    for app in apps:
        intent, conflict = resolve(reached.get(app.pk, set()))
        if conflict or intent in OFFERED:
            offered.append((app, intent == AppIntent.REQUIRED or conflict, conflict))
    installs = {
        install.app_id: install
        for install in AppInstall.objects.filter(device=device, app__in=[app for app, _, _ in offered]).select_related(
            "command"
        )
    }
    reported = None
    if any(app.pk not in installs and app.identifier for app, _, _ in offered):
        inventory = DeviceInventory.objects.filter(device=device).values_list("installed_apps", flat=True).first()
        reported = inventory_versions(inventory)
    entries = []
    for app, required, conflict in offered:
        install = installs.get(app.pk)
        status, command = _status(install, conflict)
        seen = (reported or {}).get(app.identifier.lower()) if install is None and app.identifier else None
        if seen is not None and status == InstallState.NOT_INSTALLED:
            status = InstallState.INSTALLED
        entries.append(CatalogEntry(app, required, conflict, install, status, command, seen))
    return sorted(entries, key=lambda entry: (not entry.required, entry.app.name.casefold(), entry.app.pk))


def portal_app_get(*, user, device: Device, uuid) -> CatalogEntry | None:
    """One app of the device's catalog, or ``None`` when it is not offered there."""
    return next(
        (entry for entry in portal_app_catalog(user=user, device=device) if str(entry.app.uuid) == str(uuid)), None
    )
