"""Celery tasks for retire and wipe requests, verification evidence, cleanup rules and offboarding."""
