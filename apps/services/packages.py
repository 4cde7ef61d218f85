"""Line-of-business packages: what a file is, what it says about itself, and storing it.

``package_inspect`` reads an uploaded package with the standard library only, before anything is
stored: the format comes from the extension (which must suit the app's platform), and the
version and identifier are read where the format allows it:

* ``.ipa`` (iOS, iPadOS): ``Payload/<name>.app/Info.plist`` (zip + plistlib):
  ``CFBundleShortVersionString`` (else ``CFBundleVersion``), ``CFBundleIdentifier``,
  ``MinimumOSVersion``;
* ``.deb`` (Linux): the ``control`` file of ``control.tar[.gz|.xz|.bz2]`` inside the ``ar`` archive:
  ``Version``, ``Package`` (a ``control.tar.zst`` cannot be read with the standard library of
  Python 3.11: the person enters the version);
* ``.apk`` (Android): the binary ``AndroidManifest.xml``: ``package``, and ``android:versionName``
  when it is a literal (a resource reference cannot be resolved from the manifest: the person
  enters the version);
* ``.msi`` (Windows), ``.pkg`` (macOS): only the container is checked (compound file, xar); the
  person enters the version.

A file that is not what its extension says, or is damaged, raises ``PackageError`` with a sentence
that says what to do. ``package_store`` writes the file to storage and computes its SHA-256 while
streaming it there.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import plistlib
import re
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from django.core.files import File
from django.core.files.storage import Storage
from django.utils.text import get_valid_filename

from devices.choices import Platform

from ..choices import PackageFormat

PLATFORM_FORMATS: dict[str, str] = {
    Platform.IOS: PackageFormat.IPA,
    Platform.IPADOS: PackageFormat.IPA,
    Platform.ANDROID: PackageFormat.APK,
    Platform.WINDOWS: PackageFormat.MSI,
    Platform.MACOS: PackageFormat.PKG,
    Platform.LINUX: PackageFormat.DEB,
}
# Metadata files are small; anything larger is not what it claims to be (or a zip bomb).
MAX_METADATA_BYTES = 4 * 1024 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
XAR_MAGIC = b"xar!"
AR_MAGIC = b"!<arch>\n"


class PackageError(ValueError):
    """The file cannot be used; the message is a sentence for the person who uploaded it."""


@dataclass(frozen=True)
class PackageInfo:
    format: str
    version: str = ""
    identifier: str = ""
    min_os_version: str = ""
    # Why the version could not be read from a valid package (the person enters it).
    unreadable: str = ""


def package_format(platform: str, filename: str) -> str:
    """The package format of ``filename``, which must be the one ``platform`` installs."""
    expected = PLATFORM_FORMATS.get(platform)
    suffix = PurePosixPath(filename or "").suffix.lower().lstrip(".")
    label = Platform(platform).label if platform in Platform.values else platform
    if expected is None:
        raise PackageError(f"{label} apps cannot be uploaded as packages; add a store app or a web link.")
    if suffix != expected:
        got = f"a .{suffix} file" if suffix else "a file without an extension"
        raise PackageError(
            f"A {label} app is installed from a .{expected} package; this is {got}. Upload the .{expected}."
        )
    return expected


def package_inspect(file: IO[bytes], package_format: str) -> PackageInfo:
    """Check ``file`` (seekable, read from the start) is a ``package_format`` package; read what it says."""
    readers = {
        PackageFormat.IPA: _read_ipa,
        PackageFormat.DEB: _read_deb,
        PackageFormat.APK: _read_apk,
        PackageFormat.MSI: _read_msi,
        PackageFormat.PKG: _read_pkg,
    }
    file.seek(0)
    try:
        return readers[package_format](file)
    finally:
        file.seek(0)


# -- .ipa --------------------------------------------------------------------------------------------


def _zip(file: IO[bytes], what: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise PackageError(f"This file is not a valid {what} (it is not a readable ZIP archive). {_AGAIN}") from exc


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> bytes:
    if info.file_size > MAX_METADATA_BYTES:
        raise PackageError(f"The {info.filename} of this {what} is implausibly large. {_AGAIN}")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError) as exc:
        raise PackageError(f"This {what} is damaged: {info.filename} cannot be read. {_AGAIN}") from exc


_AGAIN = "Export or download the package again and upload that file."
_IPA_PLIST = re.compile(r"Payload/[^/]+\.app/Info\.plist")


def _read_ipa(file: IO[bytes]) -> PackageInfo:
    what = ".ipa package"
    archive = _zip(file, what)
    plists = [info for info in archive.infolist() if _IPA_PLIST.fullmatch(info.filename)]
    if not plists:
        raise PackageError(f"This .ipa has no Payload/<App>.app/Info.plist, so it is not an iOS app. {_AGAIN}")
    try:
        plist = plistlib.loads(_member(archive, plists[0], what))
    except (plistlib.InvalidFileException, ValueError, TypeError, OverflowError) as exc:
        raise PackageError(f"The Info.plist of this .ipa is damaged. {_AGAIN}") from exc
    if not isinstance(plist, dict):
        raise PackageError(f"The Info.plist of this .ipa is not a dictionary. {_AGAIN}")
    version = plist.get("CFBundleShortVersionString") or plist.get("CFBundleVersion") or ""
    identifier = plist.get("CFBundleIdentifier") or ""
    if not isinstance(version, str) or not isinstance(identifier, str) or not identifier:
        raise PackageError(f"The Info.plist of this .ipa has no bundle identifier or version. {_AGAIN}")
    min_os = plist.get("MinimumOSVersion")
    return PackageInfo(
        format=PackageFormat.IPA,
        version=version.strip(),
        identifier=identifier.strip(),
        min_os_version=min_os.strip() if isinstance(min_os, str) else "",
    )


# -- .deb --------------------------------------------------------------------------------------------


def _ar_members(file: IO[bytes]) -> dict[str, tuple[int, int]]:
    """``{name: (offset, size)}`` of a Unix ``ar`` archive (the container of a .deb)."""
    if file.read(len(AR_MAGIC)) != AR_MAGIC:
        raise PackageError(f"This file is not a Debian package (no ar archive header). {_AGAIN}")
    end = file.seek(0, io.SEEK_END)
    position = len(AR_MAGIC)
    members: dict[str, tuple[int, int]] = {}
    while position < end:
        file.seek(position)
        header = file.read(60)
        if len(header) < 60 or header[58:60] != b"`\n":
            raise PackageError(f"This Debian package is damaged (a broken ar member header). {_AGAIN}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise PackageError(f"This Debian package is damaged (a broken ar member size). {_AGAIN}") from exc
        start = position + 60
        if size < 0 or start + size > end:
            raise PackageError(f"This Debian package is truncated: {name} is cut short. {_AGAIN}")
        members.setdefault(name, (start, size))
        position = start + size + (size % 2)
    return members


def _read_deb(file: IO[bytes]) -> PackageInfo:
    members = _ar_members(file)
    if "debian-binary" not in members:
        raise PackageError(f"This file is not a Debian package (it has no debian-binary member). {_AGAIN}")
    offset, size = members["debian-binary"]
    file.seek(offset)
    if not file.read(min(size, 16)).startswith(b"2."):
        raise PackageError("This Debian package has an unsupported format version; build it as format 2.0.")
    if not any(name.startswith("data.tar") for name in members):
        raise PackageError(f"This Debian package has no data.tar member, so it installs nothing. {_AGAIN}")
    controls = [name for name in members if name == "control.tar" or name.startswith("control.tar.")]
    if not controls:
        raise PackageError(f"This Debian package has no control.tar member. {_AGAIN}")
    name = controls[0]
    if name == "control.tar.zst":
        return PackageInfo(
            format=PackageFormat.DEB,
            unreadable="its control data is compressed with zstd, which the portal cannot read",
        )
    offset, size = members[name]
    if size > MAX_METADATA_BYTES:
        raise PackageError(f"The control data of this Debian package is implausibly large. {_AGAIN}")
    file.seek(offset)
    data = file.read(size)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            member = next((m for m in tar.getmembers() if m.name in ("./control", "control") and m.isfile()), None)
            if member is None or member.size > MAX_METADATA_BYTES:
                raise PackageError(f"This Debian package has no control file. {_AGAIN}")
            extracted = tar.extractfile(member)
            control = extracted.read().decode("utf-8", "replace") if extracted else ""
    except (tarfile.TarError, lzma.LZMAError, EOFError, OSError, ValueError) as exc:
        raise PackageError(f"The control data of this Debian package is damaged. {_AGAIN}") from exc
    fields = _control_fields(control)
    if not fields.get("package") or not fields.get("version"):
        raise PackageError(f"The control file of this Debian package has no Package or Version. {_AGAIN}")
    return PackageInfo(format=PackageFormat.DEB, version=fields["version"], identifier=fields["package"])


def _control_fields(text: str) -> dict[str, str]:
    """The fields of a Debian control paragraph (continuation lines ignored), keys lower-cased."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t" or ":" not in line:
            continue
        key, value = line.split(":", 1)
        fields.setdefault(key.strip().lower(), value.strip())
    return fields


