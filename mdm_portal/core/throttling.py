"""Rate limits for the endpoints a machine calls without a person (DRF throttles).

Counted in Django's default cache, which is Redis when ``REDIS_URL`` is set, so every web process
shares the count (the managed-app sign-in throttles in ``apps.mam_api`` use the same cache). Rates
are settings, read at each request: ``MDM_ENROLL_RATE`` per client address on ``POST
/agent/v1/enroll``, ``MDM_ACCESS_CHECK_RATE`` per gate (its API token's account) on
``/access/check``. A throttled request is answered 429 with ``Retry-After`` and a JSON error.
"""

from __future__ import annotations

import math

from django.conf import settings
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from .audit import client_ip


class SettingRateThrottle(SimpleRateThrottle):
    """A throttle whose rate is the Django setting ``rate_setting``, read at each request."""

    rate_setting = ""

    def __init__(self):
        # SimpleRateThrottle reads its rate here; ours is read in allow_request.
        pass

    def get_rate(self):
        return getattr(settings, self.rate_setting)

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class EnrollAddressThrottle(SettingRateThrottle):
    """Enrolment attempts per client address: guessing enrolment codes costs time."""

    scope = "agent_enroll"
    rate_setting = "MDM_ENROLL_RATE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}


class AccessCheckThrottle(SettingRateThrottle):
    """Access checks per gate: the account of the API token (or session) asking."""

    scope = "access_check"
    rate_setting = "MDM_ACCESS_CHECK_RATE"

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else client_ip(request)
        return self.cache_format % {"scope": self.scope, "ident": ident or "unknown"}


class ThrottleMessageMixin:
    """A throttled request's error says how long to wait and what to do (``what_to_do``)."""

    what_to_do = "Wait and retry."

    def throttled(self, request, wait):
        seconds = max(1, math.ceil(wait or 1))
        raise exceptions.Throttled(
            wait=seconds, detail=f"Too many requests: retry in {seconds} seconds. {self.what_to_do}"
        )
