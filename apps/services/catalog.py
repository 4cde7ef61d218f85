"""The app catalog: apps, their versions and packages, their assignments, deleting them.

Every change is audited and followed by one fan-out task (``delivery.app_fanout``) once committed.
A new version becomes the app's current version: the fan-out updates every device that has an
older one (supersedence). A package is checked and read before anything is stored: a damaged or
mismatched file is refused with a sentence and leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.template.defaultfilters import filesizeformat

from devices.choices import APPLE_PLATFORMS, LifecycleState
from devices.versions import InvalidVersion, parse_version
from mdm_portal.core.audit import Actor, audit_record
from policies.services.assignments import FIELDS as ASSIGNMENT_FIELDS
from policies.services.assignments import assignment_clean, assignment_describe

from ..choices import AppIntent, AppKind, InstallState
from ..models import App, AppAssignment, AppInstall, AppVersion
from .delivery import (
    FANOUT_BATCH,
    MAYBE_PRESENT,
    REMOVE,
    Target,
    app_version_key,
    compliance_recheck,
    fanout_schedule,
    queue_commands,
)
from .packages import PackageError, package_format, package_inspect, package_store

APP_FIELDS = ("name", "publisher", "description", "scope", "kind", "platform", "identifier", "store_id", "url", "icon")
# Fields that change what devices receive or who receives it: a change re-runs the fan-out.
DELIVERY_FIELDS = ("scope_id", "identifier", "store_id", "url")


@transaction.atomic
def app_save(
    *,
    actor: Actor,
    app: App | None = None,
    data: dict[str, Any],
    assignments: list[dict[str, Any]] | None = None,
    user=None,
) -> App:
    """Create (``app`` None) or change a catalog app, and optionally replace its assignments.

    Kind and platform are fixed once created. A store app needs the identifier devices report (and
    on Apple platforms a numeric App Store id, if given); a web link needs its URL. Nothing is
    written when anything is wrong.
    """
    creating = app is None
    app = app or App()
    if not creating:
        for field in ("kind", "platform"):
            if field in data and data[field] != getattr(app, field):
                raise ValidationError({field: f"An app's {field} cannot change; add a new app instead."})
    before = {f: getattr(app, f) for f in ("name", "publisher", "description", *DELIVERY_FIELDS)}
    for field in APP_FIELDS:
        if field in data:
            value = data[field]
            setattr(app, field, value.strip() if isinstance(value, str) else value)
    errors: dict[str, str] = {}
    if app.kind == AppKind.STORE and not app.identifier:
        errors["identifier"] = (
            "Enter the identifier devices report for this app: the bundle id (Apple), package name (Android) "
            "or product id (Windows)."
        )
    if app.kind == AppKind.STORE and app.platform in APPLE_PLATFORMS and app.store_id and not app.store_id.isdigit():
        errors["store_id"] = "The App Store id is a number, the digits after 'id' in the app's App Store link."
    if app.kind == AppKind.WEB and not app.url:
        errors["url"] = "Enter the web link's address, starting with https://."
    if app.kind == AppKind.LOB and app.url:
        errors["url"] = "A line-of-business app is installed from its package, not from a link."
    if app.identifier:
        clash = App.objects.filter(platform=app.platform, identifier=app.identifier).exclude(pk=app.pk).first()
        if clash is not None:
            errors["identifier"] = (
                f"{clash.name} already uses the identifier {app.identifier} on {clash.get_platform_display()}; "
                "add a version to that app instead."
            )
    if errors:
        raise ValidationError(errors)
    app.full_clean(exclude=["icon"])
    app.save()
    changes: dict[str, Any] = {field: str(getattr(app, field)) for field in ("name", "kind", "platform", "identifier")}
    if not creating:
        changes = {"before": {k: v for k, v in before.items() if getattr(app, k) != v}}
    audit_record(actor=actor, verb="app.create" if creating else "app.change", target=app, changes=changes)
    if assignments is not None:
        _assignments_replace(actor=actor, app=app, rows=assignments, user=user)
    if (
        creating
        or assignments is not None
        or any(getattr(app, k) != v for k, v in before.items() if k in DELIVERY_FIELDS)
    ):
        fanout_schedule(app.pk, reason="created" if creating else "changed")
    return app


def _assignment_describe(assignment: AppAssignment) -> dict[str, Any]:
    return {**assignment_describe(assignment), "intent": assignment.intent}


def _assignments_replace(*, actor: Actor, app: App, rows: list[dict[str, Any]], user=None) -> list[AppAssignment]:
    """Replace every assignment of ``app`` (validated first: nothing is written if one row is wrong).

    Each row is a profile/policy assignment (target, mode, filters) plus an ``intent``; an
    exclude's intent is ignored (an exclude applies to every intent of the app).
    """
    cleaned, problems = [], []
    for index, row in enumerate(rows):
        try:
            base = assignment_clean(app, row, user=user)
        except ValidationError as exc:
            problems.append(
                f"Assignment {index + 1}: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            )
            continue
        intent = row.get("intent") or (AppIntent.REQUIRED if base.mode != "include" else "")
        if intent not in AppIntent.values:
            problems.append(f"Assignment {index + 1}: intent: choose one of {', '.join(AppIntent.values)}.")
            continue
        cleaned.append(AppAssignment(app=app, intent=intent, **{f: getattr(base, f) for f in ASSIGNMENT_FIELDS}))
    if problems:
        raise ValidationError({"assignments": problems})
    before = [_assignment_describe(a) for a in app.assignments.select_related("user_group", "device_group")]
    app.assignments.all().delete()
    AppAssignment.objects.bulk_create(cleaned)
    after = [_assignment_describe(a) for a in cleaned]
    if before != after:
        audit_record(actor=actor, verb="app.assignments", target=app, changes={"before": before, "after": after})
    return cleaned


@transaction.atomic
def app_assignments_set(*, actor: Actor, app: App, rows: list[dict[str, Any]], user=None) -> list[AppAssignment]:
    """Replace an app's assignments (see ``_assignments_replace``) and re-run its fan-out."""
    cleaned = _assignments_replace(actor=actor, app=app, rows=rows, user=user)
    fanout_schedule(app.pk, reason="assignments changed")
    return cleaned


