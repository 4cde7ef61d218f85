"""Check Windows SyncML bodies against Microsoft's CSP documentation.

Windows publishes no machine-readable DDF we can ship, so the documented facts are written down here,
each from learn.microsoft.com/windows/client-management/mdm/ (Description framework properties and
Allowed values): Policy CSP DeviceLock, Camera, Experience, ApplicationManagement,
ADMX_RemovableStorage and Accounts; the BitLocker, WiFi, VPNv2, ActiveSync and
RootCATrustedCertificates CSPs. ``windows_problems(syncml)`` returns one sentence per problem:

* a LocURI that is not a documented node, a ``Meta/Format`` other than the documented one, a value
  outside the documented range or list, a verb other than the documented one (WiFi: "you can't use
  the Replace command unless the node already exists"; DeviceLock: "always use the Replace command"),
* a DeviceLock or VPNv2 command outside an ``Atomic`` ("must be wrapped in an Atomic command"),
* DeviceLock policies without ``DevicePasswordEnabled`` 0, on which they all depend, or beside
  ``DevicePasswordEnabled`` 1 ("it should be the only policy set from the DeviceLock group"),
* a repeated ``CmdID``.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

SYNCML = "{SYNCML:SYNCML1.2}"
METINF = "{syncml:metinf}"


def _in(*values):
    return lambda data: data in {str(v) for v in values}


def _range(low, high):
    return lambda data: data.lstrip("-").isdigit() and low <= int(data) <= high


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)  # noqa: S314 -- the renderers' own output, parsed to check it


def _xml(root_tag):
    return lambda data: parse(data).tag == root_tag


def _b64(data):
    return bool(re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", data)) and base64.b64decode(data, validate=True)[0] == 0x30


DL, POL = r"\./Device/Vendor/MSFT/Policy/Config/DeviceLock/", r"\./Device/Vendor/MSFT/Policy/Config/"
ENABLED, DISABLED = "<enabled/>", "<disabled/>"  # ADMX-backed policies take chr data
WLAN_PROFILE = "{http://www.microsoft.com/networking/WLAN/profile/v1}WLANProfile"
EAP_HOST_CONFIG = "{http://www.microsoft.com/provisioning/EapHostConfig}EapHostConfig"
VPN, EAS = r"\./User/Vendor/MSFT/VPNv2/[^/]+/", r"\./User/Vendor/MSFT/ActiveSync/Accounts/%7B[0-9A-F-]{36}%7D/"
WINDOWS_NODES = [  # (LocURI pattern, format, value check, verb)
    (DL + "DevicePasswordEnabled", "int", _in(0, 1), "Replace"),
    (DL + "AlphanumericDevicePasswordRequired", "int", _in(0, 1, 2), "Replace"),
    (DL + "MinDevicePasswordComplexCharacters", "int", _in(1, 2, 3), "Replace"),  # 4: not supported in desktop
    (DL + "MinDevicePasswordLength", "int", _range(4, 16), "Replace"),
    (DL + "DevicePasswordExpiration", "int", _range(0, 730), "Replace"),
    (DL + "DevicePasswordHistory", "int", _range(0, 50), "Replace"),
    (DL + "MaxDevicePasswordFailedAttempts", "int", _range(0, 999), "Replace"),
    (DL + "MaxInactivityTimeDeviceLock", "int", _range(0, 999), "Replace"),
    (r"\./Device/Vendor/MSFT/BitLocker/RequireDeviceEncryption", "int", _in(0, 1), "Replace"),
    (POL + "Camera/AllowCamera", "int", _in(0, 1), "Replace"),
    (POL + "Experience/AllowScreenCapture", "int", _in(0, 1), "Replace"),
    (POL + "ApplicationManagement/RequirePrivateStoreOnly", "int", _in(0, 1), "Replace"),
    (POL + "ADMX_RemovableStorage/RemovableStorageClasses_DenyAll_Access_2", "chr", _in(ENABLED, DISABLED), "Replace"),
    (POL + "Accounts/AllowAddingNonMicrosoftAccountsManually", "int", _in(0, 1), "Replace"),
    (POL + "Accounts/AllowMicrosoftAccountConnection", "int", _in(0, 1), "Replace"),
    (r"\./Device/Vendor/MSFT/WiFi/Profile/[^/]+/WlanXml", "chr", _xml(WLAN_PROFILE), "Add"),
    (VPN + "NativeProfile/Servers", "chr", lambda data: bool(data), "Add"),
    (VPN + "NativeProfile/NativeProtocolType", "chr", _in("PPTP", "L2TP", "IKEv2", "Automatic"), "Add"),
    (VPN + "NativeProfile/Authentication/UserMethod", "chr", _in("Eap", "MSChapv2"), "Add"),
    (VPN + "NativeProfile/Authentication/Eap/Configuration", "chr", _xml(EAP_HOST_CONFIG), "Add"),
    (VPN + "AlwaysOn", "bool", _in("true", "false"), "Add"),
    (EAS + "(EmailAddress|AccountName|ServerName|UserName)", "chr", lambda data: bool(data), "Add"),
    (EAS + "AccountType", "chr", _in("Exchange"), "Add"),
    (EAS + "Options/UseSSL", "chr", _in(0, 1), "Add"),
    (r"\./Device/Vendor/MSFT/RootCATrustedCertificates/Root/[0-9A-F]{40}/EncodedCertificate", "b64", _b64, "Add"),
]  # fmt: skip
ATOMIC_ONLY = (DL, VPN)  # "must be wrapped in an Atomic command" (DeviceLock), "in an Atomic block" (VPNv2)


def windows_items(content: str) -> list[dict]:
    """Every command item: verb, whether inside Atomic, LocURI, format, data."""
    root = parse(content)
    assert root.tag == SYNCML + "SyncML"
    items = []
    for command in root.find(SYNCML + "SyncBody"):
        nested = list(command.findall("./*")) if command.tag == SYNCML + "Atomic" else [command]
        for cmd in nested:
            for item in cmd.findall(SYNCML + "Item"):
                items.append({
                    "verb": cmd.tag.removeprefix(SYNCML),
                    "atomic": command.tag == SYNCML + "Atomic",
                    "uri": item.findtext(f"{SYNCML}Target/{SYNCML}LocURI"),
                    "format": item.findtext(f"{SYNCML}Meta/{METINF}Format"),
                    "data": item.findtext(SYNCML + "Data") or "",
                })  # fmt: skip
    return items


def windows_problems(content: str) -> list[str]:
    """What in a SyncML body breaks the documented node paths, formats, values and command rules."""
    problems, items = [], windows_items(content)
    ids = [e.text for e in parse(content).iter(SYNCML + "CmdID")]
    if len(ids) != len(set(ids)):
        problems.append(f"CmdIDs repeat: {ids}")
    for item in items:
        node = next((n for n in WINDOWS_NODES if re.fullmatch(n[0], item["uri"] or "")), None)
        if node is None:
            problems.append(f"{item['uri']}: not a documented node")
            continue
        _, fmt, check, verb = node
        if item["format"] != fmt:
            problems.append(f"{item['uri']}: format {item['format']!r}, documented {fmt!r}")
        elif not check(item["data"]):
            problems.append(f"{item['uri']}: {item['data'][:60]!r} is not an allowed value")
        if item["verb"] != verb:
            problems.append(f"{item['uri']}: {item['verb']}, documented {verb}")
        if any(re.match(prefix, item["uri"]) for prefix in ATOMIC_ONLY) and not item["atomic"]:
            problems.append(f"{item['uri']}: must be inside an Atomic command")
    device_lock = {i["uri"].rsplit("/", 1)[1]: i["data"] for i in items if re.match(DL, i["uri"])}
    if (
        device_lock
        and device_lock.get("DevicePasswordEnabled") != "0"
        and set(device_lock) != {"DevicePasswordEnabled"}
    ):
        problems.append("DeviceLock policies depend on DevicePasswordEnabled 0; with 1 it must be the only one")
    return problems
