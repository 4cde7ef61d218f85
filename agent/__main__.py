"""Command line of the device agent: ``python -m agent enroll|run|rotate-secret|simulate|mam``.

Exit status: 0 done, 1 failed (the message says why), 2 wrong usage, 3 the device was retired
(its state was deleted), 130 interrupted.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from agent import __version__
from agent.arguments import count, positive, rate, server_url, timeout
from agent.client import TRANSPORTS, AgentClient, DeviceRetired, ProtocolError, RateLimited, check_server_url
from agent.executor import PROFILES_FILE, CommandExecutor
from agent.fleet import (
    DEFAULT_INSTALL_FAILURE_RATE,
    DEFAULT_PLATFORM_MIX,
    DRIFT_EVENTS,
    parse_drift,
    parse_platform_mix,
)
from agent.inventory import collect_inventory, device_identity
from agent.mam import add_mam_parser
from agent.packages import APPS_FILE
from agent.simulator import run_simulation
from agent.state import AgentState, StateError, default_state_path, delete_state, load_state, save_state
from agent.wipe import DEFAULT_RETIRE_LEFTOVER_RATE

logger = logging.getLogger("agent")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RETIRED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_INTERVAL = 900
MAX_BACKOFF_SECONDS = 300
MAX_IMMEDIATE_CHECKINS = 3
TOKEN_ENV = "MDM_ENROLLMENT_TOKEN"  # noqa: S105 -- the name of an environment variable


def describe(exc: ProtocolError) -> str:
    """The portal's sentence, with what is wrong per field when it says so."""
    text = exc.message
    if exc.fields:
        text += " " + "; ".join(f"{name}: {problem}" for name, problem in sorted(exc.fields.items()))
    return text


def _fail(message: str, status: int = EXIT_FAILED) -> int:
    print(message, file=sys.stderr)
    return status


RELEASE_FIRST = "ask IT to retire the device in the console (or remove it in the Company Portal if it is your own)"


def _state_path_problem(path: Path) -> str | None:
    """Why the state cannot be saved at ``path`` (checked before enrolling), or ``None``."""
    if path.is_dir():
        return f"--state {path} is a directory; give the path of a file."
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"--state {path} cannot be created: {ancestor} is not a directory."
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"--state {path} cannot be created: {ancestor} is not writable."
    return None


def _load(state_path: Path) -> AgentState | int:
    """The saved state, or the exit status after saying why there is none usable."""
    try:
        state = load_state(state_path)
    except StateError as exc:
        return _fail(str(exc))
    if state is None:
        return _fail(
            f"This host is not enrolled (no {state_path}). Enrol it first: python -m agent enroll --server ..."
        )
    try:
        check_server_url(state.server_url)
    except ValueError as exc:
        return _fail(f"The agent state {state_path} is not usable: {exc} Delete it and enrol again.")
    return state


# -- enroll ---------------------------------------------------------------------------------------


def command_enroll(args: argparse.Namespace) -> int:
    state_path = args.state
    problem = _state_path_problem(state_path)
    if problem:
        return _fail(problem, EXIT_USAGE)
    try:
        existing = load_state(state_path)
    except StateError:
        existing = None  # an unreadable state is replaced by the new enrolment
    if existing is not None and not args.force:
        return _fail(
            f"This host is already enrolled as device {existing.device_id} ({state_path}). "
            "To enrol it again, --force discards this machine's saved enrolment; "
            f"the portal must have released the device first: {RELEASE_FIRST}."
        )
    token = args.token if args.code is None else None
    if token is None and args.code is None:
        return _fail(f"Give --token or --code (or set {TOKEN_ENV}).", EXIT_USAGE)
    inventory = collect_inventory()
    with AgentClient(args.server, timeout=args.timeout) as client:
        try:
            reply = client.enroll(
                token=token,
                code=args.code,
                device=device_identity(inventory),
                inventory=inventory,
                transport=args.transport,
            )
        except ProtocolError as exc:
            return _fail(f"Enrolment failed: {describe(exc)}")
    interval = reply.get("checkin_interval_seconds")
    state = AgentState(
        server_url=args.server,
        device_id=reply["device_id"],
        device_secret=reply["device_secret"],
        checkin_interval_seconds=interval if isinstance(interval, int) else None,
    )
    try:
        path = save_state(state, state_path)
    except OSError as exc:
        return _fail(
            f"Enrolled as device {state.device_id}, but its state could not be saved to {state_path} "
            f"({exc.strerror or exc}). To enrol again, {RELEASE_FIRST}."
        )
    print(f"Enrolled as device {state.device_id}; state saved to {path}.")
    print(f"Start checking in with: python -m agent run --state {path}")
    return EXIT_OK


