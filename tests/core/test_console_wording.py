"""The IT console speaks plainly: list pages are titled by what they list, the audit log says who did
what in words (codes kept underneath), and the task outbox says why it is normally empty."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import DeviceCommand
from mdm_portal.core.audit import Actor, audit_record
from mdm_portal.core.models import AuditEvent
from tests.factories import DeviceFactory

pytestmark = pytest.mark.django_db


def title(response) -> str:
    content = response.content.decode()
    return content[content.index("<title>") + 7 : content.index("</title>")]


@pytest.mark.parametrize(
    ("url_name", "expected"),
    [
        ("admin:devices_device_changelist", "Devices"),
        ("admin:devices_devicecommand_changelist", "Device commands"),
        ("admin:core_scope_changelist", "Scopes"),
        ("admin:core_auditevent_changelist", "Audit log"),
    ],
)
def test_a_list_page_is_titled_by_what_it_lists(client, people, url_name, expected):
    client.force_login(people.global_admin)
    response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert title(response).startswith(f"{expected} |")
    assert f"<h1>{expected}</h1>" in response.content.decode()
    assert "Select " not in title(response)


def test_the_audit_log_says_who_did_what_in_words_and_keeps_the_code(client, people):
    device = people.device_a
    command = DeviceCommand.objects.create(
        device=device, command_type="install_profile", deadline_at=timezone.now() + timedelta(days=1)
    )
    audit_record(actor=Actor.for_device(device), verb="device.command.install_profile.acknowledged", target=command)
    audit_record(actor=Actor.system("compliance_evaluation"), verb="device.compliance_change", target=device)
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:core_auditevent_changelist")).content.decode()
    for heading in ("Who", "Action", "What"):
        assert f">{heading}</a>" in content or f">{heading}</span>" in content
    assert "Actor label" not in content and "Target repr" not in content
    # The label first, the stored code underneath.
    assert "Install configuration profile command — acknowledged" in content
    assert '<code class="quiet">device.command.install_profile.acknowledged</code>' in content
    assert "Device compliance change" in content
    # The acting device by its name; its id on hover.
    assert f'<span title="device {device.uuid}">device EMEA-PHONE-1</span>' in content


def test_a_device_actor_the_viewer_may_not_see_keeps_its_id(client, people):
    audit_record(actor=Actor.for_device(people.device_b), verb="device.enroll", target=people.device_a)
    client.force_login(people.helpdesk_a)  # sees scope A's trail, not scope B's devices
    content = client.get(reverse("admin:core_auditevent_changelist")).content.decode()
    assert f"device {people.device_b.uuid}" in content
    assert people.device_b.name not in content


def test_the_audit_list_names_devices_in_one_query(client, people, django_assert_max_num_queries):
    for n in range(20):
        device = DeviceFactory(name=f"EMEA-LAPTOP-{n}", scope=people.scope_a)
        audit_record(actor=Actor.for_device(device), verb="device.update", target=device)
    client.force_login(people.global_admin)
    url = reverse("admin:core_auditevent_changelist") + "?verb=device.update"
    client.get(url)  # warm the per-request caches
    with django_assert_max_num_queries(20):
        content = client.get(url).content.decode()
    assert "device EMEA-LAPTOP-19" in content and "device EMEA-LAPTOP-0<" in content


def test_an_audit_events_changes_are_a_table_with_the_json_a_click_away(client, people):
    audit_record(
        actor=Actor.for_user(people.global_admin),
        verb="device.update",
        target=people.device_a,
        changes={"primary_user": 7, "os_version": "17.4", "tags": ["a", "b"]},
    )
    event = AuditEvent.objects.get(verb="device.update")
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:core_auditevent_change", args=[event.pk])).content.decode()
    assert '<th scope="row">Primary user</th><td>7</td>' in content
    assert '<th scope="row">Os version</th><td>17.4</td>' in content
    assert '<th scope="row">Tags</th><td>a, b</td>' in content
    assert '<details class="raw-json"><summary>As stored (JSON)</summary>' in content
    assert "&quot;os_version&quot;: &quot;17.4&quot;" in content
    assert "<h2>global-admin · Device update · EMEA-PHONE-1</h2>" in content


def test_the_empty_task_outbox_says_why_it_is_empty(client, people):
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:core_outboxmessage_changelist")).content.decode()
    assert 'id="outbox-intro"' in content
    assert "Background tasks wait here only while the message broker cannot be reached" in content
    assert "Normally this list is empty." in content


def test_the_console_home_lists_your_own_recent_actions_from_the_audit_log(client, people):
    device = DeviceFactory(name="HOME-1", scope=people.scope_a)
    audit_record(actor=Actor.for_user(people.global_admin), verb="device.rename", target=device, changes={})
    audit_record(actor=Actor.for_user(people.helpdesk_a), verb="device.lock", target=device, changes={})

    client.force_login(people.global_admin)
    page = client.get(reverse("admin:index")).content.decode()
    sidebar = page[page.index('id="recent-actions-module"') :]
    assert "Your recent actions" in sidebar
    assert "Device rename" in sidebar and "HOME-1" in sidebar
    assert "Device lock" not in sidebar  # someone else's
    assert reverse("admin:core_auditevent_changelist") in sidebar
    assert "None available" not in page

    client.force_login(people.helpdesk_a)
    page = client.get(reverse("admin:index")).content.decode()
    assert "Device lock" in page[page.index('id="recent-actions-module"') :]
