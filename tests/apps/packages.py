"""Real, small line-of-business packages built in the tests: .ipa, .deb, .apk (binary manifest), .msi, .pkg."""

from __future__ import annotations

import io
import plistlib
import struct
import tarfile
import zipfile

from django.core.files.uploadedfile import SimpleUploadedFile


def ipa(identifier="com.example.field", version="2.4.1", min_os="16.0", *, binary_plist=True) -> bytes:
    info = {"CFBundleIdentifier": identifier, "CFBundleShortVersionString": version, "CFBundleVersion": "241"}
    if min_os:
        info["MinimumOSVersion"] = min_os
    plist = plistlib.dumps(info, fmt=plistlib.FMT_BINARY if binary_plist else plistlib.FMT_XML)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Payload/Field.app/Info.plist", plist)
        archive.writestr("Payload/Field.app/Field", b"\xcf\xfa\xed\xfe" + b"\0" * 4096)
    return buffer.getvalue()


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out.write(header + data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


def deb(package="field-agent", version="1:2.4.1-1", compression="gz") -> bytes:
    control = f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nDescription: Field agent\n mores\n"
    suffix = "" if compression == "" else f".{compression}"
    mode = "w" if compression == "" else f"w:{compression}"
    return ar(
        [
            ("debian-binary", b"2.0\n"),
            (f"control.tar{suffix}", _tar({"./control": control.encode()}, mode)),
            ("data.tar.xz", _tar({"./usr/bin/field-agent": b"#!/bin/sh\necho hi\n"}, "w:xz")),
        ]
    )


# -- Android's binary XML ----------------------------------------------------------------------------

NO_ENTRY = 0xFFFFFFFF


def _string_pool(strings: list[str]) -> bytes:
    offsets, data = [], b""
    for text in strings:
        offsets.append(len(data))
        data += struct.pack("<H", len(text)) + text.encode("utf-16-le") + b"\0\0"
    data += b"\0" * (-len(data) % 4)
    header_size = 28
    start = header_size + 4 * len(strings)
    head = struct.pack("<HHIIIIII", 0x0001, header_size, start + len(data), len(strings), 0, 0, start, 0)
    return head + struct.pack(f"<{len(strings)}I", *offsets) + data


def axml_manifest(package: str, version_name: str | None) -> bytes:
    """A binary AndroidManifest.xml: ``<manifest package versionCode versionName>`` (None: a resource reference)."""
    strings = [
        "versionCode",
        "versionName",
        "android",
        "http://schemas.android.com/apk/res/android",
        "package",
        "manifest",
        package,
        version_name or "",
    ]
    pool = _string_pool(strings)
    resource_map = struct.pack("<HHI", 0x0180, 8, 16) + struct.pack("<II", 0x0101021B, 0x0101021C)

    def attribute(ns, name, raw, kind, value):
        return struct.pack("<IIIHBBI", ns, name, raw, 8, 0, kind, value)

    # versionName: a string (index 7), or a reference to a string resource (type 0x01).
    name_attr = attribute(3, 1, 7, 0x03, 7) if version_name is not None else attribute(3, 1, NO_ENTRY, 0x01, 0x7F0E0001)
    attributes = attribute(3, 0, NO_ENTRY, 0x10, 42) + name_attr + attribute(NO_ENTRY, 4, 6, 0x03, 6)
    ext = struct.pack("<IIHHHHHH", NO_ENTRY, 5, 20, 20, 3, 0, 0, 0)
    body = ext + attributes
    element = struct.pack("<HHIII", 0x0102, 16, 16 + len(body), 1, NO_ENTRY) + body
    chunks = pool + resource_map + element
    return struct.pack("<HHI", 0x0003, 8, 8 + len(chunks)) + chunks


def apk(package="com.example.scanner", version_name: str | None = "3.2.0") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AndroidManifest.xml", axml_manifest(package, version_name))
        archive.writestr("classes.dex", b"dex\n035\0" + b"\0" * 512)
    return buffer.getvalue()


def msi() -> bytes:
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024


def pkg() -> bytes:
    return b"xar!" + b"\0" * 1024


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")
