"""Native renderers: one platform-neutral profile in each platform's own format.

``render(spec, platform)`` returns a ``Rendered``: the native content and the settings the
platform cannot express, each with the reason ("not applicable": reported, never dropped
silently). Renderers are pure functions of a ``ProfileSpec`` (no database), so tests can validate
their output against the vendors' specifications.

Formats:

* Apple (iOS, iPadOS, macOS): a configuration profile, XML property list (``.mobileconfig``) text.
* Android: an Android Management API ``Policy`` resource (a dict, JSON in the command).
* Windows: an OMA-DM SyncML body of ``Replace``/``Exec``/``Add`` commands on CSP node paths (XML text).
* Linux: the agent's own JSON (the Linux agent applies what it can).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devices.choices import Platform


@dataclass(frozen=True)
class ProfileSpec:
    """What a renderer needs from a profile: no model, so renderers stay pure."""

    uuid: str
    name: str
    kind: str
    version: int
    settings: dict[str, Any]
    secrets: dict[str, str] = field(default_factory=dict)
    organisation: str = "MDM Portal"

    @property
    def identifier(self) -> str:
        return f"org.mdmportal.profile.{self.uuid}"


@dataclass(frozen=True)
class NotApplicable:
    setting: str
    reason: str


@dataclass
class Rendered:
    platform: str
    format: str
    content: Any  # str (XML) or dict (JSON)
    not_applicable: list[NotApplicable] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # neutral setting names the content expresses

    @property
    def applicable(self) -> bool:
        """Whether anything at all reaches the device."""
        return bool(self.applied)


def render(spec: ProfileSpec, platform: str) -> Rendered:
    from . import android, apple, linux, windows

    renderers = {
        Platform.IOS: apple.render,
        Platform.IPADOS: apple.render,
        Platform.MACOS: apple.render,
        Platform.ANDROID: android.render,
        Platform.WINDOWS: windows.render,
        Platform.LINUX: linux.render,
    }
    return renderers[platform](spec, platform)
