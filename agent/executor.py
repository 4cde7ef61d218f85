"""Runs the portal's commands on the real Linux host and builds the protocol's result objects.

Nothing on the host changes unless the agent runs with ``--allow-changes``: without it, a command
that would change the host is answered with an ``error`` result saying what would have been run,
so IT sees that it did not happen. A command this agent does not implement is an ``error`` too.
Apps (``install_app``/``remove_app`` of Debian packages) are handled by ``agent.packages``;
``retire`` (remove what the portal installed) and ``wipe`` (refused on Linux) by ``agent.wipe``.

Configuration profiles arrive as the Linux agent's JSON document (``linux-agent-profile``, see
``policies/platforms/linux.py``): a list of actions. ``networkmanager_connection`` writes a
NetworkManager keyfile (mode 0600) and reloads NetworkManager; ``trust_anchor`` puts a CA
certificate into the system trust store and rebuilds it; ``check`` only reads the host (is the
root file system encrypted?). What the agent installed is recorded next to its state
(``profiles.json``), so ``remove_profile`` removes exactly those files, and the inventory reports
the installed profiles (``profiles``). File contents (a Wi-Fi password) are never logged or echoed
back in a result.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.packages import Download, PackageManager

logger = logging.getLogger(__name__)

ACKNOWLEDGED, ERROR, NOT_NOW = "acknowledged", "error", "not_now"
RESULT_STATUSES = (ACKNOWLEDGED, ERROR, NOT_NOW)
MAX_NAME_LENGTH = 255

PROFILES_FILE = "profiles.json"
PACKAGE_TOOL_TIMEOUT = 900  # apt-get may fetch dependencies
PROFILE_FORMAT = "linux-agent-profile"
PROFILE_SCHEMA = 1
NM_CONNECTIONS = Path("/etc/NetworkManager/system-connections")
NM_RELOAD = ("nmcli", "connection", "reload")
# (the tool that rebuilds the trust store, where anchors go): Debian and Ubuntu, then Fedora and RHEL.
TRUST_STORES = (
    (("update-ca-certificates",), Path("/usr/local/share/ca-certificates")),
    (("update-ca-trust", "extract"), Path("/etc/pki/ca-trust/source/anchors")),
)
# A file name the portal chose (never a path): it must stay inside the directory it is meant for.
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


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


def write_file(path: Path, content: str, mode: int) -> None:
    """Replace ``path`` atomically with ``content``, created with ``mode`` (never readable by others first)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def root_encrypted() -> bool | None:
    from agent.inventory import LinuxInventory

    return LinuxInventory("/").encrypted()


@dataclass(frozen=True)
class _Step:
    """One change a profile makes: write or remove a file, or run a tool.

    ``describe`` says what it does and never holds a file's content (it may carry a Wi-Fi password).
    """

    verb: str  # "write", "remove" or "run"
    describe: str
    path: Path | None = None
    content: str = ""
    mode: int = 0o644
    argv: tuple[str, ...] = ()

    @classmethod
    def writing(cls, path: Path, content: str, mode: int) -> _Step:
        return cls("write", f"write {path} (mode {mode:04o})", path=path, content=content, mode=mode)

    @classmethod
    def removing(cls, path: Path) -> _Step:
        return cls("remove", f"remove {path}", path=path)

    @classmethod
    def running(cls, argv: Iterable[str]) -> _Step:
        argv = tuple(argv)
        return cls("run", f"run {shlex.join(argv)}", argv=argv)


