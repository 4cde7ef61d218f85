"""Corporate identifiers: the serial numbers and IMEIs IT lists so those devices enrol as corporate.

An identifier is a serial number and/or an IMEI with where the device should land (scope, user,
device group). Listing one creates no device: enrolment consults the list
(``corporate_identifier_for``, ``corporate_identifier_claim``). A live device that already has the
number is linked at once and becomes corporate.

CSV import: ``identifier_import_create`` stores the upload and queues a Celery task that calls
``identifier_import_run``, which guarantees:

* the file is streamed, never held: rows are checked and written ``BATCH_SIZE`` at a time, with one
  query per batch for each kind of reference (people, device groups, identifiers, devices);
* every bad row is reported as a sentence with its line number; the first ``MAX_KEPT_ERRORS`` are
  kept, all are counted; ``processed_rows`` moves after every batch so the console can show progress;
* ``good_rows`` writes the good rows batch by batch; ``all_or_nothing`` checks the whole file first
  and then writes every row in one transaction, or writes nothing;
* a file that cannot be read as CSV with a serial_number or imei column fails before anything is
  written, with one sentence saying what to do;
* a finished import never runs again, and a run that restarts after a crash skips the rows it had
  already written instead of reporting or duplicating them.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from mdm_portal.core import outbox
from mdm_portal.core.audit import Actor, audit_record, model_changes
from mdm_portal.core.choices import ActorType
from mdm_portal.core.models import AuditEvent, Scope, User

from ..choices import IdentifierImportMode, IdentifierImportStatus, Ownership
from ..models import CorporateIdentifier, Device, DeviceGroup, IdentifierImport
from .identifier_rows import (
    BATCH_SIZE,
    COLUMNS,
    CheckedRow,
    ImportFileError,
    Layout,
    Row,
    RowContext,
    batches,
    check_rows,
    column_index,
    data_rows,
    open_text,
    read_header,
    scan_file,
    sentence,
)
from .records import device_update

logger = logging.getLogger(__name__)

MAX_KEPT_ERRORS = 1000
MAX_FILE_BYTES = 50 * 1024 * 1024
# Up to this many matched devices per batch go through ``device_update`` one by one; more are
# changed with one UPDATE and one bulk insert of their audit events.
PER_DEVICE_UPDATE_LIMIT = 50
# Batches between refreshes of the identifiers table's planner statistics (PostgreSQL).
ANALYZE_EVERY = 10
IDENTIFIER_FIELDS = ("serial_number", "imei", "scope", "user", "device_group", "description", "device")
_LOCK_NAMESPACE = 0x1D1  # pg advisory lock namespace for identifier imports

Status = IdentifierImportStatus
Mode = IdentifierImportMode


# Single identifiers --------------------------------------------------------------------------------


def identity_match(identity: dict[str, Any]) -> Q | None:
    """A filter matching a device's serial number or IMEI (normalised as stored), or None without either."""
    serial = (identity.get("serial_number") or "").strip().upper()
    imei = (identity.get("imei") or "").strip()
    match = Q()
    if serial:
        match |= Q(serial_number=serial)
    if imei:
        match |= Q(imei=imei)
    return match or None


def corporate_identifier_for(identity: dict[str, Any]) -> CorporateIdentifier | None:
    """The corporate identifier matching an enrolling device's serial number or IMEI, if any."""
    match = identity_match(identity)
    if match is None:
        return None
    return CorporateIdentifier.objects.select_related("scope", "user", "device_group").filter(match).first()


def corporate_identifier_claim(*, identifier: CorporateIdentifier, device: Device) -> None:
    """Link the identifier to the device that enrolled with it, and put the device in its group."""
    CorporateIdentifier.objects.filter(pk=identifier.pk).update(device=device)
    if identifier.device_group is not None and identifier.device_group.scope_id in (None, device.scope_id):
        identifier.device_group.static_members.add(device)


def corporate_identifier_clean(
    *,
    scope: Scope,
    serial_number: str = "",
    imei: str = "",
    user: User | None = None,
    device_group: DeviceGroup | None = None,
    description: str = "",
) -> CheckedRow:
    """Check one identifier by the same rules as an import row; ``ValidationError`` by field if bad."""
    row = Row(
        line=1,
        cells=[
            serial_number,
            imei,
            user.get_username() if user else "",
            scope.slug,
            device_group.name if device_group else "",
            description,
        ],
    )
    context = RowContext(columns=column_index(list(COLUMNS)), scopes={scope.slug.lower(): scope}, default_scope=scope)
    checked = check_rows([row], context)[0]
    if checked.problems:
        by_field: dict[str, list[str]] = defaultdict(list)
        for name, text in checked.problems:
            by_field[name].append(sentence(text))
        raise ValidationError(dict(by_field))
    return checked


