"""Symmetric encryption for what the portal must read back (profile secrets, outbox messages with secrets).

Fernet (AES-128-CBC with HMAC-SHA256) from ``cryptography``. Keys come from ``MDM_SECRETS_KEYS``
(newest first; older ones still decrypt), or, when none is set, one derived from ``SECRET_KEY`` and
the purpose, so two uses never share a derived key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def fernet(purpose: str) -> MultiFernet:
    keys = list(getattr(settings, "MDM_SECRETS_KEYS", []))
    if not keys:
        digest = hashlib.sha256(f"mdm-portal {purpose}:".encode() + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"MDM_SECRETS_KEYS holds a key that is not a Fernet key: {exc}") from None