class CommandExecutor:
    """Executes commands from a check-in reply; ``sync_requested`` tells the run loop to check in again.

    ``which``, ``run``, ``write``, ``remove`` and ``encrypted`` are the host's tool lookup, process
    runner, file writer, file remover and root-encryption probe, replaceable in tests (the package
    tools run through ``run`` too, with a longer timeout when it is the real runner).
    ``profiles_path`` keeps the record of installed profiles across restarts (memory only if None),
    ``apps_path`` the record of installed apps; ``download`` fetches an app package from the portal
    with the device secret (``agent.packages``; the run loop connects it to its client).
    """

    def __init__(
        self,
        *,
        allow_changes: bool = False,
        which: Callable[[str], str | None] = shutil.which,
        run: Callable[[list[str]], tuple[int, str]] = run_command,
        write: Callable[[Path, str, int], None] = write_file,
        remove: Callable[[Path], None] = remove_file,
        encrypted: Callable[[], bool | None] = root_encrypted,
        profiles_path: Path | None = None,
        apps_path: Path | None = None,
        download: Download | None = None,
        downloads_dir: Path | None = None,
    ):
        self.allow_changes = allow_changes
        self.which = which
        self.run = run
        self.write = write
        self.remove = remove
        self.encrypted = encrypted
        self.profiles_path = profiles_path
        self.profiles: dict[str, dict] = self._load_profiles()
        self.packages = PackageManager(
            allow_changes=allow_changes,
            which=which,
            run=run,
            run_long=functools.partial(run_command, timeout=PACKAGE_TOOL_TIMEOUT) if run is run_command else run,
            write_record=write_file,
            download=download,
            apps_path=apps_path,
            downloads_dir=downloads_dir,
        )
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
        handler = {
            "sync": self._sync,
            "rename": self._rename,
            "lock": self._lock,
            "install_profile": self._install_profile,
            "remove_profile": self._remove_profile,
            "notify": self._notify,
            "install_app": self._install_app,
            "remove_app": self._remove_app,
            "retire": self._retire,
            "wipe": self._wipe,
        }.get(kind)
        if handler is None:
            return error(command_id, f"This agent cannot run '{kind}' on Linux.")
        try:
            return handler(command_id, payload)
        except Exception as exc:  # one command failing must not stop the others from being reported
            logger.exception("Command %s %s failed", kind, command_id)
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

    def _notify(self, command_id: str, payload: dict) -> dict:
        message = payload.get("message")
        if not isinstance(message, str) or not message.strip():
            return error(command_id, "This notification has no message; ask IT to send it again with one.")
        title = payload.get("title") if isinstance(payload.get("title"), str) else ""
        logger.warning("Message from IT: %s%s", f"{title}: " if title else "", message)
        return acknowledged(command_id)

    # -- configuration profiles ----------------------------------------------------------------

    def inventory(self) -> dict:
        """The inventory fields this executor knows: the profiles and the apps (packages) it installed."""
        inventory = self.packages.inventory()
        if self.profiles:
            installed = ({"identifier": p["identifier"], "version": p["version"]} for p in self.profiles.values())
            inventory["profiles"] = sorted(installed, key=lambda p: p["identifier"])
        return inventory

    # -- apps --------------------------------------------------------------------------------------

    def _install_app(self, command_id: str, payload: dict) -> dict:
        failure = self.packages.install(payload)
        if failure:
            return error(command_id, failure)
        self.sync_requested = True  # report the new package in the inventory at once
        version = self.packages.installed_version(str(payload.get("identifier")))
        return acknowledged(command_id, {"version": version} if version else None)

    def _remove_app(self, command_id: str, payload: dict) -> dict:
        failure = self.packages.remove(payload)
        if failure:
            return error(command_id, failure)
        self.sync_requested = True
        return acknowledged(command_id)

    # -- retire and wipe (agent.wipe) ---------------------------------------------------------------

    def _retire(self, command_id: str, payload: dict) -> dict:
        from agent.wipe import linux_retire

        return linux_retire(self, command_id, payload)

    def _wipe(self, command_id: str, payload: dict) -> dict:
        from agent.wipe import linux_wipe

        return linux_wipe(self, command_id, payload)

    def _install_profile(self, command_id: str, payload: dict) -> dict:
        if payload.get("error"):
            return error(command_id, f"The portal could not build this profile: {payload['error']}")
        profile, version = payload.get("profile"), payload.get("version")
        name = payload.get("name") or profile
        if not isinstance(profile, str) or not profile or type(version) is not int:
            return error(command_id, "This install_profile command has no profile id or version; ask IT to resend it.")
        if payload.get("format") != PROFILE_FORMAT:
            return error(
                command_id,
                f"The profile '{name}' is in the format '{payload.get('format')}', but this Linux agent applies only "
                f"'{PROFILE_FORMAT}' profiles; ask IT to check the profile's platforms.",
            )
        content = payload.get("content")
        if not isinstance(content, dict) or not isinstance(content.get("actions"), list):
            return error(command_id, f"The profile '{name}' has no list of actions; ask IT to resend it.")
        if content.get("schema") != PROFILE_SCHEMA:
            return error(
                command_id,
                f"The profile '{name}' uses schema {content.get('schema')!r}; this agent reads schema "
                f"{PROFILE_SCHEMA}. Update the agent.",
            )
        steps: list[_Step] = []
        for action in content["actions"]:
            planned = self._plan(action) if isinstance(action, dict) else "an action is not an object"
            if isinstance(planned, str):
                return error(command_id, f"The profile '{name}' cannot be applied on this host: {planned}.")
            steps.extend(planned)
        written = [str(step.path) for step in steps if step.verb == "write"]
        previous = self.profiles.get(profile, {})
        steps += [_Step.removing(Path(stale)) for stale in sorted(set(previous.get("files", [])) - set(written))]
        if steps and not self.allow_changes:
            return error(
                command_id,
                f"This agent runs without --allow-changes, so it did not install the profile '{name}'; "
                f"it would have: {'; '.join(step.describe for step in steps)}.",
            )
        failure = self._carry_out(steps)
        if failure:
            return error(command_id, f"The profile '{name}' was not fully installed: {failure}.")
        reloads = [list(step.argv) for step in steps if step.verb == "run"]
        self._remember(
            profile,
            {
                "identifier": str(payload.get("identifier") or profile),
                "version": version,
                "name": str(name),
                "files": written,
                "reload": reloads or previous.get("reload", []),
            },
        )
        return acknowledged(command_id)

    def _plan(self, action: dict) -> list[_Step] | str:
        """The steps of one action, or why it cannot be applied here (a sentence fragment)."""
        kind = action.get("type")
        if kind == "check":
            if action.get("check") != "root_filesystem_encrypted":
                return f"this agent cannot check '{action.get('check')}'"
            encrypted = self.encrypted()
            if encrypted is None:
                return "the agent cannot tell whether the root file system is encrypted (it is not on a block device)"
            if encrypted is not bool(action.get("expect", True)):
                return (
                    "the root file system is not encrypted. LUKS is set up when the disk is installed, "
                    "so this host must be reinstalled with encryption"
                )
            return []
        if kind == "networkmanager_connection":
            file_name, content = action.get("file_name"), action.get("content")
            if not _safe_file_name(file_name, ".nmconnection") or not isinstance(content, str):
                return "its Wi-Fi connection has no valid file name or content"
            if self.which(NM_RELOAD[0]) is None:
                return "NetworkManager (nmcli) is not installed"
            return [_Step.writing(NM_CONNECTIONS / file_name, content, 0o600), _Step.running(NM_RELOAD)]
        if kind == "trust_anchor":
            file_name, pem = action.get("file_name"), action.get("pem")
            if not _safe_file_name(file_name, ".crt") or not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
                return "its certificate has no valid file name or PEM text"
            for argv, directory in TRUST_STORES:
                if self.which(argv[0]) is not None:
                    return [_Step.writing(directory / file_name, pem, 0o644), _Step.running(argv)]
            return "no system trust store tool (update-ca-certificates or update-ca-trust) is installed"
        return f"this agent does not know the action '{kind}'"

    def _carry_out(self, steps: list[_Step]) -> str:
        """Write, remove and run in order; what failed ("" when everything worked)."""
        for step in steps:
            if step.verb in ("write", "remove"):
                try:
                    if step.verb == "write":
                        self.write(step.path, step.content, step.mode)
                    else:
                        self.remove(step.path)
                except OSError as exc:
                    return f"could not {step.verb} {step.path}: {exc.strerror or exc}"
                continue
            executable = self.which(step.argv[0])
            if executable is None:
                return f"{step.argv[0]} is not installed"
            status, output = self.run([executable, *step.argv[1:]])
            if status != 0:
                return f"{shlex.join(step.argv)} failed: {output}"
        return ""

    def _remove_profile(self, command_id: str, payload: dict) -> dict:
        profile = payload.get("profile")
        if not isinstance(profile, str) or not profile:
            return error(command_id, "This remove_profile command has no profile id; ask IT to resend it.")
        record = self.profiles.get(profile)
        if record is None:
            return acknowledged(command_id)  # never installed here (or removed already): nothing to do
        name = record.get("name") or payload.get("name") or profile
        steps = [_Step.removing(Path(path)) for path in record.get("files", [])]
        if steps:
            steps += [_Step.running(argv) for argv in record.get("reload", [])]
        if steps and not self.allow_changes:
            return error(
                command_id,
                f"This agent runs without --allow-changes, so it did not remove the profile '{name}'; "
                f"it would have: {'; '.join(step.describe for step in steps)}.",
            )
        failure = self._carry_out(steps)
        if failure:
            return error(command_id, f"The profile '{name}' was not fully removed: {failure}.")
        self._remember(profile, None)
        return acknowledged(command_id)

    def _load_profiles(self) -> dict[str, dict]:
        if self.profiles_path is None:
            return {}
        try:
            data = json.loads(self.profiles_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring the unreadable record of installed profiles %s: %s", self.profiles_path, exc)
            return {}
        return {key: value for key, value in data.items() if isinstance(value, dict)} if isinstance(data, dict) else {}

    def _remember(self, profile: str, record: dict | None) -> None:
        if record is None:
            self.profiles.pop(profile, None)
        else:
            self.profiles[profile] = record
        if self.profiles_path is not None:
            self.profiles_path.parent.mkdir(parents=True, exist_ok=True)
            write_file(self.profiles_path, json.dumps(self.profiles, indent=2, sort_keys=True), 0o600)


def _safe_file_name(name: object, suffix: str) -> bool:
    return isinstance(name, str) and name.endswith(suffix) and bool(_SAFE_FILE_NAME.match(name)) and ".." not in name