# -- run ------------------------------------------------------------------------------------------


def run_agent(
    state: AgentState,
    state_path: Path,
    *,
    once: bool = False,
    interval: float | None = None,
    allow_changes: bool = False,
    timeout: float = 10,
    stop: threading.Event | None = None,
    collect: Callable[[], dict] = collect_inventory,
    executor: CommandExecutor | None = None,
) -> int:
    """Check in, run the commands, report their results, sleep; until stopped (or once)."""
    stop = stop or threading.Event()
    executor = executor or CommandExecutor(
        allow_changes=allow_changes,
        profiles_path=Path(state_path).with_name(PROFILES_FILE),
        apps_path=Path(state_path).with_name(APPS_FILE),
    )
    unreported: dict[str, dict] = {}  # results the server has not taken yet, by command id
    kinds: dict[str, str] = {}  # the type of each command in ``unreported``, for the log
    failures = immediate = 0
    with AgentClient(state.server_url, secret=state.device_secret, timeout=timeout) as client:
        if executor.packages.download is None:
            executor.packages.download = functools.partial(_download, client)
        while True:
            wait = interval if interval is not None else state.checkin_interval_seconds or DEFAULT_INTERVAL
            try:
                inventory = {**collect(), **executor.inventory()}
                logger.debug("Inventory: %s", json.dumps(inventory, sort_keys=True))
                reply = client.checkin(inventory)
                failures = 0
                server_interval = reply.get("checkin_interval_seconds")
                if interval is None and isinstance(server_interval, int) and server_interval > 0:
                    wait = state.checkin_interval_seconds = server_interval
                commands = reply["commands"]
                kinds.update(
                    (command["id"], str(command.get("type")))
                    for command in commands
                    if isinstance(command, dict) and isinstance(command.get("id"), str)
                )
                unreported.update((result["id"], result) for result in executor.execute_all(commands))
                logger.info("Checked in: %d command(s)", len(commands))
                for result in unreported.values():
                    logger.info("%s", describe_result(result, kinds.get(result["id"])))
                if unreported:
                    reply = client.report_results(list(unreported.values()))
                    logger.info(
                        "Reported %d result(s); unknown to the server: %s", len(unreported), reply.get("unknown")
                    )
                    unreported.clear()
                    kinds.clear()
            except DeviceRetired as exc:
                delete_state(state_path)
                print(
                    f"This device was retired or deleted in the portal ({describe(exc)}). "
                    f"The agent stopped managing it and deleted its state ({state_path}).",
                    file=sys.stderr,
                )
                return EXIT_RETIRED
            except RateLimited as exc:
                logger.warning("The portal asks the agent to slow down; retrying in %g s.", exc.retry_after)
                wait = exc.retry_after
            except ProtocolError as exc:
                if exc.status == 401:
                    logger.debug("The portal said: %s", describe(exc))
                    return _fail(
                        f"The portal refused this device's secret, so this host must be enrolled again: "
                        f"{RELEASE_FIRST}, then run: python -m agent enroll --force --server {state.server_url} "
                        f"--state {state_path} --token ... (or --code ...)."
                    )
                failures += 1
                logger.warning("Check-in failed (%s): %s", exc.code, describe(exc))
                if once:
                    return EXIT_FAILED
                wait = min(wait, MAX_BACKOFF_SECONDS, 5 * 2**failures)
            else:
                if executor.sync_requested and immediate < MAX_IMMEDIATE_CHECKINS:
                    executor.sync_requested = False
                    immediate += 1
                    continue  # sync asks for a check-in now
                executor.sync_requested, immediate = False, 0
                if once:
                    return EXIT_OK
            if stop.wait(max(wait, 1)):
                return EXIT_OK


