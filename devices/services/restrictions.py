"""Enrolment restrictions: which devices a person may enrol.

The default restriction applies to everyone: at most ``MDM_DEVICE_LIMIT_PER_USER`` (5) enrolled
devices per person. Devices enrolled with an IT enrolment profile (owned by an enrolment-manager
account) are exempt; the profile's own capacity (up to 1,000) bounds them instead.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from mdm_portal.core.models import User

from ..choices import LifecycleState
from ..models import Device, EnrollmentFailure


def enrollment_restrictions_check(
    *, user: User | None, platform: str, os_version: str, ownership: str, exempt: bool = False
) -> None:
    """Raise ``EnrollmentError`` with the rule and what to do, or return when the device may enrol.

    Called inside the enrolment transaction; the person's row is locked so two enrolments at once
    cannot both take the last place.
    """
    from .enrollment import EnrollmentError

    if user is None or exempt:
        return
    User.objects.select_for_update().filter(pk=user.pk).first()
    limit = settings.MDM_DEVICE_LIMIT_PER_USER
    enrolled = Device.objects.filter(
        primary_user=user, lifecycle_state__in=(LifecycleState.ENROLLED, LifecycleState.RETIRING)
    ).count()
    if enrolled >= limit:
        raise EnrollmentError(
            "enrollment_refused",
            f"This account already has {enrolled} enrolled devices, the limit is {limit}. "
            "Remove one in the Company Portal or ask IT.",
        )


def enrollment_failure_record(*, identity: dict, error, source_ip: str | None = None) -> EnrollmentFailure:
    """Keep a refused enrolment on record, in its own transaction (the enrolment's was rolled back)."""
    with transaction.atomic():
        return EnrollmentFailure.objects.create(
            user=error.user,
            platform=identity.get("platform", "")[:20],
            os_version=(identity.get("os_version") or "")[:64],
            serial_number=(identity.get("serial_number") or "")[:64],
            imei=(identity.get("imei") or "")[:17],
            device_name=(identity.get("name") or "")[:255],
            reason_code=error.code,
            message=error.message,
            restriction=error.restriction,
            profile=error.profile,
            source_ip=source_ip,
        )
