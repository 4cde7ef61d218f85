"""Self-enrolment in the Company Portal, the Apple enrolment profile, and own-device actions.

The journey: an employee signs in, chooses platform and ownership, is shown a one-time code (with
its link, QR code and, for Apple, a ``.mobileconfig``), the device agent enrols with the code, and
the device appears under My devices while the page's poll reports it.
"""

from __future__ import annotations

import plistlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from agent.client import AgentClient, ProtocolError
from devices.choices import CommandStatus, CommandType, LifecycleState, Ownership, Platform
from devices.models import Device, DeviceCommand, EnrollmentCode
from devices.platforms import apple_enrollment
from devices.services.enrollment import EnrollmentError, device_enroll, enrollment_code_create
from mdm_portal.core.models import AuditEvent
from tests.factories import PASSWORD, SYSTEM, DeviceFactory, UserFactory
from tests.specs import apple as apple_spec

pytestmark = pytest.mark.django_db

CODE_RE = re.compile(r'<p class="code" id="enrol-code"[^>]*>([2-9A-Z]{5}-[2-9A-Z]{5})</p>')


def identity(**overrides):
    data = {
        "platform": "linux",
        "name": "build-host-07",
        "serial_number": "PF3ABC12",
        "imei": "",
        "model": "ThinkPad T14 Gen 4",
        "manufacturer": "Lenovo",
        "os_version": "12.8",
    }
    data.update(overrides)
    return data


def inventory(**overrides):
    data = {"os_version": "12.8", "encrypted": True, "screen_lock_enabled": True, "kernel": "6.1.0-28-amd64"}
    data.update(overrides)
    return data