def describe_result(result: dict, kind: str | None) -> str:
    """``"Command lock e0ecc728-...: acknowledged"``, with the reason when it failed."""
    text = f"Command {kind or 'of unknown type'} {result['id']}: {result['status']}"
    return f"{text} ({result['error']})" if result.get("error") else text


def _download(client: AgentClient, url: str, write, max_bytes: int) -> int:
    return client.download(url, write, max_bytes=max_bytes)


def command_run(args: argparse.Namespace) -> int:
    state = _load(args.state)
    if isinstance(state, int):
        return state
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return run_agent(
        state,
        Path(args.state),
        once=args.once,
        interval=args.interval,
        allow_changes=args.allow_changes,
        timeout=args.timeout,
        stop=stop,
    )


# -- rotate-secret --------------------------------------------------------------------------------


def command_rotate_secret(args: argparse.Namespace) -> int:
    state = _load(args.state)
    if isinstance(state, int):
        return state
    with AgentClient(state.server_url, secret=state.device_secret, timeout=args.timeout) as client:
        try:
            state.device_secret = client.rotate_secret()
        except DeviceRetired as exc:
            delete_state(args.state)
            return _fail(f"This device was retired or deleted: {describe(exc)} Its state was deleted.", EXIT_RETIRED)
        except ProtocolError as exc:
            return _fail(f"Rotating the secret failed: {describe(exc)}")
    try:
        save_state(state, args.state)
    except OSError as exc:
        return _fail(
            f"The secret was rotated but could not be saved to {args.state} ({exc.strerror}); "
            f"the old one no longer works. To enrol this host again, {RELEASE_FIRST}."
        )
    print(f"Rotated the secret of device {state.device_id}; the old one no longer works.")
    return EXIT_OK


# -- simulate -------------------------------------------------------------------------------------