def _version_checked(app: App, version: str) -> str:
    try:
        key = app_version_key(version)
        if not key:
            parse_version(version)
    except InvalidVersion as exc:
        raise ValidationError({"version": str(exc)}) from exc
    if AppVersion.objects.filter(app=app, version=version).exists():
        raise ValidationError({"version": f"{app.name} already has version {version}."})
    current = app.current_version
    if current is not None and key <= current.version_key:
        raise ValidationError(
            {
                "version": f"Version {version} is not newer than the current version {current.version}. "
                "Add a newer version: devices only ever move forward."
            }
        )
    return key


@transaction.atomic
def app_version_add(
    *,
    actor: Actor,
    app: App,
    version: str | None = None,
    package: UploadedFile | None = None,
    min_os_version: str = "",
    notes: str = "",
) -> AppVersion:
    """Add a version; it becomes the current one and the fan-out brings devices with an older one up to it.

    A line-of-business app needs a package (at most ``MDM_APP_PACKAGE_MAX_BYTES``, of the format
    its platform installs). The version, identifier and minimum OS are read from the package where
    the format allows it; an entered version must agree with the package's. The file is stored
    (SHA-256 computed while it streams to storage) only once everything is checked.
    """
    version = (version or "").strip()
    min_os_version = (min_os_version or "").strip()
    app = App.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=app.pk)
    info = None
    if app.kind == AppKind.LOB:
        if package is None:
            raise ValidationError({"package": "Upload the package file of this version."})
        limit = settings.MDM_APP_PACKAGE_MAX_BYTES
        if package.size is not None and package.size > limit:
            raise ValidationError(
                {
                    "package": f"This package is {filesizeformat(package.size)}; the limit is {filesizeformat(limit)}. "
                    "Upload a smaller package or ask the administrator to raise MDM_APP_PACKAGE_MAX_BYTES."
                }
            )
        try:
            info = package_inspect(package, package_format(app.platform, package.name))
        except PackageError as exc:
            raise ValidationError({"package": str(exc)}) from exc
        if info.version and version and info.version != version:
            raise ValidationError(
                {
                    "version": f"The package says it is version {info.version}, not {version}. Leave the version "
                    "empty to use the package's, or upload the right file."
                }
            )
        if info.identifier and app.identifier and info.identifier != app.identifier:
            raise ValidationError(
                {
                    "package": f"This package is {info.identifier}, but {app.name} is {app.identifier}. "
                    "Upload this app's package, or add the package as a new app."
                }
            )
        version = info.version or version
        if not version:
            raise ValidationError({"version": f"Enter the version: {info.unreadable}."})
        if info.identifier and not app.identifier:
            clash = App.objects.filter(platform=app.platform, identifier=info.identifier).exclude(pk=app.pk).first()
            if clash is not None:
                raise ValidationError(
                    {"package": f"This package is {info.identifier}, which is already the app {clash.name}."}
                )
            app.identifier = info.identifier
        min_os_version = min_os_version or info.min_os_version
    elif package is not None:
        raise ValidationError(
            {"package": "Only line-of-business apps take a package; store apps and web links do not."}
        )
    if not version:
        raise ValidationError({"version": "Enter the version number."})
    if len(version) > 64:
        raise ValidationError({"version": "A version is at most 64 characters."})
    if min_os_version:
        try:
            parse_version(min_os_version)
        except InvalidVersion as exc:
            raise ValidationError({"min_os_version": str(exc)}) from exc
    key = _version_checked(app, version)
    row = AppVersion(
        app=app,
        version=version,
        version_key=key,
        min_os_version=min_os_version,
        notes=notes,
        package_format=info.format if info else "",
    )
    stored_name = None
    try:
        if package is not None and info is not None:
            stored = package_store(row.package.storage, package, row.package.field.generate_filename(
                row, f"{app.uuid}-{version}.{info.format}"
            ))  # fmt: skip
            stored_name = stored.name
            row.package.name, row.sha256, row.size_bytes = stored.name, stored.sha256, stored.size
        row.save()
        app.current_version = row
        app.save(update_fields=["current_version", "identifier", "updated_at"])
        audit_record(
            actor=actor,
            verb="app.version_add",
            target=app,
            changes={
                "version": version,
                "sha256": row.sha256,
                "size_bytes": row.size_bytes,
                "min_os_version": min_os_version,
                "identifier": app.identifier,
            },
        )
    except Exception:
        if stored_name:
            row.package.storage.delete(stored_name)
        raise
    fanout_schedule(app.pk, reason=f"version {version} added")
    return row


