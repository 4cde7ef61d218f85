"""Throwaway servers for the fault tests: a Redis broker, a PostgreSQL cluster, Celery workers, gunicorn.

Everything listens on loopback on a free port, belongs to this test run only and is killed in the
fixture's teardown (process groups), so the shared PostgreSQL, Redis and RabbitMQ are never touched.
A missing binary skips the test and names the Debian package that provides it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.celery_broker import celery_using  # noqa: F401 (re-exported for the fault tests)

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, *, timeout: float, interval: float = 0.05, what="the condition"):
    """Poll ``check`` until it is true; ``what`` (text, or a callable giving it) names it on a timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what() if callable(what) else what}.")


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def kill_group(process: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def needs_postgres():
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI runs on PostgreSQL)")


def database_url() -> str:
    """The URL of the database this test uses (pytest-django's ``test_<name>``), for a subprocess."""
    from django.db import connection

    d = connection.settings_dict
    auth = d["USER"] or ""
    if d.get("PASSWORD"):
        auth += f":{d['PASSWORD']}"
    host = d.get("HOST") or "localhost"
    port = d.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{d['NAME']}"


def subprocess_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mdm_portal.settings",
        MDM_VAR_DIR=str(tmp / "var"),
        MEDIA_ROOT=str(tmp / "media"),
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
    )
    env.pop("DEBUG", None)
    env.update(extra)
    return env


# -- a broker that never answers -----------------------------------------------------------------


class BlackHole:
    """A loopback TCP listener that accepts every connection, counts it and never answers.

    What a hung broker looks like to a client (a frozen Redis, a paused machine: the kernel still
    completes the handshake): the connection opens, the reply never comes. After ``hang_up_after``
    seconds it closes the connection, so a client without a socket timeout is not stuck forever
    (it then sees the connection closed, not a timeout).
    """

    def __init__(self, hang_up_after: float = 10.0):
        self.hang_up_after = hang_up_after
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)  # so the accepting thread notices ``close`` soon
        self.port = self.server.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.hang_ups: list[threading.Timer] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def connections(self) -> int:
        return len(self.accepted)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                connection, _ = self.server.accept()
            except TimeoutError:
                continue
            self.accepted.append(connection)
            hang_up = threading.Timer(self.hang_up_after, connection.close)
            hang_up.daemon = True
            hang_up.start()
            self.hang_ups.append(hang_up)

    def close(self) -> None:
        self.closed.set()
        self.thread.join(timeout=5)
        self.server.close()
        for hang_up in self.hang_ups:
            hang_up.cancel()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.close()


# -- Redis ----------------------------------------------------------------------------------------


class Redis:
    """A Redis server (the broker) that can be stopped and started again on the same port."""

    def __init__(self, binary: str, tmp: Path):
        self.binary, self.tmp = binary, tmp
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: port_open(self.port), timeout=10, what="redis-server to listen")

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process = None
        wait_for(lambda: not port_open(self.port), timeout=10, what="redis-server to stop")


