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


@shared_task(name="policies.tasks.compliance_sweep_task", acks_late=True)
def compliance_sweep_task() -> dict:
    """Evaluate the whole fleet in id batches and write the day's snapshot (beat, hourly).

    Acknowledged at the end, so a killed worker's sweep is redelivered rather than lost until the
    next hour; a re-run is harmless: committed batches are unchanged (no write, no audit) and the
    snapshot is replaced, not added to.
    """
    from .services.compliance import compliance_sweep

    return compliance_sweep()


@shared_task(name="policies.tasks.compliance_actions_task", acks_late=True)
def compliance_actions_task() -> dict:
    """Run the noncompliance actions that are due (beat, every 15 minutes); each runs once per device.

    Acknowledged at the end, so a killed worker's run is redelivered; a re-run skips every device
    whose run row (committed with its command and audit event) exists.
    """
    from .services.compliance_actions import compliance_actions_run

    return compliance_actions_run()


@shared_task(name="policies.tasks.policy_reevaluate_task", acks_late=True)
def policy_reevaluate_task(policy_id: int, platform: str | None = None, scope_id: int | None = None) -> dict:
    """Re-evaluate the devices one policy may apply to after a change (or, with platform and scope, a deletion)."""
    from .services.compliance import policy_reevaluate

    return policy_reevaluate(policy_id, platform=platform, scope_id=scope_id)