@transaction.atomic
def app_delete(*, actor: Actor, app: App) -> int:
    """Delete an app: devices where it was installed because it was required are told to remove it.

    Returns how many removals were queued. Devices where it was blocked are re-evaluated for
    compliance; the stored packages are deleted once the deletion is committed.
    """
    held = AppInstall.objects.filter(
        app=app,
        intent=AppIntent.REQUIRED,
        state__in=(InstallState.INSTALLED, InstallState.PENDING),
        device__lifecycle_state=LifecycleState.ENROLLED,
    ).values_list("device_id", flat=True)
    held = list(held)
    for start in range(0, len(held), FANOUT_BATCH):
        removals = dict.fromkeys(held[start : start + FANOUT_BATCH], REMOVE)
        queue_commands(app, Target(), removals, label=actor.label[:255])
    # Only where the blocked app may be present can its deletion change a compliance state.
    blocked = AppInstall.objects.filter(app=app, intent=AppIntent.BLOCKED, state__in=MAYBE_PRESENT)
    blocked = list(blocked.values_list("device_id", flat=True))
    packages = list(app.versions.exclude(package="").values_list("package", flat=True))
    audit_record(
        actor=actor,
        verb="app.delete",
        target=app,
        changes={"name": app.name, "platform": app.platform, "identifier": app.identifier, "removal_queued": len(held)},
    )
    storage = AppVersion._meta.get_field("package").storage
    app.delete()
    compliance_recheck(blocked)
    transaction.on_commit(lambda: [storage.delete(name) for name in packages])
    return len(held)
