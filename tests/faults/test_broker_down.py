"""The broker stopped: check-ins, the IT console, the Company Portal and the API keep answering, and the
work asked for meanwhile waits in the outbox until the broker is back, then a real worker runs it.
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
from mdm_portal.core import services as core_services
from mdm_portal.core.models import OutboxMessage
from mdm_portal.core.outbox import outbox_relay
from policies.models import ConfigurationProfile
from policies.services.profiles import subject_of
from tests.devices.protocol.conftest import identity, inventory
from tests.factories import SYSTEM

from .conftest import celery_using, needs_postgres, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_portal_keeps_working_while_the_broker_is_down_and_the_work_is_sent_when_it_is_back(
    client, people, redis_broker, celery_worker_factory
):
    needs_postgres()  # the worker subprocess shares the test's database
    started = time.monotonic()
    _, enrol_token = enrollment_profile_create(
        actor=SYSTEM, name="Phones", enrollment_manager=people.global_admin, scope=people.scope_a, capacity=10
    )
    device, secret = device_enroll(identity=identity(), token=enrol_token, inventory=inventory())
    api_token = core_services.api_token_create(actor=SYSTEM, user=people.global_admin, name="automation")[1]

    redis_broker.stop()
    with celery_using(redis_broker.url):
        # A device checks in.
        checkin = client.post(
            "/agent/v1/checkin",
            json.dumps({"inventory": inventory(battery_percent=42)}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Device {secret}",
        )
        assert checkin.status_code == 200, checkin.content
        # An administrator creates a profile for every device over the API: the fan-out is a task.
        asked = time.monotonic()
        created = client.post(
            reverse("profile-list"),
            json.dumps(
                {
                    "name": "Passcode for everyone",
                    "kind": "passcode",
                    "scope": None,
                    "settings": {"require_passcode": True, "min_length": 6},
                    "assignments": [{"target": "all_devices"}],
                }
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {api_token}",
        )
        assert created.status_code == 201, created.content
        assert time.monotonic() - asked < 5, "the request waited for the broker"
        # The IT console and the Company Portal.
        client.force_login(people.global_admin)
        for url in ("/admin/", "/admin/devices/device/", f"/admin/devices/device/{device.pk}/change/"):
            assert client.get(url).status_code == 200, url
        client.force_login(people.employee)
        assert client.get("/portal/", follow=True).status_code == 200

        # The fan-out message is safe in the outbox, with the reason it is there.
        [waiting] = OutboxMessage.objects.all()
        assert waiting.task == "policies.tasks.profile_fanout_task"
        assert waiting.attempts == 1 and waiting.last_error
        assert outbox_relay() == 0  # the beat relay while the broker is still down: it stays
        assert OutboxMessage.objects.get().attempts == 2
        assert not DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE).exists()

        # The broker is back: the relay sends it, a worker runs it.
        redis_broker.start()
        assert outbox_relay() == 1
        assert not OutboxMessage.objects.exists()

    worker = celery_worker_factory(redis_broker.url)
    worker.start()
    profile = ConfigurationProfile.objects.get()
    commands = DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE, subject=subject_of(profile))
    enrolled = set(Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED).values_list("pk", flat=True))
    assert device.pk in enrolled
    wait_for(lambda: commands.count() >= len(enrolled), timeout=30, what=lambda: "the fan-out to run\n" + worker.log())
    time.sleep(0.5)
    per_device = dict(commands.values("device_id").annotate(n=Count("pk")).values_list("device_id", "n"))
    assert per_device == dict.fromkeys(enrolled, 1)
    assert time.monotonic() - started < 60
