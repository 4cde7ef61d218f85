"""App delivery: the desired state of each app on each device, the rule that decides it, and the fan-out.

**Rows.** ``AppInstall`` holds where one app stands on one device. The fan-out (``app_fanout``)
keeps a row for every device a *required*, *uninstall* or *blocked* assignment reaches (and for
every conflict); an *available* app gets a row only once the device's owner asks for it in the
Company Portal (``app_install_request``), or when the device already had a row (an app that was
required and became available stays recorded). A device the app no longer reaches loses its row;
the app stays on the device (only an *uninstall* or *blocked* assignment, or deleting the app,
removes it).

**One rule** (``decide``) turns the effective intent (``apps.targeting.resolve``), the stored row
and what the device's inventory says into the row's next state and the command to send. The
fan-out, the enrolment sync, the check-in reconciliation and the Company Portal all use it:

* required (or available and asked for): installed when the inventory lists it at the current
  version or newer; otherwise an ``install_app`` command (pending) unless one is on its way or
  this version already failed (retried only by ``app_installs_retry_failed``). A device whose OS
  is older than the version's minimum is *not applicable*. An installed app the inventory no
  longer lists was removed on the device: a required one is queued again at once, an available
  one becomes *not installed* (and is not reinstalled: the owner removed it).
* an installed app older than the current version gets the update, whatever its install intent
  (supersedence).
* uninstall or blocked: a ``remove_app`` command where the inventory lists it (or where the
  device never reported its apps), *not installed* where it does not.
* conflict: nothing is sent; the row says which assignments contradict each other.

An inventory whose ``installed_apps`` is empty counts as "apps not reported" (the device model
stores a missing list as empty): nothing is concluded from it.

Results, the check-in reconciliation, the Company Portal requests and retries are in ``installs``.

Cost: the fan-out walks the targeted devices in id batches with a fixed number of queries per
batch (devices with their matching assignments, their rows, the one app's entry of their
inventories, then at most three statements to queue commands and one upsert); the reconciliation
costs one read when the device has no app rows, else two reads, one bulk update and the command
statements.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, Case, Exists, OuterRef, Q, Value, When
from django.db.models.expressions import RawSQL

from devices.choices import CommandType, LifecycleState, Platform
from devices.models import OPEN_STATUSES, Device, DeviceCommand, DeviceInventory
from devices.services import desired_state_commands_cancel, desired_state_commands_queue
from devices.versions import version_key
from mdm_portal.core import outbox
from mdm_portal.core.audit import Actor, audit_record
from policies.choices import AssignmentMode
from policies.targeting import assignment_q

from ..choices import AppIntent, InstallState
from ..models import App, AppAssignment, AppInstall, AppVersion
from ..targeting import GONE, resolve, targeted_devices

FANOUT_BATCH = 2000
FANOUT_JOB = "app fan-out"
INSTALL, REMOVE = CommandType.INSTALL_APP, CommandType.REMOVE_APP
ROW_FIELDS = ("intent", "state", "desired_version", "installed_version", "reason", "requested_by_user")
# States in which the app may be on the device (removal and compliance care about these).
MAYBE_PRESENT = (InstallState.INSTALLED, InstallState.PENDING, InstallState.FAILED)


def subject_of(app: App) -> str:
    """Install and remove share the subject, so a newer command of either kind replaces an open one."""
    return f"app:{app.uuid}"


def app_version_key(version: str) -> str:
    """A sortable key of an app version; a Debian epoch ("1:2.3-1") is ignored."""
    text = (version or "").strip()
    head, sep, tail = text.partition(":")
    return version_key(tail if sep and head.isdigit() else text)


def fanout_schedule(app_id: int, *, reason: str) -> None:
    """One task message per change, sent once the change is committed."""
    from ..tasks import app_fanout_task

    outbox.enqueue(app_fanout_task, app_id, reason=reason)


# -- the rule --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the app wants installed: its current version (blank for an app without versions)."""

    version: str = ""
    version_key: str = ""
    min_os: str = ""
    min_os_key: str = ""

    @classmethod
    def of(cls, version: AppVersion | None) -> Target:
        if version is None:
            return cls()
        return cls(version.version, version.version_key, version.min_os_version, version_key(version.min_os_version))

    @classmethod
    def from_values(cls, version: str | None, key: str | None, min_os: str | None) -> Target:
        return cls(version or "", key or "", min_os or "", version_key(min_os or ""))

    def outdated(self, installed: str) -> bool:
        key = app_version_key(installed)
        return bool(self.version_key and key and key < self.version_key)


