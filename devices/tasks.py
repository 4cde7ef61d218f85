"""Celery tasks for devices."""

from celery import shared_task

from .services import device_commands_expire
from .services.commands import device_commands_resend_due
from .services.provisioning import device_provisioning_overdue_sweep


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def commands_expire() -> int:
    """Close every command past its deadline, and line up unanswered ones to be sent again.

    Set-based and idempotent; returns how many commands expired.
    """
    device_commands_resend_due()
    return device_commands_expire()


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def provisioning_overdue_sweep() -> int:
    """Flag devices past their provisioning deadline and run their profile's action.

    Set-based and idempotent; returns how many devices were flagged.
    """
    return device_provisioning_overdue_sweep()


# Tasks of the other device areas live in their own modules; importing them registers them.
from . import tasks_commands, tasks_enrollment, tasks_identifiers  # noqa: E402, F401
