"""``{{ moment|ago }}``: "just now" under a minute, else "5 minutes ago" (the portal's way to say when)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

JUST_NOW = timedelta(minutes=1)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in words; "just now" under a minute (and for a moment ahead of the clock)."""
    if not moment:
        return ""
    now = now or timezone.now()
    if now - moment < JUST_NOW:
        return "just now"
    return f"{timesince(moment, now)} ago"


register.filter("ago", ago)
