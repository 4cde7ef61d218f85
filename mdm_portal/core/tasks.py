"""Celery tasks of the core: housekeeping that keeps the console honest."""

from celery import shared_task
from django.utils import timezone

from . import authz
from .audit import Actor
from .models import APIToken
from .services import api_token_revoke


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def api_tokens_revoke_expired() -> int:
    """Mark expired API tokens revoked, so the token list shows what still works. Returns how many."""
    actor = Actor.system("api_tokens_revoke_expired")
    expired = authz.unrestricted(APIToken.objects, actor=actor).filter(
        revoked_at__isnull=True, expires_at__lte=timezone.now()
    )
    count = 0
    for token in expired.iterator(chunk_size=500):
        api_token_revoke(actor=actor, token=token)
        count += 1
    return count


@shared_task(name="mdm_portal.core.tasks.outbox_relay_task", acks_late=True)
def outbox_relay_task() -> int:
    """Send the task messages that could not reach the broker when they were made (beat, every minute)."""
    from .outbox import outbox_relay

    return outbox_relay()
