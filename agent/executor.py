"""Runs the portal's commands on the real Linux host and builds the protocol's result objects.

Nothing on the host changes unless the agent runs with ``--allow-changes``: without it, a command
that would change the host is answered with an ``error`` result saying what would have been run,
so IT sees that it did not happen. A command this agent does not implement is an ``error`` too.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable

logger = logging.getLogger(__name__)

ACKNOWLEDGED, ERROR, NOT_NOW = "acknowledged", "error", "not_now"
RESULT_STATUSES = (ACKNOWLEDGED, ERROR, NOT_NOW)
MAX_NAME_LENGTH = 255


def acknowledged(command_id: str, data: dict | None = None) -> dict:
    return {"id": command_id, "status": ACKNOWLEDGED, "data": dict(data or {})}


def error(command_id: str, message: str) -> dict:
    return {"id": command_id, "status": ERROR, "error": message}


def not_now(command_id: str, message: str) -> dict:
    return {"id": command_id, "status": NOT_NOW, "error": message}


def run_command(argv: list[str], *, timeout: float = 30) -> tuple[int, str]:
    """Run ``argv`` (argv[0] an absolute path); its exit status and what it printed on error."""
    try:
        completed = subprocess.run(  # noqa: S603 -- argv built by the executor, never through a shell
            argv, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return 124, f"it did not finish within {timeout:g} seconds"
    except OSError as exc:
        return 126, exc.strerror or str(exc)
    output = (completed.stderr or completed.stdout or "").strip().splitlines()
    return completed.returncode, output[0] if output else f"exit status {completed.returncode}"


class CommandExecutor:
    """Executes commands from a check-in reply; ``sync_requested`` tells the run loop to check in again.

    ``which`` and ``run`` are the host's tool lookup and process runner, replaceable in tests.
    """

    def __init__(
        self,
        *,
        allow_changes: bool = False,
        which: Callable[[str], str | None] = shutil.which,
        run: Callable[[list[str]], tuple[int, str]] = run_command,
    ):
        self.allow_changes = allow_changes
        self.which = which
        self.run = run
        self.sync_requested = False

    def execute_all(self, commands: Iterable[dict]) -> list[dict]:
        """Results for every command that has an id (in the order given, the server's priority)."""
        results = []
        for command in commands:
            result = self.execute(command)
            if result is not None:
                results.append(result)
        return results

    def execute(self, command: dict) -> dict | None:
        """The result of one command; ``None`` for a command without an id (nothing to report)."""
        command_id = command.get("id") if isinstance(command, dict) else None
        if not isinstance(command_id, str) or not command_id:
            logger.warning("Ignoring a command without an id: %r", command)
            return None
        kind = command.get("type")
        payload = command.get("payload") or {}
        if not isinstance(payload, dict):
            return error(command_id, f"The payload of this '{kind}' command is not an object; ask IT to send it again.")
        handler = {"sync": self._sync, "rename": self._rename, "lock": self._lock}.get(kind)
        if handler is None:
            return error(command_id, f"This agent cannot run '{kind}' on Linux.")
        try:
            return handler(command_id, payload)
        except Exception as exc:  # one command failing must not stop the others from being reported
            logger.exception("Command %s (%s) failed", command_id, kind)
            return error(command_id, f"The agent failed while running '{kind}': {exc}.")

    def _sync(self, command_id: str, payload: dict) -> dict:
        self.sync_requested = True
        return acknowledged(command_id)

    def _rename(self, command_id: str, payload: dict) -> dict:
        name = payload.get("name")
        if not isinstance(name, str) or not name.strip():
            return error(command_id, "The rename command has no name; ask IT to send it again with the new name.")
        name = name.strip()
        if len(name) > MAX_NAME_LENGTH or not name.isprintable():
            return error(command_id, f"'{name[:40]}' cannot be a host name: use printable characters, at most 255.")
        argv = ["hostnamectl", "set-hostname", name]
        if not self.allow_changes:
            return error(
                command_id,
                "This agent runs without --allow-changes, so it did not rename the host; "
                f"it would have run: {shlex.join(argv)}.",
            )
        executable = self.which("hostnamectl")
        if executable is None:
            return error(command_id, "Renaming is not supported on this host: hostnamectl is not installed.")
        status, output = self.run([executable, *argv[1:]])
        if status != 0:
            return error(command_id, f"hostnamectl could not rename this host to '{name}': {output}.")
        return acknowledged(command_id)

    def _lock(self, command_id: str, payload: dict) -> dict:
        if not self.allow_changes:
            return error(
                command_id,
                "Locking is not supported while this agent runs without --allow-changes "
                "(it would have run: loginctl lock-sessions).",
            )
        executable = self.which("loginctl")
        if executable is None:
            return error(command_id, "Locking is not supported on this host: loginctl is not installed.")
        status, output = self.run([executable, "lock-sessions"])
        if status != 0:
            return error(command_id, f"loginctl could not lock the sessions on this host: {output}.")
        return acknowledged(command_id)
