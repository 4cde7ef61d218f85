"""Desired-state fan-out at size: a change to a profile, or to a required app, assigned to 100,000 devices.

Prints, for the first fan-out (every device gets a delivery or install row and an install
command), a change (a profile setting, or a new app version: every device gets it; the old open
commands are cancelled) and an unchanged re-run: seconds, devices/s, SQL queries, task messages
sent, peak RSS. Runs in a throw-away test database of DATABASE_URL (use PostgreSQL).

    DATABASE_URL=postgres://postgres@localhost:5432/mdm_portal .venv/bin/python bench/profile_fanout.py --devices 100000
    DATABASE_URL=... .venv/bin/python bench/profile_fanout.py --devices 100000 --what app
"""

import argparse
import os
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm_portal.settings")

import django

django.setup()

from django.db import connection
from django.test.utils import setup_test_environment
from django.utils import timezone

PLATFORMS = ("ios", "android", "windows", "macos", "ipados", "linux")


def build_fleet(n: int):
    from devices.choices import EnrollmentMethod, LifecycleState, Ownership
    from devices.models import Device
    from mdm_portal.core.models import Scope, User, UserGroup

    scope = Scope.objects.create(name="Bench", slug="bench")
    users = User.objects.bulk_create(User(username=f"person{i}", scope=scope) for i in range(n // 2))
    group = UserGroup.objects.create(name="Everyone")
    group.members.add(*users)
    now = timezone.now()
    batch = []
    for i in range(n):
        batch.append(
            Device(
                uuid=uuid.uuid4(), name=f"FLEET-{i:07d}", platform=PLATFORMS[i % len(PLATFORMS)],
                os_version="17.4", ownership=Ownership.CORPORATE, scope=scope, serial_number=f"FLEET{i:09d}",
                primary_user=users[i // 2], enrollment_method=EnrollmentMethod.ADMIN_BULK,
                lifecycle_state=LifecycleState.ENROLLED, last_checkin_at=now,
            )
        )  # fmt: skip
        if len(batch) == 10000:
            Device.objects.bulk_create(batch)
            batch = []
    Device.objects.bulk_create(batch)
    return group


class Messages:
    """Counts the task messages the services send (the broker is not needed: the task runs inline)."""

    def __init__(self):
        from apps import tasks as app_tasks
        from policies import tasks as policy_tasks

        self.sent = 0
        for task in (policy_tasks.profile_fanout_task, app_tasks.app_fanout_task):
            task.apply_async = self.counted(task)  # what the outbox calls once the change is committed

    def counted(self, task):
        def apply_async(args=(), kwargs=None, **options):
            self.sent += 1
            return task.run(*args, **(kwargs or {}))

        return apply_async


def measure(label: str, run, messages: Messages, devices: int) -> None:
    queries = 0
    slowest: list[tuple[float, str]] = []

    def counter(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            slowest.append((time.perf_counter() - began, sql[:160]))
            slowest.sort(reverse=True)
            del slowest[3:]

    sent_before = messages.sent
    start = time.perf_counter()
    with connection.execute_wrapper(counter):
        run()
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:<34} {seconds:7.1f} s  {devices / seconds:9,.0f} devices/s  {queries:6,} queries  "
        f"{messages.sent - sent_before} task message(s)  peak RSS {rss:,.0f} MB"
    )
    if os.environ.get("BENCH_SLOWEST"):
        for took, sql in slowest:
            print(f"    {took:6.2f} s  {sql}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--what", choices=("profile", "app"), default="profile")
    args = parser.parse_args()
    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = f"bench_fanout_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from django.db import transaction

        from policies.choices import ProfileKind
        from policies.services.profiles import profile_save
        from tests.factories import SYSTEM

        group = build_fleet(args.devices)
        messages = Messages()
        print(f"{args.devices:,} enrolled devices on {connection.vendor}, {args.what} assigned to a user group of all")
        if args.what == "app":
            return bench_app(group, messages, args.devices)
        state = {}

        def create():
            with transaction.atomic():
                state["profile"] = profile_save(
                    actor=SYSTEM,
                    data={"name": "Passcode", "kind": ProfileKind.PASSCODE},
                    settings={"require_passcode": True, "min_length": 6},
                    assignments=[{"target": "user_group", "user_group": group.pk}],
                )

        eight = {"require_passcode": True, "min_length": 8}

        def change():
            with transaction.atomic():
                profile_save(actor=SYSTEM, profile=state["profile"], data={}, settings=eight)

        unchanged = change  # the same save again: no new version, nothing to send

        measure("create + assign (first fan-out)", create, messages, args.devices)
        measure("change a setting (new version)", change, messages, args.devices)
        measure("save unchanged (nothing to send)", unchanged, messages, args.devices)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def bench_app(group, messages: Messages, devices: int) -> None:
    """A required store app on every platform's devices (one app per platform), then a new version of each."""
    from django.db import transaction

    from apps.choices import AppKind
    from apps.services import app_save, app_version_add
    from tests.factories import SYSTEM

    apps = []

    def create():
        with transaction.atomic():
            for platform in PLATFORMS:
                app = app_save(
                    actor=SYSTEM,
                    data={"name": "Teams", "kind": AppKind.STORE, "platform": platform,
                          "identifier": f"com.microsoft.teams.{platform}"},
                    assignments=[{"target": "user_group", "user_group": group.pk, "intent": "required"}],
                )  # fmt: skip
                app_version_add(actor=SYSTEM, app=app, version="1.0")
                apps.append(app)

    def new_version():
        with transaction.atomic():
            for app in apps:
                app_version_add(actor=SYSTEM, app=app, version="1.1")

    def unchanged():
        from apps.services.delivery import fanout_schedule

        with transaction.atomic():
            for app in apps:
                fanout_schedule(app.pk, reason="bench: nothing changed")

    measure("create + assign (first fan-out)", create, messages, devices)
    measure("new version (supersedence)", new_version, messages, devices)
    measure("re-run unchanged (nothing to send)", unchanged, messages, devices)


if __name__ == "__main__":
    main()
