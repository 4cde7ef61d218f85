"""Apps on the real Linux host: ``install_app`` and ``remove_app`` of Debian packages, safely.

A line-of-business app arrives as a ``.deb`` the agent downloads from the portal with the device
secret (``download`` in the payload: url, sha256, size, format). The agent checks, before anything
else, that the file has exactly the announced size and SHA-256 and is a Debian package whose name
is the app's identifier; a mismatch is refused whatever the flags. Only with ``--allow-changes``
does it then run ``apt-get install`` on the file (``dpkg -i`` where apt is missing), never through a
shell; without the flag it answers ``error`` saying exactly what it would have run. A store app on
Linux is a package of the host's configured repositories (``apt-get install <package>``).
``remove_app`` runs ``dpkg -r <package>``, under the same rule.

What the agent installed is recorded next to its state (``apps.json``), and the inventory reports
those packages in ``installed_apps`` with the version ``dpkg-query`` finds (so a package removed by
hand shows as gone). Every host access goes through the injected ``which``/``run``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import lzma
import re
import shlex
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

APPS_FILE = "apps.json"
MAX_PACKAGE_BYTES = 4 * 1024**3
# A Debian package name (Debian Policy 5.6.1): it can never be taken for an option or a path.
_PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]{1,200}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60

Download = Callable[[str, Callable[[bytes], object], int], int]


def package_download(payload: dict) -> dict:
    """The package an ``install_app`` payload announces: ``{"url", "sha256", "size", "format"}``.

    The protocol's ``download`` object, or the same facts as flat fields (``download_url``,
    ``sha256``, ``size_bytes``, ``format``) as the portal's command may carry them.
    """
    download = payload.get("download")
    if isinstance(download, dict):
        return download
    return {
        "url": payload.get("download_url"),
        "sha256": payload.get("sha256"),
        "size": payload.get("size_bytes"),
        "format": payload.get("format"),
    }


class PackageError(Exception):
    """The package cannot be installed; the message is the sentence fragment to report."""


def deb_control(path: Path) -> dict[str, str]:
    """The fields of a ``.deb``'s ``control`` file (``Package``, ``Version``, ...).

    Raises ``PackageError`` when the file is not a Debian package. A control archive compressed
    with zstd (Ubuntu's default), which the standard library cannot open, gives ``{}``.
    """
    with path.open("rb") as handle:
        if handle.read(len(_AR_MAGIC)) != _AR_MAGIC:
            raise PackageError("the file is not a Debian package (no ar archive header)")
        members: list[str] = []
        while header := handle.read(_AR_HEADER):
            if len(header) < _AR_HEADER or header[58:60] != b"`\n":
                raise PackageError("the file is not a valid Debian package (a damaged ar member header)")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise PackageError("the file is not a valid Debian package (a damaged ar member size)") from None
            members.append(name)
            if len(members) == 1 and name != "debian-binary":
                raise PackageError("the file is not a Debian package (its first member is not debian-binary)")
            if name.startswith("control.tar"):
                data = handle.read(size)
                return _control_fields(name, data)
            handle.seek(size + size % 2, io.SEEK_CUR)
    raise PackageError("the Debian package has no control archive")


def _control_fields(member: str, data: bytes) -> dict[str, str]:
    try:
        if member.endswith(".gz"):
            data = gzip.decompress(data)
        elif member.endswith(".xz"):
            data = lzma.decompress(data)
        elif member != "control.tar":
            return {}  # zstd and friends: the standard library cannot read them
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            entry = next((m for m in archive.getmembers() if m.name.lstrip("./") == "control" and m.isfile()), None)
            if entry is None:
                raise PackageError("the Debian package has no control file")
            text = archive.extractfile(entry).read().decode("utf-8", "replace")
    except (OSError, EOFError, lzma.LZMAError, tarfile.TarError) as exc:
        raise PackageError(f"the Debian package's control archive cannot be read ({exc})") from exc
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


class PackageManager:
    """``install_app``/``remove_app`` on a Debian-family host, and the ``installed_apps`` it manages.

    ``download(url, write, max_bytes)`` fetches a portal file with the device secret (the agent's
    ``AgentClient.download``); ``run_long`` runs the package tools (they may take minutes).
    """

    def __init__(
        self,
        *,
        allow_changes: bool,
        which: Callable[[str], str | None],
        run: Callable[[list[str]], tuple[int, str]],
        run_long: Callable[[list[str]], tuple[int, str]],
        write_record: Callable[[Path, str, int], None],
        download: Download | None = None,
        apps_path: Path | None = None,
        downloads_dir: Path | None = None,
    ):
        self.allow_changes = allow_changes
        self.which = which
        self.run = run
        self.run_long = run_long
        self.write_record = write_record
        self.download = download
        self.apps_path = apps_path
        self.downloads_dir = downloads_dir
        self.reporting, self.apps = self._load()

    # -- inventory ------------------------------------------------------------------------------

    def installed_version(self, identifier: str) -> str:
        """The version of a package the agent installed, as the package said (or the portal sent)."""
        return str(self.apps.get(identifier, {}).get("version") or "")

    def inventory(self) -> dict:
        """``installed_apps`` for the packages the agent manages, as ``dpkg-query`` sees them now.

        Nothing until the agent has managed an app (the portal then knows it reports no apps).
        """
        if not self.reporting:
            return {}
        query = self.which("dpkg-query")
        installed = []
        for identifier, record in sorted(self.apps.items()):
            version = record.get("version", "")
            if query is not None:
                status, output = self.run([query, "-W", "-f", "${Version} ${db:Status-Abbrev}", identifier])
                parts = output.split()
                if status != 0 or len(parts) < 2 or not parts[1].startswith("ii"):
                    continue  # removed by hand (or never configured): not installed
                version = parts[0]
            installed.append({"identifier": identifier, "name": record.get("name") or identifier, "version": version})
        return {"installed_apps": installed}

    # -- install --------------------------------------------------------------------------------

    def install(self, payload: dict) -> str | None:
        """Install the app; ``None`` when done (``installed_version`` says which), else the sentence to answer
        ``error`` with."""
        identifier, kind = payload.get("identifier"), payload.get("kind")
        name = str(payload.get("name") or identifier or "the app")
        version = str(payload.get("version") or "")
        label = f"{name} {version}".strip()
        if payload.get("error"):
            return f"The portal could not send {name}: {payload['error']}"
        if kind == "web":
            where = f" ({payload['url']})" if isinstance(payload.get("url"), str) else ""
            return f"{name} is a web link{where}: this Linux agent installs packages only, so open it in a browser."
        if not isinstance(identifier, str) or not _PACKAGE_NAME.match(identifier):
            return f"{name} has no Debian package name as its identifier ('{identifier}'), so it cannot be installed."
        if kind == "store":
            return self._install_from_repository(identifier, name, label)
        if kind != "lob":
            return f"This agent does not know how to install an app of kind '{kind}'."
        download = package_download(payload)
        package_format = download.get("format")
        if package_format != "deb":
            return (
                f"A .{package_format or '?'} package cannot be installed on Linux; this agent installs .deb packages."
            )
        url, sha256, size = download.get("url"), download.get("sha256"), download.get("size")
        if not isinstance(url, str) or not url or not isinstance(sha256, str) or not _SHA256.match(sha256):
            return f"The package of {name} has no download address or SHA-256 checksum; ask IT to send it again."
        if type(size) is not int or not 0 < size <= MAX_PACKAGE_BYTES:
            return f"The package of {name} has no valid size ({size!r}); ask IT to send it again."
        if self.download is None:
            return "This agent cannot download packages (it is not connected to the portal)."
        with tempfile.TemporaryDirectory(prefix="mdm-agent-", dir=self.downloads_dir) as directory:
            path = Path(directory) / f"{identifier}.deb"
            try:
                control = self._fetch(url, path, identifier=identifier, size=size, sha256=sha256.lower(), name=name)
            except PackageError as exc:
                return f"{label} was not installed: {exc}."
            tool = self.which("apt-get")
            argv = (
                ["apt-get", "install", "-y", "--no-install-recommends", str(path)]
                if tool
                else ["dpkg", "-i", str(path)]
            )
            verified = f"the package was downloaded and verified ({size} bytes, SHA-256 {sha256.lower()[:12]}…)"
            if not self.allow_changes:
                return (
                    f"This agent runs without --allow-changes, so it did not install {label}; {verified} "
                    f"and it would have run: {shlex.join(argv)}."
                )
            failure = self._run_tool(argv, f"install {label}")
        if failure:
            return failure
        self._remember(identifier, {"name": name, "version": control.get("Version") or version, "kind": kind})
        return None

    def _install_from_repository(self, identifier: str, name: str, label: str) -> str | None:
        argv = ["apt-get", "install", "-y", "--no-install-recommends", identifier]
        if not self.allow_changes:
            return (
                f"This agent runs without --allow-changes, so it did not install {label}; "
                f"it would have run: {shlex.join(argv)}."
            )
        failure = self._run_tool(argv, f"install {label}")
        if failure:
            return failure
        self._remember(identifier, {"name": name, "version": "", "kind": "store"})
        return None

    def _fetch(self, url: str, path: Path, *, identifier: str, size: int, sha256: str, name: str) -> dict[str, str]:
        """Download to ``path`` and verify size, checksum and package name; the package's control fields.

        ``PackageError`` when anything is not what the portal announced.
        """
        digest = hashlib.sha256()
        with path.open("wb") as handle:

            def write(chunk: bytes) -> None:
                digest.update(chunk)
                handle.write(chunk)

            try:
                received = self.download(url, write, size)
            except Exception as exc:  # the client's ProtocolError, or a network failure
                raise PackageError(f"its package could not be downloaded ({getattr(exc, 'message', exc)})") from exc
        if received != size:
            raise PackageError(f"the package is {received} bytes, not the {size} the portal announced; it was deleted")
        if digest.hexdigest() != sha256:
            raise PackageError(
                f"the package does not match its SHA-256 checksum (expected {sha256}, got {digest.hexdigest()}); "
                "it was deleted. Ask IT to upload the package again"
            )
        control = deb_control(path)
        package = control.get("Package")
        if package is not None and package != identifier:
            raise PackageError(
                f"the package installs '{package}', not '{identifier}' as the identifier of {name} says; "
                "ask IT to correct it"
            )
        return control

    # -- remove ---------------------------------------------------------------------------------

    def remove(self, payload: dict) -> str | None:
        """Remove the app; ``None`` when done (or not installed), else the sentence to answer ``error`` with."""
        identifier = payload.get("identifier")
        name = str(payload.get("name") or identifier or "the app")
        if payload.get("kind") == "web":
            return None  # a web link installs nothing here
        if not isinstance(identifier, str) or not _PACKAGE_NAME.match(identifier):
            return f"{name} has no Debian package name as its identifier ('{identifier}'), so it cannot be removed."
        if not self._installed(identifier):
            self._remember(identifier, None)
            return None  # removed already (or never installed): nothing to do
        argv = ["dpkg", "-r", identifier]
        if not self.allow_changes:
            return (
                f"This agent runs without --allow-changes, so it did not remove {name}; "
                f"it would have run: {shlex.join(argv)}."
            )
        failure = self._run_tool(argv, f"remove {name}")
        if failure:
            return failure
        self._remember(identifier, None)
        return None

    def _installed(self, identifier: str) -> bool:
        query = self.which("dpkg-query")
        if query is None:
            return identifier in self.apps
        status, output = self.run([query, "-W", "-f", "${db:Status-Abbrev}", identifier])
        return status == 0 and output.strip().startswith("ii")

    # -- helpers --------------------------------------------------------------------------------

    def _run_tool(self, argv: list[str], what: str) -> str:
        executable = self.which(argv[0])
        if executable is None:
            return f"Cannot {what}: {argv[0]} is not installed on this host."
        status, output = self.run_long([executable, *argv[1:]])
        if status != 0:
            return f"{argv[0]} could not {what}: {output}."
        return ""

    def _load(self) -> tuple[bool, dict[str, dict]]:
        if self.apps_path is None:
            return False, {}
        try:
            data = json.loads(self.apps_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return False, {}
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring the unreadable record of installed apps %s: %s", self.apps_path, exc)
            return True, {}
        apps = data.get("apps") if isinstance(data, dict) else None
        if not isinstance(apps, dict):
            return True, {}
        return True, {key: value for key, value in apps.items() if isinstance(value, dict) and _PACKAGE_NAME.match(key)}

    def _remember(self, identifier: str, record: dict | None) -> None:
        if record is None:
            self.apps.pop(identifier, None)
        else:
            self.apps[identifier] = record
        self.reporting = True
        if self.apps_path is not None:
            self.apps_path.parent.mkdir(parents=True, exist_ok=True)
            self.write_record(self.apps_path, json.dumps({"apps": self.apps}, indent=2, sort_keys=True), 0o600)