# -- .apk --------------------------------------------------------------------------------------------

# Android's binary XML (AXML): chunk types and the framework ids of the manifest's attributes.
_RES_STRING_POOL, _RES_XML, _RES_XML_START_ELEMENT, _RES_XML_RESOURCE_MAP = 0x0001, 0x0003, 0x0102, 0x0180
_UTF8_FLAG = 0x100
_TYPE_STRING, _TYPE_INT_DEC, _TYPE_INT_HEX = 0x03, 0x10, 0x11
_ATTR_VERSION_CODE, _ATTR_VERSION_NAME = 0x0101021B, 0x0101021C
_NO_ENTRY = 0xFFFFFFFF


class _AxmlError(ValueError):
    pass


def _read_apk(file: IO[bytes]) -> PackageInfo:
    what = ".apk package"
    archive = _zip(file, what)
    try:
        info = archive.getinfo("AndroidManifest.xml")
    except KeyError as exc:
        raise PackageError(f"This .apk has no AndroidManifest.xml, so it is not an Android app. {_AGAIN}") from exc
    data = _member(archive, info, what)
    try:
        attributes = _axml_manifest_attributes(data)
    except (_AxmlError, struct.error, UnicodeDecodeError, IndexError):
        return PackageInfo(format=PackageFormat.APK, unreadable="its manifest could not be read")
    identifier = attributes.get("package")
    if not isinstance(identifier, str) or not identifier:
        raise PackageError(f"The manifest of this .apk has no package name. {_AGAIN}")
    version = attributes.get("versionName")
    if not isinstance(version, str) or not version.strip():
        # Devices report the version name; the version code is another number, so it is no substitute.
        return PackageInfo(
            format=PackageFormat.APK,
            identifier=identifier,
            unreadable="its manifest gives the version name as a resource reference",
        )
    return PackageInfo(format=PackageFormat.APK, version=version.strip(), identifier=identifier)


