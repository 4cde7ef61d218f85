"""Who may issue an API token, and the console's token form: a token acts with every role of its
person, so people issue tokens for themselves; only a superuser issues one for another account."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from mdm_portal.core import services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import APIToken
from tests.factories import SYSTEM, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def add_token(client, **data):
    return client.post(
        reverse("admin:core_apitoken_add"), {"name": "script", "expires_at_0": "", "expires_at_1": "", **data}
    )


def test_a_global_admin_cannot_issue_a_token_for_another_account(client, people):
    superuser = UserFactory(username="root", is_staff=True, is_superuser=True)
    with pytest.raises(PermissionDenied, match="only for your own account"):
        services.api_token_create(actor=Actor.for_user(people.global_admin), user=superuser, name="as root")
    client.force_login(people.global_admin)
    response = add_token(client, user=superuser.pk)
    assert response.status_code == 200  # the form again, with the field's error
    assert "Select a valid choice" in response.content.decode()
    assert not APIToken.objects.exists()


def test_a_person_issues_their_own_token_and_is_recorded_as_its_issuer(client, people):
    client.force_login(people.global_admin)
    response = add_token(client, user=people.global_admin.pk)
    assert response.status_code == 302
    token = APIToken.objects.get()
    assert (token.user, token.created_by) == (people.global_admin, people.global_admin)
    # The one-time display travels in the session, never in a cookie.
    assert "messages" not in response.cookies
    page = client.get(response["Location"]).content.decode()
    assert f"id='new-api-token'>mdm_{token.prefix}_" in page


def test_a_superuser_or_a_system_job_may_issue_a_token_for_an_automation_account():
    automation = StaffFactory(username="automation")
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    token, _ = services.api_token_create(actor=Actor.for_user(root), user=automation, name="HR job")
    assert token.created_by == root
    token, _ = services.api_token_create(actor=SYSTEM, user=automation, name="nightly")
    assert token.created_by is None


def test_a_past_expiry_is_a_form_error_not_a_500(client, people):
    client.force_login(people.global_admin)
    past = timezone.localtime() - timedelta(days=3)
    response = add_token(
        client, user=people.global_admin.pk, expires_at_0=past.strftime("%Y-%m-%d"), expires_at_1="09:00:00"
    )
    assert response.status_code == 200
    assert "The expiry date is in the past" in response.content.decode()
    assert not APIToken.objects.exists()


@pytest.mark.parametrize("scheme", ["Token", "Basic", "bearer"])
def test_a_token_sent_under_another_scheme_is_told_how_to_send_it(client, people, scheme):
    _, plaintext = services.api_token_create(actor=SYSTEM, user=people.global_admin, name="script")
    response = client.get(reverse("device-list"), HTTP_AUTHORIZATION=f"{scheme} {plaintext}")
    if scheme == "bearer":  # the scheme's case does not matter
        assert response.status_code == 200
        return
    assert response.status_code == 401
    assert response.json()["detail"] == "Send the token as 'Authorization: Bearer mdm_...'."