@dataclass(frozen=True)
class Current:
    """A stored ``AppInstall`` and the state of its last command."""

    intent: str
    state: str
    desired_version: str
    installed_version: str
    reason: str
    requested_by_user: bool
    command_id: int | None = None
    command_type: str | None = None
    command_open: bool = False

    @classmethod
    def from_values(cls, row: dict[str, Any]) -> Current:
        return cls(
            **{field: row[field] for field in ROW_FIELDS},
            command_id=row["command_id"],
            command_type=row["command__command_type"],
            command_open=row["command__status"] in OPEN_STATUSES,
        )


@dataclass(frozen=True)
class Decision:
    intent: str
    state: str
    desired_version: str = ""
    installed_version: str = ""
    reason: str = ""
    requested_by_user: bool = False
    send: str = ""  # "", INSTALL or REMOVE

    def same_as(self, current: Current | None) -> bool:
        return (
            current is not None
            and not self.send
            and all(getattr(self, field) == getattr(current, field) for field in ROW_FIELDS)
        )


@dataclass(frozen=True)
class DeviceFacts:
    os_version: str = ""
    os_version_key: str = ""
    platform_label: str = ""
    # Whether the inventory lists the device's apps at all, and the app's version in it (None: absent).
    known: bool = False
    reported: str | None = None


def _in_flight(current: Current | None, kind: str, target: Target) -> bool:
    return (
        current is not None
        and current.state == InstallState.PENDING
        and current.command_open
        and current.command_type == kind
        and (kind == REMOVE or current.desired_version == target.version)
    )


def _failed(current: Current | None, kind: str, target: Target) -> bool:
    return (
        current is not None
        and current.state == InstallState.FAILED
        and current.command_type == kind
        and (kind == REMOVE or current.desired_version == target.version)
    )


