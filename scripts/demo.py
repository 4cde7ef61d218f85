"""``make demo``: prepare the database, then run the web server, a Celery worker and Celery beat.

Plain Python, nothing to install beyond the project's requirements. Everything lives under ``var/``
(SQLite and the file-system broker; see ``mdm_portal/settings.py``), so no environment variable is
needed. Ctrl-C or SIGTERM stops all three processes; if one of them dies, the others are stopped and
the script exits non-zero, saying which one it was.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(BASE_DIR / "manage.py")]
CELERY = [PYTHON, "-m", "celery", "-A", "mdm_portal"]
HOST = "127.0.0.1"
SIMULATED_DEVICES = 20
START_TIMEOUT = 60  # seconds for the web server to answer
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 (the published demo login of demo_org)
STOP_TIMEOUT = 20  # seconds for a process to stop before it is killed


def say(message: str) -> None:
    print(f"demo   | {message}", flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As runserver does: a port with only closed connections lingering (TIME_WAIT) is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def die_with_parent() -> None:
    """Runs in each child before exec: on Linux, the child gets SIGTERM if this script is killed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Child:
    """One long-running process, its output prefixed with its name."""

    def __init__(self, name: str, label: str, command: list[str], env: dict[str, str], *, may_finish=False) -> None:
        # ``may_finish``: exiting with status 0 is its normal end (simulated devices and apps stop once
        # retired or wiped).
        self.name, self.label, self.may_finish = name, label, may_finish
        # Its own session, so a Ctrl-C reaches only this script, which then stops the children in order.
        self.process = subprocess.Popen(  # noqa: S603 (our own commands)
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.reader = threading.Thread(target=self._copy_output, daemon=True)

    def _copy_output(self) -> None:
        for line in self.process.stdout:
            print(f"{self.name:<6} | {line.rstrip()}", flush=True)

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


def stop(children: list[Child]) -> None:
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.label} did not stop within {STOP_TIMEOUT} s; killing it.")
            child.signal(signal.SIGKILL)
            child.process.wait()
        child.reader.join(timeout=2)


def web_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    port = int(os.environ.get("PORT") or 8000)
    env = {**os.environ, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    # DEBUG stays off unless the caller sets it: the demo shows what people see (the portal's own
    # 404, 403 and 500 pages, not Django's technical pages listing every URL); static files are
    # served by WhiteNoise from the source folders either way.
    if not port_is_free(port):
        say(f"Port {port} is already in use (is another demo still running?). Stop it, or pick another port: "
            f"make demo PORT={port + 1}")  # fmt: skip
        return 1

    for step in (["migrate", "--noinput"], ["demo_org"], ["sync_schedules"]):
        say(f"manage.py {' '.join(step)}")
        if subprocess.run([*MANAGE, *step], cwd=BASE_DIR, env=env).returncode != 0:  # noqa: S603
            say(f"manage.py {step[0]} failed (see above); the demo was not started.")
            return 1

    # The simulated fleet keeps the console alive, and the demo employee's simulated laptop drifts out
    # of compliance (encryption off at its third check-in); each simulator gets its token in its environment.
    tokens = {}
    for simulator_name in ("fleet", "laptop"):
        issued = subprocess.run(  # noqa: S603
            [*MANAGE, "demo_fleet", "--simulator", simulator_name],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if issued.returncode != 0:
            say(f"manage.py demo_fleet failed: {issued.stderr.strip()}")
            return 1
        say(issued.stderr.strip())
        tokens[simulator_name] = issued.stdout.strip().splitlines()[-1]

    stopping = threading.Event()

    def request_stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    children = [
        Child("worker", "The Celery worker", [*CELERY, "worker", "-l", "info", "--pool=solo", "-n", "demo@%h"], env),
        Child("beat", "Celery beat", [*CELERY, "beat", "-l", "info"], env),
        Child("web", "The web server", [*MANAGE, "runserver", f"{HOST}:{port}", "--noreload"], env),
    ]
    for child in children:  # after every fork: a thread running during a fork could deadlock the child
        child.reader.start()

    announced, started = False, time.monotonic()
    while not stopping.is_set():
        for done in [c for c in children if c.may_finish and c.process.poll() == 0]:
            say(f"{done.label} finished.")
            children.remove(done)
        dead = next((c for c in children if c.process.poll() is not None), None)
        if dead is not None:
            say(f"{dead.label} exited unexpectedly (exit code {dead.process.returncode}); stopping the others.")
            stop(children)
            return 1
        if not announced:
            if web_answers(port):
                announced = True
                logins = subprocess.run(  # noqa: S603
                    [*MANAGE, "demo_org", "--logins"], cwd=BASE_DIR, env=env, capture_output=True, text=True
                )
                print(logins.stdout.rstrip(), flush=True)
                # The log scrolls fast (a line per check-in): the logins also stay in a file.
                (BASE_DIR / "var" / "demo-logins.txt").write_text(logins.stdout)
                simulate = [PYTHON, "-m", "agent", "simulate", "--server", f"http://{HOST}:{port}", "--interval", "60",
                            "--duration", str(7 * 24 * 3600)]  # fmt: skip
                for simulator in (
                    Child(
                        "fleet", "The fleet simulator",
                        [*simulate, "--devices", str(SIMULATED_DEVICES), "--seed", "2026"],
                        {**env, "MDM_ENROLLMENT_TOKEN": tokens["fleet"]},
                        may_finish=True,  # once IT has retired every one of its devices
                    ),
                    Child(
                        "laptop", "The employee's simulated laptop",
                        [*simulate, "--devices", "1", "--platform-mix", "windows=1", "--seed", "7", "--drift-rate", "0",
                         "--drift", "encryption_off@3", "--install-failure-rate", "0"],
                        {**env, "MDM_ENROLLMENT_TOKEN": tokens["laptop"]},
                        may_finish=True,  # once the employee removes it in the Company Portal
                    ),
                    Child(
                        "mam", "The employee's managed apps (no enrolment)",
                        [PYTHON, "-m", "agent", "mam", "--server", f"http://{HOST}:{port}", "--username", "employee",
                         "--platform", "ios", "--instances", "2", "--interval", "30", "--duration", str(7 * 24 * 3600)],
                        {**env, "MDM_MAM_PASSWORD": DEMO_PASSWORD},
                        may_finish=True,
                    ),
                ):  # fmt: skip
                    simulator.reader.start()
                    children.append(simulator)
                say(
                    f"The demo is running: web server, Celery worker, Celery beat, {SIMULATED_DEVICES} simulated "
                    "devices checking in every minute, and the employee's simulated Windows laptop, which turns its "
                    "encryption off at its third check-in (see it in the Company Portal as 'employee'), and the "
                    "employee's Outlook and Teams on an unenrolled iPhone under app protection. Emails go "
                    f"to {BASE_DIR / 'var' / 'mail'}; the logins above are also in "
                    f"{BASE_DIR / 'var' / 'demo-logins.txt'}. Press Ctrl-C to stop."
                )
            elif time.monotonic() - started > START_TIMEOUT:
                say(f"The web server did not answer on http://{HOST}:{port}/ within {START_TIMEOUT} s; stopping.")
                stop(children)
                return 1
        stopping.wait(0.5)

    say("Stopping the simulators, the web server, the Celery worker and Celery beat...")
    stop(children)
    say("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