def _axml_strings(data: bytes, start: int) -> list[str]:
    _type, header_size, size, count, _styles, flags, strings_start, _ = struct.unpack_from("<HHIIIIII", data, start)
    if start + size > len(data) or count > 200_000:
        raise _AxmlError("string pool out of bounds")
    offsets = struct.unpack_from(f"<{count}I", data, start + header_size)
    base = start + strings_start
    strings = []
    for offset in offsets:
        at = base + offset
        if flags & _UTF8_FLAG:
            at += 2 if data[at] & 0x80 else 1  # length in characters
            length = data[at]
            if length & 0x80:
                length = ((length & 0x7F) << 8) | data[at + 1]
                at += 1
            at += 1
            strings.append(data[at : at + length].decode("utf-8"))
        else:
            (length,) = struct.unpack_from("<H", data, at)
            at += 2
            if length & 0x8000:
                (low,) = struct.unpack_from("<H", data, at)
                length = ((length & 0x7FFF) << 16) | low
                at += 2
            strings.append(data[at : at + 2 * length].decode("utf-16-le"))
    return strings


def _axml_manifest_attributes(data: bytes) -> dict[str, object]:
    """The attributes of the ``<manifest>`` element: ``package``, ``versionName``, ``versionCode``."""
    kind, header_size, total = struct.unpack_from("<HHI", data, 0)
    if kind != _RES_XML or total > len(data):
        raise _AxmlError("not binary XML")
    strings: list[str] = []
    resource_ids: list[int] = []
    at = header_size
    while at + 8 <= len(data):
        kind, header_size, size = struct.unpack_from("<HHI", data, at)
        if size < 8 or at + size > len(data):
            raise _AxmlError("chunk out of bounds")
        if kind == _RES_STRING_POOL:
            strings = _axml_strings(data, at)
        elif kind == _RES_XML_RESOURCE_MAP:
            resource_ids = list(struct.unpack_from(f"<{(size - header_size) // 4}I", data, at + header_size))
        elif kind == _RES_XML_START_ELEMENT:
            ext = at + header_size
            _ns, name, attr_start, attr_size, attr_count = struct.unpack_from("<IIHHH", data, ext)
            if strings[name] != "manifest":
                raise _AxmlError("the first element is not <manifest>")
            found: dict[str, object] = {}
            for index in range(attr_count):
                _ans, aname, raw, _vsize, _res0, vtype, value = struct.unpack_from(
                    "<IIIHBBI", data, ext + attr_start + index * attr_size
                )
                label = strings[aname] if aname < len(strings) else ""
                resource = resource_ids[aname] if aname < len(resource_ids) else None
                if resource == _ATTR_VERSION_CODE:
                    label = "versionCode"
                elif resource == _ATTR_VERSION_NAME:
                    label = "versionName"
                if vtype == _TYPE_STRING or (raw != _NO_ENTRY and raw < len(strings)):
                    found[label] = strings[raw if raw != _NO_ENTRY else value]
                elif vtype in (_TYPE_INT_DEC, _TYPE_INT_HEX):
                    found[label] = value
                else:
                    found[label] = None  # a reference to a resource: not resolvable from the manifest
            return found
        at += size
    raise _AxmlError("no <manifest> element")


