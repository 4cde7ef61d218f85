"""Schemathesis against the project's own OpenAPI document: every operation, through Django's WSGI app.

Personas: a global administrator, a custom role with every permission over scope A, and a Helpdesk
operator over scope A, each with an API token; the agent protocol as an enrolled device of scope A
(its device secret); the MAM API as a managed app of a scope-A person. Each example is sent as
generated and again with its path ids set to real objects (scope A's, and for the scoped callers
scope B's too), each call in a savepoint that is rolled back, so a wipe or a delete never leaves the
next example nothing to work on.

Every response: no 5xx, a documented status code and content type, a body that matches the schema.
Every response to a caller confined to scope A: no scope-B name, serial, user or uuid, and no write
to a scope-B object.
"""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import transaction

from tests.fuzz.conftest import FUZZ_SETTINGS
from tests.fuzz.schema import CHECKS, schema
from tests.fuzz.world import OUTSIDE_MARKER, World, build_world, outside_state

api_schema = schema.include(path_regex=r"^/(api/v1|access)/")
device_schema = schema.include(path_regex=r"^/(agent|mam)/v1/")


@pytest.fixture(scope="module")
def shared_world(django_db_setup, django_db_blocker):
    """Built once for the module inside a transaction rolled back at its end; each test nests in it."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture
def world(db, shared_world) -> World:
    return shared_world


def authorization(world: World, persona: str, path: str) -> str:
    if persona in world.tokens:
        return f"Bearer {world.tokens[persona]}"
    if path.startswith("/agent/"):
        return f"Device {world.device_secret}"
    if path in ("/mam/v1/register",):
        return f"Bearer {world.mam_access_token}"
    return f"Instance {world.mam_instance_secret}"


def id_variants(case, world: World, scoped: bool) -> list[dict[str, str] | None]:
    """The path parameters to try: as generated (None), scope A's object, and scope B's for a scoped caller."""
    if not case.path_parameters:
        return [None]
    prefixes = [p for p in world.ids if case.path.startswith(p)]
    if not prefixes:
        return [None]
    ids = world.ids[max(prefixes, key=len)]
    name = next((n for n in case.path_parameters if n != "command_type"), None)
    if name is None:
        return [None]
    keys = ("a", "b") if scoped else ("a",)
    return [None, *({**case.path_parameters, name: ids[key]} for key in keys)]


def assert_nothing_outside(response, case, world: World) -> None:
    body = response.text
    sent = json.dumps([case.path_parameters, case.query, case.body], default=str)
    assert OUTSIDE_MARKER.lower() not in body.lower(), f"A scope-B string in the response: {body[:2000]}"
    leaked = {value for value in world.outside if value in body and value not in sent}
    assert not leaked, f"Scope-B objects {leaked} in the response: {body[:2000]}"


def run(case, world: World, persona: str, scoped: bool) -> None:
    headers = {"Authorization": authorization(world, persona, case.path)}
    generated = dict(case.path_parameters or {})
    for parameters in id_variants(case, world, scoped):
        cache.clear()  # rate-limit counters must not turn the later examples into 429s
        with transaction.atomic():
            before = outside_state() if scoped else None
            if parameters is not None:
                case.path_parameters = parameters
            try:
                response = case.call_and_validate(headers=headers, checks=CHECKS)
            finally:
                case.path_parameters = generated
            if scoped:
                assert_nothing_outside(response, case, world)
                assert outside_state() == before, f"{case.method} {case.formatted_path} changed a scope-B object"
            transaction.set_rollback(True)


@api_schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_global_admin(case, world):
    run(case, world, "admin", scoped=False)


@api_schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_scope_a_administrator(case, world):
    run(case, world, "scoped_admin", scoped=True)


@api_schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_scope_a_helpdesk(case, world):
    run(case, world, "helpdesk", scoped=True)


@device_schema.parametrize()
@FUZZ_SETTINGS
def test_agent_and_mam_as_a_scope_a_device(case, world):
    run(case, world, "device", scoped=True)
