"""Per-device installs: what devices answer, reconciliation with their inventory, Company Portal
requests and IT's retries. Each follows the rule of ``delivery.decide`` (see ``delivery``'s docstring).

**Results.** An acknowledged ``install_app`` is *installed* at the version the device reports in
the result's ``data.version`` (else the version sent); an acknowledged ``remove_app`` is *not
installed*; an error is *failed* with the device's sentence. The inventory has the last word: each
check-in with a changed inventory reconciles the device's rows with it (``device_apps_reconcile``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet

from devices.choices import CommandStatus, LifecycleState, Platform
from devices.models import Device, DeviceCommand, DeviceInventory
from devices.services import desired_state_commands_queue
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor, audit_record

from ..choices import AppIntent, AppKind, InstallState
from ..models import App, AppInstall
from ..targeting import GONE
from .delivery import (
    FANOUT_BATCH,
    INSTALL,
    REMOVE,
    ROW_FIELDS,
    Current,
    DeviceFacts,
    Target,
    decide,
    device_app_intent,
    inventory_versions,
    queue_commands,
    removal_payload,
    rows_current,
    rows_write,
    subject_of,
)

# -- what devices answer and report ----------------------------------------------------------------


def install_result_record(*, device: Device, command: DeviceCommand) -> None:
    """The device's final answer: only the row of that very command changes (a replaced one is ignored)."""
    rows = AppInstall.objects.filter(device=device, command=command)
    if command.status != CommandStatus.ACKNOWLEDGED:
        rows.update(state=InstallState.FAILED, reason=command.error or "The device reported an error without a reason.")
    elif command.command_type == INSTALL:
        reported = str((command.result or {}).get("version") or "")[:64]
        rows.update(state=InstallState.INSTALLED, reason="", installed_version=reported or F("desired_version"))
    else:
        rows.update(state=InstallState.NOT_INSTALLED, reason="", installed_version="")


def device_apps_reconcile(device: Device) -> int:
    """Compare the device's rows with its (changed) inventory; queue what closes the gap. Returns rows changed.

    Rows in conflict wait for the fan-out. One read when the device has no rows; else the
    inventory, one bulk update and the command statements.
    """
    rows = list(
        AppInstall.objects.filter(device=device)
        .exclude(intent="")
        .values(
            "pk",
            "app_id",
            "app__uuid",
            "app__name",
            "app__kind",
            "app__identifier",
            "app__url",
            "app__current_version__version",
            "app__current_version__version_key",
            "app__current_version__min_os_version",
            *ROW_FIELDS,
            "command_id",
            "command__command_type",
            "command__status",
        )
    )
    if not rows:
        return 0
    inventory = DeviceInventory.objects.filter(device=device).values_list("installed_apps", flat=True).first()
    versions = inventory_versions(inventory)
    label = Platform(device.platform).label if device.platform in Platform.values else device.platform
    changed: list[AppInstall] = []
    commands: list[DeviceCommand] = []
    by_pk: dict[int, AppInstall] = {}
    for row in rows:
        target = Target.from_values(
            row["app__current_version__version"],
            row["app__current_version__version_key"],
            row["app__current_version__min_os_version"],
        )
        identifier = (row["app__identifier"] or "").lower()
        known = versions is not None and bool(identifier)
        facts = DeviceFacts(
            device.os_version, device.os_version_key, label, known, versions.get(identifier) if known else None
        )
        current = Current.from_values(row)
        decision = decide(intent=row["intent"], current=current, target=target, device=facts)
        if decision is None or decision.same_as(current):
            continue
        install = AppInstall(
            pk=row["pk"], command_id=row["command_id"], **{f: getattr(decision, f) for f in ROW_FIELDS}
        )
        changed.append(install)
        if decision.send:
            app = App(
                pk=row["app_id"],
                uuid=row["app__uuid"],
                name=row["app__name"],
                kind=row["app__kind"],
                identifier=row["app__identifier"],
                url=row["app__url"],
            )
            payload = (
                {"app": str(app.uuid), "version": target.version} if decision.send == INSTALL else removal_payload(app)
            )
            commands.append(
                DeviceCommand(
                    device_id=device.pk,
                    command_type=decision.send,
                    payload=payload,
                    subject=subject_of(app),
                    requested_by_label="system:app reconciliation",
                )
            )
            by_pk[row["pk"]] = install
    if commands:
        queued = desired_state_commands_queue(commands=commands)
        for install, command in zip(by_pk.values(), queued, strict=True):
            install.command_id = command.pk
    if changed:
        AppInstall.objects.bulk_update(changed, [*ROW_FIELDS, "command"])
    if commands:
        device.refresh_from_db(fields=["command_seq"])
    return len(changed)


# -- the Company Portal ----------------------------------------------------------------------------


def _portal_checks(actor: Actor, device: Device, app: App) -> str | None:
    if actor.user is None or not authz.owns(actor.user, device):
        raise ValidationError("Only the person this device belongs to can install or remove its apps here.")
    if device.lifecycle_state != LifecycleState.ENROLLED:
        raise ValidationError(f"{device.name} is not enrolled, so apps cannot be installed or removed on it.")
    if app.platform != device.platform:
        raise ValidationError(
            f"{app.name} is for {app.get_platform_display()}; {device.name} runs {device.get_platform_display()}."
        )
    intent, conflicted, _reason = device_app_intent(device, app)
    if conflicted:
        raise ValidationError(f"IT assigned {app.name} to this device in ways that contradict each other. Ask IT.")
    if intent == AppIntent.REQUIRED:
        raise ValidationError(f"{app.name} is required on {device.name}: it is installed and kept up to date for you.")
    if intent in GONE:
        raise ValidationError(f"{app.name} is not allowed on {device.name}.")
    if intent != AppIntent.AVAILABLE:
        raise ValidationError(f"{app.name} is not offered for {device.name}.")
    return intent


