"""Admin device changelist and API device list at fleet size: server time and query count.

Target (PRODUCT.md): at 100,000 devices, <= 300 ms server time with a constant query count.
Runs against the database in DATABASE_URL (use PostgreSQL) in a throw-away test database.

    DATABASE_URL=postgres://postgres@localhost:5432/mdm_portal \
        .venv/bin/python bench/admin_device_list.py --devices 100000
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm_portal.settings")

import django

django.setup()

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, setup_test_environment
from django.utils import timezone

BATCH = 5000


def seed(n: int):
    # Bench data is bulk-inserted (not through the services): we measure reads, not seeding.
    from devices.choices import EnrollmentMethod, LifecycleState, Ownership, Platform
    from devices.models import Device
    from devices.versions import version_key
    from mdm_portal.core.audit import Actor
    from mdm_portal.core.models import Role, Scope, User
    from mdm_portal.core.services import role_assignment_save

    system = Actor.system("bench")
    scopes = [Scope.objects.create(name=f"Region {i}", slug=f"region-{i}") for i in range(4)]
    platforms = list(Platform.values)
    now = timezone.now()
    for start in range(0, n, BATCH):
        Device.objects.bulk_create(
            [
                Device(
                    uuid=uuid.uuid4(),
                    name=f"DEV-{i:07d}",
                    platform=platforms[i % len(platforms)],
                    os_version="17.4",
                    os_version_key=version_key("17.4"),
                    ownership=Ownership.CORPORATE if i % 3 else Ownership.PERSONAL,
                    scope=scopes[i % len(scopes)],
                    serial_number=f"SN{i:010d}",
                    enrollment_method=EnrollmentMethod.ADMIN_BULK,
                    lifecycle_state=LifecycleState.ENROLLED,
                    last_checkin_at=now,
                )
                for i in range(start, min(n, start + BATCH))
            ]
        )
    admin = User.objects.create_user("bench-admin", password=None, is_staff=True)
    helpdesk = User.objects.create_user("bench-helpdesk", password=None, is_staff=True)
    role_assignment_save(
        actor=system,
        name="bench global",
        role=Role.objects.get(name="Global administrator"),
        users=[admin],
        user_groups=[],
        all_scopes=True,
        scopes=[],
    )
    role_assignment_save(
        actor=system,
        name="bench helpdesk",
        role=Role.objects.get(name="Helpdesk operator"),
        users=[helpdesk],
        user_groups=[],
        all_scopes=False,
        scopes=[scopes[0]],
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return admin, helpdesk


def measure(client: Client, url: str, runs: int) -> tuple[float, float, int]:
    client.get(url)  # warm caches
    times, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        queries = len(ctx.captured_queries)
    return statistics.median(times), max(times), queries


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    setup_test_environment()
    # A database of its own, so a test run at the same time is not disturbed.
    connection.settings_dict["TEST"]["NAME"] = f"bench_mdm_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        started = time.perf_counter()
        admin, helpdesk = seed(args.devices)
        print(f"seeded {args.devices} devices in {time.perf_counter() - started:.1f} s on {connection.vendor}")
        pages = [
            ("admin changelist", "/admin/devices/device/"),
            ("admin changelist, search", "/admin/devices/device/?q=DEV-00123"),
            ("admin changelist, filtered", "/admin/devices/device/?platform__exact=android&ownership__exact=corporate"),
            ("admin changelist, last page", f"/admin/devices/device/?p={max(args.devices // 4 // 50 - 1, 0)}"),
            ("API device list", "/api/v1/devices/"),
        ]
        print(f"{'page':32} {'who':10} {'median ms':>10} {'max ms':>8} {'queries':>8}")
        for who, user in (("global", admin), ("helpdesk", helpdesk)):
            client = Client()
            client.force_login(user)
            for label, url in pages:
                median, worst, queries = measure(client, url, args.runs)
                print(f"{label:32} {who:10} {median:10.1f} {worst:8.1f} {queries:8d}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
