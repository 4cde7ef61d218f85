"""Every profile kind rendered for every platform, checked against the vendors' specifications.

Apple profiles against Apple's payload YAML (``tests/specs/apple.py``), Android policies against the
Android Management API discovery document (``tests/specs/android.py``), Windows SyncML against the
documented CSP nodes (``tests/specs/windows.py``, from Microsoft's CSP documentation), Linux agent
documents for their shape. Each oracle is also shown to reject broken input. Pure tests: no database.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import plistlib
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from policies.platforms import ProfileSpec, Rendered, render
from policies.platforms.apple import profile_dict
from policies.profile_settings import SETTINGS, pem_der, settings_clean
from tests.specs import android as android_spec
from tests.specs import apple as apple_spec
from tests.specs.windows import parse, windows_items, windows_problems

PLATFORMS = ("ios", "ipados", "macos", "android", "windows", "linux")
APPLE = ("ios", "ipados", "macos")
SECRET = "S3cr3t<&>'\"pass"


@pytest.fixture(scope="session")
def pem() -> str:
    """A real self-signed CA certificate, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Test Root CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def full_values(kind: str, pem: str) -> dict:
    """Every setting of ``kind`` configured (as a person would enter them)."""
    return {
        "passcode": {"require_passcode": True, "min_length": 8, "complexity": "complex", "max_age_days": 90,
                     "history": 5, "max_failed_attempts": 10, "auto_lock_minutes": 5},
        "encryption": {"require_encryption": True, "escrow_recovery_key": True},
        "restrictions": {"allow_camera": False, "allow_screen_capture": False, "allow_app_store": False,
                         "allow_usb_file_transfer": False, "allow_account_changes": False},
        "wifi": {"ssid": "Corp Wi-Fi", "security": "wpa2", "password": SECRET, "auto_join": True, "hidden": False},
        "vpn": {"connection_name": "Corp VPN", "server": "vpn.example.com", "vpn_type": "ikev2",
                "remote_identifier": "vpn.example.com", "on_demand": True},
        "email": {"account_type": "exchange", "account_name": "Work mail", "host": "mail.example.com",
                  "email_address": "someone@example.com", "use_ssl": True},
        "certificate": {"certificate_name": "Example Root", "certificate": pem},
    }[kind]  # fmt: skip


VARIANTS = {
    "passcode": {}, "passcode-numeric": {"complexity": "numeric"}, "passcode-off": {"require_passcode": False},
    "encryption": {}, "encryption-off": {"require_encryption": False, "escrow_recovery_key": False},
    "restrictions": {}, "restrictions-allow": {name: True for name in ("allow_camera", "allow_screen_capture",
        "allow_app_store", "allow_usb_file_transfer", "allow_account_changes")},
    "wifi": {}, "wifi-wpa3": {"security": "wpa3"}, "wifi-open": {"security": "none", "password": None},
    "vpn": {}, "vpn-l2tp": {"vpn_type": "l2tp"}, "email": {}, "email-imap": {"account_type": "imap"},
    "certificate": {},
}  # fmt: skip


def make_spec(kind: str, pem: str, name: str = "Corp profile", **overrides) -> ProfileSpec:
    values = {key: value for key, value in {**full_values(kind, pem), **overrides}.items() if value is not None}
    settings, secrets = settings_clean(kind, values)  # the same cleaning the admin form and API use
    return ProfileSpec(uuid="6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", name=name, kind=kind, version=3,
                       settings=settings, secrets=secrets, organisation="Example & Co <IT>")  # fmt: skip


@pytest.fixture(params=sorted(VARIANTS))
def spec(request, pem) -> ProfileSpec:
    return make_spec(request.param.split("-")[0], pem, **VARIANTS[request.param])


# -- Every kind on every platform ------------------------------------------------------------------------
@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_setting_is_applied_or_reported_not_applicable(spec, platform):
    rendered = render(spec, platform)
    assert isinstance(rendered, Rendered) and rendered.platform == platform
    given = set(spec.settings) | set(spec.secrets)
    reported = [na.setting for na in rendered.not_applicable]
    assert set(rendered.applied) | set(reported) == given, "a setting was dropped silently"
    assert not set(rendered.applied) & set(reported), "a setting is both applied and not applicable"
    assert len(reported) == len(set(reported)) and len(rendered.applied) == len(set(rendered.applied))
    assert all(len(na.reason) > 20 for na in rendered.not_applicable)
    assert render(spec, platform).content == rendered.content, "the same profile must render the same bytes"


