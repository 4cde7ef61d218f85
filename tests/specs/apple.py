"""Validate Apple configuration profiles against Apple's own payload specifications.

The oracle is Apple's ``device-management`` repository, checked out (data only) in
``../shared/specs/apple-device-management/mdm/profiles/*.yaml`` next to the project. Each YAML file
describes one payload type: its ``payloadkeys`` with ``type``, ``presence``, optional ``rangelist``,
``range``, ``format``, ``repetition``, ``supportedOS`` and nested ``subkeys``. ``TopLevel.yaml``
describes the outer ``Configuration`` profile and ``CommonPayloadKeys.yaml`` the keys every payload
carries.

``validate_profile(profile, os="iOS")`` returns a list of sentences, one per problem (empty when the
profile is valid):

* a ``presence: required`` key is missing,
* a value has the wrong plist type (``<integer>`` is an ``int`` but not a ``bool``, ``<real>`` a
  ``float``, ``<date>`` a ``datetime``, ``<data>`` ``bytes``),
* a value is outside the key's ``rangelist``, ``range`` or ``format``, or an array's length is outside
  its item's ``repetition``,
* a key the specification does not define (unless the level allows ``ANY`` key),
* a payload type or key that does not exist on ``os`` (``introduced: n/a``),
* two payloads with the same ``PayloadIdentifier`` or ``PayloadUUID``.

Recursion: two specifications define keys recursively through YAML aliases
(``com.apple.homescreenlayout.yaml``: a folder's ``Pages`` hold icons that are folders again;
``com.apple.applicationaccess.new.yaml``), which PyYAML loads as cyclic Python structures. The
validator only descends as deep as the *value* is nested, and refuses values nested deeper than
``MAX_DEPTH`` (which also stops a cyclic value); ``spec_key_paths`` walks a specification itself
and stops at a list of keys it has already entered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings

MAX_DEPTH = 32
ANY = "ANY"
NOT_AVAILABLE = "n/a"

# Our platforms -> the names Apple's supportedOS uses.
APPLE_OS = {"ios": "iOS", "ipados": "iOS", "macos": "macOS"}

_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "<string>": (str,),
    "<integer>": (int,),
    "<boolean>": (bool,),
    "<real>": (float,),
    "<date>": (datetime,),
    "<data>": (bytes, bytearray),
    "<array>": (list, tuple),
    "<dictionary>": (dict,),
}


def specs_dir() -> Path:
    """``../shared/specs`` relative to the project root."""
    return Path(settings.BASE_DIR).parent / "shared" / "specs"


def profiles_dir() -> Path:
    return specs_dir() / "apple-device-management" / "mdm" / "profiles"


def skip_reason() -> str | None:
    """Why Apple's specifications cannot be used here, or None when they can."""
    if not (profiles_dir() / "TopLevel.yaml").is_file():
        return (
            f"Apple's payload specifications are not at {profiles_dir()} "
            "(check out ../shared/specs next to the project)"
        )
    return None


def require_specs() -> None:
    """Skip the calling test, with the reason, when the specifications are absent."""
    import pytest

    reason = skip_reason()
    if reason:
        pytest.skip(reason)


@cache
def payload_specs() -> dict[str, list[dict]]:
    """Every payload specification by payload type (``TopLevel`` and ``CommonPayloadKeys`` included).

    A few payload types are described in several files, each with some of the keys
    (``com.apple.MCX``: Accounts, EnergySaver, FileVault2, ...): a payload of that type may use the
    keys of any of them.
    """
    specs: dict[str, list[dict]] = {}
    for path in sorted(profiles_dir().glob("*.yaml")):
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        payload_type = (document.get("payload") or {}).get("payloadtype")
        if payload_type:
            specs.setdefault(payload_type, []).append(document)
    return specs


def payload_keys(payload_type: str) -> list[dict]:
    """The key specifications of ``payload_type``, over every file that describes it."""
    keys: dict[str, dict] = {}
    for document in payload_specs()[payload_type]:
        for key in document.get("payloadkeys") or []:
            keys.setdefault(key["key"], key)
    return list(keys.values())


def _available(supported: dict | None, os: str | None, *, listed_only: bool) -> bool:
    """Whether ``os`` supports a payload (``listed_only``: it must be listed) or a key (absent = inherit)."""
    if os is None:
        return True
    entry = (supported or {}).get(os)
    if entry is None:
        return not listed_only
    return str(entry.get("introduced", "")) != NOT_AVAILABLE


def _type_ok(value: Any, spec_type: str) -> bool:
    if spec_type == "<any>" or spec_type not in _PYTHON_TYPES:
        return True
    if isinstance(value, bool) and spec_type != "<boolean>":
        return False  # a bool is an int in Python, never a plist <integer> or <real>
    return isinstance(value, _PYTHON_TYPES[spec_type])


