"""Shared fixtures: two scopes and the people of every permission matrix."""

from types import SimpleNamespace

import pytest
from django.db import connection

from tests.factories import DeviceFactory, ScopeFactory, StaffFactory, UserFactory, grant


def pytest_collection_modifyitems(config, items):
    # Tests marked `postgres` need PostgreSQL; on SQLite they are skipped, not failed.
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def celery_runs_tasks_in_process():
    """Tasks enqueued during a test run in the test's process, never into the demo's file broker."""
    from mdm_portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def media_in_a_temporary_directory(settings, tmp_path_factory):
    """Uploaded packages, icons and import files go to a temporary folder, never into the demo's var/."""
    settings.MEDIA_ROOT = str(tmp_path_factory.mktemp("media"))


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate-limit counts live in the cache, which outlives a test: every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Every persona's password is hashed per test; PBKDF2 would make that most of the run time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def scope_a(db):
    return ScopeFactory(name="EMEA", slug="emea")


@pytest.fixture
def scope_b(db):
    return ScopeFactory(name="Americas", slug="americas")


@pytest.fixture
def people(db, scope_a, scope_b):
    """Every persona of a permission matrix, with a device in each scope.

    employee owns ``device_a`` (scope A); ``other_employee`` owns ``device_b`` (scope B).
    """
    employee = UserFactory(username="employee", scope=scope_a)
    other_employee = UserFactory(username="other-employee", scope=scope_b)
    no_role = StaffFactory(username="no-role")
    global_admin = StaffFactory(username="global-admin")
    grant(global_admin, "Global administrator")
    read_only = StaffFactory(username="read-only")
    grant(read_only, "Read-only operator")
    helpdesk_a = StaffFactory(username="helpdesk-a")
    grant(helpdesk_a, "Helpdesk operator", [scope_a])
    device_a = DeviceFactory(name="EMEA-PHONE-1", scope=scope_a, primary_user=employee)
    device_b = DeviceFactory(name="AMER-PHONE-1", scope=scope_b, primary_user=other_employee)
    return SimpleNamespace(
        employee=employee,
        other_employee=other_employee,
        no_role=no_role,
        global_admin=global_admin,
        read_only=read_only,
        helpdesk_a=helpdesk_a,
        device_a=device_a,
        device_b=device_b,
        scope_a=scope_a,
        scope_b=scope_b,
    )


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"
