"""PostgreSQL restarted under load: requests fail cleanly during the outage and recover by themselves.

A throwaway PostgreSQL cluster (initdb, its own port), migrated; gunicorn serving the portal on it;
two client threads sending requests that need the database (a device check-in, a Company Portal
page with a session cookie). The cluster is stopped for a few seconds and started again. During the
outage every answer is a 503 with a sentence (JSON for the agent), never a 500 or a dropped
connection; afterwards the same gunicorn workers (same process ids) answer normally again.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT, free_port, kill_group, port_open, subprocess_env, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

OUTAGE_SECONDS = 3
UNKNOWN_SECRET = "Device dsk_" + "0" * 32 + "_not-enrolled"  # well-formed: looked up in the database
NORMAL = {"/agent/v1/checkin": {401, 403}, "/portal/devices/": {302}}  # the portal: to sign-in


def request(port: int, path: str) -> tuple[int | str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if path.startswith("/agent/"):
            connection.request(
                "POST", path, body=b"{}",
                headers={"Content-Type": "application/json", "Authorization": UNKNOWN_SECRET},
            )  # fmt: skip
        else:
            connection.request("GET", path, headers={"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
        response = connection.getresponse()
        return response.status, response.read(400).decode(errors="replace")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}", ""
    finally:
        connection.close()


def workers_of(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    return {int(pid) for pid in children.read_text().split()} if children.exists() else set()


def test_postgres_restart_under_load_fails_cleanly_and_recovers_without_a_restart(postgres_cluster, tmp_path):
    cluster = postgres_cluster
    subprocess.run(
        [str(cluster.bin / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "mdm"],
        check=True, timeout=20,
    )  # fmt: skip
    env = subprocess_env(tmp_path, DATABASE_URL=cluster.url("mdm"), DATABASE_CONN_MAX_AGE="60")
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, timeout=45, capture_output=True
    )
    assert migrate.returncode == 0, migrate.stderr.decode()[-2000:]

    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "mdm_portal.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "30"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    results: list[tuple[float, str, int | str, str]] = []
    stop = threading.Event()

    def load(path: str) -> None:
        while not stop.is_set():
            status, body = request(port, path)
            results.append((time.monotonic(), path, status, body))
            time.sleep(0.02)

    threads = [threading.Thread(target=load, args=(path,), daemon=True) for path in NORMAL]
    try:
        wait_for(lambda: port_open(port), timeout=20, what="gunicorn to listen")
        wait_for(lambda: request(port, "/portal/devices/")[0] == 302, timeout=20, what="the first answer")
        workers = workers_of(server.pid)
        assert len(workers) == 2
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        down_at = time.monotonic()
        cluster.stop("fast")  # closes every connection, as a restart or a failover does
        time.sleep(OUTAGE_SECONDS)
        restart_at = time.monotonic()
        cluster.start()
        up_at = time.monotonic()
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        assert workers_of(server.pid) == workers, "a gunicorn worker was restarted"
        assert server.poll() is None
    finally:
        stop.set()
        kill_group(server)

    before = [r for r in results if r[0] < down_at]
    during = [r for r in results if down_at + 0.5 < r[0] < restart_at]
    after = [r for r in results if r[0] > up_at + 1.0]
    assert before and during and after, (len(before), len(during), len(after))
    for _, path, status, body in before + after:
        assert status in NORMAL[path], (path, status, body)
    timeline = [(round(t - down_at, 2), path, status) for t, path, status, _ in results]
    for _, path, status, body in during:
        assert status == 503, (path, status, body, str(timeline))
        assert "The database cannot be reached at the moment" in body
        if path.startswith("/agent/"):
            assert '"code": "unavailable"' in body
    # Nothing anywhere was a 500 or a dropped connection.
    assert not [r for r in results if r[2] not in {503} | NORMAL[r[1]]]