@transaction.atomic
def corporate_identifier_create(
    *,
    actor: Actor,
    scope: Scope,
    serial_number: str = "",
    imei: str = "",
    user: User | None = None,
    device_group: DeviceGroup | None = None,
    description: str = "",
) -> CorporateIdentifier:
    """List one serial number and/or IMEI as corporate. A live device with it is linked and made corporate."""
    checked = corporate_identifier_clean(
        scope=scope,
        serial_number=serial_number,
        imei=imei,
        user=user,
        device_group=device_group,
        description=description,
    )
    identifier = CorporateIdentifier(
        serial_number=checked.serial,
        imei=checked.imei,
        description=checked.description,
        scope=scope,
        user=user,
        device_group=device_group,
        device_id=checked.device["pk"] if checked.device else None,
    )
    try:
        with transaction.atomic():
            identifier.save()
    except IntegrityError as exc:
        raise ValidationError("Someone listed this serial number or IMEI a moment ago. Reload the list.") from exc
    _devices_link(actor, [checked])
    audit_record(
        actor=actor,
        verb="corporate_identifier.create",
        target=identifier,
        changes=model_changes(identifier, IDENTIFIER_FIELDS),
    )
    return identifier


@transaction.atomic
def corporate_identifier_delete(*, actor: Actor, identifier: CorporateIdentifier) -> None:
    """Remove an identifier. A device that already enrolled with it stays as it is."""
    audit_record(
        actor=actor,
        verb="corporate_identifier.delete",
        target=identifier,
        changes=model_changes(identifier, IDENTIFIER_FIELDS),
    )
    identifier.delete()


# Imports: upload -------------------------------------------------------------------------------


def identifier_import_check(*, uploaded_file: Any, mode: str, default_scope: Scope | None) -> None:
    """What can be known about an upload before it is stored: mode, size, first bytes and header.

    Raises ``ValidationError`` by field (``file``, ``mode``, ``default_scope``) with a sentence.
    """
    if mode not in Mode.values:
        raise ValidationError({"mode": f"Choose one of: {', '.join(Mode.values)}."})
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > MAX_FILE_BYTES:
        raise ValidationError(
            {"file": f"The file is {size / 1e6:.0f} MB; the limit is {MAX_FILE_BYTES // 10**6} MB. Split it."}
        )
    try:
        columns, _ = read_header(uploaded_file)
    except ImportFileError as exc:
        raise ValidationError({"file": exc.message}) from exc
    if "scope" not in columns and default_scope is None:
        raise ValidationError(
            {"default_scope": "The file has no scope column. Choose a default scope, or add a scope column."}
        )


@transaction.atomic
def identifier_import_create(
    *,
    actor: Actor,
    uploaded_file: Any,
    mode: str = Mode.GOOD_ROWS,
    default_scope: Scope | None = None,
) -> IdentifierImport:
    """Store an uploaded CSV and queue its import. The header is checked now, the rows by the task."""
    identifier_import_check(uploaded_file=uploaded_file, mode=mode, default_scope=default_scope)
    name = os.path.basename(getattr(uploaded_file, "name", "") or "identifiers.csv")[:200]
    identifier_import = IdentifierImport(
        created_by=actor.user, original_name=name, mode=mode, default_scope=default_scope
    )
    uploaded_file.seek(0)
    identifier_import.file.save(name, uploaded_file, save=False)
    identifier_import.save()
    audit_record(
        actor=actor,
        verb="identifier_import.create",
        target=identifier_import,
        changes=model_changes(identifier_import, ("original_name", "mode", "default_scope")),
    )
    import_id = identifier_import.pk
    _enqueue(import_id)
    return identifier_import


def _enqueue(import_id: int) -> None:
    from ..tasks_identifiers import identifier_import_process

    outbox.enqueue(identifier_import_process, import_id)


# Imports: writing rows ---------------------------------------------------------------------------


def _identifier(checked: CheckedRow, import_id: int | None) -> CorporateIdentifier:
    return CorporateIdentifier(
        serial_number=checked.serial,
        imei=checked.imei,
        description=checked.description,
        scope=checked.scope,
        user_id=checked.user_id,
        device_group_id=checked.group[0] if checked.group else None,
        device_id=checked.device["pk"] if checked.device else None,
        source_import_id=import_id,
    )


_COPY_COLUMNS = (
    "serial_number", "imei", "description", "scope_id", "user_id", "device_group_id", "device_id",
    "source_import_id", "created_at",
)  # fmt: skip


