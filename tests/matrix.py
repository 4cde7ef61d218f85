"""The register of permission-matrix coverage, read by ``tests/test_matrix_complete.py``.

An endpoint id is ``"<area>:<url name>"``:

* ``"admin:devices_device_changelist"``, ``"admin:devices_device_change"``: a ModelAdmin's pages,
* ``"api:device-list"``, ``"api:api-schema"``: routes under ``/api/`` (the name without a namespace),
* ``"portal:device_detail"``: Company Portal pages,
* ``"agent:checkin"``: the device agent protocol.

A matrix test says what it covers with ``@covers(...)``. Table-driven tests compute the ids from
their table, so a table row is the only thing to add for a new model. A module that holds matrix
tests is listed in ``MATRIX_MODULES`` so the meta-test imports it and sees its declarations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import models

F = TypeVar("F", bound=Callable)

MATRIX_MODULES: tuple[str, ...] = (
    "tests.test_permission_matrix",
    "tests.devices.protocol.test_agent_matrix",
    "tests.devices.access.test_access_check",
    "tests.devices.test_portal_matrix",
    "tests.devices.test_enrollment_matrix",
    "tests.devices.test_remote_actions_matrix",
    "tests.devices.test_identifier_matrix",
    "tests.policies.test_policies_admin_matrix",
    "tests.policies.test_policies_api_matrix",
    "tests.policies.test_portal_compliance_matrix",
    "tests.apps.test_mam_matrix",
    "tests.apps.test_apps_admin_matrix",
    "tests.apps.test_app_package_download",
    "tests.apps.test_portal_apps_matrix",
    "tests.apps.test_portal_apps_index_matrix",
    "tests.apps.test_apps_api_matrix",
    "tests.retirement.test_portal_retirement_matrix",
    "tests.retirement.test_retirement_api_matrix",
    "tests.retirement.test_retirement_admin_matrix",
    "tests.retirement.test_cleanup_matrix",
    "tests.retirement.test_offboarding_matrix",
    "tests.retirement.test_bulk_reports_matrix",
    "tests.security.test_security_matrix",
    "tests.core.test_outbox_admin_matrix",
)

# Endpoint id -> the tests that cover it ("module.test_name").
COVERAGE: dict[str, set[str]] = defaultdict(set)


def covers(*endpoint_ids: str) -> Callable[[F], F]:
    """Record that the decorated test exercises every persona on ``endpoint_ids``."""
    if not endpoint_ids:
        raise ValueError("covers() needs at least one endpoint id.")
    for endpoint_id in endpoint_ids:
        if ":" not in endpoint_id:
            raise ValueError(f"{endpoint_id!r} is not an endpoint id; write it as 'area:url_name'.")

    def decorate(test: F) -> F:
        for endpoint_id in endpoint_ids:
            COVERAGE[endpoint_id].add(f"{test.__module__}.{test.__qualname__}")
        return test

    return decorate


def admin_ids(model: type[models.Model]) -> tuple[str, str]:
    """The changelist and change page ids of ``model``'s ModelAdmin."""
    info = f"{model._meta.app_label}_{model._meta.model_name}"
    return f"admin:{info}_changelist", f"admin:{info}_change"


def admin_ids_for(models_: Iterable[type[models.Model]]) -> list[str]:
    return [endpoint_id for model in models_ for endpoint_id in admin_ids(model)]


def covered() -> dict[str, set[str]]:
    """Import every matrix module, then return what they declared."""
    from importlib import import_module

    for module in MATRIX_MODULES:
        import_module(module)
    return dict(COVERAGE)