def sign_in(client, username="employee"):
    response = client.post(reverse("portal:login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, "the employee could not sign in"


def create_code(client, platform="linux", ownership="personal"):
    """Fill in the enrolment form as a browser would; returns ``(response, code)``."""
    form = client.get(reverse("portal:enroll"))
    assert form.status_code == 200
    nonce = form.context["form"]["nonce"].value()
    response = client.post(reverse("portal:enroll"), {"platform": platform, "ownership": ownership, "nonce": nonce})
    assert response.status_code == 200
    match = CODE_RE.search(response.content.decode())
    assert match, "the code is not shown"
    return response, match.group(1)


def status_of(client, code_obj):
    response = client.get(reverse("portal:enroll_status", kwargs={"pk": code_obj.pk}))
    assert response.status_code == 200
    return response.json()


# The journey ----------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_whole_journey_over_http_with_the_real_agent(client, people, live_server):
    sign_in(client)
    response, code = create_code(client, platform="linux", ownership="personal")
    code_obj = EnrollmentCode.objects.get(user=people.employee)
    page = response.content.decode()
    # The Linux instructions name the exact command, with this portal's address and the code.
    assert f"python3 -m agent enroll --server http://testserver --code {code}" in page
    assert status_of(client, code_obj) == {
        "state": "waiting",
        "expires_at": code_obj.expires_at.isoformat(),
        "device": None,
    }

    with AgentClient(live_server.url) as agent:
        reply = agent.enroll(code=code, device=identity(), inventory=inventory())
        device = Device.objects.get(uuid=reply["device_id"])
        assert (device.primary_user, device.ownership, device.lifecycle_state) == (
            people.employee,
            Ownership.PERSONAL,
            LifecycleState.ENROLLED,
        )

        # The page's poll now links to the device.
        status = status_of(client, code_obj)
        assert status["state"] == "enrolled"
        assert status["device"]["url"] == reverse("portal:device_detail", kwargs={"uuid": device.uuid})
        assert status["device"]["name"] == "build-host-07"

        # My devices lists it, with its state.
        listing = client.get(reverse("portal:device_list")).content.decode()
        assert "build-host-07" in listing and "Enrolled" in listing

        # The code is single-use: a second device cannot enrol with it.
        with AgentClient(live_server.url) as second, pytest.raises(ProtocolError) as refused:
            second.enroll(code=code, device=identity(serial_number="OTHER-1", name="host-2"), inventory=inventory())
        assert (refused.value.status, refused.value.code) == (403, "invalid_enrollment_token")
        assert Device.objects.filter(primary_user=people.employee).count() == 2  # device_a and the new one

        # "Sync now" from the portal reaches the agent at its next check-in; the page shows the outcome.
        detail_url = reverse("portal:device_detail", kwargs={"uuid": device.uuid})
        assert client.post(reverse("portal:device_sync", kwargs={"uuid": device.uuid})).status_code == 302
        commands = agent.checkin(inventory())["commands"]
        assert [c["type"] for c in commands] == ["sync"]
        assert 'class="status-badge sent"' in client.get(detail_url).content.decode()
        agent.report_results([{"id": commands[0]["id"], "status": "acknowledged", "data": {}}])
        detail = client.get(detail_url).content.decode()
        assert "Sync" in detail and "Acknowledged" in detail


def test_the_code_page_shows_the_code_once_with_link_qr_and_no_caching(client, people):
    sign_in(client)
    response, code = create_code(client, platform="android", ownership="corporate")
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    code_obj = EnrollmentCode.objects.get(user=people.employee)
    assert (code_obj.platform, code_obj.ownership) == (Platform.ANDROID, Ownership.CORPORATE)
    assert code_obj.expires_at > timezone.now() + timedelta(hours=23)
    # Only the hash is stored.
    assert code not in code_obj.code_hash and code.replace("-", "") not in code_obj.code_hash
    # A QR code drawn inline, and the agent link with the server and the code (never a portal URL).
    assert '<svg viewBox="0 0' in page and 'class="qr"' in page
    link = re.search(r'href="(mdm-enroll://[^"]+)"', page).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(link).query)
    assert query == {"server": ["http://testserver"], "code": [code], "platform": ["android"]}
    assert f"/portal/enroll/{code}" not in page
    assert reverse("portal:enroll_status", kwargs={"pk": code_obj.pk}) in page
    # No enrolment profile for Android.
    assert "Download enrolment profile" not in page
    # The audit trail records the code's creation, not the code.
    event = AuditEvent.objects.get(verb="enrollment_code.create")
    assert code not in str(event.changes) and code.replace("-", "") not in str(event.changes)


def test_sending_the_form_again_creates_no_second_code(client, people):
    sign_in(client)
    form = client.get(reverse("portal:enroll"))
    data = {"platform": "ios", "ownership": "personal", "nonce": form.context["form"]["nonce"].value()}
    first = client.post(reverse("portal:enroll"), data)
    assert first.status_code == 200 and CODE_RE.search(first.content.decode())
    # The browser's "resubmit the form?" after a refresh sends exactly the same POST.
    again = client.post(reverse("portal:enroll"), data, follow=True)
    assert again.redirect_chain == [(reverse("portal:enroll"), 302)]
    assert not CODE_RE.search(again.content.decode())
    assert "no new code was created" in again.content.decode()
    assert EnrollmentCode.objects.filter(user=people.employee).count() == 1
    # The enrol page says an unused code is still open, without showing it.
    assert "You have 1 unused code" in again.content.decode()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"platform": "blackberry", "ownership": "personal"}, "platform"),
        ({"platform": "", "ownership": "personal"}, "platform"),
        ({"platform": "ios", "ownership": "borrowed"}, "ownership"),
        ({"ownership": "personal"}, "platform"),
    ],
)
def test_bad_form_input_is_a_form_error_and_writes_nothing(client, people, data, field):
    sign_in(client)
    nonce = client.get(reverse("portal:enroll")).context["form"]["nonce"].value()
    events = AuditEvent.objects.count()
    response = client.post(reverse("portal:enroll"), {**data, "nonce": nonce})
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert 'role="alert"' in response.content.decode()
    assert not EnrollmentCode.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_form_without_its_nonce_is_shown_again_and_writes_nothing(client, people):
    sign_in(client)
    response = client.post(reverse("portal:enroll"), {"platform": "ios", "ownership": "personal"})
    assert response.status_code == 200
    assert not EnrollmentCode.objects.exists()
    # The form comes back filled in, with a nonce the session knows: sending it now works.
    form = response.context["form"]
    assert form["platform"].value() == "ios"
    retry = client.post(reverse("portal:enroll"), {**form.data.dict()})
    assert retry.status_code == 200 and CODE_RE.search(retry.content.decode())


