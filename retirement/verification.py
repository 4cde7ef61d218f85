"""Verification of a retirement: does the device's report after the command still hold anything managed?

Pure functions over the evidence dicts stored on ``RetirementRequest``:

- before (``before_inventory``): ``managed_apps`` and ``managed_profiles``, each ``[{identifier, name}]``:
  what the portal installed or delivered.
- after (``after_inventory``): what the device reported after the command: ``installed_apps``
  ``[{identifier, ...}]``, ``profiles`` ``[{identifier, ...}]`` and ``corporate_data``:
  ``{"present": bool, "details": [...]}`` as the agent protocol reports it (or per-kind flags
  ``{kind: bool}``, true when that kind of corporate data is still there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CORPORATE_DATA_LABELS = {
    "accounts": "Corporate e-mail and accounts",
    "certificates": "Corporate certificates",
    "managed_app_data": "Data of managed apps",
    "wifi": "Corporate Wi-Fi and VPN settings",
    "files": "Corporate files",
}


@dataclass(frozen=True)
class Verification:
    clean: bool
    leftovers: list[dict[str, str]] = field(default_factory=list)

    def sentence(self) -> str:
        if self.clean:
            return "The device reported no managed apps, profiles or corporate data."
        names = ", ".join(
            f"{item['name'] or item['identifier']} ({item['kind'].replace('_', ' ')})" for item in self.leftovers
        )
        count = len(self.leftovers)
        return f"{count} managed item{'s' if count != 1 else ''} still on the device: {names}."


def reported(after: dict[str, Any]) -> bool:
    """Whether ``after`` is a post-command report at all (it lists apps or profiles)."""
    return isinstance(after, dict) and ("installed_apps" in after or "profiles" in after)


def _identifiers(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {str(item.get("identifier")) for item in items if isinstance(item, dict) and item.get("identifier")}


def _corporate_leftovers(corporate: Any) -> list[dict[str, str]]:
    """The agent protocol's ``{"present": bool, "details": [...]}``, or per-kind flags ``{kind: bool}``."""
    if not isinstance(corporate, dict):
        return []
    if "present" in corporate:
        if not corporate.get("present"):
            return []
        details = [str(d) for d in corporate.get("details") or [] if d] or ["Corporate data"]
        return [{"kind": "corporate_data", "identifier": d, "name": d} for d in details]
    return [
        {"kind": "corporate_data", "identifier": str(flag), "name": CORPORATE_DATA_LABELS.get(flag, str(flag))}
        for flag, present in sorted(corporate.items())
        if present
    ]


def verify(before: dict[str, Any], after: dict[str, Any]) -> Verification:
    """Clean when the after-report shows none of the managed apps and profiles and no corporate data.

    A missing report is not clean: nothing can be proven from silence.
    """
    if not reported(after):
        return Verification(
            False, [{"kind": "report", "identifier": "inventory", "name": "The device's inventory after the command"}]
        )
    leftovers: list[dict[str, str]] = []
    for kind, managed_key, after_key in (
        ("app", "managed_apps", "installed_apps"),
        ("profile", "managed_profiles", "profiles"),
    ):
        still_there = _identifiers(after.get(after_key))
        for item in before.get(managed_key) or []:
            identifier = str(item.get("identifier") or "")
            if identifier and identifier in still_there:
                leftovers.append({"kind": kind, "identifier": identifier, "name": str(item.get("name") or "")})
    leftovers.extend(_corporate_leftovers(after.get("corporate_data")))
    return Verification(not leftovers, leftovers)
