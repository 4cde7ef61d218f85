"""Android Management API ``Policy`` fragments from a platform-neutral ``ProfileSpec``.

The mapping follows the API's discovery document (``androidmanagement.v1.json``, ``schemas.Policy``),
which ``tests/specs/android.py`` validates every rendered policy against, using only fields that are
not deprecated:

* passcode: ``passwordPolicies`` (one ``PasswordRequirements`` with ``passwordScope: SCOPE_DEVICE``;
  ``passwordRequirements`` is deprecated) and ``maximumTimeToLock`` (int64 milliseconds, a string in
  the JSON encoding). ``passwordMinimumLength`` is only enforced for qualities NUMERIC and stronger,
  so a length without a complexity asks for NUMERIC.
* encryption: ``encryptionPolicy`` (ENABLED_WITHOUT_PASSWORD / ENCRYPTION_POLICY_UNSPECIFIED). Android
  has no recovery key to escrow.
* restrictions: ``cameraAccess`` (``cameraDisabled`` is deprecated), ``screenCaptureDisabled``,
  ``installAppsDisabled``, ``deviceConnectivityManagement.usbDataAccess`` (``usbFileTransferDisabled``
  is deprecated; company-owned devices only), ``modifyAccountsDisabled``.
* wifi and certificate: ``openNetworkConfiguration``, the subset of Open Network Configuration the API
  accepts (developers.google.com/android/management/configure-networks): ``NetworkConfigurations``
  with GUID, Name, Type WiFi and WiFi {SSID, Security, Passphrase, AutoConnect, HiddenSSID};
  ``Certificates`` with GUID, Type Authority, X509 (base64 DER). Its Security values are None, WEP-PSK,
  WPA-PSK, WPA-EAP, WEP-8021X and WPA3-Enterprise_192: there is no WPA3-Personal (SAE).
* vpn and email: not applicable. ``alwaysOnVpnPackage`` only names a VPN app, and email accounts are
  the managed configuration of an email app: neither is a setting of the device itself.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from policies.choices import ProfileKind
from policies.profile_settings import pem_der

from . import NotApplicable, ProfileSpec, Rendered

FORMAT = "android-management-policy"
ONC_NAMESPACE = uuid.UUID("0b8f3a52-6f1e-4a3c-9a47-2f6f1c9d7e02")
SECONDS_PER_DAY = 86_400
MS_PER_MINUTE = 60_000

PASSWORD_QUALITY = {"numeric": "NUMERIC", "alphanumeric": "ALPHANUMERIC", "complex": "COMPLEX"}
ONC_SECURITY = {"none": "None", "wpa2": "WPA-PSK", "wpa3": "WPA-PSK"}

NO_PASSCODE = "The passcode is not required (require a passcode is off), and Android ignores passcode rules then."
VPN_REASON = (
    "The Android Management API has no built-in VPN profile: alwaysOnVpnPackage only names a VPN app, which is "
    "configured through its own managed configuration."
)
EMAIL_REASON = (
    "The Android Management API has no email account policy: an email app (Gmail, Outlook) is configured through "
    "its managed configuration."
)


class _Policy:
    """The fields of one ``Policy`` fragment, and what each neutral setting became."""

    def __init__(self, spec: ProfileSpec):
        self.spec = spec
        self.settings = spec.settings
        self.fields: dict[str, Any] = {}
        self.applied: list[str] = []
        self.not_applicable: list[NotApplicable] = []

    def given(self, name: str) -> bool:
        return name in self.settings or name in self.spec.secrets

    def apply(self, *names: str) -> None:
        self.applied.extend(name for name in names if self.given(name) and name not in self.applied)

    def refuse(self, name: str, reason: str) -> None:
        if self.given(name):
            self.not_applicable.append(NotApplicable(name, reason))

    def onc_guid(self, what: str) -> str:
        return str(uuid.uuid5(ONC_NAMESPACE, f"{self.spec.uuid}/{what}"))


def _passcode(p: _Policy) -> None:
    s = p.settings
    rules = ("min_length", "complexity", "max_age_days", "history", "max_failed_attempts")
    if "auto_lock_minutes" in s:
        p.fields["maximumTimeToLock"] = str(s["auto_lock_minutes"] * MS_PER_MINUTE)  # int64: a JSON string
        p.apply("auto_lock_minutes")
    if s.get("require_passcode") is False:
        p.fields["passwordPolicies"] = [
            {"passwordScope": "SCOPE_DEVICE", "passwordQuality": "PASSWORD_QUALITY_UNSPECIFIED"}
        ]
        p.apply("require_passcode")
        for name in rules:
            p.refuse(name, NO_PASSCODE)
        return
    if not any(name in s for name in ("require_passcode", *rules)):
        return
    quality = PASSWORD_QUALITY.get(s.get("complexity")) or ("NUMERIC" if "min_length" in s else "SOMETHING")
    requirements: dict[str, Any] = {"passwordScope": "SCOPE_DEVICE", "passwordQuality": quality}
    if quality == "COMPLEX":
        requirements.update(passwordMinimumLetters=1, passwordMinimumNumeric=1, passwordMinimumSymbols=1)
    if "min_length" in s:
        requirements["passwordMinimumLength"] = s["min_length"]
    if "max_age_days" in s:
        requirements["passwordExpirationTimeout"] = f"{s['max_age_days'] * SECONDS_PER_DAY}s"  # google-duration
    if "history" in s:
        requirements["passwordHistoryLength"] = s["history"]
    if "max_failed_attempts" in s:
        requirements["maximumFailedPasswordsForWipe"] = s["max_failed_attempts"]
    p.fields["passwordPolicies"] = [requirements]
    p.apply("require_passcode", *rules)


def _encryption(p: _Policy) -> None:
    s = p.settings
    if "require_encryption" in s:
        # ENCRYPTION_POLICY_UNSPECIFIED: "ignored, i.e. no encryption required", never a decryption.
        p.fields["encryptionPolicy"] = (
            "ENABLED_WITHOUT_PASSWORD" if s["require_encryption"] else "ENCRYPTION_POLICY_UNSPECIFIED"
        )
        p.apply("require_encryption")
    p.refuse(
        "escrow_recovery_key",
        "Android has no recovery key to escrow: the storage keys are bound to the device and the user's lock screen.",
    )


def _restrictions(p: _Policy) -> None:
    s = p.settings
    if "allow_camera" in s:
        p.fields["cameraAccess"] = "CAMERA_ACCESS_USER_CHOICE" if s["allow_camera"] else "CAMERA_ACCESS_DISABLED"
    if "allow_screen_capture" in s:
        p.fields["screenCaptureDisabled"] = not s["allow_screen_capture"]
    if "allow_app_store" in s:
        p.fields["installAppsDisabled"] = not s["allow_app_store"]
    if "allow_usb_file_transfer" in s:
        access = "ALLOW_USB_DATA_TRANSFER" if s["allow_usb_file_transfer"] else "DISALLOW_USB_FILE_TRANSFER"
        p.fields["deviceConnectivityManagement"] = {"usbDataAccess": access}
    if "allow_account_changes" in s:
        p.fields["modifyAccountsDisabled"] = not s["allow_account_changes"]
    p.apply(
        "allow_camera", "allow_screen_capture", "allow_app_store", "allow_usb_file_transfer", "allow_account_changes"
    )


def _wifi(p: _Policy) -> None:
    s = p.settings
    wifi: dict[str, Any] = {"SSID": s["ssid"], "Security": ONC_SECURITY[s["security"]]}
    if "password" in p.spec.secrets and s["security"] != "none":
        wifi["Passphrase"] = p.spec.secrets["password"]
    if "auto_join" in s:
        wifi["AutoConnect"] = s["auto_join"]
    if "hidden" in s:
        wifi["HiddenSSID"] = s["hidden"]
    network = {"GUID": p.onc_guid("wifi"), "Name": s["ssid"], "Type": "WiFi", "WiFi": wifi}
    p.fields["openNetworkConfiguration"] = {"Type": "UnencryptedConfiguration", "NetworkConfigurations": [network]}
    p.apply("ssid", "password", "auto_join", "hidden")
    if s["security"] == "wpa3":
        p.refuse(
            "security",
            "The Android Management API's Open Network Configuration has no WPA3-Personal (SAE) security; the network "
            "is configured as WPA-PSK, which joins WPA2/WPA3 transition-mode networks only.",
        )
    else:
        p.apply("security")


def _certificate(p: _Policy) -> None:
    s = p.settings
    certificate = {
        "GUID": p.onc_guid("certificate"),
        "Type": "Authority",
        "X509": base64.b64encode(pem_der(s["certificate"])).decode("ascii"),
    }
    p.fields["openNetworkConfiguration"] = {"Type": "UnencryptedConfiguration", "Certificates": [certificate]}
    p.apply("certificate")
    p.refuse("certificate_name", "An Open Network Configuration certificate has no name; Android shows its subject.")


def _refuse_all(reason: str) -> Callable[[_Policy], None]:
    def refuse(p: _Policy) -> None:
        for name in [*p.settings, *p.spec.secrets]:
            p.refuse(name, reason)

    return refuse


KINDS: dict[str, Callable[[_Policy], None]] = {
    ProfileKind.PASSCODE: _passcode,
    ProfileKind.ENCRYPTION: _encryption,
    ProfileKind.RESTRICTIONS: _restrictions,
    ProfileKind.WIFI: _wifi,
    ProfileKind.VPN: _refuse_all(VPN_REASON),
    ProfileKind.EMAIL: _refuse_all(EMAIL_REASON),
    ProfileKind.CERTIFICATE: _certificate,
}


def policy_dict(spec: ProfileSpec) -> tuple[dict[str, Any], list[NotApplicable], list[str]]:
    """The ``Policy`` fields this profile sets, what was not applicable, and what applied."""
    try:
        build = KINDS[spec.kind]
    except KeyError:
        raise ValueError(f"Cannot render a {spec.kind!r} profile for Android.") from None
    policy = _Policy(spec)
    build(policy)
    return policy.fields, policy.not_applicable, policy.applied


def render(spec: ProfileSpec, platform: str) -> Rendered:
    fields, not_applicable, applied = policy_dict(spec)
    return Rendered(platform=platform, format=FORMAT, content=fields, not_applicable=not_applicable, applied=applied)
