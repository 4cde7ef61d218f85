"""Reads for the app catalog, app assignments, per-device installs and app protection (MAM), restricted
by ``core.authz``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Lower

from devices.models import Device, DeviceInventory
from mdm_portal.core import authz

from .choices import AppIntent, InstallState
from .models import App, AppInstall, AppVersion
from .services.delivery import app_version_key, inventory_versions

VIEW_INSTALL = "apps.view_appinstall"
# The order states are listed and charted in.
STATE_ORDER = [
    InstallState.INSTALLED,
    InstallState.PENDING,
    InstallState.FAILED,
    InstallState.CONFLICT,
    InstallState.NOT_INSTALLED,
    InstallState.NOT_APPLICABLE,
]


def install_counts(app_ids: Iterable[int], user) -> dict[int, dict[str, int]]:
    """Installs per state of each app, among the devices the person may see: one GROUP BY for the page."""
    app_ids = list(app_ids)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not app_ids:
        return counts
    installs = authz.restrict(AppInstall.objects.filter(app_id__in=app_ids), user, VIEW_INSTALL)
    for row in installs.order_by().values("app_id", "state").annotate(n=Count("pk")):
        counts[row["app_id"]][row["state"]] = row["n"]
    return counts


def catalog_counts(app_ids: Iterable[int], user) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    """The catalogue list's counts, in one GROUP BY: ``(installs, blocked)``, each ``{app id: {state: n}}``.

    Rows of a *blocked* intent are counted apart: for them "pending" means "found on the device, removal
    queued" and "not installed" means "absent, as wanted", which must not read like installs.
    """
    app_ids = list(app_ids)
    installs: dict[int, dict[str, int]] = defaultdict(dict)
    blocked: dict[int, dict[str, int]] = defaultdict(dict)
    if not app_ids:
        return installs, blocked
    rows = authz.restrict(AppInstall.objects.filter(app_id__in=app_ids), user, VIEW_INSTALL)
    for row in rows.order_by().values("app_id", "intent", "state").annotate(n=Count("pk")):
        into = blocked if row["intent"] == AppIntent.BLOCKED else installs
        into[row["app_id"]][row["state"]] = into[row["app_id"]].get(row["state"], 0) + row["n"]
    return installs, blocked


@dataclass(frozen=True)
class DetectedApp:
    """A catalogue app the device's inventory lists although IT never installed it there (no install row)."""

    app: App
    version: str

    @property
    def update_available(self) -> bool:
        return version_outdated(self.version, self.app.current_version)


def version_outdated(installed: str, current: AppVersion | None) -> bool:
    """Whether ``installed`` is older than the app's current version (both known)."""
    if current is None or not installed:
        return False
    key = app_version_key(installed)
    return bool(key and current.version_key and key < current.version_key)


def device_detected_apps(device: Device, *, exclude_app_ids: Iterable[int] = ()) -> list[DetectedApp]:
    """The catalogue apps of the device's platform that its inventory lists, except ``exclude_app_ids``
    (the apps it has an install row for): two queries, the inventory and the candidate apps.

    The Company Portal shows these as installed (the device says so); the console lists them too, so
    both tell the same story. Apps reach the catalogue of the device's scope or the whole organisation.
    """
    inventory = DeviceInventory.objects.filter(device=device).values_list("installed_apps", flat=True).first()
    reported = inventory_versions(inventory)
    if not reported:
        return []
    scoped = Q(scope__isnull=True) | Q(scope_id=device.scope_id) if device.scope_id else Q(scope__isnull=True)
    candidates = (
        App.objects.filter(scoped, platform=device.platform)
        .exclude(identifier="")
        .exclude(pk__in=list(exclude_app_ids))
        .select_related("current_version")
        .order_by(Lower("name"), "pk")
    )
    return [
        DetectedApp(app, reported[app.identifier.lower()]) for app in candidates if app.identifier.lower() in reported
    ]
