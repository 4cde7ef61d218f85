"""Runs a fleet of emulated devices against one portal and measures it.

``run_simulation`` enrols the devices of ``agent.fleet.generate_fleet`` with a bulk enrolment
token, then has them check in on their interval (spread at random, never in lockstep), drift (OS
updates, app changes, now and then encryption turned off or the passcode removed), execute and
acknowledge commands (installing configuration profiles and apps, showing notifications), and stop after
the given duration. ``drift`` plans a chosen device's drift at a chosen check-in (a demo's
"this laptop just turned BitLocker off"). Concurrency is bounded by a thread pool;
each worker thread keeps one keep-alive connection that serves whichever devices it runs. The
result is a ``SimulationReport``, which the benchmarks reuse.

The simulator enrols fake devices, so it refuses a server that is not on this machine unless told
otherwise (``allow_remote``).
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field

from agent.client import AgentClient, Connection, DeviceRetired, ProtocolError, RateLimited, is_loopback_url
from agent.fleet import DEFAULT_INSTALL_FAILURE_RATE, PlannedDrift, SimulatedDevice, generate_fleet, plan_drift
from agent.wipe import DEFAULT_RETIRE_LEFTOVER_RATE, WIPE_COMMANDS
from agent.wipe import describe as describe_wipe

MAX_IMMEDIATE_CHECKINS = 3  # check-ins in a row that sync commands may ask for


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(fraction * len(ordered) + 0.999999)))
    return ordered[rank - 1]


@dataclass
class SimulationReport:
    """What a simulation did; latencies in milliseconds, rates per second of the check-in phase."""

    server_url: str
    seed: object
    devices: int
    platforms: dict[str, int]
    enrolled: int = 0
    enroll_failed: int = 0
    checkins: int = 0
    checkins_failed: int = 0
    inventory_changes: int = 0
    commands_executed: int = 0
    commands_by_status: dict[str, int] = field(default_factory=dict)
    commands_by_type: dict[str, int] = field(default_factory=dict)
    results_reported: int = 0
    retired: int = 0
    wiped: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    enroll_seconds: float = 0.0
    duration_seconds: float = 0.0
    checkins_per_second: float = 0.0
    checkin_p50_ms: float = 0.0
    checkin_p99_ms: float = 0.0
    enroll_p50_ms: float = 0.0
    enroll_p99_ms: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def counts(mapping: dict[str, int]) -> str:
            return ", ".join(f"{key} {value}" for key, value in sorted(mapping.items())) or "none"

        return "\n".join(
            [
                f"Simulated {self.devices} devices against {self.server_url} (seed {self.seed})",
                f"  platforms:         {counts(self.platforms)}",
                f"  enrolled:          {self.enrolled} ({self.enroll_failed} failed) in {self.enroll_seconds:.1f} s, "
                f"p50 {self.enroll_p50_ms:.1f} ms, p99 {self.enroll_p99_ms:.1f} ms",
                f"  check-ins:         {self.checkins} ({self.checkins_failed} failed, "
                f"{self.inventory_changes} with changed inventory) in {self.duration_seconds:.1f} s",
                f"  check-ins/s:       {self.checkins_per_second:.1f}",
                f"  check-in latency:  p50 {self.checkin_p50_ms:.1f} ms, p99 {self.checkin_p99_ms:.1f} ms",
                f"  commands executed: {self.commands_executed} ({counts(self.commands_by_status)}); "
                f"by type: {counts(self.commands_by_type)}",
                f"  retired (410):     {self.retired}",
                f"  wiped:             {self.wiped} (retire or wipe reported)",
                f"  errors by code:    {counts(self.errors_by_code)}",
            ]
        )


class _Stats:
    """Counters shared by the worker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.enroll_latencies: list[float] = []
        self.checkin_latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.types: Counter[str] = Counter()
        self.checkins = self.checkins_failed = self.changes = self.results_reported = 0

    def error(self, exc: ProtocolError) -> None:
        with self.lock:
            self.errors[exc.code] += 1