@pytest.mark.parametrize("platform", APPLE)
def test_apple_profile_validates_against_apple_specs(spec, platform):
    apple_spec.require_specs()
    rendered = render(spec, platform)
    profile = plistlib.loads(rendered.content.encode("utf-8"))
    assert profile == profile_dict(spec, platform)[0]
    assert apple_spec.validate_profile(profile, os=apple_spec.APPLE_OS[platform]) == []
    assert (profile["PayloadType"], profile["PayloadVersion"]) == ("Configuration", 1)
    assert (profile["PayloadIdentifier"], profile["PayloadUUID"]) == (spec.identifier, spec.uuid.upper())
    assert (profile["PayloadDisplayName"], profile["PayloadOrganization"]) == (spec.name, spec.organisation)
    assert bool(profile["PayloadContent"]) == bool(rendered.applied)


def test_android_policy_validates_against_the_discovery_document(spec):
    android_spec.require_specs()
    policy = render(spec, "android").content
    assert android_spec.validate_policy(policy) == []
    assert json.loads(json.dumps(policy)) == policy
    if "openNetworkConfiguration" in policy:
        assert android_spec.validate_onc(policy["openNetworkConfiguration"]) == []


def test_windows_syncml_uses_documented_nodes(spec):
    rendered = render(spec, "windows")
    assert windows_problems(rendered.content) == []
    assert bool(windows_items(rendered.content)) == bool(rendered.applied)


def test_linux_document_is_agent_json(spec):
    content = render(spec, "linux").content
    assert json.loads(json.dumps(content)) == content
    assert content["profile"] == {"uuid": spec.uuid, "identifier": spec.identifier, "name": spec.name, "version": 3}
    assert {a["type"] for a in content["actions"]} <= {"networkmanager_connection", "trust_anchor", "check"}


# -- The oracles catch errors (no vacuous pass) ---------------------------------------------------------
def test_apple_validator_catches_errors(pem):
    apple_spec.require_specs()
    profile = profile_dict(make_spec("passcode", pem), "ios")[0]
    payload = profile["PayloadContent"][0]
    for change, expected in (
        ({"minLength": "8"}, "must be <integer>"),
        ({"minimumLength": 8}, "is not a key Apple defines"),
        ({"maxFailedAttempts": 12}, "above the maximum 11"),
        ({"forcePIN": 1}, "must be <boolean>"),
        ({"minutesUntilFailedLoginReset": 5}, "not available on iOS"),
    ):
        broken = {**profile, "PayloadContent": [{**payload, **change}]}
        assert any(expected in problem for problem in apple_spec.validate_profile(broken, os="iOS")), change
    wifi = profile_dict(make_spec("wifi", pem), "ios")[0]
    wifi["PayloadContent"][0]["EncryptionType"] = "WPA9"
    assert apple_spec.validate_profile(wifi, os="iOS")
    filevault = profile_dict(make_spec("encryption", pem), "macos")[0]
    assert apple_spec.validate_profile(filevault, os="iOS"), "FileVault must not pass as an iOS payload"


@pytest.mark.parametrize(
    "policy, expected",
    [
        ({"cameraDisabled": True}, "deprecated"),
        ({"passwordRequirements": {"passwordMinimumLength": 6}}, "deprecated"),
        ({"locationMode": "HIGH_ACCURACY"}, "value 'HIGH_ACCURACY' is deprecated"),
        ({"cameraAccess": "CAMERA_OFF"}, "is not one of"),
        ({"maximumTimeToLock": 300000}, "int64 values are strings"),
        ({"maximumTimeToLock": "5 minutes"}, "not a decimal int64"),
        ({"screenCaptureDisabled": "yes"}, "must be a boolean"),
        ({"screenCaptureDisable": True}, "is not a field of Policy"),
        ({"passwordPolicies": {"passwordScope": "SCOPE_DEVICE"}}, "must be an array"),
        ({"passwordPolicies": [{"passwordMinimumLength": "8"}]}, "must be an integer"),
        ({"passwordPolicies": [{"passwordMinimumLength": True}]}, "must be an integer"),
        ({"passwordPolicies": [{"passwordHistoryLength": 2**31}]}, "outside int32"),
        ({"passwordPolicies": [{"passwordExpirationTimeout": "90 days"}]}, "not a duration"),
        ({"passwordPolicies": [{"passwordQuality": "STRONG"}]}, "is not one of"),
        ({"deviceConnectivityManagement": {"usbAccess": "ALLOW"}}, "is not a field of DeviceConnectivityManagement"),
    ],
)
def test_android_validator_catches_errors(policy, expected):
    android_spec.require_specs()
    assert any(expected in problem for problem in android_spec.validate_policy(policy)), android_spec.validate_policy(
        policy
    )