class _Validator:
    def __init__(self, os: str | None):
        self.os = os
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def value(self, value: Any, spec: dict, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.error(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        spec_type = spec.get("type", "<any>")
        if not _type_ok(value, spec_type):
            self.error(path, f"must be {spec_type}, not {type(value).__name__}")
            return
        rangelist = spec.get("rangelist")
        if rangelist is not None and spec_type != "<array>" and value not in rangelist:
            self.error(path, f"{value!r} is not one of {rangelist}")
        if rangelist is not None and spec_type == "<array>":
            for index, item in enumerate(value):
                if item not in rangelist:
                    self.error(f"{path}[{index}]", f"{item!r} is not one of {rangelist}")
        bounds = spec.get("range")
        if isinstance(bounds, dict) and isinstance(value, int | float) and not isinstance(value, bool):
            if "min" in bounds and value < bounds["min"]:
                self.error(path, f"{value} is below the minimum {bounds['min']}")
            if "max" in bounds and value > bounds["max"]:
                self.error(path, f"{value} is above the maximum {bounds['max']}")
        pattern = spec.get("format")
        if pattern and isinstance(value, str) and not re.search(pattern, value):
            self.error(path, f"{value!r} does not match {pattern}")
        subkeys = spec.get("subkeys")
        if not subkeys:
            return
        if spec_type == "<dictionary>":
            self.dictionary(value, subkeys, path, depth + 1)
        elif spec_type == "<array>":
            item_spec = subkeys[0]
            repetition = item_spec.get("repetition") or {}
            if "min" in repetition and len(value) < repetition["min"]:
                self.error(path, f"needs at least {repetition['min']} items, has {len(value)}")
            if "max" in repetition and len(value) > repetition["max"]:
                self.error(path, f"takes at most {repetition['max']} items, has {len(value)}")
            for index, item in enumerate(value):
                self.value(item, item_spec, f"{path}[{index}]", depth + 1)

    def dictionary(self, value: dict, keyspecs: list[dict], path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.error(path, f"nested deeper than {MAX_DEPTH} levels")
            return
        named = {spec["key"]: spec for spec in keyspecs if spec.get("key") != ANY}
        any_spec = next((spec for spec in keyspecs if spec.get("key") == ANY), None)
        for name, spec in named.items():
            if spec.get("presence") == "required" and name not in value:
                self.error(path, f"the required key {name} is missing")
        for name, item in value.items():
            where = f"{path}.{name}"
            if not isinstance(name, str):
                self.error(where, "a dictionary key must be a string")
                continue
            spec = named.get(name, any_spec)
            if spec is None:
                self.error(where, "is not a key Apple defines here")
                continue
            if not _available(spec.get("supportedOS"), self.os, listed_only=False):
                self.error(where, f"is not available on {self.os}")
            self.value(item, spec, where, depth)

    def payload(self, payload: Any, path: str) -> None:
        if not isinstance(payload, dict):
            self.error(path, f"a payload must be <dictionary>, not {type(payload).__name__}")
            return
        payload_type = payload.get("PayloadType")
        documents = payload_specs().get(payload_type) if payload_type not in ("TopLevel", "CommonPayloadKeys") else None
        if not documents:
            self.error(path, f"{payload_type!r} is not a payload type Apple defines")
            return
        if not any(_available(d["payload"].get("supportedOS"), self.os, listed_only=True) for d in documents):
            self.error(path, f"{payload_type} is not available on {self.os}")
        # The payload's own keys, over the keys every payload carries.
        keys = {key["key"]: key for key in payload_keys("CommonPayloadKeys")}
        keys.update({key["key"]: key for key in payload_keys(payload_type)})
        self.dictionary(payload, list(keys.values()), path, depth=1)


def validate_payload(payload: dict, *, os: str | None = None) -> list[str]:
    """Problems of one payload dictionary, checked against its ``PayloadType``'s specification."""
    validator = _Validator(os)
    validator.payload(payload, payload.get("PayloadType", "payload") if isinstance(payload, dict) else "payload")
    return validator.errors


def validate_profile(profile: dict, *, os: str | None = None) -> list[str]:
    """Problems of a whole configuration profile: the top level, then every payload in it.

    ``os`` is ``"iOS"``, ``"macOS"``, ... (Apple's names) to also refuse what that OS lacks.
    """
    validator = _Validator(os)
    if not isinstance(profile, dict):
        return [f"profile: must be <dictionary>, not {type(profile).__name__}"]
    validator.dictionary(profile, payload_keys("TopLevel"), "profile", depth=0)
    content = profile.get("PayloadContent")
    if isinstance(content, list | tuple):
        seen: dict[str, set] = {"PayloadIdentifier": set(), "PayloadUUID": set()}
        for index, payload in enumerate(content):
            path = f"profile.PayloadContent[{index}]"
            validator.payload(payload, path)
            if not isinstance(payload, dict):
                continue
            for key, values in seen.items():
                if payload.get(key) in values or payload.get(key) == profile.get(key):
                    validator.error(f"{path}.{key}", f"{payload.get(key)!r} is used twice in the profile")
                values.add(payload.get(key))
    return validator.errors


def spec_key_paths(payload_type: str) -> Iterator[str]:
    """Every key path a specification defines (``Dock[].Pages[][]``...), each recursive definition once."""
    entered: set[int] = set()

    def walk(keyspecs: list[dict], prefix: str) -> Iterator[str]:
        if id(keyspecs) in entered:
            return  # a YAML alias back to a list of keys already being walked: recursion
        entered.add(id(keyspecs))
        for spec in keyspecs:
            path = f"{prefix}.{spec['key']}" if prefix else spec["key"]
            yield path
            if spec.get("subkeys"):
                suffix = "[]" if spec.get("type") == "<array>" else ""
                yield from walk(spec["subkeys"], path + suffix)

    for document in payload_specs()[payload_type]:
        yield from walk(document.get("payloadkeys") or [], "")
