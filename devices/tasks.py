"""Celery tasks for devices."""

from celery import shared_task

from .services import device_commands_expire


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def commands_expire() -> int:
    """Close every command past its deadline. Set-based and idempotent; returns how many."""
    return device_commands_expire()