def test_another_employee_cannot_poll_or_download_with_the_code(client, people):
    code_obj, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership="personal")
    sign_in(client, "other-employee")
    assert client.get(reverse("portal:enroll_status", kwargs={"pk": code_obj.pk})).status_code == 404
    assert client.post(reverse("portal:enroll_profile"), {"code": code}).status_code == 404
    # Nor does the enrol page list it.
    assert "unused code" not in client.get(reverse("portal:enroll")).content.decode()


def test_the_poll_reports_an_expired_code(client, people):
    code_obj, _ = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership="personal")
    EnrollmentCode.objects.filter(pk=code_obj.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    sign_in(client)
    assert status_of(client, code_obj)["state"] == "expired"


def test_recent_refusals_are_shown_on_the_enrol_page(client, people):
    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="linux", ownership="personal")
    # A device whose serial number belongs to a device that is still enrolled is refused.
    with pytest.raises(EnrollmentError):
        device_enroll(identity=identity(serial_number=people.device_a.serial_number), code=code)
    sign_in(client)
    page = client.get(reverse("portal:enroll")).content.decode()
    assert "Recent enrolments that did not work" in page
    assert "build-host-07" in page and "already enrolled as &#x27;EMEA-PHONE-1&#x27;" in page
    # Nobody else's.
    client.logout()
    sign_in(client, "other-employee")
    assert "Recent enrolments that did not work" not in client.get(reverse("portal:enroll")).content.decode()


# The Apple enrolment profile -----------------------------------------------------------------------------


