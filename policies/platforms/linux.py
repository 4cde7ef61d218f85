"""The Linux agent's profile document from a platform-neutral ``ProfileSpec``.

Linux has no MDM protocol: the agent (``agent/``) applies a JSON document of actions, and only what it
can do the same way on every distribution:

* wifi: a NetworkManager keyfile (``/etc/NetworkManager/system-connections/*.nmconnection``, mode 0600;
  format of nm-settings-keyfile(5): GKeyFile, values escaped ``\\\\ \\n \\t \\r`` and a leading ``\\s``);
  ``key-mgmt`` wpa-psk (WPA2) or sae (WPA3), no ``[wifi-security]`` for an open network.
* certificate: a trust anchor the agent writes as PEM into the system trust store
  (``/usr/local/share/ca-certificates`` + ``update-ca-certificates`` on Debian and Ubuntu,
  ``/etc/pki/ca-trust/source/anchors`` + ``update-ca-trust`` on Fedora and RHEL).
* encryption: a check only. LUKS is chosen when the disk is set up; the agent reports whether the root
  file system is on an encrypted volume and cannot encrypt a running system nor read its keys.

Everything else is not applicable, with the reason.
"""

from __future__ import annotations

import base64
import textwrap
import uuid
from collections.abc import Callable
from typing import Any

from policies.choices import ProfileKind
from policies.profile_settings import pem_der

from . import NotApplicable, ProfileSpec, Rendered

FORMAT = "linux-agent-profile"
SCHEMA_VERSION = 1
CONNECTION_NAMESPACE = uuid.UUID("c4d1a8e6-2b7f-4f0e-9d3a-6e5b4c3a2f04")
KEY_MANAGEMENT = {"wpa2": "wpa-psk", "wpa3": "sae"}

REASONS = {
    ProfileKind.PASSCODE: (
        "The Linux agent does not manage passwords or screen locking: PAM password rules and each desktop's lock "
        "screen differ between distributions."
    ),
    ProfileKind.RESTRICTIONS: (
        "Linux has no device-wide switch for the camera, screenshots, app stores, USB storage or accounts that "
        "works across distributions and desktops."
    ),
    ProfileKind.VPN: (
        "The Linux agent does not configure VPNs: NetworkManager's IKEv2 and L2TP support are optional plugins "
        "that differ between distributions."
    ),
    ProfileKind.EMAIL: "Linux has no system-wide email account store; each mail client keeps its own accounts.",
}


def keyfile_value(text: str) -> str:
    """``text`` escaped for a GKeyFile value (nm-settings-keyfile): one line, nothing interpreted."""
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return "\\s" + escaped[1:] if escaped.startswith(" ") else escaped


def _keyfile(sections: dict[str, dict[str, str]]) -> str:
    lines: list[str] = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key}={keyfile_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


class _Document:
    """The actions of one agent profile, and what each neutral setting became."""

    def __init__(self, spec: ProfileSpec):
        self.spec = spec
        self.settings = spec.settings
        self.actions: list[dict[str, Any]] = []
        self.applied: list[str] = []
        self.not_applicable: list[NotApplicable] = []

    def given(self, name: str) -> bool:
        return name in self.settings or name in self.spec.secrets

    def apply(self, *names: str) -> None:
        self.applied.extend(name for name in names if self.given(name) and name not in self.applied)

    def refuse(self, name: str, reason: str) -> None:
        if self.given(name):
            self.not_applicable.append(NotApplicable(name, reason))


def _encryption(d: _Document) -> None:
    s = d.settings
    if s.get("require_encryption") is True:
        d.actions.append({"type": "check", "check": "root_filesystem_encrypted", "expect": True})
        d.apply("require_encryption")
    else:
        d.refuse("require_encryption", "Not requiring encryption leaves nothing to check on Linux.")
    d.refuse(
        "escrow_recovery_key",
        "LUKS keys are set when the disk is encrypted; the agent neither reads nor escrows them.",
    )


def _wifi(d: _Document) -> None:
    s = d.settings
    connection_uuid = str(uuid.uuid5(CONNECTION_NAMESPACE, f"{d.spec.uuid}/wifi"))
    sections: dict[str, dict[str, str]] = {
        "connection": {"id": s["ssid"], "uuid": connection_uuid, "type": "wifi"},
        "wifi": {"mode": "infrastructure", "ssid": s["ssid"]},
    }
    if "auto_join" in s:
        sections["connection"]["autoconnect"] = "true" if s["auto_join"] else "false"
    if "hidden" in s:
        sections["wifi"]["hidden"] = "true" if s["hidden"] else "false"
    if s["security"] != "none":
        security = {"key-mgmt": KEY_MANAGEMENT[s["security"]]}
        if "password" in d.spec.secrets:
            security["psk"] = d.spec.secrets["password"]
        sections["wifi-security"] = security
    sections["ipv4"] = {"method": "auto"}
    sections["ipv6"] = {"method": "auto"}
    d.actions.append(
        {
            "type": "networkmanager_connection",
            "file_name": f"{connection_uuid}.nmconnection",
            "mode": "0600",
            "content": _keyfile(sections),
        }
    )
    d.apply("ssid", "security", "password", "auto_join", "hidden")


def _certificate(d: _Document) -> None:
    s = d.settings
    body = "\n".join(textwrap.wrap(base64.b64encode(pem_der(s["certificate"])).decode("ascii"), 64))
    file_stem = str(uuid.uuid5(CONNECTION_NAMESPACE, f"{d.spec.uuid}/certificate"))
    d.actions.append(
        {
            "type": "trust_anchor",
            "name": s["certificate_name"],
            "file_name": f"{file_stem}.crt",  # never the user's text: it becomes a path
            "pem": f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n",
        }
    )
    d.apply("certificate_name", "certificate")


def _refuse_all(reason: str) -> Callable[[_Document], None]:
    def refuse(d: _Document) -> None:
        for name in [*d.settings, *d.spec.secrets]:
            d.refuse(name, reason)

    return refuse


KINDS: dict[str, Callable[[_Document], None]] = {
    ProfileKind.ENCRYPTION: _encryption,
    ProfileKind.WIFI: _wifi,
    ProfileKind.CERTIFICATE: _certificate,
    **{kind: _refuse_all(reason) for kind, reason in REASONS.items()},
}


def render(spec: ProfileSpec, platform: str) -> Rendered:
    try:
        build = KINDS[spec.kind]
    except KeyError:
        raise ValueError(f"Cannot render a {spec.kind!r} profile for Linux.") from None
    document = _Document(spec)
    build(document)
    content = {
        "schema": SCHEMA_VERSION,
        "profile": {"uuid": str(spec.uuid), "identifier": spec.identifier, "name": spec.name, "version": spec.version},
        "actions": document.actions,
    }
    return Rendered(
        platform=platform,
        format=FORMAT,
        content=content,
        not_applicable=document.not_applicable,
        applied=document.applied,
    )
