"""Celery tasks of the configuration and compliance stage: one message per change, never per device."""

from celery import shared_task

from .models import ConfigurationProfile


@shared_task(name="policies.tasks.profile_fanout_task", acks_late=True)
def profile_fanout_task(profile_id: int, reason: str = "") -> dict:
    """Bring one profile's deliveries up to date (idempotent: a redelivered message changes nothing twice)."""
    from .services.profiles import profile_fanout

    return profile_fanout(profile_id, reason=reason)


@shared_task(name="policies.tasks.profiles_reconcile")
def profiles_reconcile() -> int:
    """Re-run every profile's fan-out (beat): catches group, membership and device changes."""
    from .services.profiles import profile_fanout

    ids = list(ConfigurationProfile.objects.values_list("pk", flat=True))
    for profile_id in ids:
        profile_fanout(profile_id, reason="scheduled reconciliation", recheck_related=False)
    return len(ids)