def decide(
    *, intent: str | None, current: Current | None, target: Target, device: DeviceFacts, conflict: str = ""
) -> Decision | None:
    """The next state of one app on one device (see the module docstring). None: no row is wanted."""
    requested = bool(current and current.requested_by_user)
    present = device.known and device.reported is not None
    installed = (device.reported or "") if device.known else (current.installed_version if current else "")

    def keep(**changes) -> Decision:
        # Only called with a stored row.
        base = Decision(
            intent=intent or "",
            state=current.state,
            desired_version=current.desired_version,
            installed_version=installed,
            reason=current.reason,
            requested_by_user=requested,
        )
        return replace(base, **changes)

    if conflict:
        desired = current.desired_version if current else ""
        return Decision("", InstallState.CONFLICT, desired, installed, conflict, requested)
    if intent is None:
        return None
    if intent in GONE:
        if device.known and not present:
            return Decision(intent, InstallState.NOT_INSTALLED)
        if _in_flight(current, REMOVE, target) or _failed(current, REMOVE, target):
            return keep(requested_by_user=False)
        if not device.known and current is not None and current.state == InstallState.NOT_INSTALLED:
            return keep(requested_by_user=False)
        return Decision(intent, InstallState.PENDING, installed_version=installed, send=REMOVE)

    if intent == AppIntent.AVAILABLE and current is None:
        return None  # an available app gets a row only when the owner asks for it
    wants = intent == AppIntent.REQUIRED or requested
    applicable = not (target.min_os_key and device.os_version_key and device.os_version_key < target.min_os_key)
    install = Decision(intent, InstallState.PENDING, target.version, installed, "", requested, send=INSTALL)
    busy = _in_flight(current, INSTALL, target) or _failed(current, INSTALL, target)
    if wants and not applicable:
        reason = (
            f"Version {target.version} needs {device.platform_label} {target.min_os} or later; "
            f"this device runs {device.os_version or 'an unknown version'}."
        )
        return Decision(intent, InstallState.NOT_APPLICABLE, target.version, installed, reason, requested)
    if present:
        if target.outdated(installed) and applicable:
            if busy:
                return keep()
            return replace(install, reason=f"Updating from {installed} to {target.version}.")
        return Decision(intent, InstallState.INSTALLED, target.version, installed, "", requested)
    if device.known:
        if current is not None and current.state == InstallState.INSTALLED:
            if intent == AppIntent.REQUIRED:
                return replace(
                    install, installed_version="", reason="It was removed on the device; installing it again."
                )
            return Decision(intent, InstallState.NOT_INSTALLED, reason="It was removed on the device.")
        if busy:
            return keep()
        return replace(install, installed_version="") if wants else Decision(intent, InstallState.NOT_INSTALLED)
    # The device did not report its apps (or the app cannot be seen in an inventory: a web link).
    if current is not None and current.state == InstallState.INSTALLED:
        if target.outdated(current.installed_version) and applicable and not busy:
            return replace(install, reason=f"Updating from {current.installed_version} to {target.version}.")
        return keep()
    if busy:
        return keep()
    if wants:
        return install
    if current is not None and current.state == InstallState.NOT_INSTALLED:
        return keep()
    return Decision(intent, InstallState.NOT_INSTALLED)


# -- inventory -------------------------------------------------------------------------------------


def inventory_versions(installed_apps: Any) -> dict[str, str] | None:
    """``{identifier lower-cased: version}`` of an inventory's apps; None when it lists none."""
    if not isinstance(installed_apps, list) or not installed_apps:
        return None
    versions: dict[str, str] = {}
    for entry in installed_apps:
        if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
            version = entry.get("version")
            versions.setdefault(entry["identifier"].lower(), "" if version is None else str(version))
    return versions


def _reported_sql() -> tuple[str, str] | None:
    """SQL for (lists apps, version of the app %s) over the inventory row, per database; None: in Python."""
    table = connection.ops.quote_name(DeviceInventory._meta.db_table)
    column = f"{table}.{connection.ops.quote_name('installed_apps')}"
    if connection.vendor == "postgresql":
        array = f"CASE WHEN jsonb_typeof({column}) = 'array' THEN {column} ELSE '[]'::jsonb END"
        return (
            f"jsonb_array_length({array}) > 0",
            f"(SELECT COALESCE(e->>'version', '') FROM jsonb_array_elements({array}) e "  # noqa: S608 -- quoted names only
            f"WHERE lower(e->>'identifier') = %s LIMIT 1)",
        )
    if connection.vendor == "sqlite":
        array = f"CASE WHEN json_type({column}) = 'array' THEN {column} ELSE '[]' END"
        return (
            f"json_array_length({array}) > 0",
            f"(SELECT COALESCE(json_extract(e.value, '$.version'), '') FROM json_each({array}) e "  # noqa: S608 -- quoted names only
            f"WHERE lower(json_extract(e.value, '$.identifier')) = %s LIMIT 1)",
        )
    return None