def test_android_validator_reads_the_document():
    android_spec.require_specs()
    properties = android_spec.discovery()["schemas"]["Policy"]["properties"]
    assert {"passwordPolicies", "cameraAccess", "openNetworkConfiguration"} <= set(properties)
    assert any("readOnly" in p for p in android_spec.validate({"startLostModeStatus": {}}, "Command"))
    network = {"GUID": "g", "Name": "n", "Type": "Ethernet", "WiFi": {"Security": "WPA3-SAE"}}
    certificate = {"GUID": "c", "Type": "Authority", "X509": "not base64!", "TrustBits": ["Web"]}
    bad_onc = {"NetworkConfigurations": [network], "Certificates": [certificate]}
    problems = " ".join(android_spec.validate_onc(bad_onc))
    for expected in ("only WiFi", "SSID or HexSSID", "'WPA3-SAE' is not one of", "needs base64 DER", "TrustBits"):
        assert expected in problems


def test_windows_checker_catches_errors(pem):
    content = render(make_spec("passcode", pem), "windows").content
    for old, new, expected in (
        ('<Format xmlns="syncml:metinf">int</Format>', '<Format xmlns="syncml:metinf">chr</Format>', "format"),
        ("MinDevicePasswordLength</LocURI>", "MinPasswordLength</LocURI>", "not a documented node"),
        ("<Data>8</Data>", "<Data>17</Data>", "not an allowed value"),
        ("<CmdID>3</CmdID>", "<CmdID>2</CmdID>", "CmdIDs repeat"),
    ):
        assert old in content
        assert any(expected in p for p in windows_problems(content.replace(old, new, 1))), expected
    outside = content.replace("<Atomic><CmdID>1</CmdID>", "").replace("</Atomic>", "")
    assert any("Atomic" in p for p in windows_problems(outside))


# -- Boundaries, certificates, secrets, escaping ---------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [{"min_length": 4}, {"min_length": 16}, {"max_failed_attempts": 2}, {"max_failed_attempts": 11},
     {"auto_lock_minutes": 1}, {"auto_lock_minutes": 15}, {"max_age_days": 1}, {"max_age_days": 730},
     {"history": 1}, {"history": 50}, {"complexity": "alphanumeric"}],
)  # fmt: skip
def test_passcode_boundaries_validate_everywhere(pem, overrides):
    apple_spec.require_specs()
    android_spec.require_specs()
    spec = make_spec("passcode", pem, **overrides)
    for platform in APPLE:
        assert apple_spec.validate_profile(profile_dict(spec, platform)[0], os=apple_spec.APPLE_OS[platform]) == []
    policy = render(spec, "android").content
    assert android_spec.validate_policy(policy) == []
    assert windows_problems(render(spec, "windows").content) == []
    (name, value), = overrides.items()  # fmt: skip
    apple_keys = {
        "min_length": "minLength",
        "max_failed_attempts": "maxFailedAttempts",
        "auto_lock_minutes": "maxInactivity",
        "max_age_days": "maxPINAgeInDays",
        "history": "pinHistory",
    }
    if name in apple_keys:
        assert profile_dict(spec, "ios")[0]["PayloadContent"][0][apple_keys[name]] == value
    if name == "auto_lock_minutes":
        assert policy["maximumTimeToLock"] == str(value * 60_000)
    if name == "max_age_days":
        assert policy["passwordPolicies"][0]["passwordExpirationTimeout"] == f"{value * 86400}s"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_certificate_round_trips(pem, platform):
    der, spec = pem_der(pem), make_spec("certificate", pem)
    content = render(spec, platform).content
    if platform in APPLE:
        payload = plistlib.loads(content.encode())["PayloadContent"][0]
        assert (payload["PayloadType"], payload["PayloadContent"]) == ("com.apple.security.root", der)
    elif platform == "android":
        (certificate,) = content["openNetworkConfiguration"]["Certificates"]
        assert base64.b64decode(certificate["X509"]) == der
    elif platform == "windows":
        (item,) = windows_items(content)
        assert base64.b64decode(item["data"]) == der
        assert item["uri"].split("/")[-2] == hashlib.sha1(der).hexdigest().upper()  # noqa: S324
    else:
        (action,) = content["actions"]
        assert pem_der(action["pem"]) == der
        assert (
            x509.load_pem_x509_certificate(action["pem"].encode()).subject.rfc4514_string() == "CN=Example Test Root CA"
        )


def _secret_in_content(rendered: Rendered) -> bool:
    if rendered.platform == "windows":
        (item,) = windows_items(rendered.content)
        return parse(item["data"]).find(".//{*}keyMaterial").text == SECRET
    if rendered.platform == "android":
        return rendered.content["openNetworkConfiguration"]["NetworkConfigurations"][0]["WiFi"]["Passphrase"] == SECRET
    if rendered.platform == "linux":
        return f"psk={SECRET}" in rendered.content["actions"][0]["content"]
    return plistlib.loads(rendered.content.encode())["PayloadContent"][0]["Password"] == SECRET


