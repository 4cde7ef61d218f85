"""An evaluation batch holds its devices until it has written them (PostgreSQL row locks).

Without the lock, a check-in committed between the batch's read and its write was overwritten by
the batch's older reading, and two sweeps at once audited the same change twice.
"""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction

from devices.models import Device
from mdm_portal.core.audit import Actor
from policies.services import compliance
from policies.services.compliance_engine import Engine
from tests.factories import DeviceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_device_being_evaluated_cannot_be_written_until_its_batch_commits(monkeypatch, scope_a):
    devices = [DeviceFactory(scope=scope_a) for _ in range(3)]
    read, release = threading.Event(), threading.Event()
    real_apply = Engine.apply

    def apply_then_wait(self, rows, **kwargs):
        outcomes = real_apply(self, rows, **kwargs)
        read.set()  # the batch has read and evaluated its devices; its states are not written yet
        release.wait(timeout=30)
        return outcomes

    monkeypatch.setattr(Engine, "apply", apply_then_wait)
    errors: list[BaseException] = []

    def sweep():
        try:
            compliance.compliance_evaluate_devices(Device.objects.all(), actor=Actor.system("test"), batch=10)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    worker = threading.Thread(target=sweep)
    worker.start()
    try:
        assert read.wait(timeout=30), "the batch never read its devices"
        # What a check-in does first: write its device. Without waiting, it must find the row locked.
        with pytest.raises(OperationalError, match="lock"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            Device.objects.filter(pk=devices[1].pk).update(os_version="17.5")
    finally:
        release.set()
        worker.join(timeout=30)
    assert not errors, errors
    # Once the batch committed, the same write goes through.
    assert Device.objects.filter(pk=devices[1].pk).update(os_version="17.5") == 1
