"""The agent's check-in: record what the device reported, hand out what it should do.

A check-in whose inventory did not change costs one UPDATE of the check-in time plus the pending
commands lookup, whatever the fleet size.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from mdm_portal.core.audit import Actor, audit_record

from ..models import OPEN_STATUSES, Device, DeviceCommand, DeviceInventory
from ..signals import device_checked_in
from ..versions import version_key
from .commands import device_commands_deliver

INVENTORY_COLUMNS = (
    "encrypted",
    "passcode_set",
    "passcode_quality",
    "passcode_length",
    "jailbroken",
    "free_storage_mb",
    "total_storage_mb",
    "battery_percent",
)
DEVICE_COLUMNS = ("os_version", "model", "manufacturer")


def inventory_digest(inventory: dict[str, Any]) -> str:
    """A stable hash of an inventory: key order and whitespace do not matter."""
    canonical = json.dumps(inventory, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def checkin_interval_seconds() -> int:
    return settings.MDM_CHECKIN_INTERVAL_SECONDS


@transaction.atomic
def device_inventory_store(*, device: Device, inventory: dict[str, Any], digest: str) -> None:
    """Store a changed (already validated) inventory and the device fields it carries."""
    now = timezone.now()
    columns = {field: inventory.get(field) for field in INVENTORY_COLUMNS}
    columns["passcode_quality"] = columns["passcode_quality"] or ""
    facts = {k: v for k, v in inventory.items() if k not in INVENTORY_COLUMNS and k != "installed_apps"}
    DeviceInventory.objects.update_or_create(
        device=device,
        defaults={**columns, "installed_apps": inventory.get("installed_apps", []), "facts": facts, "reported_at": now},
    )
    updates: dict[str, Any] = {"inventory_hash": digest, "last_checkin_at": now}
    for field in DEVICE_COLUMNS:
        value = inventory.get(field)
        if value and value != getattr(device, field):
            updates[field] = value
    if "os_version" in updates:
        updates["os_version_key"] = version_key(updates["os_version"])
    Device.objects.filter(pk=device.pk).update(**updates)
    for field, value in updates.items():
        setattr(device, field, value)


def device_checkin(
    *, device: Device, inventory: dict[str, Any] | None, digest: str | None, first: bool = False
) -> dict[str, Any]:
    """Record a check-in and return the reply: the interval and the pending commands.

    ``inventory`` is None when it is unchanged (``digest`` equals the stored one) and was not parsed.
    """
    changed = not (inventory is None or digest == device.inventory_hash)
    if changed:
        device_inventory_store(device=device, inventory=inventory, digest=digest)
    else:
        now = timezone.now()
        Device.objects.filter(pk=device.pk).update(last_checkin_at=now)
        device.last_checkin_at = now
    # Receivers (compliance evaluation) may queue commands: they go out in this same reply.
    device_checked_in.send(sender=Device, device=device, inventory_changed=changed, first=first)
    commands = device_commands_deliver(device=device)
    # Only a device still inside its provisioning window pays for the check below. The enrolment
    # reply (``first``) never counts: what enrolment assigns may still be on its way.
    if not first and not commands and device.provisioned_at is None and device.provisioning_deadline_at is not None:
        device_provisioned_mark(device=device)
    return {"checkin_interval_seconds": checkin_interval_seconds(), "commands": commands}


@transaction.atomic
def device_provisioned_mark(*, device: Device) -> bool:
    """Record that the device applied its initial desired state: it checked in and nothing is open.

    Conditional on ``provisioned_at`` still being empty, so concurrent check-ins audit it once.
    Returns whether this call marked it.
    """
    if DeviceCommand.objects.filter(device=device, status__in=OPEN_STATUSES).exists():
        return False
    now = timezone.now()
    if not Device.objects.filter(pk=device.pk, provisioned_at__isnull=True).update(provisioned_at=now):
        return False
    device.provisioned_at = now
    changes: dict[str, Any] = {"provisioned_at": now, "provisioning_deadline_at": device.provisioning_deadline_at}
    if device.provisioning_overdue_at is not None:
        changes["late"] = True
    audit_record(actor=Actor.for_device(device), verb="device.provisioned", target=device, changes=changes)
    return True
