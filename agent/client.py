"""A client of the agent protocol (``docs/agent-protocol.md``) over one keep-alive HTTP(S) connection.

``AgentClient`` is one device's view of the portal: it enrols, checks in, reports command results,
downloads app packages and rotates its secret. Any non-2xx reply raises ``ProtocolError`` (``DeviceRetired`` for 410,
``RateLimited`` for 429) carrying the protocol's machine-readable code; a server that cannot be
reached raises ``ServerUnreachable``. The HTTP connection is a separate ``Connection`` so that many
clients (the fleet simulator's devices) can share one connection per worker thread.
"""

from __future__ import annotations

import email.utils
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from agent import __version__

API_PREFIX = "/agent/v1"
TRANSPORTS = ("over_the_air", "connected")
PLATFORMS = ("ios", "ipados", "android", "windows", "macos", "linux")
DEFAULT_RETRY_AFTER_SECONDS = 60
DOWNLOAD_CHUNK = 256 * 1024
USER_AGENT = f"mdm-agent/{__version__}"

# Failures that mean a reused keep-alive connection was closed by the server while idle; the
# request never reached the application, so sending it again on a fresh connection is safe.
_STALE_CONNECTION_ERRORS = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
)


class ProtocolError(Exception):
    """The portal refused a request: ``status`` and ``code`` as in the protocol's error table.

    ``fields`` maps a request field (dotted path) to what is wrong with it.
    """

    def __init__(self, status: int, code: str, message: str, fields: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


class DeviceRetired(ProtocolError):
    """410: the device was retired or deleted; stop checking in and remove management."""


class RateLimited(ProtocolError):
    """429: too many requests; try again after ``retry_after`` seconds."""

    def __init__(self, status, code, message, fields=None, *, retry_after: float = DEFAULT_RETRY_AFTER_SECONDS):
        super().__init__(status, code, message, fields)
        self.retry_after = retry_after


class ServerUnreachable(ProtocolError):
    """No HTTP reply at all (refused, timed out, TLS failure); ``status`` is 0."""

    def __init__(self, message: str):
        super().__init__(0, "server_unreachable", message)


def check_server_url(base_url: str) -> urllib.parse.SplitResult:
    """The parts of a portal URL; ``ValueError`` (one sentence) when it is not http(s)://host[:port]."""
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"'{base_url}' is not a server URL. Use http://host[:port] or https://host[:port].")
    return parts


