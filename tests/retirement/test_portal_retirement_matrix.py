"""Permission matrix of the Company Portal's "Remove this device", "Reset this device" and their progress:
the device's owner only.

Another employee and every IT role (a global administrator who is not the owner included) get the 404
of a device that does not exist; IT retires devices in the admin and the API, not here. Anonymous
visitors are sent to the portal's sign-in page. A refused POST asks for nothing.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from mdm_portal.core.audit import Actor
from retirement.choices import RetirementAction, RetirementSource
from retirement.models import RetirementRequest, RetirementSettings
from retirement.services import retirement_request
from tests.matrix import covers
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "other_employee", "no_role", "global_admin", "read_only", "helpdesk_a")
OWNERS = {"device_a": "employee", "device_b": "other_employee"}


def expected(persona: str, device: str):
    if persona == "anonymous":
        return PORTAL_LOGIN
    return "owner" if OWNERS[device] == persona else 404


@pytest.fixture
def reset_allowed(people):
    settings = RetirementSettings.load()
    settings.allow_user_reset = True
    settings.save()


def started(people):
    """Each owner already asked to remove their device, so the progress pages exist."""
    for name, owner in OWNERS.items():
        retirement_request(
            actor=Actor.for_user(getattr(people, owner)),
            device=getattr(people, name),
            action=RetirementAction.RETIRE,
            source=RetirementSource.PORTAL,
        )


@covers("portal:device_remove", "portal:device_reset")
@pytest.mark.parametrize("page", ["device_remove", "device_reset"])
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_remove_and_reset_pages(client, people, reset_allowed, persona, page):
    sign_in(client, people, persona)
    for name in OWNERS:
        response = client.get(reverse(f"portal:{page}", kwargs={"uuid": getattr(people, name).uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200, f"{persona} on {page} of their {name}"
        else:
            assert_outcome(response, outcome, f"{persona} on {page} of {name}")


@pytest.mark.parametrize("page", ["device_remove", "device_reset"])
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_remove_and_reset_posts(client, people, reset_allowed, persona, page):
    sign_in(client, people, persona)
    for name in OWNERS:
        device = getattr(people, name)
        response = client.post(reverse(f"portal:{page}", kwargs={"uuid": device.uuid}), {"confirm_name": device.name})
        outcome = expected(persona, name)
        asked = RetirementRequest.objects.filter(device=device)
        if outcome == "owner":
            assert response.status_code == 302, f"{persona} posting {page} of their {name}"
            assert asked.get().requested_by == getattr(people, persona)
        else:
            assert_outcome(response, outcome, f"{persona} posting {page} of {name}")
            assert not asked.exists(), f"{persona} started a request on {name}"


@covers("portal:device_removal", "portal:device_removal_status")
@pytest.mark.parametrize("page", ["device_removal", "device_removal_status"])
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_removal_progress(client, people, persona, page):
    started(people)
    sign_in(client, people, persona)
    for name in OWNERS:
        response = client.get(reverse(f"portal:{page}", kwargs={"uuid": getattr(people, name).uuid}))
        outcome = expected(persona, name)
        if outcome == "owner":
            assert response.status_code == 200, f"{persona} on {page} of their {name}"
            if page == "device_removal_status":
                assert response.json()["status"] == "command_sent"
                assert response["Cache-Control"] == "no-store, private"
        else:
            assert_outcome(response, outcome, f"{persona} on {page} of {name}")