# -- .msi, .pkg ----------------------------------------------------------------------------------------


def _read_msi(file: IO[bytes]) -> PackageInfo:
    if file.read(len(OLE_MAGIC)) != OLE_MAGIC:
        raise PackageError(f"This file is not a Windows Installer package (.msi). {_AGAIN}")
    return PackageInfo(format=PackageFormat.MSI, unreadable="the portal does not read .msi packages")


def _read_pkg(file: IO[bytes]) -> PackageInfo:
    if file.read(len(XAR_MAGIC)) != XAR_MAGIC:
        raise PackageError(f"This file is not a flat macOS installer package (.pkg). {_AGAIN}")
    return PackageInfo(format=PackageFormat.PKG, unreadable="the portal does not read .pkg packages")


# -- storing -----------------------------------------------------------------------------------------


class _HashingFile(File):
    """A file whose reads feed a SHA-256 and a byte count (a rewind to the start resets both)."""

    def __init__(self, file, name: str):
        super().__init__(file, name)
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, *args):
        data = self.file.read(*args)
        self.sha256.update(data)
        self.bytes += len(data)
        return data

    def seek(self, offset, whence=io.SEEK_SET):
        position = self.file.seek(offset, whence)
        if position == 0:
            self.sha256, self.bytes = hashlib.sha256(), 0
        return position

    def chunks(self, chunk_size=None):
        self.seek(0)
        while data := self.read(chunk_size or self.DEFAULT_CHUNK_SIZE):
            yield data

    def multiple_chunks(self, chunk_size=None):
        return True


@dataclass(frozen=True)
class StoredPackage:
    name: str
    sha256: str
    size: int


def package_store(storage: Storage, upload, name: str) -> StoredPackage:
    """Write ``upload`` to ``storage`` as ``name``; its SHA-256 and size are computed on the way."""
    upload.seek(0)
    hashing = _HashingFile(upload.file if hasattr(upload, "file") else upload, get_valid_filename(name))
    stored = storage.save(name, hashing)
    return StoredPackage(name=stored, sha256=hashing.sha256.hexdigest(), size=hashing.bytes)