class Connection:
    """One keep-alive HTTP/1.1 connection to the portal, reopened when the server closes it.

    Thread-safe (requests are serialised), but meant to be used by one thread at a time.
    """

    def __init__(self, base_url: str, *, timeout: float = 10, ssl_context: ssl.SSLContext | None = None):
        parts = check_server_url(base_url)
        self.base_url = base_url
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path_prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the open connection already carried a request
        self._lock = threading.Lock()

    def _open(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _connect(self) -> http.client.HTTPConnection:
        conn = self._open()
        conn.connect()
        # Requests are small and sent whole; never let Nagle hold one back waiting for an ACK.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        with self._lock:
            self._close()

    def separate(self) -> http.client.HTTPConnection:
        """A new connection of its own to the same server, for a long download that must not hold this one."""
        return self._connect()

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` (absolute) points at this server: the only one a device secret is sent to."""
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme == self.scheme and (parts.hostname or "").lower() == self.host.lower() and port == self.port

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._used = False

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, dict, bytes]:
        """Send one request; return ``(status, reason, headers, body)``. Raises ``ServerUnreachable``."""
        url = self.path_prefix + path
        with self._lock:
            for attempt in (1, 2):
                reused = self._used
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.request(method, url, body=body, headers=headers)
                    response = self._conn.getresponse()
                    data = response.read()
                except _STALE_CONNECTION_ERRORS as exc:
                    self._close()
                    if reused and attempt == 1:
                        continue
                    raise ServerUnreachable(f"The server at {self.base_url} closed the connection ({exc}).") from exc
                except (OSError, http.client.HTTPException) as exc:
                    self._close()
                    raise ServerUnreachable(f"Cannot reach the server at {self.base_url}: {exc}.") from exc
                self._used = True
                if response.will_close:
                    self._close()
                return response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, data
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(value: str | None) -> float:
    if not value:
        return DEFAULT_RETRY_AFTER_SECONDS
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SECONDS
    return max(0.0, when.timestamp() - time.time())


def error_from_response(status: int, reason: str, headers: dict, body: bytes) -> ProtocolError:
    """Build the exception for a non-2xx reply from its ``{"error": {...}}`` body.

    A body that is not the protocol's error shape (a proxy's HTML page, a 500) still gives a
    ``ProtocolError`` with a code derived from the status.
    """
    code, message, fields = "", "", {}
    try:
        payload = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else ""
        message = error.get("message") if isinstance(error.get("message"), str) else ""
        fields = error.get("fields") if isinstance(error.get("fields"), dict) else {}
    if not code:
        code = {410: "device_retired", 429: "rate_limited"}.get(
            status, "server_error" if status >= 500 else "http_error"
        )
    if not message:
        message = f"The server answered {status} {reason}".rstrip() + "; try again later or ask IT."
    if status == 410:
        return DeviceRetired(status, code, message, fields)
    if status == 429:
        return RateLimited(status, code, message, fields, retry_after=_retry_after(headers.get("retry-after")))
    return ProtocolError(status, code, message, fields)


class AgentClient:
    """One device talking to the portal at ``base_url`` (which may carry a path prefix).

    ``secret`` is the device secret once enrolled; ``enroll`` and ``rotate_secret`` update it.
    Pass ``connection`` to share one ``Connection`` between clients (one per thread).
    """

    def __init__(
        self,
        base_url: str,
        *,
        secret: str | None = None,
        timeout: float = 10,
        connection: Connection | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.base_url = base_url
        self.secret = secret
        self.device_id: str | None = None
        self.connection = connection or Connection(base_url, timeout=timeout, ssl_context=ssl_context)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _post(self, path: str, payload: dict, *, authenticated: bool = True) -> dict:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if authenticated:
            if not self.secret:
                raise ProtocolError(
                    401, "invalid_credentials", "This agent is not enrolled: enrol it first (python -m agent enroll)."
                )
            headers["Authorization"] = f"Device {self.secret}"
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        status, reason, response_headers, data = self.connection.request("POST", API_PREFIX + path, body, headers)
        if not 200 <= status < 300:
            raise error_from_response(status, reason, response_headers, data)
        try:
            reply = json.loads(data.decode("utf-8")) if data.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError(status, "invalid_response", f"The server's reply to {path} is not JSON.") from exc
        if not isinstance(reply, dict):
            raise ProtocolError(status, "invalid_response", f"The server's reply to {path} is not a JSON object.")
        return reply

    def enroll(
        self,
        token: str | None = None,
        code: str | None = None,
        *,
        device: dict,
        inventory: dict | None = None,
        transport: str = "over_the_air",
    ) -> dict:
        """Enrol with an enrolment token (bulk) or a one-time code (self-enrolment).

        Returns the reply (``device_id``, ``device_secret``, ``checkin_interval_seconds``,
        ``commands``) and keeps the secret for the following requests.
        """
        if (token is None) == (code is None):
            raise ValueError("Give either an enrolment token or an enrolment code, not both or neither.")
        if transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}.")
        payload: dict[str, Any] = {"enrollment_token": token} if token is not None else {"enrollment_code": code}
        payload.update({"device": device, "transport": transport, "inventory": inventory or {}})
        reply = self._post("/enroll", payload, authenticated=False)
        secret, device_id = reply.get("device_secret"), reply.get("device_id")
        if not isinstance(secret, str) or not secret or not isinstance(device_id, str):
            raise ProtocolError(201, "invalid_response", "The enrolment reply has no device_id and device_secret.")
        self.secret, self.device_id = secret, device_id
        return reply

    def checkin(self, inventory: dict) -> dict:
        """Report inventory; returns ``checkin_interval_seconds`` and the pending ``commands``."""
        reply = self._post("/checkin", {"inventory": inventory})
        if not isinstance(reply.get("commands", []), list):
            raise ProtocolError(200, "invalid_response", "The check-in reply's commands is not a list.")
        reply.setdefault("commands", [])
        return reply

    def report_results(self, results: list[dict]) -> dict:
        """Report command results; returns ``{"accepted": [...], "unknown": [...]}``."""
        return self._post("/commands/results", {"results": list(results)})

    def download(self, url: str, write: Callable[[bytes], object], *, max_bytes: int) -> int:
        """GET a file the portal serves to this device (an app package) and hand it to ``write`` in chunks.

        ``url`` is a path on the portal (``/agent/v1/apps/<id>/package``) or an absolute URL of the
        same server; the device secret is never sent anywhere else, and a redirect is not followed.
        Returns the number of bytes; raises ``ProtocolError`` for a refusal, a foreign address, or a
        file larger than ``max_bytes``.
        """
        if not self.secret:
            raise ProtocolError(401, "invalid_credentials", "This agent is not enrolled: enrol it first.")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme or parts.netloc:
            if not self.connection.same_origin(url):
                raise ProtocolError(
                    0,
                    "foreign_download",
                    f"The package address {url} is not on the portal; the agent did not fetch it.",
                )
        elif not parts.path.startswith("/"):
            raise ProtocolError(0, "invalid_download", f"The package address '{url}' is not a path on the portal.")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": f"Device {self.secret}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        try:
            conn = self.connection.separate()
        except (OSError, http.client.HTTPException) as exc:
            raise ServerUnreachable(f"Cannot reach the server at {self.base_url}: {exc}.") from exc
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            if response.status != 200:
                body = response.read(64 * 1024)
                raise error_from_response(
                    response.status, response.reason, {k.lower(): v for k, v in response.getheaders()}, body
                )
            total = 0
            while chunk := response.read(DOWNLOAD_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise ProtocolError(
                        200, "download_too_large", f"The package is larger than the {max_bytes} bytes announced."
                    )
                write(chunk)
            return total
        except (OSError, http.client.HTTPException) as exc:
            raise ServerUnreachable(f"The download from {self.base_url} broke off: {exc}.") from exc
        finally:
            conn.close()

    def rotate_secret(self) -> str:
        """Get a new device secret (the old one stops working at once) and keep it."""
        reply = self._post("/secret/rotate", {})
        secret = reply.get("device_secret")
        if not isinstance(secret, str) or not secret:
            raise ProtocolError(200, "invalid_response", "The rotation reply has no device_secret.")
        self.secret = secret
        return secret


def is_loopback_url(base_url: str) -> bool:
    """Whether every address ``base_url``'s host resolves to is a loopback address."""
    host = urllib.parse.urlsplit(base_url).hostname
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)
