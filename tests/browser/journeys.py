"""The processes a journey runs beside the live server: a real Celery worker and device simulators.

Both are separate processes, so they need a test database another process can open: PostgreSQL
(CI sets ``DATABASE_URL``), or SQLite in a file (``conftest.py`` names one when only browser tests
run). They talk to the live server over HTTP (simulators) and share the test database and a
private file-system broker folder with it (the worker); nothing touches the demo's ``var/``.
Every wait is bounded; nothing sleeps except between polls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[2]
SCREENSHOTS = BASE_DIR / "docs" / "screenshots"
# The console's device list has many columns: wide enough that none is cut off beside the sidebars.
CONSOLE_VIEWPORT = {"width": 1600, "height": 1000}
WORKER_START_TIMEOUT = 60  # seconds for the worker to say it is ready
STOP_TIMEOUT = 15  # seconds for a process to stop on SIGTERM before it is killed


def shot(page, who: str, step: str) -> Path:
    """Save ``docs/screenshots/journey-<who>-<step>.png`` (overwriting), the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"journey-{who}-{step}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, every: float = 0.5):
    """Poll ``condition`` until it returns something truthy (returned); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Waited {timeout:g} s for {what}; it did not happen.")
        time.sleep(every)


def poll_page(page, url: str, condition: Callable[[str], bool], *, timeout: float, what: str) -> str:
    """Reload ``url`` until ``condition(text of the page)``; returns that text."""

    def loaded() -> str | None:
        page.goto(url)
        text = page.inner_text("body")
        return text if condition(text) else None

    return wait_until(loaded, timeout=timeout, what=what, every=1.0)


def database_url() -> str:
    """The URL of the test database this process uses, for the other processes."""
    db = connection.settings_dict
    name = db["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(name).resolve()}"
    if connection.vendor == "postgresql":
        credentials = quote(db.get("USER") or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{credentials}{'@' if credentials else ''}{host}{port}/{name}"
    raise RuntimeError(f"No journey support for a {connection.vendor} database.")


def shareable_database() -> str | None:
    """Why another process cannot see the test database (``None`` when it can)."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        return (
            "the journeys run a Celery worker and simulators in other processes, which cannot see an in-memory "
            "SQLite test database: run them on PostgreSQL (DATABASE_URL=postgres://...) or on their own "
            "(pytest tests/browser, make screenshots), which puts the SQLite test database in a file"
        )
    return None


class Process:
    """One child process in its own session, its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(  # noqa: S603 (our own commands)
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        # Shown by pytest when the test fails.
        tail = "\n".join(self.log().splitlines()[-40:])
        print(f"----- {self.name} (exit {self.process.returncode}), last lines -----\n{tail}")


def child_environment(work_dir: Path) -> dict[str, str]:
    """What a worker needs to act on this test's database, broker folder, media and secret key."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "SECRET_KEY": settings.SECRET_KEY,
        "MDM_VAR_DIR": str(work_dir),  # the file-system broker's folders, mail, nothing of the demo's
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "EMAIL_FILE_PATH": str(work_dir / "mail"),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "mdm_portal.settings",
    }


def start_worker(work_dir: Path) -> Process:
    """A Celery worker on the test database and ``work_dir``'s broker folder; returns once it is ready."""
    worker = Process(
        "celery-worker",
        [sys.executable, "-m", "celery", "-A", "mdm_portal", "worker", "-l", "info", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"journey-{os.getpid()}@%h"],
        child_environment(work_dir),
        work_dir,
    )  # fmt: skip
    wait_until(
        lambda: "ready." in worker.log() or not worker.running(),
        timeout=WORKER_START_TIMEOUT,
        what="the Celery worker to start",
    )
    assert worker.running(), f"The Celery worker exited:\n{worker.log()}"
    return worker


def start_simulator(
    work_dir: Path,
    server_url: str,
    *,
    name: str,
    token: str | None = None,
    code: str | None = None,
    devices: int = 1,
    platform_mix: str = "windows=1",
    interval: float = 2,
    duration: float = 300,
    seed: int = 7,
    drift: list[str] = (),
) -> Process:
    """``python -m agent simulate`` (with a token), or the same simulator enrolling with a portal code."""
    options = ["--server", server_url, "--devices", str(devices), "--platform-mix", platform_mix,
               "--interval", str(interval), "--duration", str(duration), "--seed", str(seed),
               "--drift-rate", "0", "--install-failure-rate", "0", "--retire-leftover-rate", "0",
               "--concurrency", "4"]  # fmt: skip
    for planned in drift:
        options += ["--drift", planned]
    if code is not None:
        command = [sys.executable, "-m", "tests.browser.simulate_with_code", "--code", code, *options]
    else:
        command = [sys.executable, "-m", "agent", "simulate", "--token", token, *options]
    return Process(name, command, {**os.environ, "PYTHONUNBUFFERED": "1"}, work_dir)
