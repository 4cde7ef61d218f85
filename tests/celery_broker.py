"""Point this test process's Celery app at a given broker for a block (not eagerly).

Shared by the outbox tests (kombu's in-process ``memory://`` broker, or a closed port for a broker
that is down) and the fault tests (a throwaway redis-server).
"""

from __future__ import annotations

import contextlib

from django.conf import settings


@contextlib.contextmanager
def celery_using(broker_url: str):
    """This process's Celery app sends to ``broker_url`` (and not eagerly) inside the block."""
    import kombu.pools

    from mdm_portal.celery import app
    from mdm_portal.core import outbox

    saved = {
        "broker_url": app.conf.broker_url,
        "broker_transport_options": app.conf.broker_transport_options,
        "task_always_eager": app.conf.task_always_eager,
    }

    def reset_pools():
        kombu.pools.reset()  # kombu keeps connection and producer pools per broker URL, process-wide
        app._pool = None
        app.amqp._producer_pool = None
        outbox._unreachable.clear()

    reset_pools()
    app.conf.broker_url = broker_url
    app.conf.broker_transport_options = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "socket_connect_timeout": settings.CELERY_BROKER_CONNECTION_TIMEOUT,
        "socket_timeout": settings.CELERY_BROKER_SOCKET_TIMEOUT,
    }
    app.conf.task_always_eager = False
    try:
        yield app
    finally:
        reset_pools()
        for key, value in saved.items():
            setattr(app.conf, key, value)
