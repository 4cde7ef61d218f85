"""Sign-in lockout (django-axes): the IT console and the Company Portal lock a username from an
address after AXES_FAILURE_LIMIT wrong passwords, say when to retry, and a global administrator
can unlock; API tokens are never part of it."""

from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from mdm_portal.core import services as core_services
from mdm_portal.core.models import AuditEvent
from tests.factories import PASSWORD, SYSTEM, StaffFactory, UserFactory, grant

pytestmark = pytest.mark.django_db

PORTAL_LOGIN = reverse("portal:login")
ADMIN_LOGIN = reverse("admin:login")


def attempt(client, url, username, password, address="10.1.1.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail_until_locked(client, url, username, address="10.1.1.1"):
    """Wrong passwords up to the limit: the earlier ones are ordinary form errors, the last is the lockout."""
    for _ in range(4):
        response = attempt(client, url, username, "wrong-password", address)
        assert response.status_code == 200, "a wrong password below the limit shows the form again"
    return attempt(client, url, username, "wrong-password", address)


def assert_lockout_page(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    text = response.content.decode()
    assert "Try again after" in text
    assert "contact IT" in text


def test_portal_login_locks_after_five_failures_by_username_and_address(client):
    UserFactory(username="emma")
    assert_lockout_page(fail_until_locked(client, PORTAL_LOGIN, "emma"))

    # The right password from the same address is refused too, until the cool-off ends.
    assert_lockout_page(attempt(client, PORTAL_LOGIN, "emma", PASSWORD))
    # The same person from another address, and another person from this one, are not locked.
    assert attempt(client, PORTAL_LOGIN, "emma", PASSWORD, address="10.9.9.9").status_code == 302
    client.logout()
    UserFactory(username="liam")
    assert attempt(client, PORTAL_LOGIN, "liam", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(client):
    UserFactory(username="emma")
    fail_until_locked(client, PORTAL_LOGIN, "emma")
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert attempt(client, PORTAL_LOGIN, "emma", PASSWORD).status_code == 302


def test_the_failure_limit_is_a_setting(client, settings):
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(username="emma")
    assert attempt(client, PORTAL_LOGIN, "emma", "wrong").status_code == 200
    assert attempt(client, PORTAL_LOGIN, "emma", "wrong").status_code == 429


def test_admin_login_locks_and_a_global_admin_unlocks(client, people):
    staff = StaffFactory(username="olivia")
    grant(staff, "Read-only operator")
    assert_lockout_page(fail_until_locked(client, ADMIN_LOGIN, "olivia"))
    assert_lockout_page(attempt(client, ADMIN_LOGIN, "olivia", PASSWORD))
    lockout = AccessAttempt.objects.get(username="olivia")

    # Read-only operators see no lockouts; a global administrator unlocks from the changelist.
    admin_client = type(client)()
    admin_client.force_login(people.read_only)
    assert admin_client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403
    admin_client.force_login(people.global_admin)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert "olivia" in page.content.decode()
    done = admin_client.post(changelist, {"action": "unlock", "_selected_action": [lockout.pk]})
    assert done.status_code == 302
    assert not AccessAttempt.objects.filter(username="olivia").exists()
    assert AuditEvent.objects.filter(verb="accessattempt.delete", actor_user=people.global_admin).exists()

    assert attempt(client, ADMIN_LOGIN, "olivia", PASSWORD).status_code == 302


def test_api_token_auth_is_not_affected_by_lockout(client, people):
    _, token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="automation")
    assert_lockout_page(fail_until_locked(client, PORTAL_LOGIN, people.global_admin.username, address="127.0.0.1"))

    api = client.get(reverse("device-list"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.status_code == 200
    # Wrong API tokens are the API's 401, never counted as sign-in failures.
    for _ in range(10):
        bad = client.get(reverse("device-list"), HTTP_AUTHORIZATION="Bearer mdm_000000000000_nope")
        assert bad.status_code == 401
    assert AccessAttempt.objects.filter(username=people.global_admin.username).count() == 1
    assert AccessAttempt.objects.count() == 1


def test_the_test_clients_login_still_works(client):
    # authenticate() without a request (scripts, Client.login) skips the lockout check instead of failing.
    UserFactory(username="emma")
    assert client.login(username="emma", password=PASSWORD)
    assert not client.login(username="emma", password="wrong")


def test_the_console_names_the_security_sections_for_people(client, people):
    client.force_login(people.global_admin)
    index = client.get(reverse("admin:index")).content.decode()
    assert "Sign-in security" in index and "Two-factor sign-in" in index
    assert ">Axes<" not in index and "Otp_Totp" not in index
