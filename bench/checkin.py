"""Agent check-in throughput: the fleet simulator against gunicorn + PostgreSQL on loopback.

Targets (PRODUCT.md): >= 300 check-ins/s on 2 cores, p99 < 100 ms, SQL queries per check-in the
same at every fleet size. For each fleet size the script builds a fresh database, registers that
many devices (bulk insert: the background fleet), starts gunicorn, lets the simulator enrol a set of
devices through the protocol and check them in back to back with unchanged inventory, and prints
the figures. It also counts the SQL queries of one unchanged check-in in-process.

    .venv/bin/python bench/checkin.py --fleet 1000 100000 --devices 300 --seconds 20
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_PG", "postgres://postgres@localhost:5432")
PYTHON = sys.executable


def run(*args, env):
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def prepare_database(name: str, fleet: int, env: dict) -> str:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    run("migrate", "--noinput", env=env)
    script = f"""
import uuid
from django.utils import timezone
from devices.models import Device
from devices.choices import EnrollmentMethod, LifecycleState, Ownership, Platform
from devices.services.enrollment import enrollment_profile_create
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Scope, User
actor = Actor.system("bench")
scope = Scope.objects.create(name="Bench", slug="bench")
platforms = list(Platform.values)
now = timezone.now()
batch = []
for i in range({fleet}):
    batch.append(Device(uuid=uuid.uuid4(), name=f"FLEET-{{i:07d}}", platform=platforms[i % 6], os_version="17.4",
        ownership=Ownership.CORPORATE, scope=scope, serial_number=f"FLEET{{i:09d}}",
        enrollment_method=EnrollmentMethod.ADMIN_BULK, lifecycle_state=LifecycleState.ENROLLED, last_checkin_at=now))
    if len(batch) == 5000:
        Device.objects.bulk_create(batch); batch = []
Device.objects.bulk_create(batch)
manager = User.objects.create_user("bench-manager", is_staff=True)
_, token = enrollment_profile_create(actor=actor, name="bench", enrollment_manager=manager, scope=scope, capacity=1000)
print(token)
"""
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    with psycopg.connect(f"{PG}/{name}", autocommit=True) as conn:
        conn.execute("ANALYZE")
    return out.stdout.strip().splitlines()[-1]


def queries_per_checkin(env: dict, token: str) -> int:
    script = f"""
import json
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from devices.services.enrollment import device_enroll
device, secret = device_enroll(identity={{"platform": "linux", "serial_number": "QCOUNT1"}}, token="{token}",
                               inventory={{"os_version": "12"}})
client = Client()
body = json.dumps({{"inventory": {{"os_version": "12"}}}})
client.post("/agent/v1/checkin", body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {{secret}}")
with CaptureQueriesContext(connection) as ctx:
    client.post("/agent/v1/checkin", body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {{secret}}")
print(len(ctx.captured_queries))
"""
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback only)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer at {url}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fleet", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--devices", type=int, default=300, help="simulated devices that enrol and check in")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=12, help="simulator threads")
    parser.add_argument("--port", type=int, default=8790)
    args = parser.parse_args()

    from agent.simulator import run_simulation

    rows = []
    for fleet in args.fleet:
        name = f"bench_checkin_{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "DATABASE_URL": f"{PG}/{name}",
            "DJANGO_SETTINGS_MODULE": "mdm_portal.settings",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "MDM_VAR_DIR": f"/tmp/{name}",
        }
        token = prepare_database(name, fleet, env)
        queries = queries_per_checkin(env, token)
        server = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "mdm_portal.wsgi", "-b", f"127.0.0.1:{args.port}", "-w", str(args.workers),
             "--log-level", "warning", "--keep-alive", "30"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(f"http://127.0.0.1:{args.port}/healthz")
            report = run_simulation(
                f"http://127.0.0.1:{args.port}", token, args.devices, duration=args.seconds, interval=0,
                concurrency=args.concurrency, seed=2026, drift_rate=0.0, not_now_rate=0.0,
            )  # fmt: skip
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        rows.append((fleet, report, queries))
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    columns = ("fleet", "enrolled", "check-ins", "failed", "per s", "p50 ms", "p99 ms", "queries")
    print("\n" + " ".join(f"{c:>9}" for c in columns))
    for fleet, report, queries in rows:
        values = (
            fleet, report.enrolled, report.checkins, report.checkins_failed, f"{report.checkins_per_second:.0f}",
            f"{report.checkin_p50_ms:.1f}", f"{report.checkin_p99_ms:.1f}", queries,
        )  # fmt: skip
        print(" ".join(f"{v:>9}" for v in values))
    print("targets: >= 300 check-ins/s, p99 < 100 ms, queries per check-in equal at every fleet size")
    print(json.dumps({str(f): {"errors": r.errors_by_code} for f, r, _ in rows}))


if __name__ == "__main__":
    main()
