"""CSV import of corporate identifiers at size: rows/s, total time, memory, error rows.

Target (PRODUCT.md): 100,000 rows in <= 30 s, per-row errors, memory bounded. Runs the import
service (what the Celery task runs) against the database in DATABASE_URL (use PostgreSQL) in a
throw-away test database, on a generated file with some bad rows, people, device groups and live
devices that some rows match.

    DATABASE_URL=postgres://postgres@localhost:5432/mdm_portal \
        .venv/bin/python bench/identifier_import.py --rows 100000
"""

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm_portal.settings")

import django

django.setup()

from django.conf import settings
from django.core.files import File
from django.db import connection
from django.test.utils import setup_test_environment

SCOPES = ("emea", "americas", "apac", "anz")
GROUPS_PER_SCOPE = 3
PEOPLE = 2000


def luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char)
        if position % 2 == 0:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def imei(n: int) -> str:
    body = f"35{n:012d}"
    return body + luhn_digit(body)


def seed(devices: int):
    from devices.choices import EnrollmentMethod, LifecycleState, Ownership
    from devices.models import Device, DeviceGroup
    from devices.versions import version_key
    from mdm_portal.core.models import Scope, User

    # Seed data is bulk-inserted (not through the services): we measure the import, not seeding.
    scopes = [Scope.objects.create(name=slug.upper(), slug=slug) for slug in SCOPES]
    for scope in scopes:
        DeviceGroup.objects.bulk_create(
            DeviceGroup(name=f"{scope.slug}-group-{n}", scope=scope) for n in range(GROUPS_PER_SCOPE)
        )
    User.objects.bulk_create(
        User(username=f"person{n}", email=f"person{n}@example.com", scope=scopes[n % len(scopes)])
        for n in range(PEOPLE)
    )
    # Live devices whose serials appear in the file (every 10th row): a third of them personal.
    Device.objects.bulk_create(
        (
            Device(
                uuid=uuid.uuid4(),
                name=f"LIVE-{n:07d}",
                platform="android",
                os_version="14",
                os_version_key=version_key("14"),
                ownership=Ownership.PERSONAL if n % 3 == 0 else Ownership.CORPORATE,
                scope=scopes[n % len(scopes)],
                serial_number=f"SN{n * 10:09d}",
                enrollment_method=EnrollmentMethod.USER_SELF_SERVICE,
                lifecycle_state=LifecycleState.ENROLLED,
            )
            for n in range(devices)
        ),
        batch_size=5000,
    )
    admin = User.objects.create_user("bench-admin", password=None, is_staff=True, is_superuser=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return admin


def write_csv(path: Path, rows: int, bad_every: int, offset: int) -> int:
    """A file of ``rows`` rows; every ``bad_every``-th row is bad in one of several ways. Returns the bad count."""
    rng = random.Random(rows + offset)
    bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("serial_number,imei,user,scope,device_group,description\n")
        for n in range(rows):
            scope = SCOPES[n % len(SCOPES)]
            serial, number = f"SN{n + offset:09d}", imei(n + offset)
            user = f"person{rng.randrange(PEOPLE)}" if n % 2 else f"person{rng.randrange(PEOPLE)}@example.com"
            group = f"{scope}-group-{n % GROUPS_PER_SCOPE}" if n % 4 == 0 else ""
            if bad_every and n % bad_every == bad_every - 1:
                bad += 1
                kind = (n // bad_every) % 5
                if kind == 0:
                    number = number[:-1] + str((int(number[-1]) + 1) % 10)  # wrong check digit
                elif kind == 1:
                    scope = "emae"
                elif kind == 2:
                    serial = f"SN{n + offset - 1:09d}"  # the previous row's serial
                elif kind == 3:
                    user = "nobody-by-that-name"
                else:
                    serial, number = "", ""
            out.write(f"{serial},{number},{user},{scope},{group},Bench row {n}\n")
    return bad


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def run_import(admin, path: Path, mode: str, *, trace: bool):
    from devices.services.identifiers import identifier_import_create, identifier_import_run
    from mdm_portal.core.audit import Actor

    with path.open("rb") as handle:
        created = identifier_import_create(
            actor=Actor.for_user(admin), uploaded_file=File(handle, path.name), mode=mode
        )
    counter = QueryCounter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = identifier_import_run(import_id=created.pk)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return result, seconds, counter.count, peak, rss_growth


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad-every", type=int, default=97, help="every Nth row is bad (0: none)")
    parser.add_argument("--devices", type=int, default=10_000, help="live devices, matched by every 10th row")
    args = parser.parse_args()

    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = f"bench_mdm_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    media = tempfile.TemporaryDirectory(prefix="bench-media-")
    settings.MEDIA_ROOT = media.name
    try:
        admin = seed(args.devices)
        work = Path(media.name)
        runs = [
            ("good_rows, with bad rows", "good_rows", args.bad_every, 0, False),
            ("all_or_nothing, clean file", "all_or_nothing", 0, args.rows + 10, False),
            ("good_rows, traced memory", "good_rows", args.bad_every, 3 * args.rows, True),
        ]
        print(f"{args.rows:,} rows per file, {args.devices:,} live devices, {PEOPLE:,} people, on {connection.vendor}")
        print(
            f"{'run':30} {'status':9} {'imported':>9} {'bad rows':>9} {'seconds':>8} {'rows/s':>8} "
            f"{'queries':>8} {'peak MB':>8} {'rss +MB':>8}"
        )
        for label, mode, bad_every, offset, trace in runs:
            path = work / f"bench-{mode}-{offset}.csv"
            expected_bad = write_csv(path, args.rows, bad_every, offset)
            result, seconds, queries, peak, rss_growth = run_import(admin, path, mode, trace=trace)
            if result.error_rows != expected_bad:
                raise SystemExit(f"expected {expected_bad} bad rows, got {result.error_rows}: {result.errors[:3]}")
            peak_text = f"{peak / 2**20:8.1f}" if peak is not None else f"{'-':>8}"
            print(
                f"{label:30} {result.status:9} {result.imported_rows:9,} {result.error_rows:9,} {seconds:8.2f} "
                f"{args.rows / seconds:8,.0f} {queries:8,} {peak_text} {rss_growth / 1024:8.1f}"
            )
        print("target: 100,000 rows in <= 30 s; peak MB is Python memory traced during the run (tracemalloc slows it)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        media.cleanup()


if __name__ == "__main__":
    main()
