"""The broker down or hung: check-ins, the IT console, the Company Portal and the API keep answering, and
the work asked for meanwhile waits in the outbox until the broker is back, then a real worker runs it.

The broker is first a "black hole" (a loopback listener that accepts connections and never answers,
as a frozen Redis does): the first request that sends a task makes one connection attempt (and the
one quick retry the transport options allow), gives up after the socket timeout and leaves its
message in the outbox; every request after it inside the backoff window makes no attempt at all.
No clock is read: the listener counts the attempts.
"""

from __future__ import annotations

import json
import time

import pytest
from django.db.models import Count
from django.urls import reverse

from devices.choices import CommandType, LifecycleState
from devices.models import Device, DeviceCommand
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import outbox
from mdm_portal.core import services as core_services
from mdm_portal.core.models import OutboxMessage
from mdm_portal.core.outbox import outbox_relay
from policies.models import ConfigurationProfile
from policies.services.profiles import subject_of
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM

from .conftest import celery_using, needs_postgres, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def profile_body(name: str) -> str:
    return json.dumps(
        {
            "name": name,
            "kind": "passcode",
            "scope": None,
            "settings": {"require_passcode": True, "min_length": 6},
            "assignments": [{"target": "all_devices"}],
        }
    )


def test_the_portal_keeps_working_while_the_broker_is_down_and_the_work_is_sent_when_it_is_back(
    client, people, redis_broker, celery_worker_factory, black_hole, settings, monkeypatch
):
    needs_postgres()  # the worker subprocess shares the test's database
    _, enrol_token = enrollment_profile_create(
        actor=SYSTEM, name="Phones", enrollment_manager=people.global_admin, scope=people.scope_a, capacity=10
    )
    device, secret = device_enroll(identity=identity(), token=enrol_token, inventory=inventory())
    api_token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="automation")[1]

    redis_broker.stop()
    settings.CELERY_BROKER_SOCKET_TIMEOUT = 1  # how long the first request waits for the hung broker's reply
    # Every request below falls inside the backoff window, however slow the machine.
    monkeypatch.setattr(outbox, "BACKOFF_SECONDS", 3600.0)
    with celery_using(black_hole.url) as app:
        # One attempt, and the one quick retry the transport options allow (``max_retries``).
        allowed = 1 + app.conf.broker_transport_options["max_retries"]
        # A device checks in.
        checkin = client.post(
            "/agent/v1/checkin",
            json.dumps({"inventory": inventory(battery_percent=42)}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {secret}",
        )
        assert checkin.status_code == 200, checkin.content
        # An administrator creates a profile for every device over the API: the fan-out is a task.
        api = {"content_type": "application/json", "HTTP_AUTHORIZATION": f"Bearer {api_token}"}
        created = client.post(reverse("profile-list"), profile_body("Passcode for everyone"), **api)
        assert created.status_code == 201, created.content
        tried = black_hole.connections
        assert 1 <= tried <= allowed, f"the first request made {tried} connection attempts (at most {allowed})"
        # Inside the backoff window: the next changes are committed without trying the broker again.
        again = client.post(reverse("profile-list"), profile_body("Passcode for contractors"), **api)
        assert again.status_code == 201, again.content
        # The IT console and the Company Portal.
        client.force_login(people.global_admin)
        for url in ("/admin/", "/admin/devices/device/", f"/admin/devices/device/{device.pk}/change/"):
            assert client.get(url).status_code == 200, url
        client.force_login(people.employee)
        assert client.get("/portal/", follow=True).status_code == 200
        assert black_hole.connections == tried, "a request inside the backoff window tried the broker"

        # Both fan-out messages are safe in the outbox: the first with the reason, the second never tried.
        profiles = list(ConfigurationProfile.objects.order_by("pk"))
        assert [p.name for p in profiles] == ["Passcode for everyone", "Passcode for contractors"]
        first, second = OutboxMessage.objects.order_by("pk")
        assert {first.task, second.task} == {"policies.tasks.profile_fanout_task"}
        assert first.attempts == 1
        # Given up on by the socket timeout, not waited for until the listener hung up.
        assert "Timeout reading" in first.last_error, first.last_error
        assert second.attempts == 0 and not second.last_error
        # The beat relay is not held back by the window: it tries once more, and both stay.
        assert outbox_relay() == 0
        assert tried < black_hole.connections <= tried + allowed
        assert OutboxMessage.objects.get(pk=first.pk).attempts == 2
        assert OutboxMessage.objects.count() == 2
        assert not DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE).exists()

    # The broker is back: the relay sends both, a worker runs them.
    with celery_using(redis_broker.url):
        redis_broker.start()
        assert outbox_relay() == 2
        assert not OutboxMessage.objects.exists()

    worker = celery_worker_factory(redis_broker.url)
    worker.start()
    enrolled = set(Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED).values_list("pk", flat=True))
    assert device.pk in enrolled
    for profile in profiles:
        commands = DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE, subject=subject_of(profile))
        wait_for(
            lambda commands=commands: commands.count() >= len(enrolled),
            timeout=30,
            what=lambda: "the fan-out to run\n" + worker.log(),
        )
    time.sleep(0.5)
    for profile in profiles:
        commands = DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE, subject=subject_of(profile))
        per_device = dict(commands.values("device_id").annotate(n=Count("pk")).values_list("device_id", "n"))
        assert per_device == dict.fromkeys(enrolled, 1), profile.name
