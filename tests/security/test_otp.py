"""Second factor for staff (django-otp TOTP): the console asks for the code once a staff member
has an authenticator app, refuses a wrong one, and MDM_REQUIRE_STAFF_OTP makes staff set one up."""

import time

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from mdm_portal.core.models import AuditEvent
from tests.factories import PASSWORD, StaffFactory, grant

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = reverse("admin:login")
ADMIN_INDEX = reverse("admin:index")
SETUP = reverse("admin:otp_setup")


def code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.fixture
def staff(db):
    person = StaffFactory(username="olivia")
    grant(person, "Read-only operator")
    return person


@pytest.fixture
def device(staff):
    return TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)


def sign_in(client, token=""):
    return client.post(
        ADMIN_LOGIN, {"username": "olivia", "password": PASSWORD, "otp_token": token, "next": ADMIN_INDEX}
    )


def test_without_an_app_the_password_is_enough(client, staff):
    login = client.get(ADMIN_LOGIN).content.decode()
    assert 'name="otp_token"' in login
    assert "Device lifecycle portal" in login, "the console's own frame (branding) is kept"
    assert sign_in(client).status_code == 302
    index = client.get(ADMIN_INDEX)
    assert index.status_code == 200
    assert 'id="otp-setup-link"' in index.content.decode()


def test_with_an_app_the_code_is_required(client, device):
    missing = sign_in(client)
    assert missing.status_code == 200
    assert "Enter the 6-digit code" in missing.content.decode()
    assert client.get(ADMIN_INDEX).status_code == 302, "not signed in without the code"

    wrong = sign_in(client, f"{(int(code(device)) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 200
    assert "authenticator code is wrong" in wrong.content.decode()
    assert client.get(ADMIN_INDEX).status_code == 302

    device.refresh_from_db()
    device.throttling_failure_count = 0  # the wrong code slowed the device down; that is a control of its own
    device.throttling_failure_timestamp = None
    device.save()
    assert sign_in(client, code(device)).status_code == 302
    assert client.get(ADMIN_INDEX).status_code == 200


def test_a_wrong_code_counts_towards_the_lockout(client, device):
    from axes.models import AccessAttempt

    sign_in(client, "000000" if code(device) != "000000" else "111111")
    assert AccessAttempt.objects.get(username="olivia").failures_since_start == 1


def test_a_portal_session_does_not_open_the_console_for_someone_with_an_app(client, device):
    # Password-only sign-in through the Company Portal: fine for the portal, not for the console.
    assert client.post(reverse("portal:login"), {"username": "olivia", "password": PASSWORD}).status_code == 302
    response = client.get(ADMIN_INDEX)
    assert response.status_code == 302
    assert response["Location"].startswith(ADMIN_LOGIN)


def test_set_up_an_app_from_the_console(client, staff):
    client.force_login(staff)
    page = client.get(SETUP)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and 'id="otp-secret"' in html
    pending = TOTPDevice.objects.get(user=staff, confirmed=False)

    refused = client.post(SETUP, {"otp_token": "12345x"})
    assert refused.status_code == 200
    assert not TOTPDevice.objects.filter(user=staff, confirmed=True).exists()

    done = client.post(SETUP, {"otp_token": code(pending)})
    assert done.status_code == 302
    pending.refresh_from_db()
    assert pending.confirmed
    assert AuditEvent.objects.filter(verb="user.otp_enable", actor_user=staff).exists()
    # The session that confirmed the app is verified: the console stays open.
    assert client.get(ADMIN_INDEX).status_code == 200


def test_require_staff_otp_sends_staff_without_an_app_to_set_up(client, staff, settings):
    client.force_login(staff)
    assert client.get(ADMIN_INDEX).status_code == 200, "off by default"

    settings.MDM_REQUIRE_STAFF_OTP = True
    for url in (ADMIN_INDEX, reverse("admin:devices_device_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == SETUP
    page = client.get(SETUP)
    assert page.status_code == 200
    assert 'id="otp-required"' in page.content.decode()

    pending = TOTPDevice.objects.get(user=staff, confirmed=False)
    assert client.post(SETUP, {"otp_token": code(pending)}).status_code == 302
    assert client.get(ADMIN_INDEX).status_code == 200


def test_the_portal_login_stays_password_only(client, device):
    response = client.get(reverse("portal:login"))
    assert "otp_token" not in response.content.decode()
