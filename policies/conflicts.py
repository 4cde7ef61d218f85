"""Configuration conflicts: two profiles that set one setting differently for one device.

Settings are compared by key: the setting's name, within the thing the profile configures (the
device for passcode, encryption and restrictions; one network for Wi-Fi, one connection for VPN,
one account for email, one certificate name). Two Wi-Fi profiles for different networks never
conflict; two for the same SSID with a different password do. Conflicts are reported on both
deliveries and never resolved silently: the newcomer is not sent until someone fixes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .choices import ProfileKind
from .profile_settings import setting_label

# The setting that names the configured thing, per kind (None: the device itself).
DISCRIMINATOR = {
    ProfileKind.WIFI: "ssid",
    ProfileKind.VPN: "connection_name",
    ProfileKind.EMAIL: "account_name",
    ProfileKind.CERTIFICATE: "certificate_name",
}


def conflict_keys(kind: str, settings: dict[str, Any], secrets: dict[str, str]) -> dict[tuple[str, str], Any]:
    """``{(thing, setting): value}``; secrets compared by digest, never by value."""
    discriminator = DISCRIMINATOR.get(kind)
    thing = str(settings.get(discriminator, "")).lower() if discriminator else ""
    keys: dict[tuple[str, str], Any] = {}
    for name, value in settings.items():
        if name != discriminator:
            keys[(thing, name)] = value
    for name, value in secrets.items():
        keys[(thing, name)] = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return keys


def conflicts_between(kind: str, a: dict, b: dict) -> list[str]:
    """The settings (labels) two profiles of ``kind`` set differently; ``a``/``b`` from ``conflict_keys``."""
    return sorted(
        {
            setting_label(kind, name)
            for (thing, name), value in a.items()
            if (thing, name) in b and b[(thing, name)] != value
        }
    )
