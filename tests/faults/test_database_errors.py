"""The server-error view (any database): a lost database is a 503 with a sentence, anything else a 500."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from mdm_portal.core.views.errors import UNAVAILABLE

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


@pytest.fixture
def database_gone(monkeypatch):
    def fail(*args, **kwargs):
        raise OperationalError('connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused')

    monkeypatch.setattr("devices.protocol.views.device_authenticate", fail)
    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", fail)


def test_the_agent_gets_a_503_in_its_error_shape(client, database_gone):
    client.raise_request_exception = False
    response = client.post("/agent/v1/checkin", "{}", content_type="application/json", HTTP_AUTHORIZATION="Device x")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"error": {"code": "unavailable", "message": UNAVAILABLE, "fields": {}}}


def test_a_person_gets_a_503_page_with_a_sentence(client, database_gone):
    client.raise_request_exception = False
    client.cookies["sessionid"] = "abcdefghijklmnopqrstuvwxyz012345"
    response = client.get("/portal/devices/")
    assert response.status_code == 503
    assert UNAVAILABLE in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_other_errors_stay_500(client, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("devices.protocol.views.device_authenticate", fail)
    client.raise_request_exception = False
    response = client.post("/agent/v1/checkin", "{}", content_type="application/json", HTTP_AUTHORIZATION="Device x")
    assert response.status_code == 500
