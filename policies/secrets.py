"""Encryption of the profile secrets the portal must hand to devices (it cannot hash them).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``, keys from ``MDM_SECRETS_KEYS`` (newest
first, older ones still decrypt), or one derived from ``SECRET_KEY`` when none is set.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet() -> MultiFernet:
    keys = list(settings.MDM_SECRETS_KEYS)
    if not keys:
        digest = hashlib.sha256(b"mdm-portal profile secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"MDM_SECRETS_KEYS holds a key that is not a Fernet key: {exc}") from None


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
