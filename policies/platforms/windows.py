"""Windows OMA-DM SyncML bodies from a platform-neutral ``ProfileSpec``.

Windows has no machine-readable specification we can ship; the node paths, formats and allowed values
follow Microsoft's CSP documentation (learn.microsoft.com/windows/client-management/mdm/), and
``tests/policies/test_platform_payloads.py`` checks every rendered node against a table taken from it:

* passcode: Policy CSP DeviceLock (``DevicePasswordEnabled`` 0 = enabled, 1 = disabled;
  ``AlphanumericDevicePasswordRequired`` 0 alphanumeric / 1 numeric; ``MinDevicePasswordComplexCharacters``
  1-3 on desktops, 4 "not supported in desktop"; ``MinDevicePasswordLength`` 4-16;
  ``DevicePasswordExpiration`` 0-730; ``DevicePasswordHistory`` 0-50; ``MaxDevicePasswordFailedAttempts``
  0-999, BitLocker recovery on desktops; ``MaxInactivityTimeDeviceLock`` 0-999 minutes). Every one "must be
  wrapped in an Atomic command" and use Replace; all but ``DevicePasswordEnabled`` depend on it being 0,
  and when it is 1 it "should be the only policy set from the DeviceLock group". Windows desktops cannot
  require a symbol, so "complex" asks for digits, lower and upper case letters (3).
* encryption: BitLocker CSP ``RequireDeviceEncryption``. Recovery keys escrow only to Active Directory or
  Microsoft Entra ID: there is no node that sends them to another MDM.
* restrictions: ``Camera/AllowCamera``, ``Experience/AllowScreenCapture`` (current docs list it for
  Pro/Enterprise/Education; older ones said Windows 10 Mobile only),
  ``ApplicationManagement/RequirePrivateStoreOnly`` (``AllowStore`` is deprecated; Enterprise and
  Education only), ``ADMX_RemovableStorage/RemovableStorageClasses_DenyAll_Access_2`` (ADMX-backed,
  ``<enabled/>``; ``Connectivity/AllowUSBConnection`` works on HoloLens only),
  ``Accounts/AllowAddingNonMicrosoftAccountsManually`` and ``Accounts/AllowMicrosoftAccountConnection``.
* wifi: WiFi CSP ``Profile/{SSID}/WlanXml`` (Add: Replace fails until the node exists), a WLAN_profile
  document; the SSID in the URI is %-escaped (RFC 2396) and matches the profile's name.
* vpn: VPNv2 CSP native profile under ``./User`` (a user tunnel: the user signs in), wrapped in Atomic;
  IKEv2 signs in with EAP-MSCHAPv2 (``UserMethod`` MSChapv2 "is not supported for IKEv2"), L2TP with
  MSChapv2. There is no node for the server's identity.
* email: ActiveSync CSP under ``./User`` for Exchange (it needs the email address: it cannot ask for
  it). IMAP (EMAIL2 CSP) needs each user's logon name and reply address and only configures the retired
  Windows Mail app: not applicable.
* certificate: RootCATrustedCertificates CSP ``Root/{SHA-1 thumbprint}/EncodedCertificate`` (b64 DER).

All user text is escaped by ``xml.etree.ElementTree``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from policies.choices import ProfileKind
from policies.profile_settings import pem_der

from . import NotApplicable, ProfileSpec, Rendered

FORMAT = "syncml"
SYNCML_NS, METINF_NS, WLAN_NS = (
    "SYNCML:SYNCML1.2",
    "syncml:metinf",
    "http://www.microsoft.com/networking/WLAN/profile/v1",
)
ACCOUNT_NAMESPACE = uuid.UUID("7a3e2c44-1d55-4e0b-8c8e-3c1d2b9f6e03")

POLICY = "./Device/Vendor/MSFT/Policy/Config/"
DEVICE_LOCK = POLICY + "DeviceLock/"
BITLOCKER = "./Device/Vendor/MSFT/BitLocker/"
WIFI = "./Device/Vendor/MSFT/WiFi/Profile/"
VPN = "./User/Vendor/MSFT/VPNv2/"
ACTIVESYNC = "./User/Vendor/MSFT/ActiveSync/Accounts/"
ROOT_CA = "./Device/Vendor/MSFT/RootCATrustedCertificates/Root/"

ALPHANUMERIC = {"numeric": 1, "alphanumeric": 0, "complex": 0}
COMPLEX_CHARACTERS = {"alphanumeric": 2, "complex": 3}
WLAN_AUTH = {"none": ("open", "none"), "wpa2": ("WPA2PSK", "AES"), "wpa3": ("WPA3SAE", "AES")}
EAP_MSCHAPV2 = (
    '<EapHostConfig xmlns="http://www.microsoft.com/provisioning/EapHostConfig"><EapMethod>'
    '<Type xmlns="http://www.microsoft.com/provisioning/EapCommon">26</Type>'
    '<VendorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorId>'
    '<VendorType xmlns="http://www.microsoft.com/provisioning/EapCommon">0</VendorType>'
    '<AuthorId xmlns="http://www.microsoft.com/provisioning/EapCommon">0</AuthorId></EapMethod>'
    '<Config xmlns="http://www.microsoft.com/provisioning/EapHostConfig">'
    '<Eap xmlns="http://www.microsoft.com/provisioning/BaseEapConnectionPropertiesV1"><Type>26</Type>'
    '<EapType xmlns="http://www.microsoft.com/provisioning/MsChapV2ConnectionPropertiesV1">'
    "<UseWinLogonCredentials>false</UseWinLogonCredentials></EapType></Eap></Config></EapHostConfig>"
)

Node = tuple[str, str, str, Any]  # verb, LocURI, format, value


class _SyncML:
    """The commands of one SyncML body, and what each neutral setting became."""

    def __init__(self, spec: ProfileSpec):
        self.spec = spec
        self.settings = spec.settings
        self.root = ET.Element("SyncML", xmlns=SYNCML_NS)
        self.body = ET.SubElement(self.root, "SyncBody")
        self.cmd_id = 0
        self.applied: list[str] = []
        self.not_applicable: list[NotApplicable] = []

    def given(self, name: str) -> bool:
        return name in self.settings or name in self.spec.secrets

    def apply(self, *names: str) -> None:
        self.applied.extend(name for name in names if self.given(name) and name not in self.applied)

    def refuse(self, name: str, reason: str) -> None:
        if self.given(name):
            self.not_applicable.append(NotApplicable(name, reason))

    def _next_id(self, parent: ET.Element) -> None:
        self.cmd_id += 1
        ET.SubElement(parent, "CmdID").text = str(self.cmd_id)

    def command(self, node: Node, parent: ET.Element | None = None) -> None:
        verb, uri, fmt, value = node
        command = ET.SubElement(self.body if parent is None else parent, verb)
        self._next_id(command)
        item = ET.SubElement(command, "Item")
        ET.SubElement(ET.SubElement(item, "Target"), "LocURI").text = uri
        ET.SubElement(ET.SubElement(item, "Meta"), "Format", xmlns=METINF_NS).text = fmt
        ET.SubElement(item, "Data").text = _data(fmt, value)

    def atomic(self, nodes: list[Node]) -> None:
        if nodes:
            atomic = ET.SubElement(self.body, "Atomic")
            self._next_id(atomic)
            for node in nodes:
                self.command(node, atomic)

    def xml(self) -> str:
        ET.SubElement(self.body, "Final")
        return ET.tostring(self.root, encoding="unicode")


def _data(fmt: str, value: Any) -> str:
    if fmt == "bool":
        return "true" if value else "false"
    if fmt == "int":
        return str(int(value))
    return str(value)


def _passcode(m: _SyncML) -> None:
    s = m.settings
    rules = ("min_length", "complexity", "max_age_days", "history", "max_failed_attempts", "auto_lock_minutes")
    if s.get("require_passcode") is False:
        m.atomic([("Replace", DEVICE_LOCK + "DevicePasswordEnabled", "int", 1)])
        m.apply("require_passcode")
        for name in rules:
            m.refuse(
                name,
                "The passcode is not required, and Windows ignores the other DeviceLock policies when "
                "DevicePasswordEnabled is 1 (it must then be the only one set).",
            )
        return
    if not any(name in s for name in ("require_passcode", *rules)):
        return
    nodes: list[Node] = [("Replace", DEVICE_LOCK + "DevicePasswordEnabled", "int", 0)]
    complexity = s.get("complexity")
    if complexity:
        nodes.append(("Replace", DEVICE_LOCK + "AlphanumericDevicePasswordRequired", "int", ALPHANUMERIC[complexity]))
        if complexity in COMPLEX_CHARACTERS:
            nodes.append(
                ("Replace", DEVICE_LOCK + "MinDevicePasswordComplexCharacters", "int", COMPLEX_CHARACTERS[complexity])
            )
    for name, node in (
        ("min_length", "MinDevicePasswordLength"),
        ("max_age_days", "DevicePasswordExpiration"),
        ("history", "DevicePasswordHistory"),
        ("max_failed_attempts", "MaxDevicePasswordFailedAttempts"),
        ("auto_lock_minutes", "MaxInactivityTimeDeviceLock"),
    ):
        if name in s:
            nodes.append(("Replace", DEVICE_LOCK + node, "int", s[name]))
    m.atomic(nodes)
    m.apply("require_passcode", *rules)


def _encryption(m: _SyncML) -> None:
    s = m.settings
    if "require_encryption" in s:
        m.command(("Replace", BITLOCKER + "RequireDeviceEncryption", "int", 1 if s["require_encryption"] else 0))
        m.apply("require_encryption")
    m.refuse(
        "escrow_recovery_key",
        "The BitLocker CSP escrows recovery passwords only to Active Directory or Microsoft Entra ID; it has no node "
        "that sends them to another MDM.",
    )


def _restrictions(m: _SyncML) -> None:
    s = m.settings
    for name, node in (
        ("allow_camera", "Camera/AllowCamera"),
        ("allow_screen_capture", "Experience/AllowScreenCapture"),
    ):
        if name in s:
            m.command(("Replace", POLICY + node, "int", 1 if s[name] else 0))
    if "allow_app_store" in s:
        m.command(
            (
                "Replace",
                POLICY + "ApplicationManagement/RequirePrivateStoreOnly",
                "int",
                0 if s["allow_app_store"] else 1,
            )
        )
    if "allow_usb_file_transfer" in s:
        deny = "<disabled/>" if s["allow_usb_file_transfer"] else "<enabled/>"
        m.command(("Replace", POLICY + "ADMX_RemovableStorage/RemovableStorageClasses_DenyAll_Access_2", "chr", deny))
    if "allow_account_changes" in s:
        allowed = 1 if s["allow_account_changes"] else 0
        m.command(("Replace", POLICY + "Accounts/AllowAddingNonMicrosoftAccountsManually", "int", allowed))
        m.command(("Replace", POLICY + "Accounts/AllowMicrosoftAccountConnection", "int", allowed))
    m.apply(
        "allow_camera", "allow_screen_capture", "allow_app_store", "allow_usb_file_transfer", "allow_account_changes"
    )


def wlan_profile(ssid: str, security: str, password: str | None, auto_join: bool | None, hidden: bool | None) -> str:
    """A WLAN_profile document (Native Wifi schema v1) for one personal or open network."""
    root = ET.Element("WLANProfile", xmlns=WLAN_NS)
    ET.SubElement(root, "name").text = ssid
    ssid_config = ET.SubElement(root, "SSIDConfig")
    ssid_element = ET.SubElement(ssid_config, "SSID")
    ET.SubElement(ssid_element, "hex").text = ssid.encode("utf-8").hex().upper()
    ET.SubElement(ssid_element, "name").text = ssid
    if hidden is not None:
        ET.SubElement(ssid_config, "nonBroadcast").text = "true" if hidden else "false"
    ET.SubElement(root, "connectionType").text = "ESS"
    if auto_join is not None:
        ET.SubElement(root, "connectionMode").text = "auto" if auto_join else "manual"
    security_element = ET.SubElement(ET.SubElement(root, "MSM"), "security")
    auth_encryption = ET.SubElement(security_element, "authEncryption")
    authentication, encryption = WLAN_AUTH[security]
    ET.SubElement(auth_encryption, "authentication").text = authentication
    ET.SubElement(auth_encryption, "encryption").text = encryption
    ET.SubElement(auth_encryption, "useOneX").text = "false"
    if password and security != "none":
        shared_key = ET.SubElement(security_element, "sharedKey")  # keyType and protected before keyMaterial
        ET.SubElement(shared_key, "keyType").text = "passPhrase"
        ET.SubElement(shared_key, "protected").text = "false"
        ET.SubElement(shared_key, "keyMaterial").text = password
    return ET.tostring(root, encoding="unicode")


def _wifi(m: _SyncML) -> None:
    s = m.settings
    profile = wlan_profile(
        s["ssid"], s["security"], m.spec.secrets.get("password"), s.get("auto_join"), s.get("hidden")
    )
    m.command(("Add", WIFI + quote(s["ssid"], safe="") + "/WlanXml", "chr", profile))
    m.apply("ssid", "security", "password", "auto_join", "hidden")


def _vpn(m: _SyncML) -> None:
    s = m.settings
    # A profile name must not contain "/" and is URL-encoded in the LocURI.
    base = VPN + quote(s["connection_name"].replace("/", "-"), safe="") + "/"
    ikev2 = s["vpn_type"] == "ikev2"
    nodes: list[Node] = [
        ("Add", base + "NativeProfile/Servers", "chr", s["server"]),
        ("Add", base + "NativeProfile/NativeProtocolType", "chr", "IKEv2" if ikev2 else "L2TP"),
        ("Add", base + "NativeProfile/Authentication/UserMethod", "chr", "Eap" if ikev2 else "MSChapv2"),
    ]
    if ikev2:
        nodes.append(("Add", base + "NativeProfile/Authentication/Eap/Configuration", "chr", EAP_MSCHAPV2))
    if "on_demand" in s:
        nodes.append(("Add", base + "AlwaysOn", "bool", s["on_demand"]))
    m.atomic(nodes)
    m.apply("connection_name", "server", "vpn_type", "on_demand")
    m.refuse(
        "remote_identifier",
        "The VPNv2 native profile has no node for the server's identity: Windows checks the server certificate "
        "against the server name.",
    )


def _email(m: _SyncML) -> None:
    s = m.settings
    if s["account_type"] != "exchange":
        reason = (
            "Windows configures IMAP accounts only with the EMAIL2 CSP, which needs each user's logon name and reply "
            "address and only sets up the retired Windows Mail app: configure IMAP in the mail client."
        )
    elif "email_address" not in s:
        reason = (
            "The ActiveSync CSP needs the email address and user name (Windows cannot ask for them): set the address."
        )
    else:
        account = "%7B" + str(uuid.uuid5(ACCOUNT_NAMESPACE, str(m.spec.uuid))).upper() + "%7D"
        base = ACTIVESYNC + account + "/"
        for node, value in (
            ("EmailAddress", s["email_address"]),
            ("AccountType", "Exchange"),
            ("AccountName", s["account_name"]),
            ("ServerName", s["host"]),
            ("UserName", s["email_address"]),
            ("Options/UseSSL", "1" if s.get("use_ssl", True) else "0"),
        ):
            m.command(("Add", base + node, "chr", value))
        m.apply("account_type", "account_name", "host", "email_address", "use_ssl")
        return
    for name in s:
        m.refuse(name, reason)


def _certificate(m: _SyncML) -> None:
    der = pem_der(m.settings["certificate"])
    thumbprint = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 -- the CSP names the node by SHA-1
    m.command(("Add", ROOT_CA + thumbprint + "/EncodedCertificate", "b64", base64.b64encode(der).decode("ascii")))
    m.apply("certificate")
    m.refuse("certificate_name", "The RootCATrustedCertificates CSP names a certificate by its thumbprint only.")


KINDS: dict[str, Callable[[_SyncML], None]] = {
    ProfileKind.PASSCODE: _passcode,
    ProfileKind.ENCRYPTION: _encryption,
    ProfileKind.RESTRICTIONS: _restrictions,
    ProfileKind.WIFI: _wifi,
    ProfileKind.VPN: _vpn,
    ProfileKind.EMAIL: _email,
    ProfileKind.CERTIFICATE: _certificate,
}


def render(spec: ProfileSpec, platform: str) -> Rendered:
    try:
        build = KINDS[spec.kind]
    except KeyError:
        raise ValueError(f"Cannot render a {spec.kind!r} profile for Windows.") from None
    syncml = _SyncML(spec)
    build(syncml)
    return Rendered(
        platform=platform,
        format=FORMAT,
        content=syncml.xml(),
        not_applicable=syncml.not_applicable,
        applied=syncml.applied,
    )
