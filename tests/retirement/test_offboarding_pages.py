"""Offboarding through the IT console and the API: preview, confirmation, the record, the user page."""

import json

import pytest
from django.urls import reverse

from devices.choices import Ownership, Platform
from mdm_portal.core.models import AuditEvent
from retirement.choices import CorporateOffboarding, OffboardingStep
from retirement.models import Offboarding, RetirementRequest
from tests.factories import DeviceFactory, ScopeFactory, StaffFactory, UserFactory, grant

from .test_offboarding import app_instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(db, retirement_settings):
    retirement_settings.corporate_offboarding = CorporateOffboarding.WIPE
    retirement_settings.save()
    scope = ScopeFactory(name="EMEA")
    emma = UserFactory(username="emma", first_name="Emma", last_name="Stone", scope=scope)
    phone = DeviceFactory(name="Emma's iPhone", primary_user=emma, scope=scope, ownership=Ownership.PERSONAL)
    laptop = DeviceFactory(
        name="LAPTOP-EMMA", primary_user=emma, scope=scope, platform=Platform.WINDOWS, os_version="10.0.22631"
    )
    app_instance(emma, phone)
    admin = StaffFactory(username="it-admin")
    grant(admin, "Global administrator")
    return admin, emma, phone, laptop


def start_url(user):
    return reverse("admin:retirement_offboarding_start", args=[user.pk])


def test_the_start_page_previews_every_device_and_app_instance(client, setup):
    admin, emma, _phone, _laptop = setup
    client.force_login(admin)

    page = client.get(start_url(emma)).content.decode()

    assert "Offboard Emma Stone" in page
    assert "Their account is <strong>deactivated</strong> first" in page
    assert 'class="plan-retire"><td>Emma&#x27;s iPhone' in page
    assert 'class="plan-wipe"><td>LAPTOP-EMMA' in page
    assert "com.microsoft.Office.Outlook" in page
    assert "Type “emma”." in page


def test_a_wrong_username_changes_nothing(client, setup):
    admin, emma, *_ = setup
    client.force_login(admin)

    response = client.post(start_url(emma), {"confirm_username": "Emma", "reason": ""})

    assert response.status_code == 200
    assert "That is not the username. Type “emma” exactly" in response.content.decode()
    emma.refresh_from_db()
    assert emma.is_active is True
    assert not Offboarding.objects.exists() and not RetirementRequest.objects.exists()


def test_offboarding_from_the_console_shows_every_item_handled(client, setup):
    admin, emma, _phone, _laptop = setup
    client.force_login(admin)

    response = client.post(start_url(emma), {"confirm_username": "emma", "reason": "Last day 30 Nov"})

    offboarding = Offboarding.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:retirement_offboarding_change", args=[offboarding.pk])
    record = client.get(response["Location"]).content.decode()
    assert "Offboarded emma: account deactivated, 3 devices and app instances handled" in record
    assert record.count('class="offboarding-item"') == 3
    for request in RetirementRequest.objects.all():
        assert reverse("admin:retirement_retirementrequest_change", args=[request.pk]) in record
    assert "Retire (selective wipe)" in record and "Full wipe" in record and "App data wipe" in record
    assert "In progress" in record
    emma.refresh_from_db()
    assert emma.is_active is False
    assert AuditEvent.objects.filter(verb="retirement.offboarding", actor_label="it-admin").exists()
    listing = client.get(reverse("admin:retirement_offboarding_changelist")).content.decode()
    assert "0 of 3" in listing and "Emma Stone &lt;emma@example.com&gt;" in listing


def test_the_user_page_offers_offboarding_and_deactivation_only_through_it(client, setup):
    admin, emma, *_ = setup
    client.force_login(admin)
    user_page = reverse("admin:core_user_change", args=[emma.pk])

    page = client.get(user_page).content.decode()
    assert start_url(emma) in page and "Offboard this person" in page
    assert 'name="is_active"' not in page  # read-only while active

    # A posted is_active=off is ignored: the field is read-only while the account is active.
    form = {"username": "emma", "email": emma.email, "first_name": "Emma", "last_name": "Stone", "scope": emma.scope_id}
    client.post(user_page, form)
    emma.refresh_from_db()
    assert emma.is_active is True

    client.post(start_url(emma), {"confirm_username": "emma"})
    page = client.get(user_page).content.decode()
    assert "Offboard again (devices enrolled since)" in page
    assert 'name="is_active"' in page  # reactivating stays a tick
    assert reverse("admin:retirement_offboarding_change", args=[Offboarding.objects.get().pk]) in page


def test_you_cannot_offboard_yourself_from_the_console(client, setup):
    admin, *_ = setup
    client.force_login(admin)

    assert "Offboard this person" not in client.get(reverse("admin:core_user_change", args=[admin.pk])).content.decode()
    response = client.post(start_url(admin), {"confirm_username": admin.username})
    assert "You cannot offboard yourself" in response.content.decode()
    admin.refresh_from_db()
    assert admin.is_active is True


def test_api_offboarding_answers_with_the_record_and_its_items(client, setup):
    admin, _emma, _phone, laptop = setup
    client.force_login(admin)

    response = client.post(
        reverse("offboarding-list"), json.dumps({"user": "emma", "reason": "Left"}), content_type="application/json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"] == "emma" and body["state"] == "in_progress" and body["corporate_action"] == "wipe"
    steps = {item["label"]: (item["step"], item["state"]) for item in body["items"]}
    assert steps == {
        "Emma's iPhone": (OffboardingStep.RETIRE, "in_progress"),
        "LAPTOP-EMMA": (OffboardingStep.WIPE, "in_progress"),
        "com.microsoft.Office.Outlook on Emma's iPhone": (OffboardingStep.APP_DATA_WIPE, "in_progress"),
    }
    laptop_item = next(i for i in body["items"] if i["label"] == "LAPTOP-EMMA")
    assert laptop_item["device"] == str(laptop.uuid)
    assert laptop_item["retirement_request"] == str(RetirementRequest.objects.get(device=laptop).uuid)
    detail = client.get(reverse("offboarding-detail", kwargs={"id": body["id"]})).json()
    assert detail == body


def test_api_refuses_an_unknown_person_and_oneself_with_a_sentence(client, setup):
    admin, *_ = setup
    client.force_login(admin)

    unknown = client.post(reverse("offboarding-list"), {"user": "nobody"}, content_type="application/json")
    assert unknown.status_code == 400
    assert "No person with the username 'nobody'" in unknown.json()["user"][0]
    yourself = client.post(reverse("offboarding-list"), {"user": admin.username}, content_type="application/json")
    assert yourself.status_code == 403 and "cannot offboard yourself" in yourself.json()["detail"]


def test_listing_offboardings_costs_the_same_for_two_or_twelve(client, setup, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from retirement.choices import OffboardingSource
    from retirement.services import offboarding_run
    from tests.factories import SYSTEM

    admin, *_ = setup
    client.force_login(admin)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("admin:retirement_offboarding_changelist")).status_code == 200
            assert client.get(reverse("offboarding-list")).status_code == 200
        return len(ctx)

    for n in range(2):
        offboarding_run(actor=SYSTEM, user=UserFactory(username=f"leaver{n}"), source=OffboardingSource.DIRECTORY)
    few = queries()
    for n in range(2, 12):
        person = UserFactory(username=f"leaver{n}")
        DeviceFactory(primary_user=person, ownership=Ownership.PERSONAL)
        offboarding_run(actor=SYSTEM, user=person, source=OffboardingSource.DIRECTORY)
    assert queries() == few
