"""Celery tasks of app delivery: one message per change, never one per device."""

from celery import shared_task
from django.db.models import Exists, OuterRef

from .models import App, AppAssignment, AppInstall


@shared_task(name="apps.tasks.app_fanout_task", acks_late=True)
def app_fanout_task(app_id: int, reason: str = "") -> dict:
    """Bring one app's installs up to date (idempotent: a redelivered message changes nothing twice)."""
    from .services.delivery import app_fanout

    return app_fanout(app_id, reason=reason)


@shared_task(name="apps.tasks.apps_reconcile")
def apps_reconcile() -> int:
    """Re-run the fan-out of every app with assignments or installs (beat): catches group, membership,
    OS and device changes, and installs whose command expired."""
    from .services.delivery import app_fanout

    assigned = Exists(AppAssignment.objects.filter(app=OuterRef("pk")))
    installed = Exists(AppInstall.objects.filter(app=OuterRef("pk")))
    ids = list(App.objects.filter(assigned | installed).values_list("pk", flat=True))
    for app_id in ids:
        app_fanout(app_id, reason="scheduled reconciliation")
    return len(ids)
