"""Apple configuration profiles (iOS, iPadOS, macOS) from a platform-neutral ``ProfileSpec``.

The mapping follows Apple's payload specifications, the ``device-management`` repository
(``mdm/profiles/*.yaml``, release iOS 18.1 / macOS 15.1), which ``tests/specs/apple.py`` validates
every rendered profile against. Key names, types, ranges and ``supportedOS`` come from there:

* passcode: ``com.apple.mobiledevice.passwordpolicy`` (forcePIN, minLength, requireAlphanumeric,
  minComplexChars, maxPINAgeInDays, pinHistory, maxFailedAttempts, maxInactivity).
* encryption: macOS ``com.apple.MCX.FileVault2`` (Enable On, Defer) and ``com.apple.MCX``
  (dontAllowFDEDisable). iOS and iPadOS have no encryption payload: Data Protection always encrypts
  and the passcode protects the keys, so encryption is reported not applicable there.
* restrictions: ``com.apple.applicationaccess`` (allowCamera, allowScreenShot, allowAccountModification;
  iOS allowAppInstallation and allowFilesUSBDriveAccess, both for supervised devices) and macOS
  ``com.apple.appstore`` (restrict-store-softwareupdate-only). macOS has no USB storage restriction
  left (``com.apple.systemuiserver`` media controls are deprecated since macOS 11).
* wifi: ``com.apple.wifi.managed``; vpn: ``com.apple.vpn.managed`` (IKEv2 with EAP user
  authentication, or L2TP, still listed in ``VPNType`` for iOS and macOS); email:
  ``com.apple.eas.account`` (iOS Exchange), ``com.apple.ews.account`` (macOS Exchange: the Mac has no
  ActiveSync payload) or ``com.apple.mail.managed`` (IMAP); certificate: ``com.apple.security.root``
  with the DER bytes as ``<data>``.

Output is stable: every payload's UUID is a UUID5 of the profile's UUID and the payload type.
"""

from __future__ import annotations

import plistlib
import uuid
from collections.abc import Callable
from typing import Any

from policies.choices import ProfileKind
from policies.profile_settings import pem_der

from . import NotApplicable, ProfileSpec, Rendered

FORMAT = "apple-mobileconfig"
IOS, MACOS = "iOS", "macOS"
APPLE_OS = {"ios": IOS, "ipados": IOS, "macos": MACOS}
PAYLOAD_NAMESPACE = uuid.UUID("5f0c7c1e-9a44-4d55-8a55-5b1f2f4f8a01")

IMAP_PORT, IMAPS_PORT, SUBMISSION_PORT = 143, 993, 587
WIFI_ENCRYPTION = {"none": "None", "wpa2": "WPA2", "wpa3": "WPA3"}


class _Profile:
    """The payloads of one profile, and what each neutral setting became."""

    def __init__(self, spec: ProfileSpec, os: str):
        self.spec = spec
        self.os = os
        self.settings = spec.settings
        self.payloads: list[dict[str, Any]] = []
        self.applied: list[str] = []
        self.not_applicable: list[NotApplicable] = []

    def given(self, name: str) -> bool:
        return name in self.settings or name in self.spec.secrets

    def apply(self, *names: str) -> None:
        self.applied.extend(name for name in names if self.given(name) and name not in self.applied)

    def refuse(self, name: str, reason: str) -> None:
        if self.given(name):
            self.not_applicable.append(NotApplicable(name, reason))

    def payload(self, payload_type: str, keys: dict[str, Any], display_name: str | None = None) -> dict[str, Any]:
        payload = {
            "PayloadType": payload_type,
            "PayloadVersion": 1,
            "PayloadIdentifier": f"{self.spec.identifier}.{payload_type}",
            "PayloadUUID": payload_uuid(self.spec, payload_type),
            "PayloadDisplayName": display_name or self.spec.name,
            "PayloadOrganization": self.spec.organisation,
            **keys,
        }
        self.payloads.append(payload)
        return payload


def payload_uuid(spec: ProfileSpec, payload_type: str) -> str:
    """A stable UUID for one payload of ``spec``: the same profile always renders the same bytes."""
    return str(uuid.uuid5(PAYLOAD_NAMESPACE, f"{spec.uuid}/{payload_type}")).upper()