@pytest.mark.parametrize("platform", PLATFORMS)
def test_secrets_appear_only_in_the_content(pem, platform):
    spec = make_spec("wifi", pem)
    assert spec.secrets == {"password": SECRET} and SECRET not in json.dumps(spec.settings)
    rendered = render(spec, platform)
    assert _secret_in_content(rendered)
    reported = [
        *rendered.applied,
        *(na.setting for na in rendered.not_applicable),
        *(na.reason for na in rendered.not_applicable),
    ]
    assert not any(SECRET in text or "S3cr3t" in text for text in reported)


HOSTILE_SSID = '<Guest&"Wi\'Fi">/\n[ipv4]\nx=1'


@pytest.mark.parametrize("platform", PLATFORMS)
def test_hostile_text_is_escaped(pem, platform):
    spec = make_spec("wifi", pem, name="<b>&'\"]]>", ssid=HOSTILE_SSID)
    rendered = render(spec, platform)
    if platform in APPLE:
        profile = plistlib.loads(rendered.content.encode())
        assert (profile["PayloadDisplayName"], profile["PayloadContent"][0]["SSID_STR"]) == (spec.name, HOSTILE_SSID)
    elif platform == "android":
        assert rendered.content["openNetworkConfiguration"]["NetworkConfigurations"][0]["WiFi"]["SSID"] == HOSTILE_SSID
    elif platform == "windows":
        assert windows_problems(rendered.content) == []
        (item,) = windows_items(rendered.content)
        assert "/" not in item["uri"].removeprefix("./Device/Vendor/MSFT/WiFi/Profile/").removesuffix("/WlanXml")
        assert unquote(item["uri"].split("/")[-2]) == HOSTILE_SSID
        wlan = parse(item["data"])
        assert {e.text for e in wlan.iter() if e.tag.endswith("}name")} == {HOSTILE_SSID}
    else:
        keyfile = rendered.content["actions"][0]["content"]
        sections = [line for line in keyfile.splitlines() if line.startswith("[")]
        assert sections == ["[connection]", "[wifi]", "[wifi-security]", "[ipv4]", "[ipv6]"], (
            "the SSID injected a section"
        )
        assert 'ssid=<Guest&"Wi\'Fi">/\\n[ipv4]\\nx=1' in keyfile.splitlines()


# -- What each platform cannot do, and why ---------------------------------------------------------------
def reasons(rendered: Rendered) -> dict[str, str]:
    return {na.setting: na.reason for na in rendered.not_applicable}


def test_not_configured_settings_render_nothing():
    for kind in ("passcode", "encryption", "restrictions"):
        spec = ProfileSpec(uuid="0e0e0e0e-0000-4000-8000-000000000000", name="Empty", kind=kind, version=1, settings={})
        for platform in PLATFORMS:
            rendered = render(spec, platform)
            assert (rendered.applied, rendered.not_applicable, rendered.applicable) == ([], [], False), (kind, platform)


def test_documented_not_applicable_reasons(pem):
    assert "passcode" in reasons(render(make_spec("encryption", pem), "ios"))["require_encryption"]
    assert "macOS" in reasons(render(make_spec("restrictions", pem), "macos"))["allow_usb_file_transfer"]
    assert set(reasons(render(make_spec("vpn", pem), "android"))) == set(make_spec("vpn", pem).settings)
    assert "managed configuration" in reasons(render(make_spec("email", pem), "android"))["host"]
    assert "EMAIL2" in reasons(render(make_spec("email", pem, account_type="imap"), "windows"))["host"]
    assert "WPA3" in reasons(render(make_spec("wifi", pem, security="wpa3"), "android"))["security"]
    assert "remote_identifier" in reasons(render(make_spec("vpn", pem, vpn_type="l2tp"), "ios"))
    off = render(make_spec("passcode", pem, require_passcode=False), "windows")
    assert [(i["uri"].rsplit("/", 1)[1], i["data"]) for i in windows_items(off.content)] == [
        ("DevicePasswordEnabled", "1")
    ]
    assert set(reasons(off)) == set(make_spec("passcode", pem).settings) - {"require_passcode"}


def test_l2tp_is_rendered_while_apple_still_lists_it(pem):
    """Apple's spec decides: L2TP is rendered only while ``VPNType`` still lists it."""
    apple_spec.require_specs()
    (vpn_type,) = [k for k in apple_spec.payload_keys("com.apple.vpn.managed") if k["key"] == "VPNType"]
    for platform in ("ios", "macos"):
        rendered = render(make_spec("vpn", pem, vpn_type="l2tp", on_demand=False), platform)
        assert ("vpn_type" in rendered.applied) == ("L2TP" in vpn_type["rangelist"])


def test_every_kind_has_a_full_configuration(pem):
    for kind, settings in SETTINGS.items():
        assert {s.name for s in settings} == set(full_values(kind, pem)), kind