def reported_versions(identifier: str, device_ids: list[int]) -> dict[int, tuple[bool, str | None]]:
    """``{device id: (the inventory lists apps, the app's version or None)}`` in one query.

    On PostgreSQL and SQLite only the app's own entry leaves the database, not whole inventories.
    """
    if not identifier or not device_ids:
        return {}
    needle = identifier.lower()
    inventories = DeviceInventory.objects.filter(device_id__in=device_ids)
    sql = _reported_sql()
    if sql is None:
        found = {}
        for device_id, apps in inventories.values_list("device_id", "installed_apps"):
            versions = inventory_versions(apps)
            found[device_id] = (versions is not None, (versions or {}).get(needle))
        return found
    known, version = sql
    # Fixed SQL from ``_reported_sql``; the identifier is a query parameter.
    rows = inventories.annotate(
        apps_known=RawSQL(known, ()),  # noqa: S611
        app_version=RawSQL(version, (needle,)),  # noqa: S611
    )
    return {
        device_id: (bool(listed), None if found is None else str(found))
        for device_id, listed, found in rows.values_list("device_id", "apps_known", "app_version")
    }


# -- commands --------------------------------------------------------------------------------------


def removal_payload(app: App) -> dict[str, Any]:
    """A removal carries what the device needs, so it still works once the app is deleted."""
    return {"app": str(app.uuid), "name": app.name, "kind": app.kind, "identifier": app.identifier, "url": app.url}


def queue_commands(app: App, target: Target, sends: dict[int, str], *, label: str) -> dict[int, DeviceCommand]:
    install = {"app": str(app.uuid), "version": target.version}
    remove = removal_payload(app)
    commands = [
        DeviceCommand(
            device_id=device_id,
            command_type=kind,
            payload=install if kind == INSTALL else remove,
            subject=subject_of(app),
            requested_by_label=label,
        )
        for device_id, kind in sends.items()
    ]
    return {command.device_id: command for command in desired_state_commands_queue(commands=commands)}


def rows_write(app: App, decisions: dict[int, Decision], commands: dict[int, DeviceCommand], current: dict) -> None:
    rows = []
    for device_id, decision in decisions.items():
        command = commands.get(device_id)
        previous = current.get(device_id)
        rows.append(
            AppInstall(
                device_id=device_id,
                app=app,
                command_id=command.pk if command is not None else (previous.command_id if previous else None),
                **{field: getattr(decision, field) for field in ROW_FIELDS},
            )
        )
    AppInstall.objects.bulk_create(
        rows,
        batch_size=FANOUT_BATCH,
        update_conflicts=True,
        unique_fields=["device", "app"],
        update_fields=[*ROW_FIELDS, "command", "updated_at"],
    )


# -- the fan-out -----------------------------------------------------------------------------------


def _target_label(assignment: AppAssignment) -> str:
    if assignment.user_group_id:
        return f"user group {assignment.user_group.name!r}"
    if assignment.device_group_id:
        return f"device group {assignment.device_group.name!r}"
    return "all devices"


class _Run:
    """One app's fan-out: its assignments as one boolean column each, loaded once."""

    def __init__(self, app: App, assignments: list[AppAssignment] | None = None):
        self.app = app
        if assignments is None:
            assignments = list(app.assignments.select_related("user_group", "device_group"))
        self.assignments = assignments
        self.includes = [a for a in assignments if a.mode == AssignmentMode.INCLUDE]
        excludes = [a for a in assignments if a.mode == AssignmentMode.EXCLUDE]
        self.annotations = {f"a{a.pk}": _flag(assignment_q(a)) for a in self.includes}
        self.exclude = None
        for assignment in excludes:
            q = assignment_q(assignment)
            self.exclude = q if self.exclude is None else self.exclude | q
        self.target = Target.of(app.current_version)
        self.platform_label = Platform(app.platform).label if app.platform in Platform.values else app.platform
        self.counts: Counter = Counter()
        self.recheck: list[int] = []  # devices whose compliance a blocked intent changed

    def matched(self, row: dict[str, Any]) -> dict[str, list[AppAssignment]]:
        found: dict[str, list[AppAssignment]] = defaultdict(list)
        for assignment in self.includes:
            if row.get(f"a{assignment.pk}"):
                found[assignment.intent].append(assignment)
        return found

    def conflict_reason(self, matched: dict[str, list[AppAssignment]]) -> str:
        parts = [
            f"{AppIntent(intent).label.split(' (')[0].lower()} by {', '.join(_target_label(a) for a in rows)}"
            for intent, rows in sorted(matched.items())
            if intent in (AppIntent.REQUIRED, *GONE)
        ]
        return (
            "Conflicting assignments: " + "; ".join(parts) + ". An app cannot be both installed and removed: "
            "change one of these assignments or exclude the device from it."
        )

    def facts(self, row: dict[str, Any], reported: dict[int, tuple[bool, str | None]]) -> DeviceFacts:
        known, version = reported.get(row["pk"], (False, None))
        return DeviceFacts(
            row.get("os_version") or "", row.get("os_version_key") or "", self.platform_label, known, version
        )


