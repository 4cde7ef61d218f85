"""Celery tasks for retire and wipe requests, verification evidence, cleanup rules and offboarding."""

from celery import shared_task


@shared_task(name="retirement.tasks.retirement_timeouts_flag_task")
def retirement_timeouts_flag_task() -> int:
    """Flag retirement requests whose device stayed offline past the timeout (beat, hourly)."""
    from .services import retirement_timeouts_flag

    return retirement_timeouts_flag()
