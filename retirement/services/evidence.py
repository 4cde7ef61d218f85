"""The evidence a retirement keeps: what the device held before the command, what it reported after."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from devices.models import Device, DeviceInventory


def _inventory_lists(inventory: DeviceInventory | None) -> dict[str, Any]:
    if inventory is None:
        return {"installed_apps": [], "profiles": [], "corporate_data": {}, "reported_at": None}
    facts = inventory.facts or {}
    return {
        "installed_apps": list(inventory.installed_apps or []),
        "profiles": list(facts.get("profiles") or []),
        "corporate_data": dict(facts.get("corporate_data") or {}),
        "reported_at": inventory.reported_at.isoformat() if inventory.reported_at else None,
    }


def before_inventory_snapshot(device: Device) -> dict[str, Any]:
    """The device's last inventory plus the managed set: what the portal installed or delivered.

    Pending installs and deliveries count as managed too: they may land on the device before it
    runs the command, and must be gone afterwards like the rest. Three queries.
    """
    from apps.choices import InstallState
    from apps.models import AppInstall
    from policies.choices import DeliveryState
    from policies.models import ProfileDelivery
    from policies.platforms import ProfileSpec

    snapshot = _inventory_lists(DeviceInventory.objects.filter(device=device).first())
    installs = (
        AppInstall.objects.filter(device=device, state__in=[InstallState.INSTALLED, InstallState.PENDING])
        .exclude(app__identifier="")
        .select_related("app")
        .order_by("app__identifier")
    )
    deliveries = (
        ProfileDelivery.objects.filter(device=device, state__in=[DeliveryState.SUCCEEDED, DeliveryState.PENDING])
        .select_related("profile")
        .order_by("profile__name")
    )
    snapshot["managed_apps"] = [
        {"identifier": i.app.identifier, "name": i.app.name, "state": i.state} for i in installs
    ]
    snapshot["managed_profiles"] = [
        {
            # The identifier the device reports, as the platform renderers write it.
            "identifier": ProfileSpec(
                uuid=str(d.profile.uuid),
                name=d.profile.name,
                kind=d.profile.kind,
                version=d.profile.version,
                settings={},
                secrets={},
            ).identifier,
            "name": d.profile.name,
            "state": d.state,
        }
        for d in deliveries
    ]
    snapshot["taken_at"] = timezone.now().isoformat()
    return snapshot


def after_inventory_from_report(data: dict[str, Any]) -> dict[str, Any]:
    """The after-inventory from a command answer's ``data`` (only the keys verification reads)."""
    return {
        "installed_apps": list(data.get("installed_apps") or []),
        "profiles": list(data.get("profiles") or []),
        "corporate_data": dict(data.get("corporate_data") or {}),
        "source": "command_result",
        "reported_at": timezone.now().isoformat(),
    }


def after_inventory_from_device(device: Device) -> dict[str, Any]:
    """The after-inventory from the device's current stored inventory (its check-in after the command)."""
    return {**_inventory_lists(DeviceInventory.objects.filter(device=device).first()), "source": "checkin"}