def _insert(rows: list[CheckedRow], import_id: int | None) -> None:
    """Insert identifiers for checked rows. On PostgreSQL with COPY: a few times faster than INSERT."""
    if connection.vendor != "postgresql":
        CorporateIdentifier.objects.bulk_create([_identifier(row, import_id) for row in rows])
        return
    now = timezone.now()
    quote = connection.ops.quote_name
    statement = (
        f"COPY {quote(CorporateIdentifier._meta.db_table)} ({', '.join(quote(c) for c in _COPY_COLUMNS)}) FROM STDIN"
    )
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(
                (
                    row.serial, row.imei, row.description, row.scope.pk, row.user_id,
                    row.group[0] if row.group else None, row.device["pk"] if row.device else None, import_id, now,
                )
            )  # fmt: skip


def _devices_link(actor: Actor, rows: list[CheckedRow]) -> None:
    """Make the live devices these identifiers matched corporate, and put them in the identifiers' groups."""
    matched = [row for row in rows if row.device is not None]
    if not matched:
        return
    personal = {row.device["pk"]: row.device for row in matched if row.device["ownership"] != Ownership.CORPORATE}
    if 0 < len(personal) <= PER_DEVICE_UPDATE_LIMIT:
        for device in Device.objects.filter(pk__in=personal):
            device_update(actor=actor, device=device, data={"ownership": Ownership.CORPORATE})
    elif personal:
        Device.objects.filter(pk__in=personal).update(ownership=Ownership.CORPORATE, updated_at=timezone.now())
        device_type = ContentType.objects.get_for_model(Device)
        AuditEvent.objects.bulk_create(
            AuditEvent(
                actor_type=actor.type,
                actor_user=actor.user,
                actor_label=actor.label[:255],
                verb="device.update",
                target_type=device_type,
                target_id=str(pk),
                target_repr=device["name"][:255],
                scope_id=device["scope_id"],
                changes={"ownership": [device["ownership"], Ownership.CORPORATE]},
                source_ip=actor.source_ip,
            )
            for pk, device in personal.items()
        )
    membership = DeviceGroup.static_members.through
    memberships = [
        membership(devicegroup_id=row.group[0], device_id=row.device["pk"])
        for row in matched
        if row.group is not None and row.group[1] in (None, row.device["scope_id"])
    ]
    if memberships:
        membership.objects.bulk_create(memberships, ignore_conflicts=True)


class _Rejected(Exception):
    """All-or-nothing: a row went bad while writing; roll everything back."""


def _write(checked_rows: list[CheckedRow], import_id: int, actor: Actor, *, strict: bool) -> int:
    """Insert the good rows of a batch; returns how many. Call inside a transaction."""
    good = [row for row in checked_rows if not row.problems and not row.already_imported]
    if not good:
        return 0
    try:
        with transaction.atomic():
            _insert(good, import_id)
    except IntegrityError:
        # Someone listed one of these numbers between the check and the insert: find which, row by row.
        if strict:
            raise _Rejected from None
        written = []
        for row in good:
            try:
                with transaction.atomic():
                    _identifier(row, import_id).save()
                written.append(row)
            except IntegrityError:
                row.problems.append(
                    (NON_FIELD_ERRORS, "the serial number or IMEI was listed by someone else meanwhile")
                )
        good = written
    _devices_link(actor, good)
    return len(good)


# Imports: the run ----------------------------------------------------------------------------------


@contextmanager
def _exclusive(import_id: int) -> Iterator[bool]:
    """On PostgreSQL, only one worker runs a given import at a time (a re-delivered task waits its turn)."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = int(import_id) % 2**31
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", [_LOCK_NAMESPACE, key])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", [_LOCK_NAMESPACE, key])


def _refresh_statistics() -> None:
    """A bulk load outruns autovacuum: with stale row counts PostgreSQL plans each batch's lookup of
    numbers as a scan of the whole identifiers table (quadratic over the file) instead of an index scan."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(CorporateIdentifier._meta.db_table)}")


