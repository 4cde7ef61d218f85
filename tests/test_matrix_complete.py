"""Every endpoint has a permission-matrix test (ARCHITECTURE.md, "Tests").

The endpoints are read from the running project, not from a list kept by hand:

* the changelist and change page of every ModelAdmin in ``django.contrib.admin.site._registry``,
* every named URL under ``/api/`` (the ``/api/v1/`` routes, the schema and its viewer),
* every named URL in the ``portal`` namespace,
* every named URL in the ``agent`` namespace (the device agent protocol) and the ``mam`` namespace
  (the managed-app protocol).

The matrix modules declare what they cover through ``tests.matrix.covers``. A new ModelAdmin, API
route or portal page fails this test until a matrix test covers it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver

from tests.matrix import admin_ids, covered


def _walk(patterns, prefix: str = "", namespaces: tuple[str, ...] = ()) -> Iterator[tuple[str, str | None, tuple]]:
    """``(route, url name, namespaces)`` for every URL pattern, resolvers flattened."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = (*namespaces, pattern.namespace) if pattern.namespace else namespaces
            yield from _walk(pattern.url_patterns, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.name, namespaces


def url_endpoints() -> set[str]:
    """Every named URL of the project as an endpoint id (``admin:…``, ``portal:…``, ``api:…``)."""
    ids = set()
    for route, name, namespaces in _walk(get_resolver().url_patterns):
        if name is None:
            continue
        if namespaces:
            ids.add(f"{':'.join(namespaces)}:{name}")
        elif route.startswith("api/"):
            ids.add(f"api:{name}")
    return ids


def admin_endpoints(site: admin.AdminSite = admin.site) -> set[str]:
    return {endpoint_id for model in site._registry for endpoint_id in admin_ids(model)}


def required_endpoints() -> set[str]:
    urls = url_endpoints()
    return admin_endpoints() | {e for e in urls if e.startswith(("api:", "portal:", "agent:", "access:", "mam:"))}


def uncovered() -> list[str]:
    return sorted(required_endpoints() - set(covered()))


def test_every_endpoint_has_a_permission_matrix_test():
    missing = uncovered()
    assert not missing, (
        "These endpoints have no permission-matrix test. Add a row to a matrix table in "
        "tests/test_permission_matrix.py (ADMIN_MODELS for a ModelAdmin) or a test marked with "
        "@covers(...):\n  " + "\n  ".join(missing)
    )


def test_every_declared_endpoint_exists():
    """A typo or a removed page in a @covers declaration is an error, not silent coverage."""
    unknown = sorted(set(covered()) - url_endpoints())
    assert not unknown, "Declared as covered but no such URL: " + ", ".join(unknown)


def test_the_api_and_portal_are_found():
    """Guard the walk itself: if it found nothing, the completeness check would pass vacuously."""
    required = required_endpoints()
    assert {"api:device-list", "api:device-detail", "api:api-schema", "api:api-docs"} <= required
    assert {"agent:enroll", "agent:checkin"} <= required
    assert {"portal:device_list", "portal:device_detail", "portal:login", "portal:home"} <= required
    assert {"admin:devices_device_changelist", "admin:django_celery_beat_periodictask_change"} <= required


def test_a_new_model_admin_without_a_matrix_row_is_reported():
    # Any model will do as "the new ModelAdmin"; content types are never in the console.
    assert ContentType not in admin.site._registry
    before = set(uncovered())
    admin.site.register(ContentType)
    try:
        after = set(uncovered())
    finally:
        admin.site.unregister(ContentType)
    assert after - before == {"admin:contenttypes_contenttype_change", "admin:contenttypes_contenttype_changelist"}


@pytest.mark.parametrize("endpoint_id", sorted(admin_endpoints()))
def test_admin_endpoint_ids_are_real_url_names(endpoint_id):
    assert endpoint_id in url_endpoints()
