"""The agent's persisted enrolment: server URL, device id and device secret.

Stored as JSON in a file only its owner can read (0600, in a 0700 directory), written atomically
so a crash never leaves half a secret behind. The default path is
``$XDG_CONFIG_HOME/mdm-agent/state.json`` (``~/.config/mdm-agent/state.json``); ``MDM_AGENT_STATE``
or ``--state`` overrides it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


class StateError(Exception):
    """The state file exists but cannot be read or is not the agent's."""


def default_state_path() -> Path:
    override = os.environ.get("MDM_AGENT_STATE")
    if override:
        return Path(override).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config_home) / "mdm-agent" / "state.json"


@dataclass
class AgentState:
    server_url: str
    device_id: str
    device_secret: str
    checkin_interval_seconds: int | None = None

    def __repr__(self) -> str:
        # Never print the secret by accident (logs, tracebacks).
        return f"AgentState(server_url={self.server_url!r}, device_id={self.device_id!r}, device_secret='***')"


def load_state(path: str | os.PathLike | None = None) -> AgentState | None:
    """The saved state, or ``None`` when the agent is not enrolled (no file)."""
    path = Path(path) if path is not None else default_state_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"Cannot read the agent state {path}: {exc.strerror}.") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(f"The agent state {path} is not JSON; delete it and enrol again.") from exc
    known = {field.name for field in fields(AgentState)}
    required = ("server_url", "device_id", "device_secret")
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in required):
        raise StateError(f"The agent state {path} is incomplete; delete it and enrol again.")
    # A state file someone loosened is tightened again: it holds the device's credential.
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(FILE_MODE)
    state = AgentState(**{key: value for key, value in data.items() if key in known})
    interval = state.checkin_interval_seconds
    if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
        state.checkin_interval_seconds = None  # the server's interval is asked again at the next check-in
    return state


def save_state(state: AgentState, path: str | os.PathLike | None = None) -> Path:
    """Write ``state`` atomically with mode 0600; returns the path written."""
    path = Path(path) if path is not None else default_state_path()
    path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(state), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def delete_state(path: str | os.PathLike | None = None) -> bool:
    """Remove the state file; whether there was one."""
    path = Path(path) if path is not None else default_state_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
