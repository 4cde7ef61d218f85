"""Soak: the fleet simulator checking in against gunicorn on PostgreSQL; errors, latency and memory.

Starts gunicorn (``--workers``) serving the portal on a PostgreSQL database of its own (created and
migrated when missing), issues an enrolment token with room for the whole fleet, runs
``python -m agent simulate`` with ``--devices`` devices checking in for ``--duration`` seconds, and
samples the resident memory (VmRSS) of every process (gunicorn master and workers, the simulator)
every ``--sample`` seconds. Prints check-ins/s, errors, p50/p99 latency and, per process, the first,
last and largest sample. Exits 1 on any error or when a process's memory kept growing.

    make soak                                                       # 10,000 devices x 5 minutes, as CI runs it
    .venv/bin/python bench/soak.py --devices 1000 --duration 45     # a quick look (about 2 minutes)
    SOAK_DATABASE_URL=postgres://postgres@db.example:5432/soak .venv/bin/python bench/soak.py --fresh

The database is its own (``SOAK_DATABASE_URL``, by default ``mdm_soak`` on localhost), never the
``DATABASE_URL`` of the tests or the portal, since ``--fresh`` drops it.

The enrolment endpoint is rate-limited per address (MDM_ENROLL_RATE); the soak raises the limit for
its own server, since every simulated device enrols from 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEFAULT_DATABASE = "postgres://postgres@localhost:5432/mdm_soak"
# Growth of a process's memory over the check-in phase above which the run fails (warm-up excluded).
GROWTH_LIMIT = 0.15

ENROLMENT_SCRIPT = """
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Scope, User
from devices.services.enrollment import enrollment_profile_create
scope, _ = Scope.objects.get_or_create(slug="soak", defaults={"name": "Soak"})
manager, _ = User.objects.get_or_create(username="soak-manager", defaults={"is_staff": True})
from devices.models import EnrollmentProfile
from devices.models.enrollment import MAX_PROFILE_CAPACITY
wanted = int(__import__('os').environ["SOAK_DEVICES"])
profile, token = enrollment_profile_create(
    actor=Actor.system("soak"), name=f"Soak {__import__('uuid').uuid4().hex[:8]}", enrollment_manager=manager,
    scope=scope, capacity=min(wanted, MAX_PROFILE_CAPACITY),
)
# One token for the whole simulated fleet, past the console's per-token limit (a bench, not a person).
EnrollmentProfile.objects.filter(pk=profile.pk).update(capacity=wanted)
print(token)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def ensure_database(url: str, fresh: bool) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


