"""The compliance settings form says what to enter, in a sentence, whatever is wrong with the number."""

from __future__ import annotations

import pytest
from django.urls import reverse

from policies.models import ComplianceSettings

pytestmark = pytest.mark.django_db

SENTENCE = "Enter a whole number of days, from 1 to 365."


@pytest.mark.parametrize("days", ["-5", "0", "366", "a month", ""])
def test_a_bad_validity_period_is_answered_with_what_to_enter(client, people, days):
    settings = ComplianceSettings.load()
    client.force_login(people.global_admin)
    response = client.post(
        reverse("admin:policies_compliancesettings_change", args=[settings.pk]), {"validity_days": days}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["validity_days"] == [SENTENCE]
    content = response.content.decode()
    assert SENTENCE in content and "greater than or equal" not in content
    settings.refresh_from_db()
    assert settings.validity_days == 30
