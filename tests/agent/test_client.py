"""The protocol client: requests it sends, errors it raises, and its keep-alive connection."""

import json
import socket

import pytest

from agent.client import (
    AgentClient,
    Connection,
    DeviceRetired,
    ProtocolError,
    RateLimited,
    ServerUnreachable,
    error_from_response,
    is_loopback_url,
)
from tests.agent.fake_portal import CODE, TOKEN

DEVICE = {
    "platform": "linux",
    "name": "build-host-07",
    "serial_number": "PF3ABC12",
    "imei": "",
    "model": "ThinkPad T14 Gen 4",
    "manufacturer": "LENOVO",
    "os_version": "Debian 12.8",
}
INVENTORY = {"name": "build-host-07", "os_version": "Debian 12.8", "encrypted": True, "memory_mb": 16384}


def canned_error(status, code, message, fields=None, headers=None):
    body = json.dumps({"error": {"code": code, "message": message, "fields": fields or {}}}).encode()
    return status, dict(headers or {}), body


def sent(portal, index=-1):
    path, headers, body = portal.requests[index]
    return path, headers, json.loads(body)


def test_enroll_with_a_token_sends_the_protocol_body_and_keeps_the_secret(portal):
    client = AgentClient(portal.url)

    reply = client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)

    path, headers, body = sent(portal)
    assert path == "/agent/v1/enroll"
    assert body == {"enrollment_token": TOKEN, "device": DEVICE, "transport": "over_the_air", "inventory": INVENTORY}
    assert "authorization" not in headers
    assert headers["content-type"] == "application/json"
    assert reply["checkin_interval_seconds"] == 900
    assert client.secret == reply["device_secret"] and client.device_id == reply["device_id"]


def test_enroll_with_a_code_and_connected_transport(portal):
    client = AgentClient(portal.url)

    client.enroll(code=CODE, device=DEVICE, inventory=INVENTORY, transport="connected")

    _, _, body = sent(portal)
    assert body["enrollment_code"] == CODE and "enrollment_token" not in body
    assert body["transport"] == "connected"


@pytest.mark.parametrize("kwargs", [{}, {"token": TOKEN, "code": CODE}])
def test_enroll_needs_exactly_one_of_token_and_code(kwargs):
    with pytest.raises(ValueError, match="either an enrolment token or an enrolment code"):
        AgentClient("http://127.0.0.1:9").enroll(device=DEVICE, inventory={}, **kwargs)


def test_requests_after_enrolment_carry_the_device_secret(portal):
    client = AgentClient(portal.url)
    client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    command_id = portal.queue(client.device_id, "sync")

    reply = client.checkin(INVENTORY)

    path, headers, body = sent(portal)
    assert path == "/agent/v1/checkin"
    assert headers["authorization"] == f"Device {client.secret}"
    assert body == {"inventory": INVENTORY}
    assert reply["commands"] == [{"id": command_id, "type": "sync", "payload": {}}]

    reply = client.report_results([{"id": command_id, "status": "acknowledged", "data": {}}, {"id": "nope"}])
    assert sent(portal)[0] == "/agent/v1/commands/results"
    assert reply == {"accepted": [command_id], "unknown": ["nope"]}


def test_rotate_secret_replaces_the_secret_the_client_sends(portal):
    client = AgentClient(portal.url)
    client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    old = client.secret

    new = client.rotate_secret()

    assert sent(portal)[0] == "/agent/v1/secret/rotate" and sent(portal)[2] == {}
    assert new != old and client.secret == new
    client.checkin(INVENTORY)
    assert sent(portal)[1]["authorization"] == f"Device {new}"
    with pytest.raises(ProtocolError) as refused:
        AgentClient(portal.url, secret=old).checkin(INVENTORY)
    assert refused.value.status == 401 and refused.value.code == "invalid_credentials"


def test_an_unenrolled_client_does_not_send_authenticated_requests(portal):
    with pytest.raises(ProtocolError, match="not enrolled"):
        AgentClient(portal.url).checkin({})
    assert portal.requests == []


def test_an_error_body_becomes_a_protocol_error_with_code_message_and_fields(portal):
    portal.canned.append(
        canned_error(
            403,
            "enrollment_refused",
            "This account already has 5 enrolled devices. Remove one in the Company Portal or ask IT.",
        )
    )
    portal.canned.append(
        canned_error(400, "invalid_request", "Fix the fields.", {"device.platform": "Not a platform."})
    )
    client = AgentClient(portal.url)

    with pytest.raises(ProtocolError) as refused:
        client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    assert (refused.value.status, refused.value.code) == (403, "enrollment_refused")
    assert refused.value.message.startswith("This account already has 5 enrolled devices.")
    assert refused.value.fields == {}

    with pytest.raises(ProtocolError) as invalid:
        client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    assert invalid.value.code == "invalid_request"
    assert invalid.value.fields == {"device.platform": "Not a platform."}
    assert client.secret is None


