"""Fixtures of the agent's tests: a fake portal on 127.0.0.1 (no Django, no database)."""

import pytest

from tests.agent.fake_portal import FakePortal


@pytest.fixture
def portal():
    fake = FakePortal().start()
    yield fake
    fake.stop()
