"""Validate Android Management API ``Policy`` dicts against Google's own discovery document.

The oracle is the API's discovery document, ``../shared/specs/android/androidmanagement.v1.json``
next to the project (revision 20261104, shipped in google-api-python-client). Nothing of the schema is
written here: every check reads the document.

``validate_policy(policy)`` returns a list of sentences, one per problem (empty when valid):

* a key the schema does not define (``properties``; ``additionalProperties`` allows any key),
* a wrong JSON type: ``string``, ``integer`` (not a bool), ``number``, ``boolean``, ``array``,
  ``object``; the discovery ``format`` refines it: ``int32``/``uint32`` integers in range,
  ``int64``/``uint64`` are decimal *strings* in JSON, ``google-duration`` is ``"<seconds>s"``,
  ``google-datetime`` RFC 3339, ``byte`` base64, ``google-fieldmask`` comma-separated paths,
* a value outside an ``enum``,
* a deprecated field (``deprecated: true``, or a description starting with "Deprecated" or saying
  "DEPRECATED") or enum value (``enumDeprecated``), and an output-only field (``readOnly``).

``$ref`` is resolved against ``schemas``; nested objects and array items are checked the same way,
down to ``MAX_DEPTH``. ``openNetworkConfiguration`` is an opaque object for the discovery document:
``validate_onc`` checks it against the subset of Open Network Configuration the API documents
(developers.google.com/android/management/configure-networks).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from .apple import specs_dir

MAX_DEPTH = 32
INT32 = (-(2**31), 2**31 - 1)
UINT32 = (0, 2**32 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT64 = (0, 2**64 - 1)
DURATION_RE = re.compile(r"^-?\d+(\.\d{1,9})?s$")
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
DEPRECATED_START_RE = re.compile(r"^\s*deprecated\b", re.IGNORECASE)
DEPRECATED_NOTE_RE = re.compile(r"\bDEPRECATED\b")  # "... DEPRECATED - Use passwordPolicies."

# Open Network Configuration, as the Android Management API accepts it ("Supported features").
ONC_TOP_KEYS = {"Type", "NetworkConfigurations", "Certificates"}
ONC_NETWORK_KEYS = {"GUID", "Name", "Type", "WiFi", "ProxySettings"}
ONC_NETWORK_REQUIRED = {"GUID", "Name", "Type", "WiFi"}
ONC_WIFI_KEYS = {
    "SSID",
    "HexSSID",
    "HiddenSSID",
    "AutoConnect",
    "Security",
    "Passphrase",
    "EAP",
    "MACAddressRandomizationMode",
}
ONC_WIFI_SECURITY = {"None", "WEP-PSK", "WPA-PSK", "WPA-EAP", "WEP-8021X", "WPA3-Enterprise_192"}
ONC_CERTIFICATE_KEYS = {"GUID", "Type", "X509", "PKCS12"}
ONC_CERTIFICATE_TYPES = {"Authority", "Server", "Client"}


def discovery_path() -> Path:
    return specs_dir() / "android" / "androidmanagement.v1.json"


def skip_reason() -> str | None:
    if not discovery_path().is_file():
        return f"The Android Management API discovery document is not at {discovery_path()} (check out ../shared/specs)"
    return None


def require_specs() -> None:
    """Skip the calling test, with the reason, when the discovery document is absent."""
    import pytest

    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@cache
def discovery() -> dict[str, Any]:
    with discovery_path().open(encoding="utf-8") as handle:
        return json.load(handle)


def schemas() -> dict[str, dict]:
    return discovery()["schemas"]


def resolve(spec: dict) -> dict:
    """``spec`` with its ``$ref`` followed (the referring property's own keys, e.g. ``deprecated``, kept)."""
    seen: set[str] = set()
    while "$ref" in spec:
        name = spec["$ref"]
        if name in seen:
            raise ValueError(f"$ref cycle at {name}")
        seen.add(name)
        own = {key: value for key, value in spec.items() if key != "$ref"}
        spec = {**schemas()[name], **own}
    return spec


def deprecated(spec: dict) -> bool:
    description = spec.get("description", "")
    return bool(
        spec.get("deprecated") or DEPRECATED_START_RE.search(description) or DEPRECATED_NOTE_RE.search(description)
    )


def _base64_ok(value: str) -> bool:
    try:
        base64.b64decode(
            value + "=" * (-len(value) % 4), altchars=b"-_" if ("-" in value or "_" in value) else None, validate=True
        )
    except (binascii.Error, ValueError):
        return False
    return True


class _Validator:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def value(self, value: Any, spec: dict, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.error(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        spec = resolve(spec)
        kind, fmt = spec.get("type"), spec.get("format")
        if kind == "any":
            return
        if kind == "string":
            self.string(value, spec, path, fmt)
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                self.error(path, f"must be an integer ({fmt or 'integer'}), not {type(value).__name__}")
            else:
                self.bounds(value, fmt, path)
        elif kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.error(path, f"must be a number, not {type(value).__name__}")
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.error(path, f"must be a boolean, not {type(value).__name__}")
        elif kind == "array":
            if not isinstance(value, list):
                self.error(path, f"must be an array, not {type(value).__name__}")
                return
            for index, item in enumerate(value):
                self.value(item, spec.get("items", {"type": "any"}), f"{path}[{index}]", depth + 1)
        elif kind == "object":
            self.object(value, spec, path, depth + 1)
        else:
            self.error(path, f"the schema gives an unknown type {kind!r}")

    def string(self, value: Any, spec: dict, path: str, fmt: str | None) -> None:
        if not isinstance(value, str):
            hint = " (int64 values are strings in JSON)" if fmt in ("int64", "uint64") else ""
            self.error(path, f"must be a string{hint}, not {type(value).__name__}")
            return
        enum = spec.get("enum")
        if enum is not None:
            if value not in enum:
                self.error(path, f"{value!r} is not one of {enum}")
            elif (spec.get("enumDeprecated") or [False] * len(enum))[enum.index(value)]:
                self.error(path, f"the value {value!r} is deprecated")
        if fmt in ("int64", "uint64"):
            if not re.fullmatch(r"-?\d+", value):
                self.error(path, f"{value!r} is not a decimal {fmt}")
            else:
                self.bounds(int(value), fmt, path)
        elif fmt == "google-duration" and not DURATION_RE.match(value):
            self.error(path, f"{value!r} is not a duration such as '3.5s'")
        elif fmt == "google-datetime" and not DATETIME_RE.match(value):
            self.error(path, f"{value!r} is not an RFC 3339 timestamp")
        elif fmt == "byte" and not _base64_ok(value):
            self.error(path, f"{value!r} is not base64")

    def bounds(self, number: int, fmt: str | None, path: str) -> None:
        low, high = {"int32": INT32, "uint32": UINT32, "int64": INT64, "uint64": UINT64}.get(fmt or "", (None, None))
        if low is not None and not low <= number <= high:
            self.error(path, f"{number} is outside {fmt} [{low}, {high}]")

    def object(self, value: Any, spec: dict, path: str, depth: int) -> None:
        if not isinstance(value, dict):
            self.error(path, f"must be an object, not {type(value).__name__}")
            return
        properties = spec.get("properties")
        additional = spec.get("additionalProperties")
        for name, item in value.items():
            where = f"{path}.{name}"
            if properties is not None and name in properties:
                field = properties[name]
                if deprecated(field):
                    self.error(where, "is deprecated: " + field.get("description", "").strip()[:160])
                if field.get("readOnly"):
                    self.error(where, "is output only (readOnly): the API sets it")
                self.value(item, field, where, depth)
            elif additional is not None:
                self.value(item, additional, where, depth)
            else:
                self.error(where, f"is not a field of {spec.get('id', 'this object')}")


def validate(value: Any, schema_name: str) -> list[str]:
    """Problems of ``value`` as an instance of the discovery schema ``schema_name``."""
    validator = _Validator()
    validator.value(value, {"$ref": schema_name}, schema_name, 0)
    return validator.errors


def validate_policy(policy: Any) -> list[str]:
    """Problems of a ``Policy`` resource (or fragment of one)."""
    return validate(policy, "Policy")


def validate_onc(onc: Any) -> list[str]:
    """Problems of an ``openNetworkConfiguration`` against the ONC subset the Android Management API accepts."""
    errors: list[str] = []
    if not isinstance(onc, dict):
        return [f"openNetworkConfiguration: must be an object, not {type(onc).__name__}"]
    for key in set(onc) - ONC_TOP_KEYS:
        errors.append(f"openNetworkConfiguration.{key}: not a supported top-level key")
    if onc.get("Type", "UnencryptedConfiguration") != "UnencryptedConfiguration":
        errors.append("openNetworkConfiguration.Type: must be omitted or UnencryptedConfiguration")
    for index, network in enumerate(onc.get("NetworkConfigurations", [])):
        path = f"NetworkConfigurations[{index}]"
        if not isinstance(network, dict):
            errors.append(f"{path}: must be an object")
            continue
        errors += [f"{path}.{key}: not supported" for key in set(network) - ONC_NETWORK_KEYS]
        errors += [f"{path}: {key} is required" for key in ONC_NETWORK_REQUIRED - set(network)]
        if network.get("Type") != "WiFi":
            errors.append(f"{path}.Type: only WiFi networks are supported")
        errors += [
            f"{path}.{key}: must be a non-empty string" for key in ("GUID", "Name") if not _text(network.get(key))
        ]
        errors += _onc_wifi(network.get("WiFi"), f"{path}.WiFi")
    for index, certificate in enumerate(onc.get("Certificates", [])):
        path = f"Certificates[{index}]"
        if not isinstance(certificate, dict):
            errors.append(f"{path}: must be an object")
            continue
        errors += [
            f"{path}.{key}: not supported (TrustBits and Remove are not)"
            for key in set(certificate) - ONC_CERTIFICATE_KEYS
        ]
        if not _text(certificate.get("GUID")):
            errors.append(f"{path}.GUID: must be a non-empty string")
        if certificate.get("Type") not in ONC_CERTIFICATE_TYPES:
            errors.append(f"{path}.Type: must be one of {sorted(ONC_CERTIFICATE_TYPES)}")
        elif certificate["Type"] in ("Authority", "Server") and not (
            _text(certificate.get("X509")) and _base64_ok(certificate["X509"])
        ):
            errors.append(f"{path}.X509: an {certificate['Type']} certificate needs base64 DER")
    return errors


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _onc_wifi(wifi: Any, path: str) -> list[str]:
    if not isinstance(wifi, dict):
        return [f"{path}: must be an object"]
    errors = [f"{path}.{key}: not supported" for key in set(wifi) - ONC_WIFI_KEYS]
    if not (_text(wifi.get("SSID")) or _text(wifi.get("HexSSID"))):
        errors.append(f"{path}: SSID or HexSSID is required")
    if wifi.get("Security") not in ONC_WIFI_SECURITY:
        errors.append(f"{path}.Security: {wifi.get('Security')!r} is not one of {sorted(ONC_WIFI_SECURITY)}")
    errors += [
        f"{path}.{key}: must be a boolean"
        for key in ("HiddenSSID", "AutoConnect")
        if key in wifi and not isinstance(wifi[key], bool)
    ]
    if "Passphrase" in wifi and not isinstance(wifi["Passphrase"], str):
        errors.append(f"{path}.Passphrase: must be a string")
    if wifi.get("Security") == "None" and "Passphrase" in wifi:
        errors.append(f"{path}.Passphrase: an open network has no passphrase")
    return errors