@pytest.fixture
def redis_broker(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    redis = Redis(binary, tmp_path)
    redis.start()
    yield redis
    redis.stop()


# -- Celery worker --------------------------------------------------------------------------------

WORKER = """
import os, sys, time
import django
django.setup()
from policies.services import profiles
profiles.FANOUT_BATCH = int(os.environ["FAULTS_FANOUT_BATCH"])
pause = float(os.environ["FAULTS_BATCH_PAUSE"])
_batch = profiles._fanout_batch
def slow_batch(*args, **kwargs):
    _batch(*args, **kwargs)
    time.sleep(pause)
profiles._fanout_batch = slow_batch
from policies.services import compliance, compliance_actions
sweep_batch = int(os.environ["FAULTS_SWEEP_BATCH"])
_sweep = compliance.compliance_sweep
compliance.compliance_sweep = lambda **kwargs: _sweep(**{"batch": sweep_batch, **kwargs})
_write = compliance.compliance_states_write
def slow_write(**kwargs):  # the sweep's per-batch write: the pause falls inside the batch's transaction
    changed = _write(**kwargs)
    time.sleep(pause)
    return changed
compliance.compliance_states_write = slow_write
compliance_actions.CHUNK = int(os.environ["FAULTS_ACTIONS_CHUNK"])
_each = compliance_actions._each
def slow_each(*args, **kwargs):  # one chunk of an action: the pause falls inside the chunk's transaction
    done = _each(*args, **kwargs)
    time.sleep(pause)
    return done
compliance_actions._each = slow_each
from mdm_portal.celery import app
# Scan for messages a dead worker left unacknowledged every second (kombu: every 100 s), so the test
# need not wait; the visibility timeout itself comes from CELERY_BROKER_VISIBILITY_TIMEOUT.
app.conf.broker_transport_options = {
    **app.conf.broker_transport_options, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
}
app.worker_main(["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "-n", os.environ["FAULTS_WORKER_NAME"]])
"""


class Worker:
    """``celery worker`` in its own process group, on the test's database and the throwaway broker."""

    def __init__(
        self,
        tmp: Path,
        broker_url: str,
        *,
        fanout_batch: int = 2000,
        sweep_batch: int = 2000,
        actions_chunk: int = 500,
        batch_pause: float = 0.0,
    ):
        """``batch_pause`` seconds after each fan-out batch, sweep batch and action chunk, so a kill lands mid-run."""
        self.tmp, self.broker_url = tmp, broker_url
        self.fanout_batch, self.sweep_batch, self.actions_chunk = fanout_batch, sweep_batch, actions_chunk
        self.batch_pause = batch_pause
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        number = len(list(self.tmp.glob("worker-*.log"))) + 1  # every worker of the test keeps its own log
        log = open(self.tmp / f"worker-{number:02d}.log", "wb")  # noqa: SIM115 (closed with the process)
        env = subprocess_env(
            self.tmp,
            DATABASE_URL=database_url(),
            DATABASE_CONN_MAX_AGE="0",
            CELERY_BROKER_URL=self.broker_url,
            CELERY_BROKER_VISIBILITY_TIMEOUT="3",
            FAULTS_FANOUT_BATCH=str(self.fanout_batch),
            FAULTS_SWEEP_BATCH=str(self.sweep_batch),
            FAULTS_ACTIONS_CHUNK=str(self.actions_chunk),
            FAULTS_BATCH_PAUSE=str(self.batch_pause),
            FAULTS_WORKER_NAME=f"faults{number}@localhost",
            LOG_LEVEL="INFO",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (an OOM kill, a lost machine)."""
        if self.process is not None:
            kill_group(self.process, signal.SIGKILL)
            self.process = None

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))

    def succeeded(self, task: str) -> int:
        """How many runs of ``task`` the test's workers (all of them, killed ones included) finished."""
        needle = re.compile(rf"Task {re.escape(task)}\[[0-9a-f-]+\] succeeded")
        return sum(len(needle.findall(p.read_text(errors="replace"))) for p in self.tmp.glob("worker-*.log"))


@pytest.fixture
def celery_worker_factory(tmp_path):
    workers: list[Worker] = []

    def make(broker_url: str, **options) -> Worker:
        worker = Worker(tmp_path, broker_url, **options)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.kill()


# -- PostgreSQL cluster ---------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """A PostgreSQL cluster of its own (initdb) on a free loopback port; stop and start at will."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="mdm-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
            shutil.chown(self.dir, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def run(self, *command: str, timeout: float = 30) -> None:
        subprocess.run([*self.as_postgres, *command], check=True, timeout=timeout, capture_output=True)

    def init(self) -> None:
        initdb = str(self.bin / "initdb")
        self.run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        log = str(self.dir / "log")
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres_cluster():
    needs_postgres()
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed: apt-get install postgresql")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("initdb refuses root and runuser is missing: apt-get install util-linux")
    cluster = PostgresCluster(bin_dir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