class Sampler(threading.Thread):
    """VmRSS of the gunicorn master, its workers and the simulator, every ``every`` seconds."""

    def __init__(self, every: float):
        super().__init__(daemon=True)
        self.every = every
        self.processes: dict[int, str] = {}
        self.samples: dict[int, list[tuple[float, int]]] = {}
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.gunicorn: int | None = None
        self.checkins_from: float | None = None  # when the check-in phase began (after enrolment)

    def sample(self) -> None:
        if self.gunicorn is not None:
            self.processes.setdefault(self.gunicorn, "gunicorn master")
            for worker in children(self.gunicorn):
                self.processes.setdefault(worker, f"gunicorn worker {worker}")
        now = time.monotonic() - self.started
        for pid in list(self.processes):
            value = rss_kib(pid)
            if value is not None:
                self.samples.setdefault(pid, []).append((now, value))

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)

    def table(self) -> tuple[list[str], bool]:
        lines = [
            f"  {'process':<26} {'samples':>7} {'first MiB':>10} {'last MiB':>9} {'max MiB':>8} {'check-in phase':>15}"
        ]
        grew = False
        for pid, label in self.processes.items():
            points = self.samples.get(pid, [])
            if not points:
                continue
            values = [v for _, v in points]
            phase = [v for t, v in points if self.checkins_from is None or t >= self.checkins_from]
            growth = ""
            if len(phase) >= 3:
                # Warm-up excluded: from the second sample of the check-in phase to the last.
                base = phase[1]
                change = (phase[-1] - base) / base if base else 0.0
                growth = f"{change:+.1%}"
                if change > GROWTH_LIMIT:
                    grew = True
                    growth += " GREW"
            lines.append(
                f"  {label:<26} {len(values):>7} {values[0] / 1024:>10.1f} {values[-1] / 1024:>9.1f} "
                f"{max(values) / 1024:>8.1f} {growth:>15}"
            )
        return lines, grew


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=300, help="seconds of check-ins after enrolment")
    parser.add_argument("--interval", type=float, default=60, help="seconds between a device's check-ins")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=32, help="simulator threads")
    parser.add_argument("--sample", type=float, default=10, help="seconds between memory samples")
    parser.add_argument("--database-url", default=os.environ.get("SOAK_DATABASE_URL", DEFAULT_DATABASE))
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()
    if not options.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("The soak runs on PostgreSQL: pass --database-url postgres://... (or set SOAK_DATABASE_URL).")

    work = Path(tempfile.mkdtemp(prefix="mdm-soak-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CELERY_")},
        "DJANGO_SETTINGS_MODULE": "mdm_portal.settings",
        "DATABASE_URL": options.database_url,
        "MDM_VAR_DIR": str(work / "var"),
        "MEDIA_ROOT": str(work / "media"),
        "MDM_ENROLL_RATE": "1000000/minute",
        "MDM_CHECKIN_INTERVAL_SECONDS": str(int(options.interval)),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DEBUG", None)

    print(f"Database {options.database_url}: preparing (migrate)...", flush=True)
    ensure_database(options.database_url, options.fresh)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    token = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", ENROLMENT_SCRIPT],
        cwd=ROOT, env={**env, "SOAK_DEVICES": str(options.devices)}, capture_output=True, text=True,
    )  # fmt: skip
    if token.returncode:
        raise SystemExit(f"Could not issue the enrolment token:\n{token.stderr}")
    token = token.stdout.strip().splitlines()[-1]

    port = free_port()
    server_log = open(work / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "mdm_portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(options.workers),
         "--timeout", "60", "--backlog", "2048"],
        cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    sampler = Sampler(options.sample)
    sampler.gunicorn = server.pid
    simulator = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"gunicorn did not start; see {work / 'gunicorn.log'}") from None
                time.sleep(0.2)
        print(
            f"gunicorn: {options.workers} workers on 127.0.0.1:{port}; simulator: {options.devices} devices, "
            f"{options.duration:g} s of check-ins every {options.interval:g} s, {options.concurrency} threads",
            flush=True,
        )
        simulator = subprocess.Popen(
            [PYTHON, "-m", "agent", "simulate", "--server", f"http://127.0.0.1:{port}",
             "--devices", str(options.devices), "--duration", str(options.duration),
             "--interval", str(options.interval), "--concurrency", str(options.concurrency),
             "--seed", str(options.seed), "--drift-rate", "0.02", "--json"],
            cwd=ROOT, env={**env, "MDM_ENROLLMENT_TOKEN": token}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        sampler.processes[simulator.pid] = "simulator"
        sampler.start()

        def watch_log():
            for line in simulator.stderr:
                if "checking in for" in line and sampler.checkins_from is None:
                    sampler.checkins_from = time.monotonic() - sampler.started
                    print(f"  {line.strip()}", flush=True)

        watcher = threading.Thread(target=watch_log, daemon=True)
        watcher.start()
        output = simulator.stdout.read()
        simulator.wait(timeout=options.duration + 3600)
        sampler.sample()
    finally:
        sampler.stop.set()
        if simulator is not None and simulator.poll() is None:
            simulator.kill()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        server_log.close()

    report = json.loads(output[output.index("{") :]) if "{" in output else {}
    if not report:
        print(f"The simulator printed no report (exit {simulator.returncode}).")
        return 1
    errors = report["enroll_failed"] + report["checkins_failed"] + sum(report["errors_by_code"].values())
    server_errors = (work / "gunicorn.log").read_text(errors="replace").count("Traceback")
    table, grew = sampler.table()
    print(
        "\n".join(
            [
                f"Soak: {report['devices']} devices, gunicorn x{options.workers}, PostgreSQL",
                f"  enrolled:         {report['enrolled']} in {report['enroll_seconds']:.1f} s "
                f"(p50 {report['enroll_p50_ms']:.1f} ms, p99 {report['enroll_p99_ms']:.1f} ms)",
                f"  check-ins:        {report['checkins']} in {report['duration_seconds']:.1f} s = "
                f"{report['checkins_per_second']:.1f}/s",
                f"  latency:          p50 {report['checkin_p50_ms']:.1f} ms, p99 {report['checkin_p99_ms']:.1f} ms",
                f"  commands:         {report['commands_executed']} executed",
                f"  errors:           {errors} (enrol failed {report['enroll_failed']}, check-ins failed "
                f"{report['checkins_failed']}, by code {report['errors_by_code'] or 'none'}); "
                f"server tracebacks {server_errors}",
                f"  memory (VmRSS, sampled every {options.sample:g} s; growth over the check-in phase, "
                f"warm-up excluded):",
                *table,
                f"  logs in {work}",
            ]
        )
    )
    return 1 if errors or server_errors or grew else 0


if __name__ == "__main__":
    sys.exit(main())