class _Run:
    def __init__(self, identifier_import: IdentifierImport):
        self.identifier_import = identifier_import
        self.pk = identifier_import.pk
        who = identifier_import.created_by.get_username() if identifier_import.created_by else "a removed account"
        self.actor = Actor(
            type=ActorType.SYSTEM,
            label=f"system:identifier_import {self.pk} (uploaded by {who})",
            user=identifier_import.created_by,
        )
        self.total = self.processed = self.imported = self.error_rows = 0
        self.errors: list[dict[str, Any]] = []

    def execute(self) -> None:
        layout = scan_file(self.identifier_import)
        if "scope" not in layout.columns and self.identifier_import.default_scope is None:
            raise ImportFileError(
                "The file has no scope column and no default scope was chosen. Upload it again and choose one."
            )
        self.total = layout.rows
        IdentifierImport.objects.filter(pk=self.pk).update(total_rows=self.total)
        scopes = {scope.slug.lower(): scope for scope in Scope.objects.all()}
        self.context = RowContext(
            columns=column_index(layout.columns),
            width=len(layout.columns),
            scopes=scopes,
            default_scope=self.identifier_import.default_scope,
            import_id=self.pk,
        )
        if self.identifier_import.mode == Mode.ALL_OR_NOTHING:
            self._all_or_nothing(layout)
        else:
            self._good_rows(layout)

    def _rows(self, layout: Layout) -> Iterator[list[Row]]:
        with open_text(self.identifier_import) as text:
            text.readline()  # the header, checked by the scan
            for number, batch in enumerate(batches(data_rows(text, layout.delimiter), BATCH_SIZE)):
                if number % ANALYZE_EVERY == 0:
                    _refresh_statistics()
                yield batch

    def _count(self, checked_rows: list[CheckedRow]) -> None:
        self.processed += len(checked_rows)
        for row in checked_rows:
            if row.problems:
                self.error_rows += 1
                if len(self.errors) < MAX_KEPT_ERRORS:
                    self.errors.append({"line": row.line, "reason": row.reason()})

    def _progress(self) -> None:
        IdentifierImport.objects.filter(pk=self.pk).update(
            processed_rows=self.processed, imported_rows=self.imported, error_rows=self.error_rows
        )

    def _good_rows(self, layout: Layout) -> None:
        for batch in self._rows(layout):
            checked_rows = check_rows(batch, self.context)
            with transaction.atomic():
                self.imported += _write(checked_rows, self.pk, self.actor, strict=False)
            self.imported += sum(row.already_imported for row in checked_rows)
            self._count(checked_rows)
            self._progress()
        self.finish(Status.DONE)

    def _all_or_nothing(self, layout: Layout) -> None:
        for batch in self._rows(layout):
            self._count(check_rows(batch, self.context))
            self._progress()
        if self.error_rows:
            self.finish(Status.REJECTED)
            return
        self.context.seen_serials.clear()
        self.context.seen_imeis.clear()
        self.processed = 0
        try:
            with transaction.atomic():
                for batch in self._rows(layout):
                    checked_rows = check_rows(batch, self.context)
                    self._count(checked_rows)
                    if self.error_rows:
                        raise _Rejected
                    self.imported += _write(checked_rows, self.pk, self.actor, strict=True)
                # In the same transaction: a crash before this leaves nothing written and the import restartable.
                self.finish(Status.DONE)
        except _Rejected:
            self.imported = 0
            if not self.error_rows:
                self.error_rows = 1
                self.errors = [
                    {
                        "line": None,
                        "reason": "Someone listed some of these numbers while the import ran; "
                        "nothing was imported. Upload the file again to see which.",
                    }
                ]
            self.finish(Status.REJECTED)

    def finish(self, status: str, errors: list[dict[str, Any]] | None = None) -> None:
        if errors is not None:
            self.errors = errors
        IdentifierImport.objects.filter(pk=self.pk).update(
            status=status,
            total_rows=self.total,
            processed_rows=self.processed,
            imported_rows=self.imported,
            error_rows=self.error_rows,
            errors=self.errors,
            finished_at=timezone.now(),
        )
        audit_record(
            actor=self.actor,
            verb="identifier_import.finish",
            target=self.identifier_import,
            changes={
                "status": status,
                "total_rows": self.total,
                "imported_rows": self.imported,
                "error_rows": self.error_rows,
            },
        )


def identifier_import_run(*, import_id: int) -> IdentifierImport | None:
    """Import an uploaded file (see the module docstring). Safe to call again for the same import."""
    with _exclusive(import_id) as mine:
        identifier_import = (
            IdentifierImport.objects.select_related("created_by", "default_scope").filter(pk=import_id).first()
        )
        if identifier_import is None or not mine:
            return identifier_import
        if identifier_import.status not in (Status.PENDING, Status.RUNNING):
            return identifier_import
        IdentifierImport.objects.filter(pk=import_id).update(
            status=Status.RUNNING, processed_rows=0, imported_rows=0, error_rows=0, errors=[], finished_at=None
        )
        run = _Run(identifier_import)
        try:
            run.execute()
        except ImportFileError as exc:
            run.processed = run.imported = 0
            run.finish(Status.FAILED, [{"line": exc.line, "reason": exc.message}])
        except FileNotFoundError:
            run.finish(
                Status.FAILED,
                [
                    {
                        "line": None,
                        "reason": "The uploaded file is not in the file storage this worker reads; web servers "
                        "and workers must share MEDIA_ROOT (or a storage service). Upload the file again.",
                    }
                ],
            )
        except (OperationalError, InterfaceError):
            raise  # the database went away: the task retries and the run resumes
        except Exception:
            logger.exception("Identifier import %s stopped on an unexpected error", import_id)
            run.finish(
                Status.FAILED,
                [
                    {
                        "line": None,
                        "reason": "The import stopped on an unexpected error. Rows written before it are "
                        "kept; upload the file again to import the rest (rows already listed are reported).",
                    }
                ],
            )
        identifier_import.refresh_from_db()
        return identifier_import
