"""Writes of the configuration and compliance stage. Each service takes an actor and audits itself."""

from .profiles import (
    device_profiles_sync,
    profile_assignments_set,
    profile_delete,
    profile_fanout,
    profile_resend_failed,
    profile_save,
)

__all__ = [
    "device_profiles_sync",
    "profile_assignments_set",
    "profile_delete",
    "profile_fanout",
    "profile_resend_failed",
    "profile_save",
]