def _flag(q: Q) -> Case:
    return Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())


def rows_current(app: App, device_ids: list[int]) -> dict[int, Current]:
    rows = AppInstall.objects.filter(app=app, device_id__in=device_ids).values(
        "device_id", *ROW_FIELDS, "command_id", "command__command_type", "command__status"
    )
    return {row["device_id"]: Current.from_values(row) for row in rows}


def _fanout_batch(run: _Run, devices: list[dict[str, Any]]) -> None:
    """Bring the rows of ``run.app`` on ``devices`` (``pk``, OS, one flag per include) up to date."""
    app = run.app
    ids = [row["pk"] for row in devices]
    current = rows_current(app, ids)
    reported = reported_versions(app.identifier, ids)
    decisions: dict[int, Decision] = {}
    for row in devices:
        matched = run.matched(row)
        intent, conflicted = resolve(set(matched))
        facts = run.facts(row, reported)
        previous = current.get(row["pk"])
        decision = decide(
            intent=intent,
            current=previous,
            target=run.target,
            device=facts,
            conflict=run.conflict_reason(matched) if conflicted else "",
        )
        if decision is None or decision.same_as(previous):
            continue
        decisions[row["pk"]] = decision
        run.counts[decision.state] += 1
        was_blocked = previous is not None and previous.intent == AppIntent.BLOCKED
        if was_blocked != (decision.intent == AppIntent.BLOCKED) and facts.reported is not None:
            run.recheck.append(row["pk"])
    sends = {device_id: d.send for device_id, d in decisions.items() if d.send}
    for kind in sends.values():
        run.counts[f"{kind}_queued"] += 1
    commands = queue_commands(app, run.target, sends, label=f"system:{FANOUT_JOB}")
    rows_write(app, decisions, commands, current)


def app_fanout(app_id: int, *, reason: str = "") -> dict[str, int]:
    """Bring every row of an app up to date (the fan-out task; idempotent). Returns the counts.

    Audited (one event) only when something changed.
    """
    app = App.objects.select_related("current_version").filter(pk=app_id).first()
    if app is None:
        return {}
    run = _Run(app)
    targeted = targeted_devices(app, run.assignments).order_by("pk")
    last = 0
    while True:
        with transaction.atomic():
            batch = list(
                targeted.filter(pk__gt=last).values("pk", "os_version", "os_version_key", **run.annotations)[
                    :FANOUT_BATCH
                ]
            )
            if batch:
                last = batch[-1]["pk"]
                _fanout_batch(run, batch)
        if len(batch) < FANOUT_BATCH:
            break
    with transaction.atomic():
        # NOT EXISTS, so PostgreSQL plans an anti-join.
        in_target = Exists(targeted_devices(app, run.assignments).filter(pk=OuterRef("device_id")))
        gone = AppInstall.objects.filter(app=app).filter(~in_target)
        run.recheck += list(
            gone.filter(intent=AppIntent.BLOCKED, state__in=MAYBE_PRESENT).values_list("device_id", flat=True)
        )
        # An install still queued for a device that left the target is withdrawn, not left to run.
        # (Ids read first: an UPDATE over a NOT EXISTS subquery gets a poor plan on PostgreSQL.)
        withdrawn = list(gone.filter(state=InstallState.PENDING).values_list("device_id", flat=True))
        for start in range(0, len(withdrawn), FANOUT_BATCH):
            desired_state_commands_cancel(subject=subject_of(app), devices=withdrawn[start : start + FANOUT_BATCH])
        removed = gone.delete()[0]
        if removed:
            run.counts["untargeted"] = removed
        if run.counts:
            audit_record(
                actor=Actor.system(FANOUT_JOB),
                verb="app.fanout",
                target=app,
                changes={"reason": reason, "version": run.target.version, **run.counts},
            )
    compliance_recheck(run.recheck)
    return dict(run.counts)


