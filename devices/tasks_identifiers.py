"""Celery task that imports a CSV file of corporate identifiers (``devices.services.identifiers``)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from .services.identifiers import identifier_import_run


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=5,
)
def identifier_import_process(import_id: int) -> str | None:
    """Run one import. Re-delivery is harmless: a finished import is left alone and an interrupted
    one resumes, skipping the rows it had already written. Returns the import's final status."""
    identifier_import = identifier_import_run(import_id=import_id)
    return identifier_import.status if identifier_import is not None else None
