"""Celery tasks of enrolment: the remediation that follows a refused enrolment."""

from celery import shared_task

from mdm_portal.core.audit import Actor

from .services.restrictions import enrollment_failure_notify

NOTIFY_TASK_NAME = "devices.tasks_enrollment.enrollment_failure_notify"


@shared_task(name=NOTIFY_TASK_NAME, acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def enrollment_failure_notify_task(failure_id: int) -> bool:
    """Email the person and IT about one refused enrolment. Idempotent; returns whether mail went out."""
    return enrollment_failure_notify(failure_id=failure_id, actor=Actor.system("enrollment_failure_notify"))