def _passcode(p: _Profile) -> None:
    s = p.settings
    keys: dict[str, Any] = {}
    if "require_passcode" in s:
        keys["forcePIN"] = s["require_passcode"]
    if "min_length" in s:
        keys["minLength"] = s["min_length"]
    complexity = s.get("complexity")
    if complexity == "numeric":
        keys["requireAlphanumeric"] = False
    elif complexity in ("alphanumeric", "complex"):
        keys["requireAlphanumeric"] = True
        if complexity == "complex":
            keys["minComplexChars"] = 1  # a character other than a letter or a digit
    for name, key in (
        ("max_age_days", "maxPINAgeInDays"),
        ("history", "pinHistory"),
        ("max_failed_attempts", "maxFailedAttempts"),
        ("auto_lock_minutes", "maxInactivity"),
    ):
        if name in s:
            keys[key] = s[name]
    if keys:
        p.payload("com.apple.mobiledevice.passwordpolicy", keys)
    p.apply("require_passcode", "min_length", "complexity", "max_age_days", "history")
    p.apply("max_failed_attempts", "auto_lock_minutes")


def _encryption(p: _Profile) -> None:
    s = p.settings
    if p.os == IOS:
        p.refuse(
            "require_encryption",
            "iOS and iPadOS always encrypt storage (Data Protection) and the passcode protects the keys: "
            "require a passcode with a Passcode profile instead; Apple has no encryption payload for them.",
        )
        p.refuse("escrow_recovery_key", "iOS and iPadOS have no recovery key to escrow.")
        return
    filevault = s.get("require_encryption") is True
    if filevault:
        # Defer: MDM has no user password to give, so FileVault turns on at the user's next logout.
        p.payload("com.apple.MCX.FileVault2", {"Enable": "On", "Defer": True, "UseRecoveryKey": True})
        p.payload("com.apple.MCX", {"dontAllowFDEDisable": True})
        p.apply("require_encryption")
    else:
        p.refuse(
            "require_encryption",
            "Not requiring FileVault sends nothing: 'Enable Off' would turn FileVault off on Macs that use it.",
        )
    if s.get("escrow_recovery_key") is True:
        p.refuse(
            "escrow_recovery_key",
            "Escrowing the FileVault recovery key needs com.apple.security.FDERecoveryKeyEscrow with the portal's "
            "escrow certificate (a com.apple.security.pkcs1 payload), which is not configured; the Mac shows the "
            "personal recovery key to the user instead.",
        )
    elif filevault:
        p.apply("escrow_recovery_key")  # false: no escrow payload, the user keeps the recovery key
    else:
        p.refuse("escrow_recovery_key", "Without FileVault required there is no recovery key to escrow or keep.")


def _restrictions(p: _Profile) -> None:
    s = p.settings
    keys: dict[str, Any] = {}
    for name, key in (
        ("allow_camera", "allowCamera"),
        ("allow_screen_capture", "allowScreenShot"),
        ("allow_account_changes", "allowAccountModification"),  # iOS 7, macOS 14
    ):
        if name in s:
            keys[key] = s[name]
            p.apply(name)
    if p.os == IOS:
        if "allow_app_store" in s:
            keys["allowAppInstallation"] = s["allow_app_store"]  # supervised devices only
            p.apply("allow_app_store")
        if "allow_usb_file_transfer" in s:
            keys["allowFilesUSBDriveAccess"] = s["allow_usb_file_transfer"]  # iOS 13, supervised
            p.apply("allow_usb_file_transfer")
    else:
        if "allow_app_store" in s:
            p.payload("com.apple.appstore", {"restrict-store-softwareupdate-only": not s["allow_app_store"]})
            p.apply("allow_app_store")
        p.refuse(
            "allow_usb_file_transfer",
            "macOS has no restriction for USB storage or file sharing: allowFilesUSBDriveAccess is iOS only and the "
            "com.apple.systemuiserver media controls are deprecated since macOS 11.",
        )
    if keys:
        p.payload("com.apple.applicationaccess", keys)


def _wifi(p: _Profile) -> None:
    s = p.settings
    keys: dict[str, Any] = {"SSID_STR": s["ssid"], "EncryptionType": WIFI_ENCRYPTION[s["security"]]}
    if "password" in p.spec.secrets and s["security"] != "none":
        keys["Password"] = p.spec.secrets["password"]
    if "auto_join" in s:
        keys["AutoJoin"] = s["auto_join"]
    if "hidden" in s:
        keys["HIDDEN_NETWORK"] = s["hidden"]
    p.payload("com.apple.wifi.managed", keys, display_name=s["ssid"])
    p.apply("ssid", "security", "password", "auto_join", "hidden")