class _Simulation:
    """One run: the enrolment phase, then the check-in phase, sharing counters and connections."""

    def __init__(
        self,
        server_url: str,
        token: str,
        fleet: list[SimulatedDevice],
        *,
        interval: float | None,
        concurrency: int,
        timeout: float,
        drift_rate: float,
        stop: threading.Event,
        log: Callable[[str], None] | None = None,
    ):
        self.server_url = server_url
        self.token = token
        self.fleet = fleet
        self.interval = interval
        self.concurrency = concurrency
        self.timeout = timeout
        self.drift_rate = drift_rate
        self.stop = stop
        self.log = log or (lambda message: None)
        self.stats = _Stats()
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._connections_lock = threading.Lock()

    def connection(self) -> Connection:
        """This worker thread's keep-alive connection."""
        conn = getattr(self._local, "connection", None)
        if conn is None:
            conn = self._local.connection = Connection(self.server_url, timeout=self.timeout)
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._connections:
            conn.close()

    def client(self, device: SimulatedDevice) -> AgentClient:
        return AgentClient(self.server_url, secret=device.secret, connection=self.connection())

    def device_interval(self, device: SimulatedDevice) -> float:
        return self.interval if self.interval is not None else device.server_interval

    # -- enrolment ----------------------------------------------------------------------------

    def enroll(self, device: SimulatedDevice) -> None:
        client = self.client(device)
        for _attempt in range(4):
            if self.stop.is_set():
                device.stopped = "not enrolled"
                return
            started = time.perf_counter()
            try:
                reply = client.enroll(
                    token=self.token, device=device.identity(), inventory=device.inventory(), transport=device.transport
                )
            except RateLimited as exc:
                self.stats.error(exc)
                self.stop.wait(min(exc.retry_after, 30))
                continue
            except ProtocolError as exc:
                self.stats.error(exc)
                device.stopped = f"enrolment failed: {exc.code}"
                return
            with self.stats.lock:
                self.stats.enroll_latencies.append(time.perf_counter() - started)
            device.device_id, device.secret = client.device_id, client.secret
            interval = reply.get("checkin_interval_seconds")
            if isinstance(interval, int) and interval >= 0:
                device.server_interval = interval
            self.handle_commands(device, client, reply.get("commands") or [])
            return
        device.stopped = "enrolment failed: rate_limited"

    # -- check-ins ----------------------------------------------------------------------------

    def handle_commands(self, device: SimulatedDevice, client: AgentClient, commands: Iterable) -> None:
        results, kinds = [], []
        for command in commands:
            if device.wiped and command.get("type") not in WIPE_COMMANDS:
                continue  # wiped, its report not taken yet: it only answers the wipe again (idempotent)
            held = {app["identifier"] for app in device.installed_apps or []}
            result = device.execute(command)
            if result is not None:
                results.append(result)
                kinds.append(str(command.get("type")))
                if command.get("type") == "notify" and result["status"] == "acknowledged":
                    shown = device.notifications[-1]
                    self.log(f"{device.name} shows a notification: {shown['title'] or 'IT'}: {shown['message']}")
                elif command.get("type") in ("install_app", "remove_app"):
                    self.log(_app_outcome(device, command, result, held))
                if device.wiped:  # nothing runs on a wiped device: the commands after it expire
                    self.log(describe_wipe(device, result))
                    break
        if not results:
            return
        with self.stats.lock:
            self.stats.types.update(kinds)
            self.stats.statuses.update(result["status"] for result in results)
        try:
            client.report_results(results)
        except DeviceRetired as exc:
            self.stats.error(exc)
            device.stopped = "retired"
        except ProtocolError as exc:
            self.stats.error(exc)  # the server sends the commands again; they are idempotent
        else:
            with self.stats.lock:
                self.stats.results_reported += len(results)
            if device.wiped:
                device.stopped = device.wiped  # the wipe is reported: it never checks in again

    def checkin(self, device: SimulatedDevice) -> float | None:
        """One check-in and the commands it brings; when the device is next due (None: it stopped)."""
        planned = device.planned_drift()
        for event in planned:
            self.log(f"{device.name} (device {device.index}): {event.replace('_', ' ')}, as planned (--drift)")
        changed = bool(device.drift(self.drift_rate)) if device.checkins else False
        changed = changed or bool(planned)
        client = self.client(device)
        started = time.perf_counter()
        try:
            reply = client.checkin(device.inventory())
        except DeviceRetired as exc:
            self.stats.error(exc)
            device.stopped = "retired"
            return None
        except RateLimited as exc:
            self.stats.error(exc)
            with self.stats.lock:
                self.stats.checkins_failed += 1
            return time.monotonic() + exc.retry_after
        except ProtocolError as exc:
            self.stats.error(exc)
            with self.stats.lock:
                self.stats.checkins_failed += 1
            if exc.status in (401, 403):
                device.stopped = f"refused: {exc.code}"
                return None
            return time.monotonic() + max(self.device_interval(device), 1.0)
        elapsed = time.perf_counter() - started
        device.checkins += 1
        with self.stats.lock:
            self.stats.checkins += 1
            self.stats.changes += changed
            self.stats.checkin_latencies.append(elapsed)
        interval = reply.get("checkin_interval_seconds")
        if isinstance(interval, int) and interval >= 0:
            device.server_interval = interval
        self.handle_commands(device, client, reply["commands"])
        if device.stopped:
            return None
        if device.sync_requested and device.immediate_checkins < MAX_IMMEDIATE_CHECKINS:
            device.sync_requested = False
            device.immediate_checkins += 1
            return time.monotonic()
        device.sync_requested, device.immediate_checkins = False, 0
        return time.monotonic() + self.device_interval(device) * device.rng.uniform(0.9, 1.1)

    def checkin_phase(self, duration: float) -> float:
        """Check in until ``duration`` seconds have passed; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + duration
        queue: list[tuple[float, int, int]] = []
        counter = itertools.count()
        for device in self.fleet:
            if device.secret and not device.stopped:
                offset = device.rng.uniform(0, self.device_interval(device))
                queue.append((started + offset, next(counter), device.index))
        heapq.heapify(queue)
        condition = threading.Condition()
        in_flight = [0]

        def worker() -> None:
            while True:
                with condition:
                    while True:
                        now = time.monotonic()
                        if self.stop.is_set() or now >= deadline or (not queue and not in_flight[0]):
                            condition.notify_all()
                            return
                        if queue and queue[0][0] <= now:
                            _, _, index = heapq.heappop(queue)
                            in_flight[0] += 1
                            break
                        wake = min(queue[0][0] if queue else deadline, deadline)
                        # Bounded, so an outside stop_event is noticed even when nothing is due.
                        condition.wait(timeout=min(max(wake - now, 0.001), 0.25))
                device = self.fleet[index]
                try:
                    due = self.checkin(device)
                finally:
                    with condition:
                        in_flight[0] -= 1
                        if due is not None and due < deadline:
                            heapq.heappush(queue, (due, next(counter), index))
                        condition.notify_all()

        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="checkin") as pool:
            _wait_all([pool.submit(worker) for _ in range(self.concurrency)], self.stop)
        return time.monotonic() - started


def _app_outcome(device: SimulatedDevice, command: dict, result: dict, held: set[str]) -> str:
    """``"LT-45189 installed Zoom Workplace 6.6.10"``, or why it could not; ``held``: the apps it had before."""
    payload = command.get("payload") if isinstance(command.get("payload"), dict) else {}
    name = payload.get("name") or payload.get("identifier") or "an app"
    installing = command.get("type") == "install_app"
    if result["status"] != "acknowledged":
        return f"{device.name} could not {'install' if installing else 'remove'} {name}: {result.get('error', '')}"
    if not installing:
        had = payload.get("identifier") in held
        return f"{device.name} removed {name}" if had else f"{device.name} has no {name} to remove"
    version = f" {payload['version']}" if payload.get("version") else ""
    return f"{device.name} installed {name}{version}"


def _wait_all(futures: list[Future], stop: threading.Event) -> None:
    """Wait for every future; Ctrl-C asks the workers to stop and still waits for them to finish,
    so the report covers what was done. A worker's unexpected exception is raised here."""
    try:
        wait(futures)
    except KeyboardInterrupt:
        stop.set()
        wait(futures)
    for future in futures:
        future.result()


