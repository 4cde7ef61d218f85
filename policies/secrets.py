"""Encryption of the profile secrets the portal must hand to devices (it cannot hash them).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``, keys from ``MDM_SECRETS_KEYS`` (newest
first, older ones still decrypt), or one derived from ``SECRET_KEY`` when none is set.
"""

from __future__ import annotations

import json

from cryptography.fernet import InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured

from mdm_portal.core.crypto import fernet


def _fernet() -> MultiFernet:
    return fernet("profile secrets")


def secrets_encrypt(values: dict[str, str]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def secrets_decrypt(token: str) -> dict[str, str]:
    """The stored secrets; raises ``ImproperlyConfigured`` when no configured key opens them."""
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "Stored profile secrets cannot be decrypted with MDM_SECRETS_KEYS (or SECRET_KEY): "
            "restore the key they were written with, or enter the passwords again."
        ) from None