@pytest.mark.parametrize("platform, apple_os, target", [("ios", "iOS", 1), ("ipados", "iOS", 1), ("macos", "macOS", 5)])
def test_the_mobileconfig_is_valid_against_apples_specification(client, people, platform, apple_os, target):
    apple_spec.require_specs()
    sign_in(client)
    response, code = create_code(client, platform=platform)
    page = response.content.decode()
    assert "Download enrolment profile" in page
    # The download form carries the code in a POST body, never in its URL.
    form = re.search(r'<form method="post" action="([^"]+)">\s*<input type="hidden" name="csrfmiddlewaretoken"', page)
    assert form.group(1) == reverse("portal:enroll_profile")
    assert f'<input type="hidden" name="code" value="{code}">' in page

    download = client.post(reverse("portal:enroll_profile"), {"code": code})
    assert download.status_code == 200
    assert download["Content-Type"] == "application/x-apple-aspen-config"
    assert download["Content-Disposition"] == 'attachment; filename="company-portal-enrolment.mobileconfig"'
    assert "no-store" in download["Cache-Control"]
    profile = plistlib.loads(download.content)
    assert apple_spec.validate_profile(profile, os=apple_os) == []

    code_obj = EnrollmentCode.objects.get(user=people.employee)
    assert profile["PayloadType"] == "Configuration"
    assert profile["TargetDeviceType"] == target
    assert profile["RemovalDate"] == code_obj.expires_at.replace(tzinfo=None, microsecond=0)
    clip = next(p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.webClip.managed")
    query = parse_qs(urlsplit(clip["URL"]).query)
    assert clip["URL"].startswith("mdm-enroll://enroll?")
    assert query == {"server": ["http://testserver"], "code": [code], "platform": [platform]}
    prefs = [p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.ManagedClient.preferences"]
    if platform == "macos":
        settings = prefs[0]["PayloadContent"][apple_enrollment.AGENT_PREFERENCE_DOMAIN]["Forced"][0]
        assert settings["mcx_preference_settings"] == {
            "ServerURL": "http://testserver",
            "EnrollmentCode": code,
            "Platform": "macos",
        }
    else:
        assert prefs == []


def test_the_profile_is_refused_for_a_used_expired_or_non_apple_code(client, people):
    sign_in(client)
    _, used = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="ios", ownership="personal")
    device_enroll(identity=identity(platform="ios", serial_number="F2LXK1"), code=used)
    expired_obj, expired = enrollment_code_create(
        actor=SYSTEM, user=people.employee, platform="macos", ownership="personal"
    )
    EnrollmentCode.objects.filter(pk=expired_obj.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, android = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="android", ownership="personal")
    for code, sentence in (
        (used, "already used"),
        (expired, "has expired"),
        (android, "only for iPhone, iPad and Mac"),
    ):
        response = client.post(reverse("portal:enroll_profile"), {"code": code}, follow=True)
        assert response.redirect_chain == [(reverse("portal:enroll"), 302)], code
        assert sentence in response.content.decode()
        assert "x-apple-aspen-config" not in response["Content-Type"]
    for junk in ("", "not a code", "A" * 200):
        assert client.post(reverse("portal:enroll_profile"), {"code": junk}).status_code == 404


def test_the_profile_builder_refuses_other_platforms():
    with pytest.raises(ValueError, match="only for Apple"):
        apple_enrollment.enrollment_profile(
            server_url="https://mdm.example.com", code="ABCDE-FGHJK", platform="android", expires_at=timezone.now()
        )
    assert (
        apple_enrollment.profile_identifier("https://mdm.example.com:8443/")
        == "com.example.mdm.company-portal.enrollment"
    )


# The validator itself: it must refuse what Apple's specification refuses ---------------------------------


@pytest.fixture
def good_profile():
    apple_spec.require_specs()
    return apple_enrollment.enrollment_profile(
        server_url="https://mdm.example.com", code="ABCDE-FGHJK", platform="ios", expires_at=timezone.now()
    )


def test_the_validator_refuses_missing_wrong_unknown_and_out_of_range_keys(good_profile):
    assert apple_spec.validate_profile(good_profile, os="iOS") == []
    bad = dict(good_profile)
    del bad["PayloadUUID"]
    bad["PayloadVersion"] = 2
    bad["TargetDeviceType"] = True
    bad["HasRemovalPasscode"] = "no"
    bad["Surprise"] = 1
    clip = dict(good_profile["PayloadContent"][0])
    del clip["URL"]
    clip["Label"] = 7
    bad["PayloadContent"] = [clip, {"PayloadType": "com.example.unknown"}]
    errors = apple_spec.validate_profile(bad, os="iOS")
    assert "profile: the required key PayloadUUID is missing" in errors
    assert "profile.PayloadVersion: 2 is not one of [1]" in errors
    assert "profile.TargetDeviceType: must be <integer>, not bool" in errors
    assert "profile.HasRemovalPasscode: must be <boolean>, not str" in errors
    assert "profile.Surprise: is not a key Apple defines here" in errors
    assert "profile.PayloadContent[0]: the required key URL is missing" in errors
    assert "profile.PayloadContent[0].Label: must be <string>, not int" in errors
    assert "profile.PayloadContent[1]: 'com.example.unknown' is not a payload type Apple defines" in errors


def test_the_validator_knows_what_each_os_lacks(good_profile):
    # FullScreen, IsRemovable and Precomposed exist on iOS only; ManagedClient.preferences on macOS only.
    errors = apple_spec.validate_profile(good_profile, os="macOS")
    assert "profile.PayloadContent[0].FullScreen: is not available on macOS" in errors
    prefs = {
        "PayloadType": "com.apple.ManagedClient.preferences",
        "PayloadVersion": 1,
        "PayloadIdentifier": "com.example.prefs",
        "PayloadUUID": "3C4B6F1E-0000-4000-8000-000000000001",
        "PayloadContent": {"com.example.app": {"Forced": [{"mcx_preference_settings": {"Anything": [1, "x"]}}]}},
    }
    assert apple_spec.validate_payload(prefs, os="macOS") == []
    assert "com.apple.ManagedClient.preferences: com.apple.ManagedClient.preferences is not available on iOS" in (
        apple_spec.validate_payload(prefs, os="iOS")
    )
    broken = {**prefs, "PayloadContent": {"com.example.app": {"Forced": [{"settings": {}}]}}}
    assert apple_spec.validate_payload(broken, os="macOS") == [
        "com.apple.ManagedClient.preferences.PayloadContent.com.example.app.Forced[0]: "
        "the required key mcx_preference_settings is missing",
        "com.apple.ManagedClient.preferences.PayloadContent.com.example.app.Forced[0].settings: "
        "is not a key Apple defines here",
    ]


def test_the_validator_checks_ranges_repetition_and_duplicate_identifiers(good_profile):
    airprint = {
        "PayloadType": "com.apple.airprint",
        "PayloadVersion": 1,
        "PayloadIdentifier": "com.example.airprint",
        "PayloadUUID": "3C4B6F1E-0000-4000-8000-000000000002",
        "AirPrint": [{"IPAddress": "192.0.2.10", "ResourcePath": "/ipp/print", "Port": 70000}],
    }
    assert "com.apple.airprint.AirPrint[0].Port: 70000 is above the maximum 65535" in apple_spec.validate_payload(
        airprint, os="iOS"
    )
    # Several files describe com.apple.MCX; a payload may use the keys of any of them.
    mcx = {key["key"] for key in apple_spec.payload_keys("com.apple.MCX")}
    assert len(apple_spec.payload_specs()["com.apple.MCX"]) > 1 and len(mcx) > 10
    twice = dict(good_profile)
    twice["PayloadContent"] = [good_profile["PayloadContent"][0], dict(good_profile["PayloadContent"][0])]
    errors = apple_spec.validate_profile(twice, os="iOS")
    assert any("PayloadIdentifier" in e and "used twice" in e for e in errors)
    assert any("PayloadUUID" in e and "used twice" in e for e in errors)


def test_the_validator_survives_recursive_specifications_and_values():
    apple_spec.require_specs()
    # Every specification loads and its key tree is walked to the end, recursive ones included.
    for payload_type in apple_spec.payload_specs():
        assert list(apple_spec.spec_key_paths(payload_type))
    paths = list(apple_spec.spec_key_paths("com.apple.homescreenlayout"))
    assert "Dock[].IconItem.Pages[].PagesItem" in paths
    # A folder in a folder in a folder: the recursive definition applies at every depth.
    app = {"Type": "App", "BundleID": "com.apple.mobilesafari"}
    folder = {"Type": "Folder", "DisplayName": "Work", "Pages": [[app]]}
    for _ in range(3):
        folder = {"Type": "Folder", "DisplayName": "Work", "Pages": [[folder, app]]}
    layout = {
        "PayloadType": "com.apple.homescreenlayout",
        "PayloadVersion": 1,
        "PayloadIdentifier": "com.example.layout",
        "PayloadUUID": "3C4B6F1E-0000-4000-8000-000000000003",
        "Dock": [app],
        "Pages": [[folder]],
    }
    assert apple_spec.validate_payload(layout, os="iOS") == []
    layout["Pages"] = [[{"Type": "Folder", "Pages": [[{"Type": "Widget"}]]}]]
    assert apple_spec.validate_payload(layout, os="iOS") == [
        "com.apple.homescreenlayout.Pages[0][0].Pages[0][0].Type: 'Widget' is not one of ['App', 'Folder', 'WebClip']"
    ]
    # A value nested without end (here: a cycle) is refused, not a RecursionError.
    cyclic = {"Type": "Folder", "Pages": []}
    cyclic["Pages"].append([cyclic])
    layout["Pages"] = [[cyclic]]
    errors = apple_spec.validate_payload(layout, os="iOS")
    assert errors and all(f"nested deeper than {apple_spec.MAX_DEPTH} levels" in e for e in errors)


def test_a_missing_specs_folder_skips_with_the_reason(settings, tmp_path):
    settings.BASE_DIR = tmp_path / "project"
    reason = apple_spec.skip_reason()
    assert reason and "Apple's payload specifications are not at" in reason
    with pytest.raises(pytest.skip.Exception, match=r"check out \.\./shared/specs"):
        apple_spec.require_specs()


# Own-device actions -------------------------------------------------------------------------------------


def test_sync_and_lock_queue_commands_for_the_owners_own_device(client, people):
    sign_in(client)
    device = people.device_a
    detail_url = reverse("portal:device_detail", kwargs={"uuid": device.uuid})
    detail = client.get(detail_url).content.decode()
    assert "Sync now" in detail and "Lock this device" in detail and "No actions yet." in detail

    response = client.post(reverse("portal:device_sync", kwargs={"uuid": device.uuid}), follow=True)
    assert response.redirect_chain == [(detail_url, 302)]
    assert "Sync requested." in response.content.decode()
    sync = DeviceCommand.objects.get(device=device)
    assert (sync.command_type, sync.status, sync.requested_by) == (
        CommandType.SYNC,
        CommandStatus.QUEUED,
        people.employee,
    )

    # Lock asks first; the confirmation page changes nothing.
    confirm = client.get(reverse("portal:device_lock", kwargs={"uuid": device.uuid}))
    assert confirm.status_code == 200 and "Lock EMEA-PHONE-1?" in confirm.content.decode()
    assert DeviceCommand.objects.filter(device=device, command_type=CommandType.LOCK).count() == 0
    response = client.post(
        reverse("portal:device_lock", kwargs={"uuid": device.uuid}),
        {"message": "Lost phone, please call", "phone_number": "+44 20 7946 0000"},
        follow=True,
    )
    assert response.redirect_chain == [(detail_url, 302)]
    page = response.content.decode()
    assert "Lock requested." in page
    lock = DeviceCommand.objects.get(device=device, command_type=CommandType.LOCK)
    assert lock.payload == {"message": "Lost phone, please call", "phone_number": "+44 20 7946 0000"}
    # The detail page lists both, with their status.
    assert page.count('class="status-badge queued"') == 2
    assert AuditEvent.objects.filter(verb="device.command.lock", actor_label="employee").exists()


def test_another_persons_device_is_a_404_and_nothing_is_queued(client, people):
    sign_in(client)
    device = people.device_b
    assert client.get(reverse("portal:device_detail", kwargs={"uuid": device.uuid})).status_code == 404
    assert client.post(reverse("portal:device_sync", kwargs={"uuid": device.uuid})).status_code == 404
    assert client.get(reverse("portal:device_lock", kwargs={"uuid": device.uuid})).status_code == 404
    assert client.post(reverse("portal:device_lock", kwargs={"uuid": device.uuid})).status_code == 404
    assert not DeviceCommand.objects.exists()
    # GET never queues a sync.
    assert client.get(reverse("portal:device_sync", kwargs={"uuid": people.device_a.uuid})).status_code == 405
    assert not DeviceCommand.objects.exists()


def test_the_services_refusals_are_messages_never_a_500(client, people):
    sign_in(client)
    too_long = "x" * 201
    response = client.post(
        reverse("portal:device_lock", kwargs={"uuid": people.device_a.uuid}),
        {"message": too_long, "phone_number": "call me"},
    )
    assert response.status_code == 200
    assert "The lock-screen message can be at most 200 characters long." in response.content.decode()
    assert not DeviceCommand.objects.exists()

    pending = DeviceFactory(name="NEW-LAPTOP", scope=people.scope_a, primary_user=people.employee, state="pending")
    detail = client.get(reverse("portal:device_detail", kwargs={"uuid": pending.uuid})).content.decode()
    assert "Sync now" not in detail  # nothing to offer on a device that is not enrolled
    response = client.post(reverse("portal:device_sync", kwargs={"uuid": pending.uuid}), follow=True)
    assert response.status_code == 200
    assert "NEW-LAPTOP is not enrolled, so it cannot receive commands." in response.content.decode()
    lock_page = client.get(reverse("portal:device_lock", kwargs={"uuid": pending.uuid})).content.decode()
    assert "cannot be locked from here" in lock_page
    assert not DeviceCommand.objects.exists()


def test_an_employee_without_a_device_is_invited_to_enrol(client, db):
    UserFactory(username="newcomer")
    sign_in(client, "newcomer")
    page = client.get(reverse("portal:device_list")).content.decode()
    assert reverse("portal:enroll") in page and "Enrol your first device" in page