def command_simulate(args: argparse.Namespace) -> int:
    if not args.token:
        return _fail(f"Give --token (or set {TOKEN_ENV}).", EXIT_USAGE)
    try:
        mix = parse_platform_mix(args.platform_mix)
        drift = [parse_drift(text) for text in args.drift or []]
        report = run_simulation(
            args.server,
            args.token,
            args.devices,
            platform_mix=mix,
            duration=args.duration,
            interval=args.interval,
            concurrency=args.concurrency,
            seed=args.seed,
            timeout=args.timeout,
            drift_rate=args.drift_rate,
            allow_remote=args.allow_remote,
            log=lambda message: print(message, file=sys.stderr, flush=True),
            drift=drift,
            install_failure_rate=args.install_failure_rate,
            retire_leftover_rate=args.retire_leftover_rate,
        )
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.summary())
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agent", description="The MDM portal's device agent.")
    parser.add_argument("--version", action="version", version=f"mdm-agent {__version__}", help="print the version")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state", type=Path, default=default_state_path(), help="state file (default: %(default)s)")
    common.add_argument("--timeout", type=timeout, default=10, help="seconds to wait for the server (default: 10)")
    common.add_argument("-v", "--verbose", action="store_true", help="log in more detail")

    enroll = commands.add_parser(
        "enroll",
        parents=[common],
        help="enrol this host",
        description="Enrol this host in the portal with an enrolment token or a one-time code, "
        "and save its device id and secret in the state file.",
    )
    enroll.add_argument("--server", type=server_url, required=True, help="portal URL, e.g. https://mdm.example.com")
    secret = enroll.add_mutually_exclusive_group()
    secret.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"enrolment token (or ${TOKEN_ENV})")
    secret.add_argument("--code", help="one-time enrolment code from the Company Portal, e.g. B3XT6-VHSZU")
    enroll.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="over_the_air",
        help="how the device is enrolled, as the portal records it (default: %(default)s)",
    )
    enroll.add_argument(
        "--force",
        action="store_true",
        help="discard this machine's saved enrolment and enrol again "
        "(the portal must have retired or removed the device first)",
    )
    enroll.set_defaults(handler=command_enroll)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="check in and run commands",
        description="Check in with the portal, run the commands it sends, report their results, "
        "and repeat until stopped (Ctrl-C or SIGTERM).",
    )
    run.add_argument("--once", action="store_true", help="check in once and exit")
    run.add_argument("--interval", type=positive, help="seconds between check-ins (default: what the server says)")
    run.add_argument(
        "--allow-changes",
        action="store_true",
        help="let commands change this host (rename, lock, install and remove packages); off by default",
    )
    run.set_defaults(handler=command_run)

    rotate = commands.add_parser(
        "rotate-secret",
        parents=[common],
        help="replace the device secret",
        description="Ask the portal for a new device secret and save it; the old one stops working.",
    )
    rotate.set_defaults(handler=command_rotate_secret)

    simulate = commands.add_parser(
        "simulate",
        help="emulate a fleet of devices against a portal",
        description="Enrol a fleet of emulated devices with one enrolment token, check them in for a while, "
        "run the commands they receive, and print a report. For load tests and demos.",
    )
    simulate.add_argument(
        "--server", type=server_url, required=True, help="portal URL (loopback unless --allow-remote)"
    )
    simulate.add_argument("--token", default=os.environ.get(TOKEN_ENV), help=f"enrolment token (or ${TOKEN_ENV})")
    simulate.add_argument("--devices", type=count, required=True, help="number of devices")
    default_mix = ",".join(f"{name}={weight}" for name, weight in DEFAULT_PLATFORM_MIX.items())
    simulate.add_argument("--platform-mix", default=default_mix, help="relative weights (default: %(default)s)")
    simulate.add_argument("--duration", type=positive, default=60, help="seconds of check-ins after enrolment")
    simulate.add_argument("--interval", type=positive, help="seconds between check-ins (default: the server's)")
    simulate.add_argument("--concurrency", type=count, default=16, help="worker threads (default: 16)")
    simulate.add_argument("--seed", help="makes the fleet reproducible (default: random, printed)")
    simulate.add_argument("--drift-rate", type=rate, default=0.05, help="chance a check-in reports a change")
    simulate.add_argument(
        "--drift",
        action="append",
        metavar="[DEVICE:]EVENT[@N]",
        help="make one device drift on cue: DEVICE is its number (default 0) or a platform (its first device), "
        "N the check-in after enrolment (default 1); e.g. --drift windows:encryption_off@3. "
        f"Events: {', '.join(DRIFT_EVENTS)}. Repeatable.",
    )
    simulate.add_argument(
        "--install-failure-rate",
        type=rate,
        default=DEFAULT_INSTALL_FAILURE_RATE,
        help="chance an app install fails with a reason the platform gives (default: %(default)s)",
    )
    simulate.add_argument(
        "--retire-leftover-rate",
        type=rate,
        default=DEFAULT_RETIRE_LEFTOVER_RATE,
        help="chance a retire leaves one managed app behind, reported so verification fails (default: %(default)s)",
    )
    simulate.add_argument("--timeout", type=timeout, default=10, help="seconds to wait for the server (default: 10)")
    simulate.add_argument("--allow-remote", action="store_true", help="allow a server that is not on this machine")
    simulate.add_argument("--json", action="store_true", help="print the report as JSON")
    simulate.add_argument("-v", "--verbose", action="store_true", help="log in more detail")
    simulate.set_defaults(handler=command_simulate)
    add_mam_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return _fail("Interrupted.", EXIT_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
