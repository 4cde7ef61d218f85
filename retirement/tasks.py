"""Celery tasks for retire and wipe requests, verification evidence, cleanup rules and offboarding."""

from celery import shared_task

from mdm_portal.core import outbox


@shared_task(name="retirement.tasks.retirement_timeouts_flag_task")
def retirement_timeouts_flag_task() -> int:
    """Flag retirement requests whose device stayed offline past the timeout (beat, hourly)."""
    from .services import retirement_timeouts_flag

    return retirement_timeouts_flag()


@shared_task(name="retirement.tasks.cleanup_rules_run_task")
def cleanup_rules_run_task() -> dict[str, int]:
    """Run every enabled cleanup rule (beat, daily); returns how many devices each platform's rule took."""
    from .services import cleanup_rules_run_all

    return {run["platform"]: run["taken"] for run in cleanup_rules_run_all()}


# Above this many devices a bulk retire or wipe runs in this task, as devices' bulk remote actions do.
REQUEST_BULK_TASK = "retirement.tasks.retirement_request_bulk_task"


@shared_task(name=REQUEST_BULK_TASK, acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def retirement_request_bulk_task(
    *,
    user_id: int,
    source_ip: str | None,
    action: str,
    reason: str,
    keep_enrollment: bool,
    batch: str,
    selection: dict,
) -> int:
    """Run one bulk retire or wipe as the person who confirmed it; returns how many requests it made.

    Selects the devices again from the device list's filters they confirmed (and the ticked ids,
    unless they chose every device matching the filters), as that person: only what they may still
    see, and the service skips what they may not retire or wipe. Safe to run again for a ``batch``.
    """
    import uuid

    from django.contrib.auth import get_user_model

    from devices.admin.devices import device_changelist_queryset
    from mdm_portal.core.audit import Actor

    from .services import retirement_request_bulk

    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return 0
    devices = device_changelist_queryset(user=user, query=selection.get("admin_query", ""))
    if "ids" in selection:
        devices = devices.filter(pk__in=selection["ids"])
    outcome = retirement_request_bulk(
        actor=Actor.for_user(user, source_ip=source_ip),
        devices=devices,
        action=action,
        reason=reason,
        keep_enrollment=keep_enrollment,
        batch=uuid.UUID(batch),
    )
    return outcome["requested"]


def enqueue_retirement_request_bulk(
    *, user, source_ip: str | None, action: str, reason: str, keep_enrollment: bool, batch, selection: dict
) -> None:
    """Send the task once the caller's transaction commits (through the outbox): ids and filters, never
    model instances."""
    outbox.outbox_add(
        retirement_request_bulk_task,
        kwargs={
            "user_id": user.pk,
            "source_ip": source_ip,
            "action": action,
            "reason": reason,
            "keep_enrollment": keep_enrollment,
            "batch": str(batch),
            "selection": selection,
        },
    )
