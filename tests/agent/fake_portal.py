"""A tiny in-memory stand-in for the portal's agent protocol, served on 127.0.0.1 in a thread.

Just enough of ``docs/agent-protocol.md`` to exercise the agent's HTTP behaviour (strict request
validation, device secrets, pending commands, 401/403/410/429 errors, keep-alive). The real server
is tested end to end separately; this one only answers what a test tells it to.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agent.inventory import DEVICE_FIELDS, validate_inventory

TOKEN = "enr_test_token"
CODE = "K7QM-P2XD"
ENROLL_FIELDS = {"enrollment_token", "enrollment_code", "device", "transport", "inventory"}


@dataclass
class FakeDevice:
    device_id: str
    secret: str
    identity: dict
    transport: str
    inventories: list[dict] = field(default_factory=list)
    pending: list[dict] = field(default_factory=list)
    results: list[dict] = field(default_factory=list)
    retired: bool = False


class FakePortal:
    """State shared by the handler threads. ``canned`` replies (status, headers, body) go first."""

    def __init__(self, interval: int = 900):
        self.interval = interval
        self.lock = threading.Lock()
        self.devices: dict[str, FakeDevice] = {}
        self.canned: list[tuple[int, dict, bytes]] = []
        self.requests: list[tuple[str, dict, bytes]] = []  # (path, headers, body)
        self.connections = 0
        self.refuse_tokens = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePortal:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, device_id: str, kind: str, payload: dict | None = None) -> str:
        command_id = str(uuid.uuid4())
        with self.lock:
            self.devices[device_id].pending.append({"id": command_id, "type": kind, "payload": payload or {}})
        return command_id

    def queue_for_all(self, kind: str, payload: dict | None = None) -> None:
        for device_id in list(self.devices):
            self.queue(device_id, kind, payload)

    def retire(self, device_id: str) -> None:
        with self.lock:
            self.devices[device_id].retired = True

    # -- protocol -----------------------------------------------------------------------------

    def handle(self, path: str, headers: dict, body: bytes) -> tuple[int, dict, dict | bytes]:
        with self.lock:
            self.requests.append((path, headers, body))
            if self.canned:
                return self.canned.pop(0)
        try:
            payload = json.loads(body)
        except ValueError:
            return _error(400, "invalid_request", "The request body is not JSON.")
        if not isinstance(payload, dict):
            return _error(400, "invalid_request", "The request body is not a JSON object.")
        if path == "/agent/v1/enroll":
            return self.enroll(payload)
        device = self.authenticate(headers.get("authorization", ""))
        if device is None:
            return _error(401, "invalid_credentials", "This device secret is not valid. Enrol the device again.")
        if device.retired:
            return _error(410, "device_retired", "This device was retired. Remove management.")
        handler = {
            "/agent/v1/checkin": self.checkin,
            "/agent/v1/commands/results": self.results,
            "/agent/v1/secret/rotate": self.rotate,
        }.get(path)
        if handler is None:
            return _error(404, "not_found", "No such endpoint.")
        return handler(device, payload)

    def authenticate(self, authorization: str) -> FakeDevice | None:
        scheme, _, secret = authorization.partition(" ")
        if scheme != "Device":
            return None
        with self.lock:
            return next((device for device in self.devices.values() if device.secret == secret), None)

    def enroll(self, payload: dict) -> tuple[int, dict, dict]:
        unknown = set(payload) - ENROLL_FIELDS
        if unknown:
            return _error(400, "invalid_request", "Unknown fields.", {name: "Unknown field." for name in unknown})
        if ("enrollment_token" in payload) == ("enrollment_code" in payload):
            return _error(400, "invalid_request", "Give a token or a code.")
        if (
            self.refuse_tokens
            or payload.get("enrollment_token", TOKEN) != TOKEN
            or payload.get("enrollment_code", CODE) != CODE
        ):
            return _error(403, "invalid_enrollment_token", "This enrolment token is not valid. Ask IT for a new one.")
        device = payload.get("device")
        if not isinstance(device, dict) or set(device) - set(DEVICE_FIELDS) or "platform" not in device:
            return _error(400, "invalid_request", "Bad device.", {"device": "Not a device object."})
        problems = validate_inventory(payload.get("inventory", {}))
        if problems:
            return _error(400, "invalid_request", "Bad inventory.", {"inventory": "; ".join(problems)})
        record = FakeDevice(
            device_id=str(uuid.uuid4()),
            secret="dsk_" + secrets.token_urlsafe(24),
            identity=device,
            transport=payload.get("transport", "over_the_air"),
            inventories=[payload.get("inventory", {})],
        )
        with self.lock:
            self.devices[record.device_id] = record
        reply = {
            "device_id": record.device_id,
            "device_secret": record.secret,
            "checkin_interval_seconds": self.interval,
            "commands": [],
        }
        return 201, {}, reply

    def checkin(self, device: FakeDevice, payload: dict) -> tuple[int, dict, dict]:
        if set(payload) != {"inventory"}:
            return _error(400, "invalid_request", "A check-in has exactly one field, inventory.")
        problems = validate_inventory(payload["inventory"])
        if problems:
            return _error(400, "invalid_request", "Bad inventory.", {"inventory": "; ".join(problems)})
        with self.lock:
            device.inventories.append(payload["inventory"])
            commands = [dict(command) for command in device.pending]
        return 200, {}, {"checkin_interval_seconds": self.interval, "commands": commands}

    def results(self, device: FakeDevice, payload: dict) -> tuple[int, dict, dict]:
        if set(payload) != {"results"} or not isinstance(payload["results"], list):
            return _error(400, "invalid_request", "A results report has exactly one field, results.")
        accepted, unknown = [], []
        with self.lock:
            pending = {command["id"]: command for command in device.pending}
            for result in payload["results"]:
                if result.get("id") in pending:
                    accepted.append(result["id"])
                    device.results.append(result)
                    if result.get("status") != "not_now":
                        device.pending.remove(pending[result["id"]])
                else:
                    unknown.append(result.get("id"))
        return 200, {}, {"accepted": accepted, "unknown": unknown}

    def rotate(self, device: FakeDevice, payload: dict) -> tuple[int, dict, dict]:
        if payload:
            return _error(400, "invalid_request", "The body must be {}.")
        with self.lock:
            device.secret = "dsk_" + secrets.token_urlsafe(24)
        return 200, {}, {"device_secret": device.secret}


def _error(status: int, code: str, message: str, fields: dict | None = None) -> tuple[int, dict, dict]:
    return status, {}, {"error": {"code": code, "message": message, "fields": fields or {}}}


def _handler(portal: FakePortal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the agent expects
        disable_nagle_algorithm = True
        wbufsize = 64 * 1024  # headers and body leave in one write, flushed after each request

        def setup(self) -> None:
            super().setup()
            with portal.lock:
                portal.connections += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, extra_headers, reply = portal.handle(self.path, headers, body)
            data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", extra_headers.pop("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra_headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:
            pass

    return Handler
