"""Permission matrix of the Company Portal's Apps page (/portal/apps/): each person sees their own devices.

The page belongs to nobody in particular, like My devices: every signed-in person gets it, listing
only their own enrolled devices (an IT administrator who owns none sees an empty list, never the
fleet). Anonymous visitors are sent to the portal's sign-in page.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.matrix import covers
from tests.test_permission_matrix import PORTAL_LOGIN, assert_outcome, sign_in

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "employee", "other_employee", "no_role", "global_admin", "read_only", "helpdesk_a")
# device_a is the employee's, device_b the other employee's.
OWN = {"employee": ["device_a"], "other_employee": ["device_b"]}


@covers("portal:apps")
@pytest.mark.parametrize("persona", PERSONAS)
def test_portal_apps(client, people, persona):
    user = sign_in(client, people, persona)
    response = client.get(reverse("portal:apps"))
    if user is None:
        assert_outcome(response, PORTAL_LOGIN, "anonymous on the Apps page")
        return
    assert response.status_code == 200, f"{persona} on the Apps page"
    listed = [item["device"] for item in response.context["devices"]]
    assert listed == [getattr(people, name) for name in OWN.get(persona, [])]
    text = response.content.decode()
    for name in ("device_a", "device_b"):
        link = reverse("portal:device_apps", kwargs={"uuid": getattr(people, name).uuid})
        assert (link in text) == (name in OWN.get(persona, [])), f"{persona}: link to {name}'s apps"
