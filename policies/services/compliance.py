"""Compliance evaluation (placeholder until the engine lands)."""


def device_compliance_on_checkin(*, device, inventory_changed: bool, first: bool) -> None:
    """Evaluate one device's compliance at check-in."""
