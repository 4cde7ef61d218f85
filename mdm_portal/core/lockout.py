"""Sign-in lockout (django-axes): which address a sign-in comes from, and the page a locked-out person sees.

Configured in settings (``AXES_*``, ``MDM_LOGIN_FAILURE_LIMIT``, ``MDM_LOGIN_LOCKOUT_MINUTES``). A
lockout is per username and address; an administrator ends one early by deleting its row in the IT
console (Axes > Access attempts), which only global administrators see.
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from .audit import client_ip as _audit_client_ip


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, for sign-ins that come with a request (every web sign-in form and the app sign-in).

    ``authenticate()`` without a request (a script, or the test client's ``login()``) has no
    address to lock; axes would raise, this lets the password backends decide as they would alone.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def client_ip(request) -> str:
    """The same address the audit log records (``REMOTE_ADDR``, rewritten by a trusted proxy)."""
    return _audit_client_ip(request) or ""


def cool_off() -> timedelta:
    return timedelta(hours=float(settings.AXES_COOLOFF_TIME))


def lockout_response(request, original_response=None, credentials=None):
    """429 with ``Retry-After``: when to try again, and that IT can unlock the account sooner."""
    wait = cool_off()
    retry_at = timezone.localtime(timezone.now() + wait)
    seconds = math.ceil(wait.total_seconds())
    response = render(
        request,
        "portal/locked_out.html",
        {
            "retry_at": retry_at,
            "minutes": max(1, math.ceil(seconds / 60)),
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "is_console": request.path.startswith("/admin/"),
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response
