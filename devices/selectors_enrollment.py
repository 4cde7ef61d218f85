"""Reads of enrolment profiles and enrolment failures for a person, restricted by ``core.authz``."""

from __future__ import annotations

from django.db.models import QuerySet

from mdm_portal.core import authz

from .models import EnrollmentFailure, EnrollmentProfile


def enrollment_failure_list(*, user, action: str = "devices.view_enrollmentfailure") -> QuerySet[EnrollmentFailure]:
    """Failures ``user`` may see (global holders: all; scoped: those of people in their scopes)."""
    return authz.restrict(EnrollmentFailure.objects.select_related("user", "restriction", "profile"), user, action)


def enrollment_failures_for_person(*, user, limit: int = 5) -> QuerySet[EnrollmentFailure]:
    """The person's own most recent refused enrolments (at most ``limit``), newest first, for the Company Portal.

    Each one's ``message`` is the sentence the device was given: which rule refused it and what to do.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return EnrollmentFailure.objects.none()
    return EnrollmentFailure.objects.filter(user=user).select_related("restriction").order_by("-created_at")[:limit]


def enrollment_profile_list(*, user, action: str = "devices.view_enrollmentprofile") -> QuerySet[EnrollmentProfile]:
    """Enrolment profiles ``user`` may see, with what the list page shows joined in."""
    return authz.restrict(
        EnrollmentProfile.objects.select_related("scope", "enrollment_manager", "primary_user", "device_group"),
        user,
        action,
    )
