"""Permission matrix of the sign-in security pages in the IT console: lockouts (django-axes) and
staff authenticator apps (django-otp). Only global administrators see them; their permissions are
sensitive, so even a global read-only operator gets 403; nobody adds or edits them here."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.matrix import admin_ids_for, covers
from tests.test_permission_matrix import ADMIN_LOGIN, PERSONAS, admin_url, assert_outcome, changelist_url, sign_in

pytestmark = pytest.mark.django_db

MODELS = (AccessAttempt, AccessLog, AccessFailureLog, TOTPDevice)
EXPECTED = {
    "anonymous": ADMIN_LOGIN,
    "employee": ADMIN_LOGIN,
    "no_role": 403,
    "global_admin": 200,
    "read_only": 403,
    "helpdesk_a": 403,
}


def make(model, people):
    base = {"username": "emma", "ip_address": "10.1.1.1", "user_agent": "test", "http_accept": "*/*", "path_info": "/"}
    if model is AccessAttempt:
        return AccessAttempt.objects.create(**base, get_data="", post_data="", failures_since_start=5)
    if model is AccessLog:
        return AccessLog.objects.create(**base)
    if model is AccessFailureLog:
        return AccessFailureLog.objects.create(**base, locked_out=True)
    return TOTPDevice.objects.create(user=people.other_employee, name="Authenticator app", confirmed=True)


@covers(*admin_ids_for(MODELS))
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("persona", PERSONAS)
def test_sign_in_security_pages(client, people, model, persona):
    obj = make(model, people)
    sign_in(client, people, persona)
    assert_outcome(client.get(changelist_url(model)), EXPECTED[persona], f"{persona} on {model.__name__} list")
    assert_outcome(client.get(admin_url(obj)), EXPECTED[persona], f"{persona} on a {model.__name__}")


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nobody_adds_or_edits_them_in_the_console(client, people, model):
    obj = make(model, people)
    client.force_login(people.global_admin)
    add = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_add")
    assert client.get(add).status_code == 403
    page = client.get(admin_url(obj))
    assert 'name="_save"' not in page.content.decode()
    # Deleting is how a global administrator unlocks someone or resets a lost authenticator app.
    assert client.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 302
    assert not type(obj).objects.filter(pk=obj.pk).exists()