def _vpn(p: _Profile) -> None:
    s = p.settings
    keys: dict[str, Any] = {"UserDefinedName": s["connection_name"]}
    if s["vpn_type"] == "ikev2":
        ikev2: dict[str, Any] = {
            "RemoteAddress": s["server"],
            "RemoteIdentifier": s.get("remote_identifier") or s["server"],
            # The server proves itself with its certificate; the user signs in with EAP (the device asks
            # for the user name and password), so the local identity is only a label.
            "LocalIdentifier": s["connection_name"],
            "AuthenticationMethod": "None",
            "ExtendedAuthEnabled": 1,
            "OnDemandEnabled": 1 if s.get("on_demand") else 0,
        }
        if s.get("on_demand"):
            ikev2["OnDemandRules"] = [{"Action": "Connect"}]
        keys.update(VPNType="IKEv2", IKEv2=ikev2)
        p.apply("connection_name", "server", "vpn_type", "remote_identifier", "on_demand")
    else:
        # L2TP over IPsec; the shared secret is not a neutral setting, the user enters it on the device.
        keys.update(
            VPNType="L2TP", PPP={"CommRemoteAddress": s["server"]}, IPSec={"AuthenticationMethod": "SharedSecret"}
        )
        p.apply("connection_name", "server", "vpn_type")
        p.refuse("remote_identifier", "L2TP has no remote identifier (an IKEv2 setting).")
        if s.get("on_demand"):
            p.refuse("on_demand", "Apple's VPN On Demand works with IKEv2, IPSec and VPN apps, not with L2TP.")
        else:
            p.apply("on_demand")
    p.payload("com.apple.vpn.managed", keys, display_name=s["connection_name"])


def _email(p: _Profile) -> None:
    s = p.settings
    use_ssl = s.get("use_ssl", True)
    if s["account_type"] == "exchange":
        keys: dict[str, Any] = {"Host": s["host"], "SSL": use_ssl}
        if "email_address" in s:
            keys["EmailAddress"] = s["email_address"]
        # The Mac has no ActiveSync payload; its Exchange accounts use Exchange Web Services.
        p.payload("com.apple.eas.account" if p.os == IOS else "com.apple.ews.account", keys, s["account_name"])
    else:
        keys = {
            "EmailAccountType": "EmailTypeIMAP",
            "EmailAccountDescription": s["account_name"],
            "IncomingMailServerHostName": s["host"],
            "IncomingMailServerPortNumber": IMAPS_PORT if use_ssl else IMAP_PORT,
            "IncomingMailServerUseSSL": use_ssl,
            "IncomingMailServerAuthentication": "EmailAuthPassword",
            "OutgoingMailServerHostName": s["host"],
            "OutgoingMailServerPortNumber": SUBMISSION_PORT,
            "OutgoingMailServerUseSSL": use_ssl,
            "OutgoingMailServerAuthentication": "EmailAuthPassword",
            "OutgoingPasswordSameAsIncomingPassword": True,
        }
        if "email_address" in s:
            keys["EmailAddress"] = s["email_address"]
        p.payload("com.apple.mail.managed", keys, s["account_name"])
    p.apply("account_type", "account_name", "host", "email_address", "use_ssl")


def _certificate(p: _Profile) -> None:
    s = p.settings
    keys = {"PayloadContent": pem_der(s["certificate"]), "PayloadCertificateFileName": f"{s['certificate_name']}.cer"}
    p.payload("com.apple.security.root", keys, display_name=s["certificate_name"])
    p.apply("certificate_name", "certificate")


KINDS: dict[str, Callable[[_Profile], None]] = {
    ProfileKind.PASSCODE: _passcode,
    ProfileKind.ENCRYPTION: _encryption,
    ProfileKind.RESTRICTIONS: _restrictions,
    ProfileKind.WIFI: _wifi,
    ProfileKind.VPN: _vpn,
    ProfileKind.EMAIL: _email,
    ProfileKind.CERTIFICATE: _certificate,
}


def profile_dict(spec: ProfileSpec, platform: str) -> tuple[dict[str, Any], list[NotApplicable], list[str]]:
    """The configuration profile as a dict (before plist serialisation), what was not applicable, what applied."""
    try:
        os, build = APPLE_OS[platform], KINDS[spec.kind]
    except KeyError:
        raise ValueError(f"Cannot render a {spec.kind!r} profile for {platform!r} as an Apple profile.") from None
    profile = _Profile(spec, os)
    build(profile)
    top = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": spec.identifier,
        "PayloadUUID": str(spec.uuid).upper(),
        "PayloadDisplayName": spec.name,
        "PayloadOrganization": spec.organisation,
        "PayloadContent": profile.payloads,
    }
    return top, profile.not_applicable, profile.applied


def render(spec: ProfileSpec, platform: str) -> Rendered:
    profile, not_applicable, applied = profile_dict(spec, platform)
    content = plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=True).decode("utf-8")
    return Rendered(platform=platform, format=FORMAT, content=content, not_applicable=not_applicable, applied=applied)