def run_simulation(
    server_url: str,
    token: str,
    devices: int,
    *,
    platform_mix: dict[str, float] | None = None,
    duration: float = 60.0,
    interval: float | None = None,
    concurrency: int = 16,
    seed: object = None,
    timeout: float = 10.0,
    drift_rate: float = 0.05,
    not_now_rate: float = 0.05,
    install_failure_rate: float = DEFAULT_INSTALL_FAILURE_RATE,
    retire_leftover_rate: float = DEFAULT_RETIRE_LEFTOVER_RATE,
    allow_remote: bool = False,
    stop_event: threading.Event | None = None,
    log: Callable[[str], None] | None = None,
    drift: list[PlannedDrift] | None = None,
) -> SimulationReport:
    """Enrol ``devices`` emulated devices with ``token``, let them check in for ``duration`` seconds.

    ``interval`` overrides the check-in interval the server asks for (0 = back to back, to measure
    throughput); ``duration`` counts from the end of enrolment. ``seed`` makes the fleet and each
    device's behaviour reproducible (a random seed is chosen and reported when omitted).
    ``stop_event`` ends the run early. ``drift`` plans drift on chosen devices (``ValueError``
    when one cannot happen). ``install_failure_rate`` is the chance an app install fails with a
    reason the platform would give; ``retire_leftover_rate`` the chance a ``retire`` leaves one managed
    app behind (reported, so the portal's verification fails). Refuses a non-loopback server unless ``allow_remote``.
    """
    if not allow_remote and not is_loopback_url(server_url):
        raise ValueError(
            f"{server_url} is not on this machine. The simulator enrols fake devices, so it only talks to a "
            "loopback server unless you allow a remote one (--allow-remote)."
        )
    if concurrency < 1:
        raise ValueError("Concurrency must be at least 1.")
    if not 0 <= retire_leftover_rate <= 1:
        raise ValueError("The retire leftover rate is a chance between 0 and 1.")
    if interval is not None and interval < 0:
        raise ValueError("The check-in interval cannot be negative.")
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
    log = log or (lambda message: None)
    stop = stop_event or threading.Event()
    fleet = generate_fleet(
        devices, platform_mix, seed, not_now_rate=not_now_rate, install_failure_rate=install_failure_rate
    )
    for device in fleet:
        device.retire_leftover_rate = retire_leftover_rate
    for device, plan in plan_drift(fleet, list(drift or [])):
        log(f"Planned drift: {device.name} (device {device.index}) {plan.event} at check-in {plan.checkin}.")
    report = SimulationReport(
        server_url=server_url, seed=seed, devices=len(fleet), platforms=dict(Counter(d.platform for d in fleet))
    )
    simulation = _Simulation(
        server_url,
        token,
        fleet,
        interval=interval,
        concurrency=concurrency,
        timeout=timeout,
        drift_rate=drift_rate,
        stop=stop,
        log=log,
    )
    try:
        log(f"Enrolling {len(fleet)} devices with {concurrency} workers...")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="enroll") as pool:
            _wait_all([pool.submit(simulation.enroll, device) for device in fleet], stop)
        report.enroll_seconds = time.monotonic() - started
        enrolled = sum(1 for device in fleet if device.secret)
        log(f"Enrolled {enrolled} in {report.enroll_seconds:.1f} s; checking in for {duration:g} s...")
        report.duration_seconds = simulation.checkin_phase(duration) if enrolled and duration > 0 else 0.0
    finally:
        simulation.close()
    stats = simulation.stats
    report.enrolled = sum(1 for device in fleet if device.secret)
    report.enroll_failed = len(fleet) - report.enrolled
    report.retired = sum(1 for device in fleet if device.stopped == "retired")
    report.wiped = sum(1 for device in fleet if device.wiped)
    report.checkins, report.checkins_failed = stats.checkins, stats.checkins_failed
    report.inventory_changes = stats.changes
    report.commands_by_status = dict(stats.statuses)
    report.commands_by_type = dict(stats.types)
    report.commands_executed = sum(stats.statuses.values())
    report.results_reported = stats.results_reported
    report.errors_by_code = dict(stats.errors)
    if report.duration_seconds > 0:
        report.checkins_per_second = stats.checkins / report.duration_seconds
    report.checkin_p50_ms = percentile(stats.checkin_latencies, 0.50) * 1000
    report.checkin_p99_ms = percentile(stats.checkin_latencies, 0.99) * 1000
    report.enroll_p50_ms = percentile(stats.enroll_latencies, 0.50) * 1000
    report.enroll_p99_ms = percentile(stats.enroll_latencies, 0.99) * 1000
    return report
