"""Cleanup rules over a large fleet: the dry-run count, the preview's first page, and a delete run.

The script fills the PostgreSQL database in DATABASE_URL (bulk inserts in a child process): a fleet
of N devices on every platform that checked in recently, of which M Android devices have been
silent for 120 to 300 days. An Android rule "delete after 90 days" then takes exactly those M. It
times the dry-run count, the admin preview's first page (through the Django test client, as a
global administrator) and the run itself (each device: a delete request, then forced unenrolment).

    DATABASE_URL=postgres://postgres@localhost:5432/mdm_bench_cleanup \\
        .venv/bin/python bench/cleanup.py --devices 20000 --stale 2000 --recreate

``--recreate`` drops and creates the database named in DATABASE_URL: point it at a throw-away one.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm_portal.settings")
BATCH = 5000
RECENT = [0, 1, 3, 40]
PLATFORMS = ["ios"] * 4 + ["android"] * 3 + ["windows"] * 2 + ["macos", "ipados", "linux"]


def recreate(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(n: int, stale: int) -> None:
    """Bulk-insert the fleet (not through the services: we measure the rule, not seeding)."""
    import random
    import uuid
    from datetime import timedelta

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from devices.choices import EnrollmentMethod, LifecycleState, Ownership
    from devices.models import Device
    from mdm_portal.core.models import Scope, User

    call_command("migrate", verbosity=0)
    if Device.objects.exists():
        raise SystemExit("The database already holds devices: use --recreate on a throw-away database.")
    rng = random.Random(2026)
    emea, amer = Scope.objects.create(name="EMEA", slug="emea"), Scope.objects.create(name="Americas", slug="amer")
    people = User.objects.bulk_create(User(username=f"person{i:05d}", email=f"p{i}@example.com") for i in range(2000))
    User.objects.create_superuser("bench-admin", "bench@example.com", "bench")
    now = timezone.now()
    android = [i for i in range(n) if PLATFORMS[i % len(PLATFORMS)] == "android"]
    if stale > len(android):
        raise SystemExit(f"Only {len(android):,} Android devices in a fleet of {n:,}: ask for fewer stale ones.")
    silent = set(rng.sample(android, stale))
    for start in range(0, n, BATCH):
        Device.objects.bulk_create(
            Device(
                uuid=uuid.uuid4(),
                name=f"FLEET-{i:07d}",
                platform=PLATFORMS[i % len(PLATFORMS)],
                serial_number=f"FLEET{i:09d}",
                ownership=Ownership.CORPORATE if i % 4 else Ownership.PERSONAL,
                scope=emea if i % 2 else amer,
                primary_user=people[i % len(people)],
                enrollment_method=EnrollmentMethod.ADMIN_BULK,
                lifecycle_state=LifecycleState.ENROLLED,
                enrolled_at=now - timedelta(days=400),
                last_checkin_at=now - timedelta(days=rng.randint(120, 300) if i in silent else rng.choice(RECENT)),
            )
            for i in range(start, min(start + BATCH, n))
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def timed(fn):
    from django.db import connection

    queries = 0

    def count(execute, sql, params, many, context):
        nonlocal queries
        queries += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
    return seconds, queries, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=20_000)
    parser.add_argument("--stale", type=int, default=2_000, help="Android devices silent past the rule")
    parser.add_argument("--recreate", action="store_true", help="drop and create the database in DATABASE_URL")
    parser.add_argument("--seed-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database (a throw-away one with --recreate).")
    if args.seed_only:
        seed(args.devices, args.stale)
        return
    if args.recreate:
        recreate(url)
    started = time.perf_counter()
    command = [sys.executable, __file__, "--seed-only", "--devices", str(args.devices), "--stale", str(args.stale)]
    subprocess.run(command, cwd=ROOT, check=True)
    built = time.perf_counter() - started
    print(f"fleet of {args.devices:,} devices ({args.stale:,} silent Android) built in {built:.0f} s")

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    from devices.choices import LifecycleState
    from devices.models import Device
    from mdm_portal.core.audit import Actor
    from mdm_portal.core.models import User
    from retirement.choices import CleanupAction
    from retirement.models import CleanupRule, RetirementRequest
    from retirement.services import cleanup_candidates, cleanup_rule_run, cleanup_rule_save

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    actor = Actor.system("bench")
    rule = cleanup_rule_save(
        actor=actor, rule=CleanupRule(platform="android", days=90, action=CleanupAction.DELETE, enabled=True)
    )
    client = Client()
    client.force_login(User.objects.get(username="bench-admin"))
    preview = reverse("admin:retirement_cleanuprule_preview", args=[rule.pk])
    client.get(preview)  # warm: templates, content types

    rows = []
    seconds, queries, count = timed(lambda: cleanup_candidates(rule).count())
    rows.append(("dry-run count", seconds, queries, f"{count:,} devices"))
    seconds, queries, response = timed(lambda: client.get(preview))
    if response.status_code != 200:
        raise SystemExit(f"The preview answered {response.status_code}.")
    rows.append(("preview, first page (HTTP)", seconds, queries, f"{len(response.content) // 1024} KiB"))
    seconds, queries, response = timed(lambda: client.get(preview + "?p=20"))
    rows.append(("preview, page 20 (HTTP)", seconds, queries, f"{len(response.content) // 1024} KiB"))
    seconds, queries, result = timed(lambda: cleanup_rule_run(rule=rule, actor=actor))
    rows.append(
        (
            "delete run",
            seconds,
            queries,
            f"{result['taken']:,} taken, {result['skipped']} skipped, {result['batches']} batches, "
            f"{result['taken'] / seconds:,.0f} devices/s, {queries / max(result['taken'], 1):.1f} queries/device",
        )
    )
    seconds, queries, count = timed(lambda: cleanup_candidates(rule).count())
    rows.append(("dry-run count after the run", seconds, queries, f"{count:,} devices"))

    print(f"\n{'step':<30}{'seconds':>9}{'queries':>9}  result")
    for label, seconds, queries, note in rows:
        print(f"{label:<30}{seconds:>9.3f}{queries:>9}  {note}")
    retired = Device.objects.filter(lifecycle_state=LifecycleState.RETIRED).count()
    forced = RetirementRequest.objects.filter(status="forced").count()
    print(f"retired devices {retired:,}, forced requests {forced:,}")


if __name__ == "__main__":
    main()