@transaction.atomic
def app_install_request(*, actor: Actor, device: Device, app: App) -> AppInstall:
    """The owner installs an available app from the Company Portal: queue it (idempotent while on its way)."""
    _portal_checks(actor, device, app)
    app = App.objects.select_related("current_version").get(pk=app.pk)
    target = Target.of(app.current_version)
    if app.kind == AppKind.LOB and (app.current_version is None or not app.current_version.package):
        raise ValidationError(f"{app.name} has no package to install yet. Ask IT.")
    row = AppInstall.objects.select_for_update().filter(device=device, app=app).first()
    current = rows_current(app, [device.pk]).get(device.pk) if row is not None else None
    label = Platform(device.platform).label
    facts = DeviceFacts(device.os_version, device.os_version_key, label, False, None)
    if current is None:
        asked = Current(AppIntent.AVAILABLE, InstallState.NOT_INSTALLED, "", "", "", True)
    elif current.state == InstallState.FAILED:
        # Asking again is the owner's retry.
        asked = replace(current, state=InstallState.NOT_INSTALLED, requested_by_user=True, command_type=None)
    else:
        asked = replace(current, requested_by_user=True)
    decision = decide(intent=AppIntent.AVAILABLE, current=asked, target=target, device=facts)
    if decision is None:
        raise ValidationError(f"{app.name} is not offered for {device.name}.")
    if decision.state == InstallState.NOT_APPLICABLE:
        raise ValidationError(f"{decision.reason} Update the device first.")
    if decision.state == InstallState.INSTALLED:
        raise ValidationError(f"{app.name} is already installed on {device.name}.")
    commands = queue_commands(app, target, {device.pk: decision.send} if decision.send else {}, label=actor.label[:255])
    rows_write(app, {device.pk: decision}, commands, {device.pk: current} if current else {})
    audit_record(
        actor=actor,
        verb="app.install_request",
        target=device,
        changes={"app": app.name, "app_uuid": str(app.uuid), "version": target.version, "queued": bool(commands)},
    )
    return AppInstall.objects.get(device=device, app=app)


@transaction.atomic
def app_uninstall_request(*, actor: Actor, device: Device, app: App) -> AppInstall:
    """The owner removes an available app from the Company Portal; it is not reinstalled by the fan-out."""
    _portal_checks(actor, device, app)
    row = AppInstall.objects.select_for_update().filter(device=device, app=app).first()
    if row is None or row.state in (InstallState.NOT_INSTALLED, InstallState.NOT_APPLICABLE):
        raise ValidationError(f"{app.name} is not installed on {device.name}.")
    commands = queue_commands(app, Target(), {device.pk: REMOVE}, label=actor.label[:255])
    row.state, row.reason, row.requested_by_user = InstallState.PENDING, "", False
    row.intent, row.desired_version, row.command = AppIntent.AVAILABLE, "", commands[device.pk]
    row.save(
        update_fields=["state", "reason", "requested_by_user", "intent", "desired_version", "command", "updated_at"]
    )
    audit_record(
        actor=actor, verb="app.uninstall_request", target=device, changes={"app": app.name, "app_uuid": str(app.uuid)}
    )
    return row


# -- IT ------------------------------------------------------------------------------------------


@transaction.atomic
def app_installs_retry_failed(*, actor: Actor, installs: QuerySet[AppInstall]) -> int:
    """Queue again every failed row of ``installs`` (already authorised) on enrolled devices. Returns how many.

    In batches: per batch one read, the command statements and one bulk update; one audit event per app.
    """
    failed = (
        installs.filter(state=InstallState.FAILED, device__lifecycle_state=LifecycleState.ENROLLED)
        .exclude(intent="")
        .order_by("pk")
    )
    ids = list(failed.values_list("pk", flat=True))
    per_app: Counter = Counter()
    apps: dict[int, App] = {}
    for start in range(0, len(ids), FANOUT_BATCH):
        rows = list(
            AppInstall.objects.filter(pk__in=ids[start : start + FANOUT_BATCH]).select_related("app__current_version")
        )
        commands: list[DeviceCommand] = []
        for row in rows:
            app = apps.setdefault(row.app_id, row.app)
            target = Target.of(app.current_version)
            kind = REMOVE if row.intent in GONE else INSTALL
            payload = {"app": str(app.uuid), "version": target.version} if kind == INSTALL else removal_payload(app)
            commands.append(
                DeviceCommand(
                    device_id=row.device_id,
                    command_type=kind,
                    payload=payload,
                    subject=subject_of(app),
                    requested_by_label=actor.label[:255],
                )
            )
            row.state, row.reason = InstallState.PENDING, ""
            row.desired_version = target.version if kind == INSTALL else ""
            per_app[row.app_id] += 1
        for row, command in zip(rows, desired_state_commands_queue(commands=commands), strict=True):
            row.command_id = command.pk
        AppInstall.objects.bulk_update(rows, ["state", "reason", "desired_version", "command"])
    for app_id, count in per_app.items():
        audit_record(actor=actor, verb="app.retry_failed", target=apps[app_id], changes={"retried": count})
    return len(ids)