def test_410_raises_device_retired(portal):
    portal.canned.append(canned_error(410, "device_retired", "This device was retired."))

    with pytest.raises(DeviceRetired) as retired:
        AgentClient(portal.url, secret="dsk_x").checkin({})

    assert isinstance(retired.value, ProtocolError)
    assert (retired.value.status, retired.value.code) == (410, "device_retired")


def test_429_raises_rate_limited_with_retry_after(portal):
    portal.canned.append(canned_error(429, "rate_limited", "Slow down.", headers={"Retry-After": "7"}))

    with pytest.raises(RateLimited) as limited:
        AgentClient(portal.url, secret="dsk_x").checkin({})

    assert limited.value.retry_after == 7 and limited.value.code == "rate_limited"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, b"<html>Internal Server Error</html>", "server_error"),
        (502, b"", "server_error"),
        (404, b'{"detail": "Not found."}', "http_error"),
        (410, b"gone", "device_retired"),
    ],
)
def test_a_reply_that_is_not_a_protocol_error_still_raises_a_protocol_error(status, body, code):
    exc = error_from_response(status, "Reason", {}, body)

    assert (exc.status, exc.code) == (status, code)
    assert exc.message and exc.fields == {}


def test_a_success_reply_that_is_not_a_json_object_is_an_invalid_response(portal):
    portal.canned.append((200, {}, b"[1, 2]"))
    portal.canned.append((200, {"Content-Type": "text/html"}, b"<html>login</html>"))
    client = AgentClient(portal.url, secret="dsk_x")

    for _ in range(2):
        with pytest.raises(ProtocolError) as invalid:
            client.checkin({})
        assert invalid.value.code == "invalid_response"


def test_one_connection_serves_many_requests(portal):
    client = AgentClient(portal.url)
    client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    for _ in range(5):
        client.checkin(INVENTORY)

    assert len(portal.requests) == 6
    assert portal.connections == 1


def test_a_connection_the_server_closes_is_reopened(portal):
    client = AgentClient(portal.url)
    client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    portal.canned.append((200, {"Connection": "close"}, b'{"commands": []}'))

    client.checkin(INVENTORY)  # the server closes the connection after this reply
    client.checkin(INVENTORY)

    assert portal.connections == 2


def test_a_stale_keep_alive_connection_is_retried_once_on_a_new_one(portal):
    client = AgentClient(portal.url)
    client.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    # What an idle timeout on the server looks like from here: the socket is closed under us.
    client.connection._conn.sock.shutdown(socket.SHUT_RDWR)

    assert client.checkin(INVENTORY)["commands"] == []
    assert portal.connections == 2


def test_shared_connection_between_clients(portal):
    connection = Connection(portal.url)
    first, second = AgentClient(portal.url, connection=connection), AgentClient(portal.url, connection=connection)
    first.enroll(token=TOKEN, device=DEVICE, inventory=INVENTORY)
    second.enroll(token=TOKEN, device={**DEVICE, "serial_number": "PF3ABC13"}, inventory=INVENTORY)

    first.checkin(INVENTORY)
    second.checkin(INVENTORY)

    assert first.secret != second.secret
    assert [headers.get("authorization") for _, headers, _ in portal.requests[2:]] == [
        f"Device {first.secret}",
        f"Device {second.secret}",
    ]
    assert portal.connections == 1


def test_a_base_url_with_a_path_prefix(portal):
    client = AgentClient(portal.url + "/mdm/")
    portal.canned.append((200, {}, b'{"commands": []}'))
    client.secret = "dsk_x"

    client.checkin({})

    assert portal.requests[-1][0] == "/mdm/agent/v1/checkin"


def test_a_server_that_cannot_be_reached_raises_server_unreachable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ServerUnreachable) as unreachable:
        AgentClient(f"http://127.0.0.1:{port}", timeout=2).enroll(token=TOKEN, device=DEVICE, inventory={})

    assert unreachable.value.status == 0 and unreachable.value.code == "server_unreachable"
    assert isinstance(unreachable.value, ProtocolError)


def test_https_urls_use_tls_on_port_443_by_default():
    import http.client

    connection = Connection("https://mdm.example.com")

    assert (connection.host, connection.port) == ("mdm.example.com", 443)
    assert isinstance(connection._open(), http.client.HTTPSConnection)
    assert Connection("https://mdm.example.com:8443/portal").path_prefix == "/portal"


@pytest.mark.parametrize("url", ["ftp://example.com", "mdm.example.com", "http://"])
def test_a_url_that_is_not_http_is_refused(url):
    with pytest.raises(ValueError, match="not a server URL"):
        AgentClient(url)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:8000", True),
        ("http://localhost:8000", True),
        ("http://192.0.2.10:8000", False),
        ("https://10.1.2.3", False),
    ],
)
def test_is_loopback_url(url, loopback):
    assert is_loopback_url(url) is loopback
