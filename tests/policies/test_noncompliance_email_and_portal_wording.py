"""What an employee is told about a noncompliant device: the email (link, deadline, contact), the
portal's promise of when that email comes, the job that keeps the promise, and fix steps per platform."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from devices.choices import ComplianceState
from devices.services.checkin import device_inventory_store, inventory_digest
from policies.compliance import rule_help
from policies.services import compliance_actions_run
from policies.services.compliance import device_compliance_evaluate
from policies.services.policies import policy_save
from tests.factories import SYSTEM, DeviceFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 26, 20, 31, tzinfo=UTC)  # a Thursday
FAILING = {"encrypted": False, "passcode_set": True, "passcode_quality": "numeric", "passcode_length": 6}


def policy(platform: str = "ios", email_after: int = 0):
    return policy_save(
        actor=SYSTEM,
        data={"name": f"{platform} baseline", "platform": platform, "encryption_required": True},
        actions=[{"action": "mark_noncompliant", "days_after": 1}, {"action": "email", "days_after": email_after}],
        assignments=[{"target": "all_devices"}],
    )


def fail(device):
    device_inventory_store(device=device, inventory=FAILING, digest=inventory_digest(FAILING))
    return device_compliance_evaluate(device)


@pytest.fixture
def mdm_settings(settings):
    settings.MDM_PUBLIC_URL = "https://mdm.example.com"
    settings.MDM_HELPDESK_CONTACT = "the IT helpdesk (help@example.com, ext. 4357)"
    settings.DEFAULT_FROM_EMAIL = "it-mdm@example.com"
    settings.MDM_AGENT_NAME = "Acme Device Agent"
    return settings


def test_the_email_links_to_the_device_page_gives_the_deadline_and_a_real_contact(people, mdm_settings, client):
    with time_machine.travel(T0, tick=False):
        policy()
        assert fail(people.device_a) == ComplianceState.IN_GRACE
        assert compliance_actions_run() == {"email": 1}
    (message,) = mail.outbox
    link = "https://mdm.example.com" + reverse("portal:device_compliance", kwargs={"uuid": people.device_a.uuid})
    html = message.alternatives[0][0]
    assert message.from_email == "it-mdm@example.com"
    for body in (message.body, html):
        assert link in body
        assert "Fix by Friday 27 November, 20:31" in body
        assert "contact the IT helpdesk (help@example.com, ext. 4357)" in body
    assert f'<a href="{link}">' in html
    assert "reply to your IT helpdesk" not in message.body

    # The deadline is the one the portal shows on the page the link opens.
    client.force_login(people.employee)
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        page = client.get(link.removeprefix("https://mdm.example.com")).content.decode()
    assert "Friday 27 November, 20:31" in page
    assert "Questions about a requirement? Contact the IT helpdesk (help@example.com, ext. 4357)." in page


def test_an_email_to_a_device_past_its_deadline_says_it_has_lost_access(people, mdm_settings):
    with time_machine.travel(T0, tick=False):
        policy(email_after=2)
        fail(people.device_a)
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        assert compliance_actions_run() == {"mark_noncompliant": 1, "email": 1}
    (message,) = mail.outbox
    assert "Fix by" not in message.body
    assert "It has lost access to company email, files and apps until it is fixed." in message.body


def test_the_portal_says_when_the_email_comes_and_the_job_runs_that_often(people, client):
    with time_machine.travel(T0, tick=False):
        policy()
        fail(people.device_a)
        client.force_login(people.employee)
        page = client.get(reverse("portal:device_compliance", kwargs={"uuid": people.device_a.uuid}))
    steps = page.context["next_steps"]
    assert ("Within 5 minutes", "you get an email with the steps on this page") in [
        (step["when"], step["text"]) for step in steps
    ]
    text = page.content.decode()
    assert "Within 5 minutes</time>:</strong> you get an email with the steps on this page." in text
    assert ">Now<" not in text

    call_command("sync_schedules", stdout=StringIO())
    job = PeriodicTask.objects.get(task="policies.tasks.compliance_actions_task")
    assert (job.interval.every, job.interval.period) == (300, "seconds")


def test_iphone_steps_send_the_person_to_check_again_not_to_an_agent(mdm_settings):
    for platform in ("ios", "ipados"):
        for rule in ("encryption_required", "os_min", "checkin_max_days", "blocked_apps", "provisioning_on_time"):
            _, steps = rule_help(rule, platform, "17.4", "17.0")
            text = " ".join(steps)
            assert "Sync now" not in text and "agent" not in text, (platform, rule, text)
            assert "Check again" in text, (platform, rule)
        _, steps = rule_help("encryption_required", platform, error=True, actual="no report")
        assert "agent" not in " ".join(steps)
    # Other platforms name the agent app IT set up.
    _, steps = rule_help("encryption_required", "windows")
    assert steps[-1].startswith("Open Acme Device Agent and choose Sync now")


def test_the_email_for_an_iphone_has_no_agent_step(people, mdm_settings):
    with time_machine.travel(T0, tick=False):
        policy()
        fail(people.device_a)
        compliance_actions_run()
    (message,) = mail.outbox
    assert "Sync now" not in message.body and "Check again" in message.body


def test_a_windows_email_names_the_agent(people, mdm_settings):
    laptop = DeviceFactory(
        name="LT-45189", platform="windows", os_version="10.0.22631", scope=people.scope_a, primary_user=people.employee
    )
    with time_machine.travel(T0, tick=False):
        policy("windows")
        fail(laptop)
        compliance_actions_run()
    (message,) = mail.outbox
    assert "Open Acme Device Agent and choose Sync now" in message.body
