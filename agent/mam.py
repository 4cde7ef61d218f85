"""Managed-app (MAM) mode of the simulator: protected apps on a device that is not enrolled.

``python -m agent mam --server URL --username NAME`` (password from ``--password`` or
``$MDM_MAM_PASSWORD``) signs in as the employee (``POST /mam/v1/token``), registers app instances
(Outlook and Teams for the platform, on one or more simulated devices), then checks each in on an
interval: it applies the protection policy it receives (and logs it), reports its state (PIN set,
org data present, the policy version it holds), and when IT asked for a selective wipe it drops its
org data, confirms the wipe and stops. It ends after ``--duration`` seconds or when every instance
stopped, and prints a report.

Like the device simulator, it refuses a server that is not on this machine unless told otherwise
(``allow_remote``): it registers fake app instances for a real account.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.arguments import count, positive, server_url, timeout
from agent.client import USER_AGENT, Connection, ProtocolError, error_from_response, is_loopback_url

MAM_PREFIX = "/mam/v1"
USERNAME_ENV = "MDM_MAM_USERNAME"
PASSWORD_ENV = "MDM_MAM_PASSWORD"  # noqa: S105 -- the name of an environment variable
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# (identifier, name, version) of the protected apps each platform's instances run, in order.
MANAGED_APPS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "ios": (
        ("com.microsoft.Office.Outlook", "Outlook", "4.2544.1"),
        ("com.microsoft.skype.teams", "Teams", "7.20.0"),
    ),
    "ipados": (
        ("com.microsoft.Office.Outlook", "Outlook", "4.2544.1"),
        ("com.microsoft.skype.teams", "Teams", "7.20.0"),
    ),
    "android": (
        ("com.microsoft.office.outlook", "Outlook", "4.2544.0"),
        ("com.microsoft.teams", "Teams", "1416/1.0.0.2025203101"),
    ),
    "windows": (
        ("Microsoft.OutlookForWindows", "Outlook", "1.2025.1022.100"),
        ("Microsoft.Teams", "Teams", "25290.205.4069.4894"),
    ),
    "macos": (
        ("com.microsoft.Outlook", "Outlook", "16.103"),
        ("com.microsoft.teams2", "Teams", "25290.205.4069.4894"),
    ),
}
DEVICES = {
    "ios": ("iPhone", "18.1"),
    "ipados": ("iPad", "18.1"),
    "android": ("Pixel 9", "15"),
    "windows": ("Surface Laptop", "10.0.26100"),
    "macos": ("MacBook Air", "15.1"),
}


class MamClient:
    """The managed-app API (``/mam/v1/``) over one keep-alive connection; non-2xx raises ``ProtocolError``.

    Sign-in errors (OAuth's ``{"error", "error_description"}``) become a ``ProtocolError`` too, with
    the OAuth error as its code.
    """

    def __init__(self, base_url: str, *, timeout: float = 10, connection: Connection | None = None):
        self.connection = connection or Connection(base_url, timeout=timeout)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> MamClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _post(self, path: str, body: bytes, content_type: str, authorization: str | None = None) -> dict:
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": USER_AGENT}
        if authorization:
            headers["Authorization"] = authorization
        status, reason, response_headers, data = self.connection.request("POST", MAM_PREFIX + path, body, headers)
        try:
            reply = json.loads(data.decode("utf-8")) if data.strip() else {}
        except (UnicodeDecodeError, ValueError):
            reply = None
        if not 200 <= status < 300:
            if isinstance(reply, dict) and isinstance(reply.get("error"), str):
                raise ProtocolError(status, reply["error"], str(reply.get("error_description", "")))
            raise error_from_response(status, reason, response_headers, data)
        if not isinstance(reply, dict):
            raise ProtocolError(status, "invalid_response", f"The server's reply to {path} is not a JSON object.")
        return reply

    def _post_json(self, path: str, payload: dict, authorization: str) -> dict:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return self._post(path, body, "application/json", authorization)

    def sign_in(self, username: str, password: str) -> str:
        """An access token for the employee (OAuth 2.0 password grant, form-encoded)."""
        form = urllib.parse.urlencode({"grant_type": "password", "username": username, "password": password})
        reply = self._post("/token", form.encode(), "application/x-www-form-urlencoded")
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(200, "invalid_response", "The sign-in reply has no access_token.")
        return token

    def register(self, access_token: str, **identity: str) -> dict:
        """Register an app instance; the reply holds ``instance_id``, ``instance_secret`` and a check-in reply."""
        reply = self._post_json("/register", identity, f"Bearer {access_token}")
        if not isinstance(reply.get("instance_secret"), str) or not isinstance(reply.get("instance_id"), str):
            raise ProtocolError(201, "invalid_response", "The registration reply has no instance_id and secret.")
        return reply

    def checkin(self, secret: str, report: dict) -> dict:
        return self._post_json("/checkin", report, f"Instance {secret}")

    def confirm_wipe(self, secret: str, wipe_id: str) -> dict:
        return self._post_json(f"/wipes/{urllib.parse.quote(wipe_id, safe='')}/confirm", {}, f"Instance {secret}")


@dataclass
class SimulatedAppInstance:
    """One protected app on one simulated device, as the app itself sees it."""

    app_identifier: str
    name: str
    platform: str
    device_name: str
    os_version: str
    app_version: str
    instance_id: str = ""
    secret: str = ""
    policy: dict | None = None
    access: dict = field(default_factory=dict)
    org_data: dict = field(default_factory=lambda: {"mail_items": 240, "files": 12, "chats": 35})
    pin_set: bool = False
    wiped: bool = False
    stopped: str = ""  # why this instance stopped checking in ("" while it runs)

    @property
    def label(self) -> str:
        return f"{self.name} on {self.device_name}"

    def report(self) -> dict:
        return {
            "app_version": self.app_version,
            "os_version": self.os_version,
            "policy_version": (self.policy or {}).get("version", 0),
            "state": {"pin_set": self.pin_set, "org_data_present": bool(self.org_data)},
        }

    def apply_policy(self, policy: dict | None) -> str:
        """Keep the policy and enforce what the simulation can (the PIN); return what was applied."""
        self.policy = policy
        if policy is None:
            return "no protection policy applies"
        pin = policy.get("pin") or {}
        self.pin_set = bool(pin.get("required"))
        web = policy.get("web") or {}
        offline = policy.get("offline") or {}
        return (
            f"policy version {policy.get('version')}: clipboard {policy.get('clipboard')}, "
            f"sharing {policy.get('sharing')}, data isolation {'on' if policy.get('data_isolation') else 'off'}, "
            f"backup {'blocked' if policy.get('block_backup') else 'allowed'}, "
            f"PIN {str(pin.get('length')) + ' digits' if pin.get('required') else 'off'}, "
            f"managed browser {'required' if web.get('managed_browser_required') else 'optional'}, "
            f"offline block after {offline.get('block_after_minutes')} min, "
            f"wipe after {offline.get('wipe_after_days')} days"
        )

    def wipe(self) -> None:
        self.org_data.clear()
        self.policy, self.pin_set, self.wiped = None, False, True

    def as_dict(self) -> dict:
        return {
            "app": self.app_identifier,
            "device_name": self.device_name,
            "instance_id": self.instance_id,
            "policy_version": (self.policy or {}).get("version", 0),
            "access": self.access.get("code", ""),
            "org_data_present": bool(self.org_data),
            "wiped": self.wiped,
            "stopped": self.stopped,
        }


@dataclass
class MamReport:
    server_url: str
    username: str
    platform: str
    instances: int
    registered: int = 0
    register_failed: int = 0
    checkins: int = 0
    checkins_failed: int = 0
    policies_applied: int = 0
    access_blocked: int = 0
    wipes_confirmed: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    apps: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        errors = ", ".join(f"{code} {count}" for code, count in sorted(self.errors_by_code.items())) or "none"
        lines = [
            f"Simulated {self.instances} managed app(s) of {self.username} on {self.platform} "
            f"against {self.server_url}",
            f"  registered:        {self.registered} ({self.register_failed} failed)",
            f"  check-ins:         {self.checkins} ({self.checkins_failed} failed) in {self.duration_seconds:.1f} s",
            f"  policies applied:  {self.policies_applied}",
            f"  access blocked:    {self.access_blocked} check-in(s)",
            f"  wipes confirmed:   {self.wipes_confirmed}",
            f"  errors by code:    {errors}",
        ]
        for app in self.apps:
            lines.append(
                f"  - {app['app']} on {app['device_name']}: policy {app['policy_version']}, access {app['access']}, "
                f"{'wiped' if app['wiped'] else 'org data present' if app['org_data_present'] else 'no org data'}"
                + (f", stopped ({app['stopped']})" if app["stopped"] else "")
            )
        return "\n".join(lines)


def plan_instances(username: str, platform: str, count: int) -> list[SimulatedAppInstance]:
    """``count`` app instances: the platform's managed apps in turn, a new device each round."""
    if platform not in MANAGED_APPS:
        raise ValueError(f"'{platform}' is not a platform with managed apps. Use one of {', '.join(MANAGED_APPS)}.")
    if count < 1:
        raise ValueError("Simulate at least one app instance.")
    apps = MANAGED_APPS[platform]
    device, os_version = DEVICES[platform]
    instances = []
    for number in range(count):
        identifier, name, version = apps[number % len(apps)]
        device_name = f"{username}'s {device}" + (f" {number // len(apps) + 1}" if count > len(apps) else "")
        instances.append(SimulatedAppInstance(identifier, name, platform, device_name, os_version, version))
    return instances


class _Run:
    def __init__(self, client: MamClient, report: MamReport, log: Callable[[str], None]):
        self.client, self.report, self.log = client, report, log
        self.errors: Counter[str] = Counter()

    def register(self, instance: SimulatedAppInstance, token: str) -> None:
        reply = self.client.register(
            token,
            app_identifier=instance.app_identifier,
            platform=instance.platform,
            device_name=instance.device_name,
            os_version=instance.os_version,
            app_version=instance.app_version,
        )
        instance.instance_id, instance.secret = reply["instance_id"], reply["instance_secret"]
        self.report.registered += 1
        self.log(f"{instance.label}: registered as instance {instance.instance_id}")
        self.handle(instance, reply)

    def checkin(self, instance: SimulatedAppInstance) -> None:
        try:
            reply = self.client.checkin(instance.secret, instance.report())
        except ProtocolError as exc:
            self.errors[exc.code] += 1
            self.report.checkins_failed += 1
            if exc.status in (401, 410):
                instance.stopped = exc.code
                self.log(f"{instance.label}: the portal refused the instance ({exc.message}); stopped")
            else:
                self.log(f"{instance.label}: check-in failed ({exc.code}): {exc.message}")
            return
        self.report.checkins += 1
        self.handle(instance, reply)

    def handle(self, instance: SimulatedAppInstance, reply: dict) -> None:
        status = reply.get("policy_status")
        if status == "changed" or (status == "none" and instance.policy is not None):
            self.report.policies_applied += 1
            self.log(f"{instance.label}: applied {instance.apply_policy(reply.get('policy'))}")
        access = reply.get("access") or {}
        if access.get("code") != instance.access.get("code"):
            self.log(
                f"{instance.label}: access "
                + ("allowed" if access.get("allowed") else f"blocked ({access.get('code')}): {access.get('reason')}")
            )
        instance.access = access
        if not access.get("allowed", True):
            self.report.access_blocked += 1
        wipe = reply.get("wipe")
        if isinstance(wipe, dict) and isinstance(wipe.get("id"), str):
            self.wipe(instance, wipe)

    def wipe(self, instance: SimulatedAppInstance, wipe: dict) -> None:
        self.log(f"{instance.label}: IT asked to wipe org data ({wipe.get('reason') or 'no reason given'})")
        instance.wipe()
        try:
            self.client.confirm_wipe(instance.secret, wipe["id"])
        except ProtocolError as exc:
            self.errors[exc.code] += 1
            self.log(f"{instance.label}: confirming wipe {wipe['id']} failed ({exc.code}): {exc.message}")
            return
        self.report.wipes_confirmed += 1
        instance.stopped = "wiped"
        self.log(f"{instance.label}: org data removed, wipe {wipe['id']} confirmed; stopped")


def run_mam_simulation(
    server_url: str,
    username: str,
    password: str,
    instances: int = 2,
    *,
    platform: str = "ios",
    duration: float = 60.0,
    interval: float = 30.0,
    timeout: float = 10.0,
    allow_remote: bool = False,
    stop_event: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
) -> MamReport:
    """Sign in, register ``instances`` app instances, check them in every ``interval`` seconds.

    Ends after ``duration`` seconds (every instance checks in at least once), when every instance
    stopped (wiped or refused), or when ``stop_event`` is set. A refused sign-in raises
    ``ProtocolError``; a bad argument ``ValueError``.
    """
    if not allow_remote and not is_loopback_url(server_url):
        raise ValueError(
            f"{server_url} is not on this machine. The simulator registers fake app instances, so it only talks "
            "to a loopback server unless you allow a remote one (--allow-remote)."
        )
    if interval < 0 or duration < 0:
        raise ValueError("The interval and the duration cannot be negative.")
    planned = plan_instances(username, platform, instances)
    log = log or (lambda message: None)
    stop = stop_event or threading.Event()
    report = MamReport(server_url=server_url, username=username, platform=platform, instances=instances)
    started = time.monotonic()
    with MamClient(server_url, timeout=timeout) as client:
        run = _Run(client, report, log)
        token = client.sign_in(username, password)
        log(f"Signed in as {username}")
        for instance in planned:
            try:
                try:
                    run.register(instance, token)
                except ProtocolError as exc:
                    if exc.code != "invalid_token":
                        raise
                    token = client.sign_in(username, password)  # the 10-minute token ran out
                    run.register(instance, token)
            except ProtocolError as exc:
                run.errors[exc.code] += 1
                report.register_failed += 1
                instance.stopped = exc.code
                log(f"{instance.label}: registration refused ({exc.code}): {exc.message}")
        deadline = time.monotonic() + duration
        while not stop.is_set():
            running = [instance for instance in planned if not instance.stopped]
            for instance in running:
                run.checkin(instance)
            if all(instance.stopped for instance in planned) or time.monotonic() >= deadline:
                break
            if stop.wait(min(interval, max(deadline - time.monotonic(), 0))):
                break
        report.errors_by_code = dict(run.errors)
    report.duration_seconds = time.monotonic() - started
    report.apps = [instance.as_dict() for instance in planned]
    return report


# -- command line ---------------------------------------------------------------------------------


def command_mam(args: argparse.Namespace) -> int:
    if not args.username:
        print(f"Give --username (or set {USERNAME_ENV}).", file=sys.stderr)
        return EXIT_USAGE
    password = args.password if args.password is not None else os.environ.get(PASSWORD_ENV)
    if not password:
        print(f"Give --password (or set {PASSWORD_ENV}).", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = run_mam_simulation(
            args.server,
            args.username,
            password,
            args.instances,
            platform=args.platform,
            duration=args.duration,
            interval=args.interval,
            timeout=args.timeout,
            allow_remote=args.allow_remote,
            log=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except ProtocolError as exc:
        print(f"Signing in as {args.username} failed: {exc.message or exc.code}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return EXIT_OK


def add_mam_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``mam`` subcommand to the agent's command line."""
    mam = commands.add_parser(
        "mam",
        help="emulate managed apps (app protection without enrolment)",
        description="Sign in as an employee, register emulated managed app instances, check them in for a while "
        "and print a report: app protection without enrolling a device.",
    )
    mam.add_argument("--server", type=server_url, required=True, help="portal URL (loopback unless --allow-remote)")
    mam.add_argument("--username", default=os.environ.get(USERNAME_ENV), help=f"employee (or ${USERNAME_ENV})")
    mam.add_argument("--password", help=f"the employee's password (better: ${PASSWORD_ENV})")
    mam.add_argument(
        "--platform", choices=sorted(MANAGED_APPS), default="ios", help="platform of the apps (default: %(default)s)"
    )
    mam.add_argument("--instances", type=count, default=2, help="app instances to register (default: 2)")
    mam.add_argument("--duration", type=positive, default=60, help="seconds of check-ins (default: 60)")
    mam.add_argument("--interval", type=positive, default=30, help="seconds between check-ins (default: 30)")
    mam.add_argument("--timeout", type=timeout, default=10, help="seconds to wait for the server (default: 10)")
    mam.add_argument("--allow-remote", action="store_true", help="allow a server that is not on this machine")
    mam.add_argument("--json", action="store_true", help="print the report as JSON")
    mam.add_argument("-v", "--verbose", action="store_true", help="log in more detail")
    mam.set_defaults(handler=command_mam)
    return mam
