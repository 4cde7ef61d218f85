"""Celery tasks for devices."""
