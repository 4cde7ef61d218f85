"""Compliance sweep over a large fleet: seconds, devices per second, SQL queries, peak memory.

Target (issue 4): 100,000 devices x 5 policies in <= 60 s on this machine, memory bounded. The
script fills the PostgreSQL database in DATABASE_URL (bulk inserts in a child process, so its
memory does not count): devices on every platform with inventories, people in user groups, a
rule-based device group, and five policies with mixed targets (all devices, a user group with an
exclusion, a device group, a scoped policy, a narrow user group). Then it runs the sweep twice in
this process: the first writes every failure and state, the second finds nothing changed.

    DATABASE_URL=postgres://postgres@localhost:5432/mdm_bench_compliance \\
        .venv/bin/python bench/compliance_sweep.py --devices 100000 --recreate

``--recreate`` drops and creates the database named in DATABASE_URL: point it at a throw-away one.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm_portal.settings")
BATCH = 5000
APPS = ["com.microsoft.teams", "com.microsoft.outlook", "com.slack", "com.spotify.music", "com.whatsapp"]
BLOCKED = ["com.example.torrent", "com.example.game", "com.tiktok"]


def recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(n: int) -> None:
    """Bulk-insert the fleet (not through the services: we measure the sweep, not seeding)."""
    import random
    import uuid
    from datetime import timedelta

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from devices.choices import EnrollmentMethod, GroupMembershipType, GroupRuleField, LifecycleState, Ownership
    from devices.models import Device, DeviceGroup, DeviceGroupRule, DeviceInventory
    from devices.versions import version_key
    from mdm_portal.core.audit import Actor
    from mdm_portal.core.models import Scope, User, UserGroup
    from policies.services import policies as policies_service

    call_command("migrate", verbosity=0)
    if Device.objects.exists():
        raise SystemExit("The database already holds devices: use --recreate on a throw-away database.")
    rng = random.Random(2026)
    actor = Actor.system("bench")
    emea, amer = Scope.objects.create(name="EMEA", slug="emea"), Scope.objects.create(name="Americas", slug="amer")
    people = User.objects.bulk_create(User(username=f"person{i:05d}", email=f"p{i}@example.com") for i in range(2000))
    sales = UserGroup.objects.create(name="Sales")
    sales.members.set(people[:800])
    executives = UserGroup.objects.create(name="Executives")
    executives.members.set(people[::40])
    corporate = DeviceGroup.objects.create(name="Corporate", membership_type=GroupMembershipType.DYNAMIC)
    DeviceGroupRule.objects.create(group=corporate, field=GroupRuleField.OWNERSHIP, value=Ownership.CORPORATE)
    kiosks = DeviceGroup.objects.create(name="Kiosks", membership_type=GroupMembershipType.DYNAMIC)
    DeviceGroupRule.objects.create(group=kiosks, field=GroupRuleField.NAME_PATTERN, value="FLEET-000*")
    versions = {
        "ios": ["16.7.8", "17.4", "17.5.1", "18.1"],
        "ipados": ["17.4", "18.0"],
        "android": ["12", "13", "14"],
        "windows": ["10.0.19045", "10.0.22631", "10.0.26100"],
        "macos": ["13.6", "14.5", "15.1"],
        "linux": ["6.1.0", "6.8.0"],
    }
    platforms = ["ios"] * 4 + ["android"] * 3 + ["windows"] * 2 + ["macos", "ipados", "linux"]
    now = timezone.now()
    for start in range(0, n, BATCH):
        devices = []
        for i in range(start, min(start + BATCH, n)):
            platform = platforms[i % len(platforms)]
            os_version = rng.choice(versions[platform])
            devices.append(
                Device(
                    uuid=uuid.uuid4(),
                    name=f"FLEET-{i:07d}",
                    platform=platform,
                    os_version=os_version,
                    os_version_key=version_key(os_version),
                    serial_number=f"FLEET{i:09d}",
                    ownership=Ownership.CORPORATE if i % 4 else Ownership.PERSONAL,
                    scope=emea if i % 2 else amer,
                    primary_user=people[i % len(people)],
                    enrollment_method=EnrollmentMethod.ADMIN_BULK,
                    lifecycle_state=LifecycleState.ENROLLED,
                    enrolled_at=now,
                    last_checkin_at=now - timedelta(days=rng.choice([0, 0, 0, 1, 3, 9, 40])),
                )
            )
        Device.objects.bulk_create(devices)
        DeviceInventory.objects.bulk_create(
            DeviceInventory(
                device=device,
                encrypted=rng.random() > 0.08,
                passcode_set=rng.random() > 0.05,
                passcode_quality=rng.choice(["numeric", "alphanumeric", "complex", "biometric"]),
                passcode_length=rng.choice([4, 6, 6, 8, 12]),
                jailbroken=rng.random() < 0.01,
                installed_apps=[
                    {"identifier": app, "name": app.rsplit(".", 1)[-1], "version": "1.0"}
                    for app in rng.sample(APPS, 3) + ([rng.choice(BLOCKED)] if rng.random() < 0.03 else [])
                ],
                reported_at=now,
            )
            for device in devices
        )
    schedule = [{"action": "mark_noncompliant", "days_after": 3}, {"action": "email", "days_after": 1}]
    policies = [
        ({"name": "iOS baseline", "platform": "ios", "os_min": "17", "passcode_min_length": 6,
          "encryption_required": True, "jailbreak_blocked": True}, [{"target": "all_devices"}]),
        ({"name": "Android sales", "platform": "android", "os_min": "13", "passcode_min_quality": "alphanumeric",
          "jailbreak_blocked": True, "blocked_apps": BLOCKED},
         [{"target": "user_group", "user_group": sales}, {"mode": "exclude", "target": "device_group",
                                                          "device_group": kiosks}]),
        ({"name": "Windows corporate", "platform": "windows", "os_min": "10.0.22631", "encryption_required": True,
          "checkin_max_days": 14}, [{"target": "device_group", "device_group": corporate}]),
        ({"name": "macOS EMEA", "platform": "macos", "scope": emea, "encryption_required": True,
          "checkin_max_days": 7, "os_min": "14"}, [{"target": "all_devices"}]),
        ({"name": "iOS executives", "platform": "ios", "os_min": "17.5", "passcode_min_quality": "complex",
          "blocked_apps": BLOCKED}, [{"target": "user_group", "user_group": executives}]),
    ]  # fmt: skip
    # No re-evaluation task per policy: the sweeps below are what is measured.
    policies_service.reevaluate_schedule = lambda *args, **kwargs: None
    for data, assignments in policies:
        policies_service.policy_save(actor=actor, data=data, actions=schedule, assignments=assignments)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def sweep(batch: int) -> tuple[float, int, dict]:
    from django.db import connection

    from policies.services.compliance import compliance_sweep

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = compliance_sweep(batch=batch)
        seconds = time.perf_counter() - started
    return seconds, queries, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--recreate", action="store_true", help="drop and create the database in DATABASE_URL")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database (a throw-away one with --recreate).")
    if args.seed_only:
        seed(args.devices)
        return
    if args.recreate:
        recreate(url)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--seed-only", "--devices", str(args.devices)], cwd=ROOT, check=True)
    built = time.perf_counter() - started
    print(f"fleet of {args.devices:,} devices with inventories and 5 policies built in {built:.0f} s")

    import django

    django.setup()
    from django.db.models import Count

    from devices.models import Device

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = []
    for label in ("first (writes everything)", "second (nothing changed)"):
        seconds, queries, result = sweep(args.batch)
        rows.append((label, seconds, result, queries))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    print(f"\n{'sweep':<28}{'devices':>9}{'changed':>9}{'batches':>9}{'seconds':>9}{'dev/s':>9}{'queries':>9}")
    for label, seconds, result, queries in rows:
        print(
            f"{label:<28}{result['devices']:>9,}{result['changed']:>9,}{result['batches']:>9}"
            f"{seconds:>9.1f}{result['devices'] / seconds:>9,.0f}{queries:>9}"
        )
    print(f"peak RSS {peak / 1024:.0f} MiB (after django.setup: {baseline / 1024:.0f} MiB)")
    states = Device.objects.values_list("compliance_state").annotate(n=Count("pk")).order_by("compliance_state")
    print("states: " + ", ".join(f"{state} {n:,}" for state, n in states))
    print("target: <= 60 s for 100,000 devices x 5 policies; queries per batch fixed")


if __name__ == "__main__":
    main()
