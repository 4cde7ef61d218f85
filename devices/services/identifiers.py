"""Corporate identifiers: the serial numbers and IMEIs IT lists so those devices enrol as corporate."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from ..models import CorporateIdentifier, Device


def corporate_identifier_for(identity: dict[str, Any]) -> CorporateIdentifier | None:
    """The corporate identifier matching an enrolling device's serial number or IMEI, if any."""
    serial = (identity.get("serial_number") or "").strip().upper()
    imei = (identity.get("imei") or "").strip()
    match = Q()
    if serial:
        match |= Q(serial_number=serial)
    if imei:
        match |= Q(imei=imei)
    if not match:
        return None
    return CorporateIdentifier.objects.select_related("scope", "user", "device_group").filter(match).first()


def corporate_identifier_claim(*, identifier: CorporateIdentifier, device: Device) -> None:
    """Link the identifier to the device that enrolled with it, and put the device in its group."""
    CorporateIdentifier.objects.filter(pk=identifier.pk).update(device=device)
    if identifier.device_group is not None and identifier.device_group.scope_id in (None, device.scope_id):
        identifier.device_group.static_members.add(device)
