"""The platform-neutral settings of each profile kind: names, types, ranges, secrets.

One definition serves the admin form, the API, validation and the native renderers
(``policies.platforms``), which read the cleaned values by these names. A secret setting (a
password) is stored encrypted (``policies.secrets``) and never shown again.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from .choices import ProfileKind

BOOL, INT, STR, CHOICE, PEM = "bool", "int", "str", "choice", "pem"


@dataclass(frozen=True)
class Setting:
    name: str
    label: str
    type: str
    help: str = ""
    required: bool = False
    secret: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int = 255
    choices: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    pattern: str = ""


PASSCODE_COMPLEXITY = (
    ("numeric", "Numeric (digits only)"),
    ("alphanumeric", "Alphanumeric (letters and digits)"),
    ("complex", "Complex (letters, digits and a symbol)"),
)
WIFI_SECURITY = (("none", "Open (no password)"), ("wpa2", "WPA2 Personal"), ("wpa3", "WPA3 Personal"))
VPN_TYPES = (("ikev2", "IKEv2"), ("l2tp", "L2TP"))
EMAIL_TYPES = (("exchange", "Exchange ActiveSync"), ("imap", "IMAP"))
HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"

SETTINGS: dict[str, tuple[Setting, ...]] = {
    ProfileKind.PASSCODE: (
        Setting("require_passcode", "Require a passcode", BOOL, default=True),
        Setting("min_length", "Minimum length", INT, minimum=4, maximum=16, help="4 to 16 characters."),
        Setting("complexity", "Complexity", CHOICE, choices=PASSCODE_COMPLEXITY),
        Setting("max_age_days", "Maximum age (days)", INT, minimum=1, maximum=730, help="Then it must be changed."),
        Setting("history", "Passcode history", INT, minimum=1, maximum=50, help="How many previous ones not to reuse."),
        Setting(
            "max_failed_attempts", "Maximum failed attempts", INT, minimum=2, maximum=11, help="Then the device wipes."
        ),
        Setting("auto_lock_minutes", "Auto-lock after (minutes)", INT, minimum=1, maximum=15),
    ),
    ProfileKind.ENCRYPTION: (
        Setting("require_encryption", "Require storage encryption", BOOL, default=True),
        Setting(
            "escrow_recovery_key",
            "Escrow the recovery key to the portal",
            BOOL,
            default=True,
            help="FileVault and BitLocker recovery keys.",
        ),
    ),
    ProfileKind.RESTRICTIONS: (
        Setting("allow_camera", "Allow the camera", BOOL),
        Setting("allow_screen_capture", "Allow screenshots and screen recording", BOOL),
        Setting("allow_app_store", "Allow installing apps from the store", BOOL),
        Setting("allow_usb_file_transfer", "Allow USB and file sharing", BOOL),
        Setting("allow_account_changes", "Allow adding or changing accounts", BOOL),
    ),
    ProfileKind.WIFI: (
        Setting("ssid", "Network name (SSID)", STR, required=True, max_length=32),
        Setting("security", "Security", CHOICE, required=True, choices=WIFI_SECURITY, default="wpa2"),
        Setting("password", "Password", STR, secret=True, max_length=63, help="8 to 63 characters for WPA."),
        Setting("auto_join", "Join automatically", BOOL, default=True),
        Setting("hidden", "Hidden network", BOOL, default=False),
    ),
    ProfileKind.VPN: (
        Setting("connection_name", "Connection name", STR, required=True, max_length=64),
        Setting("server", "Server", STR, required=True, pattern=HOST_PATTERN, help="Host name or IP address."),
        Setting("vpn_type", "Type", CHOICE, required=True, choices=VPN_TYPES, default="ikev2"),
        Setting("remote_identifier", "Remote identifier", STR, help="IKEv2: the server's identity. Default: server."),
        Setting("on_demand", "Connect on demand", BOOL, default=False),
    ),
    ProfileKind.EMAIL: (
        Setting("account_type", "Account type", CHOICE, required=True, choices=EMAIL_TYPES, default="exchange"),
        Setting("account_name", "Account name", STR, required=True, max_length=64),
        Setting("host", "Mail server", STR, required=True, pattern=HOST_PATTERN),
        Setting("email_address", "Email address", STR, help="Empty: the device's user enters it."),
        Setting("use_ssl", "Use SSL", BOOL, default=True),
    ),
    ProfileKind.CERTIFICATE: (
        Setting("certificate_name", "Certificate name", STR, required=True, max_length=100),
        Setting(
            "certificate",
            "Certificate (PEM)",
            PEM,
            required=True,
            max_length=20000,
            help="The CA certificate, -----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----.",
        ),
    ),
}

PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def settings_for(kind: str) -> tuple[Setting, ...]:
    try:
        return SETTINGS[kind]
    except KeyError:
        raise ValidationError(f"Unknown profile kind {kind!r}. Use one of: {', '.join(SETTINGS)}.") from None


def pem_der(pem: str) -> bytes:
    """The DER bytes of a PEM certificate (raises ``ValidationError`` when it is not one)."""
    match = PEM_RE.search(pem or "")
    if not match:
        raise ValidationError(
            "Paste one certificate in PEM form, from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----."
        )
    try:
        der = base64.b64decode("".join(match.group("body").split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("The certificate's base64 text is damaged; export it again.") from None
    if len(der) < 64 or der[0] != 0x30:
        raise ValidationError("This is not a DER certificate inside the PEM armour; export it again.")
    return der


def _clean_value(setting: Setting, value: Any) -> Any:
    if setting.type == BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "1", "0"):
            return value.lower() in ("true", "on", "1")
        raise ValidationError("must be true or false.")
    if setting.type == INT:
        if isinstance(value, bool):
            raise ValidationError("must be a whole number.")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValidationError("must be a whole number.") from None
        if setting.minimum is not None and number < setting.minimum:
            raise ValidationError(f"must be at least {setting.minimum}.")
        if setting.maximum is not None and number > setting.maximum:
            raise ValidationError(f"must be at most {setting.maximum}.")
        return number
    text = str(value).strip() if not isinstance(value, (dict, list)) else None
    if text is None:
        raise ValidationError("must be text.")
    if len(text) > setting.max_length:
        raise ValidationError(f"must be at most {setting.max_length} characters.")
    if any(ord(c) < 32 and c not in "\r\n\t" for c in text):
        raise ValidationError("must not contain control characters.")
    if setting.type == CHOICE:
        allowed = [c for c, _ in setting.choices]
        if text not in allowed:
            raise ValidationError(f"must be one of: {', '.join(allowed)}.")
    if setting.pattern and not re.match(setting.pattern, text):
        raise ValidationError("is not a valid host name or address.")
    if setting.type == PEM:
        pem_der(text)
    return text


def settings_clean(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate what a person entered for ``kind``: ``(settings, secrets)`` or ``ValidationError``.

    Empty values mean "not configured" and are left out (a renderer sets nothing for them), except
    required ones. Unknown names are refused. Errors are a dict by setting name, each a sentence.
    """
    specs = {s.name: s for s in settings_for(kind)}
    if not isinstance(values, dict):
        raise ValidationError("Settings must be an object of setting names and values.")
    errors: dict[str, str] = {}
    for name in values:
        if name not in specs:
            errors[name] = f"{ProfileKind(kind).label} profiles have no setting {name!r}; use {', '.join(specs)}."
    clean: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for name, spec in specs.items():
        value = values.get(name)
        if value is None or value == "":
            if spec.required:
                errors[name] = f"{spec.label} is required."
            continue
        try:
            cleaned = _clean_value(spec, value)
        except ValidationError as exc:
            errors[name] = f"{spec.label} {exc.messages[0]}"
            continue
        (secrets if spec.secret else clean)[name] = cleaned
    if kind == ProfileKind.WIFI and not errors:
        _wifi_check(clean, secrets, errors)
    if errors:
        raise ValidationError(errors)
    return clean, secrets


def _wifi_check(clean: dict, secrets: dict, errors: dict) -> None:
    key = "password"
    given = secrets.get(key, "")
    if clean.get("security") == "none" and given:
        errors[key] = "An open network has no password; remove it or choose WPA2 or WPA3."
    elif clean.get("security") in ("wpa2", "wpa3") and given and not 8 <= len(given) <= 63:
        errors[key] = "A WPA password is 8 to 63 characters."


def setting_label(kind: str, name: str) -> str:
    for spec in SETTINGS.get(kind, ()):
        if spec.name == name:
            return spec.label
    return name