def compliance_recheck(device_ids: Iterable[int]) -> None:
    """Re-evaluate the compliance of devices whose blocked apps changed (in id batches)."""
    from policies.services.compliance import compliance_evaluate_devices

    ids = sorted(set(device_ids))
    for start in range(0, len(ids), FANOUT_BATCH):
        chunk = ids[start : start + FANOUT_BATCH]
        compliance_evaluate_devices(Device.objects.filter(pk__in=chunk), actor=Actor.system(FANOUT_JOB))


def device_apps_sync(device: Device) -> int:
    """Bring every app that targets one device up to date (at enrolment). Returns how many apps.

    Three reads whatever the catalog (the candidate apps, their assignments, the device with one
    flag per assignment), then the fan-out of one device per app that reaches it.
    """
    if device.lifecycle_state != LifecycleState.ENROLLED:
        return 0
    scoped = Q(scope__isnull=True) | Q(scope_id=device.scope_id)
    candidates = (
        App.objects.filter(scoped, platform=device.platform, assignments__mode=AssignmentMode.INCLUDE)
        .distinct()
        .select_related("current_version")
        .prefetch_related("assignments__user_group", "assignments__device_group")
    )
    runs = [_Run(app, list(app.assignments.all())) for app in candidates]
    if not runs:
        return 0
    annotations: dict[str, Any] = {}
    for run in runs:
        annotations.update(run.annotations)
        if run.exclude is not None:
            annotations[f"x{run.app.pk}"] = _flag(run.exclude)
    row = Device.objects.filter(pk=device.pk).values("pk", "os_version", "os_version_key", **annotations).first()
    if row is None:
        return 0
    reached = 0
    for run in runs:
        if row.get(f"x{run.app.pk}") or not run.matched(row):
            continue
        reached += 1
        _fanout_batch(run, [row])
    if reached:
        device.refresh_from_db(fields=["command_seq"])
    return reached


def device_app_intent(device: Device, app: App) -> tuple[str | None, bool, str]:
    """The effective intent of ``app`` on ``device``, whether it conflicts, and the conflict's reason."""
    run = _Run(app)
    row = targeted_devices(app, run.assignments).filter(pk=device.pk).values("pk", **run.annotations).first()
    if row is None:
        return None, False, ""
    matched = run.matched(row)
    intent, conflicted = resolve(set(matched))
    return intent, conflicted, run.conflict_reason(matched) if conflicted else ""


# -- compliance ------------------------------------------------------------------------------------


def blocked_apps_flag() -> Exists:
    """Whether a device has any app assigned to it as blocked (a column of the compliance engine's query)."""
    return Exists(AppInstall.objects.filter(device_id=OuterRef("pk"), intent=AppIntent.BLOCKED))


def blocked_apps_identifiers(device_ids: list[int]) -> dict[int, list[str]]:
    """``{device id: identifiers}`` of the apps assigned as blocked to ``device_ids``: one query."""
    found: dict[int, list[str]] = defaultdict(list)
    rows = AppInstall.objects.filter(device_id__in=device_ids, intent=AppIntent.BLOCKED).exclude(app__identifier="")
    for device_id, identifier in rows.values_list("device_id", "app__identifier"):
        found[device_id].append(identifier)
    return dict(found)
