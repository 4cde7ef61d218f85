"""Hypothesis profiles of the API fuzzing: bounded and deterministic for CI, long for ``make fuzz``.

``FUZZ_PROFILE=long`` (what ``make fuzz`` sets) runs 200 examples per operation and persona;
``FUZZ_EXAMPLES`` overrides the count of either profile.
"""

import os

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings

_COMMON = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "print_blob": True,
    # One world per operation is shared by its examples on purpose; each example runs in a savepoint.
    "suppress_health_check": list(HealthCheck),
}
# CI skips the explicit phase: schemathesis's coverage phase puts hundreds of boundary-value cases
# per operation there; the long run keeps them.
settings.register_profile("fuzz-ci", max_examples=6, phases=[Phase.generate, Phase.shrink], **_COMMON)
settings.register_profile(
    "fuzz-long", max_examples=200, phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink], **_COMMON
)

_profile = settings.get_profile("fuzz-long" if os.environ.get("FUZZ_PROFILE") == "long" else "fuzz-ci")
if os.environ.get("FUZZ_EXAMPLES"):
    _profile = settings(_profile, max_examples=int(os.environ["FUZZ_EXAMPLES"]))
FUZZ_SETTINGS = _profile


@pytest.fixture(autouse=True)
def connections_survive_requests():
    """Requests go through the real WSGI handler, whose end-of-request hook closes a connection in a
    transaction (as every test's is) on PostgreSQL; Django's test client unhooks it the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
