"""Reading and checking corporate-identifier CSV files, a batch of rows at a time.

Nothing here writes: ``scan_file`` reads a stored file once to find its layout (or the one sentence
that says why it cannot be imported), ``data_rows`` streams its rows, and ``check_rows`` normalises a
batch and resolves every reference with one query per kind. ``devices.services.identifiers`` writes.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.db import connection
from django.db.models import F, Lookup, Q
from django.db.models.functions import Lower

from mdm_portal.core.models import Scope, User

from ..choices import LifecycleState
from ..models import CorporateIdentifier, Device, DeviceGroup, IdentifierImport

BATCH_SIZE = 2000
MAX_ROWS = 1_000_000
COLUMNS = ("serial_number", "imei", "user", "scope", "device_group", "description")
COLUMN_ALIASES = {"serial": "serial_number", "serialnumber": "serial_number", "group": "device_group"}
SERIAL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._/-]*")
SPREADSHEET_NUMBER = re.compile(r"\d+(?:[.,]\d+)?[eE]\+?\d+")
_AMBIGUOUS = "ambiguous"
_FREE = object()  # a number no identifier holds yet


class ImportFileError(Exception):
    """The file as a whole cannot be imported; ``message`` is one sentence saying what to do."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message, self.line = message, line


@dataclass(frozen=True)
class Layout:
    columns: list[str]
    delimiter: str
    rows: int


@dataclass
class Row:
    line: int
    cells: list[str]


def _column(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return COLUMN_ALIASES.get(key, key)


def _sniff(head: bytes) -> None:
    """Refuse what is plainly not a UTF-8 text file, from its first bytes."""
    if not head.strip():
        raise ImportFileError(
            "The file is empty. Upload a CSV file with a header line (serial_number and/or imei) and a row per device."
        )
    if head.startswith(b"PK\x03\x04"):
        raise ImportFileError(
            "This is a spreadsheet (or another zip file), not CSV. Save it as 'CSV UTF-8' and upload that."
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError("The file is UTF-16 text. Save it as 'CSV UTF-8' and upload it again.")
    if b"\x00" in head:
        raise ImportFileError("This is not a text file. Upload a CSV file saved as 'CSV UTF-8'.")


def parse_header(line: str) -> tuple[list[str], str]:
    """The header's column names (normalised) and the delimiter the file uses."""
    line = line.lstrip("\ufeff").rstrip("\r\n")
    if not line.strip():
        raise ImportFileError(
            "The first line of the file is empty. It must name the columns: serial_number and/or imei, "
            "then optionally user, scope, device_group, description."
        )
    delimiter = max((",", ";", "\t"), key=line.count)
    try:
        names = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration) as exc:
        raise ImportFileError("The header line is not valid CSV. Export the file again as CSV.") from exc
    columns = [_column(name) for name in names]
    if "serial_number" not in columns and "imei" not in columns:
        raise ImportFileError(
            "The header has no serial_number or imei column. The first line must name the columns, "
            "for example: serial_number,imei,user,scope,device_group,description."
        )
    # A blank column name (a trailing delimiter, as spreadsheets write) is ignored with its cells.
    unknown = [name.strip() for name, column in zip(names, columns, strict=True) if column not in (*COLUMNS, "")]
    if unknown:
        raise ImportFileError(
            f"The header has unknown column(s): {', '.join(repr(n) for n in unknown)}. Use only: {', '.join(COLUMNS)}."
        )
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise ImportFileError(f"The header names {', '.join(repeated)} more than once. Keep one of each column.")
    return columns, delimiter


def read_header(uploaded_file: Any) -> tuple[list[str], str]:
    """Check an upload's first bytes and header line without reading the rest."""
    uploaded_file.seek(0)
    head = uploaded_file.read(64 * 1024)
    uploaded_file.seek(0)
    if isinstance(head, str):
        head = head.encode()
    _sniff(head)
    first, newline, _ = head.partition(b"\n")
    if not newline and len(head) == 64 * 1024:
        raise ImportFileError("The first line is longer than 64 KB, so this is not a CSV file with a header line.")
    try:
        return parse_header(first.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "Line 1: the file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."
        ) from exc


def _check_utf8(binary: IO[bytes]) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0
    for chunk in iter(lambda: binary.read(1 << 20), b""):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines_before + chunk.count(b"\n", 0, max(exc.start, 0)) + 1
            raise ImportFileError(
                f"Line {line}: the file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again.", line
            ) from exc
        lines_before += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            "The file ends in the middle of a character, so it is not UTF-8 text. Save it as 'CSV UTF-8' and upload it."
        ) from exc


@contextmanager
def open_text(identifier_import: IdentifierImport) -> Iterator[io.TextIOWrapper]:
    handle = identifier_import.file.storage.open(identifier_import.file.name, "rb")
    try:
        binary = getattr(handle, "file", handle)
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            yield text
        finally:
            text.detach()
    finally:
        handle.close()


def data_rows(text: io.TextIOWrapper, delimiter: str) -> Iterator[Row]:
    """Every data row after the header line, with its line number; rows of empty cells are skipped."""
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    line = 2  # where the next record starts: the header is line 1, and a quoted cell may span lines
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield Row(line, cells)
            line = reader.line_num + 2
    except csv.Error as exc:
        raise ImportFileError(
            f"Line {line}: the file is not valid CSV ({exc}). Check the quotes on that line, or export the file "
            "again as CSV.",
            line,
        ) from exc


def scan_file(identifier_import: IdentifierImport) -> Layout:
    """Read the whole file once without touching the database: encoding, CSV syntax, row count."""
    with identifier_import.file.storage.open(identifier_import.file.name, "rb") as handle:
        _sniff(handle.read(4096))
        handle.seek(0)
        _check_utf8(handle)
    with open_text(identifier_import) as text:
        columns, delimiter = parse_header(text.readline())
        rows = 0
        for _ in data_rows(text, delimiter):
            rows += 1
            if rows > MAX_ROWS:
                raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files.")
    if rows == 0:
        raise ImportFileError("The file has a header but no rows. Add one row per device under the header.")
    return Layout(columns, delimiter, rows)


def batches(rows: Iterable[Row], size: int = BATCH_SIZE) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class RowContext:
    """What checking a row needs beyond the row: the file's columns, the scopes, what came before."""

    columns: dict[str, int]
    scopes: dict[str, Scope]
    width: int = 0  # cells in the header, blank names included
    default_scope: Scope | None = None
    import_id: int | None = None
    # Where each number was first seen in the file: the one piece of state that grows with the file.
    seen_serials: dict[str, int] = field(default_factory=dict)
    seen_imeis: dict[str, int] = field(default_factory=dict)
    # People and device groups already looked up: a file names the same few again and again.
    people: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckedRow:
    """One row, normalised and resolved, with its problems as (field, text) pairs."""

    line: int
    problems: list[tuple[str, str]] = field(default_factory=list)
    serial: str = ""
    imei: str = ""
    description: str = ""
    scope: Scope | None = None
    user_id: int | None = None
    group: tuple[int, int | None] | None = None  # (id, scope id)
    device: dict[str, Any] | None = None
    already_imported: bool = False

    def reason(self) -> str:
        first, *rest = (text for _, text in self.problems)
        return f"Line {self.line}: {first}." + "".join(f" {sentence(text)}" for text in rest)


def sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}."


def _shown(value: str) -> str:
    return value if len(value) <= 40 else f"{value[:37]}..."


def column_index(columns: list[str]) -> dict[str, int]:
    return {name: position for position, name in enumerate(columns)}


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _scope_choices(scopes: dict[str, Scope]) -> str:
    slugs = sorted(scope.slug for scope in scopes.values())
    shown = ", ".join(slugs[:10])
    return f"{shown} and {len(slugs) - 10} more" if len(slugs) > 10 else shown or "(no scopes exist yet)"


def _check_cells(row: Row, context: RowContext) -> tuple[CheckedRow, str, str]:
    """Everything about one row that needs no database. Returns it, its user and its group reference."""
    columns, cells = context.columns, row.cells
    checked = CheckedRow(line=row.line)
    problems = checked.problems

    def cell(name: str) -> str:
        position = columns.get(name)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    width = context.width or len(columns)
    if len(cells) > width and any(c.strip() for c in cells[width:]):
        problems.append((NON_FIELD_ERRORS, f"it has {len(cells)} values but the header names {width} columns"))
    serial_raw, imei_raw = cell("serial_number"), cell("imei")
    checked.serial = serial_raw.upper()
    checked.imei = re.sub(r"[\s\-]", "", imei_raw)
    if not checked.serial and not checked.imei:
        problems.append((NON_FIELD_ERRORS, "there is no serial number or IMEI; give at least one"))
    if checked.serial:
        if len(checked.serial) > 64:
            problems.append(("serial_number", f"the serial number {_shown(serial_raw)} is longer than 64 characters"))
        elif not SERIAL_PATTERN.fullmatch(checked.serial):
            problems.append(
                (
                    "serial_number",
                    f"the serial number '{_shown(serial_raw)}' has characters other than letters, digits and - . _ /",
                ),
            )
        else:
            first = context.seen_serials.setdefault(checked.serial, row.line)
            if first != row.line:
                problems.append(("serial_number", f"serial number {checked.serial} already listed on line {first}"))
    if checked.imei:
        if SPREADSHEET_NUMBER.fullmatch(imei_raw):
            problems.append(
                (
                    "imei",
                    f"the IMEI {imei_raw} was turned into a number by a spreadsheet; format the column as text "
                    "and export again",
                ),
            )
        elif not (len(checked.imei) == 15 and checked.imei.isdigit() and _luhn_ok(checked.imei)):
            problems.append(("imei", f"the IMEI {_shown(imei_raw)} is not 15 digits with a valid check digit"))
        else:
            first = context.seen_imeis.setdefault(checked.imei, row.line)
            if first != row.line:
                problems.append(("imei", f"IMEI {checked.imei} already listed on line {first}"))
    slug = cell("scope")
    if slug:
        checked.scope = context.scopes.get(slug.lower())
        if checked.scope is None:
            problems.append(("scope", f"no scope '{_shown(slug)}'. Use one of: {_scope_choices(context.scopes)}"))
    elif context.default_scope is not None:
        checked.scope = context.default_scope
    else:
        problems.append(("scope", "no scope; fill in the scope column or choose a default scope for the import"))
    checked.description = cell("description")
    if len(checked.description) > 255:
        problems.append(("description", "the description is longer than 255 characters"))
    return checked, cell("user"), cell("device_group")


class _AnyOf(Lookup):
    """``column = ANY(%s)`` with the values as one array: on PostgreSQL the query text stays the same
    whatever the number of values, so the driver parses it once instead of once per batch."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*params, list(self.rhs)]


def _among(column: str, values: set[str]) -> Q | Lookup:
    if connection.vendor == "postgresql":
        return _AnyOf(F(column), values)
    return Q(**{f"{column}__in": values})


def _cached(cache: dict[str, Any], wanted: set[str], fetch) -> dict[str, Any]:
    """``cache`` filled with what ``fetch`` finds for the references it has not seen yet (misses cached too)."""
    missing = wanted - cache.keys()
    if missing:
        found = fetch(missing)
        cache.update({ref: found.get(ref) for ref in missing})
    return cache


def _groups(names: set[str]) -> dict[str, tuple[int, int | None]]:
    rows = DeviceGroup.objects.filter(name__in=names).order_by().values_list("pk", "name", "scope_id")
    return {name: (pk, scope_id) for pk, name, scope_id in rows}


def _people(references: set[str]) -> dict[str, Any]:
    """username or email -> (id, active), or ``_AMBIGUOUS`` for an email several people share."""
    if not references:
        return {}
    emails = {ref.lower() for ref in references if "@" in ref}
    match = Q(username__in=references)
    if emails:
        match |= Q(email_lower__in=emails)
    rows = User.objects.annotate(email_lower=Lower("email")).filter(match).order_by()
    by_username: dict[str, tuple[int, bool]] = {}
    by_email: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    for pk, username, email, active in rows.values_list("pk", "username", "email_lower", "is_active"):
        by_username[username] = (pk, active)
        if email:
            by_email[email].append((pk, active))
    found: dict[str, Any] = {}
    for ref in references:
        if ref in by_username:
            found[ref] = by_username[ref]
        elif ref.lower() in by_email:
            matches = by_email[ref.lower()]
            found[ref] = matches[0] if len(matches) == 1 else _AMBIGUOUS
    return found


def check_rows(batch: list[Row], context: RowContext) -> list[CheckedRow]:
    """Check a batch of rows: cells first, then every reference with one query per kind."""
    cells_checked = [_check_cells(row, context) for row in batch]
    checked_rows = [checked for checked, _, _ in cells_checked]
    serials = {c.serial for c in checked_rows if c.serial}
    imeis = {c.imei for c in checked_rows if c.imei}

    people = _cached(context.people, {user for _, user, _ in cells_checked if user}, _people)
    groups = _cached(context.groups, {group for _, _, group in cells_checked if group}, _groups)
    # One query per column and table: each uses its own index (PostgreSQL would not combine an OR
    # of two large IN lists on partial indexes, and scans the table instead).
    listed_serials = dict(
        CorporateIdentifier.objects.filter(_among("serial_number", serials))
        .exclude(serial_number="")
        .order_by()
        .values_list("serial_number", "source_import_id")
        if serials
        else ()
    )
    listed_imeis = dict(
        CorporateIdentifier.objects.filter(_among("imei", imeis))
        .exclude(imei="")
        .order_by()
        .values_list("imei", "source_import_id")
        if imeis
        else ()
    )
    live = Device.objects.exclude(lifecycle_state=LifecycleState.RETIRED).order_by()
    fields = ("pk", "name", "serial_number", "imei", "ownership", "scope_id")
    devices_by_serial = {
        device["serial_number"]: device
        for device in (
            live.filter(_among("serial_number", serials), serial_number__gt="").values(*fields) if serials else ()
        )
    }
    devices_by_imei = {
        device["imei"]: device
        for device in (live.filter(_among("imei", imeis), imei__gt="").values(*fields) if imeis else ())
    }
    scope_names = {scope.pk: scope.name for scope in context.scopes.values()}

    for checked, user_ref, group_name in cells_checked:
        problems = checked.problems
        serial_source = listed_serials.get(checked.serial, _FREE) if checked.serial else _FREE
        imei_source = listed_imeis.get(checked.imei, _FREE) if checked.imei else _FREE
        sources = {source for source in (serial_source, imei_source) if source is not _FREE}
        if context.import_id is not None and sources == {context.import_id}:
            # Written by an earlier attempt of this same import that stopped part-way; a later line
            # with the same number already has its "listed on line N" problem.
            checked.already_imported = not problems
            continue
        if serial_source is not _FREE:
            problems.append(("serial_number", f"the serial number {checked.serial} is already a corporate identifier"))
        if imei_source is not _FREE:
            problems.append(("imei", f"the IMEI {checked.imei} is already a corporate identifier"))
        by_serial = devices_by_serial.get(checked.serial) if checked.serial else None
        by_imei = devices_by_imei.get(checked.imei) if checked.imei else None
        if by_serial and by_imei and by_serial["pk"] != by_imei["pk"]:
            problems.append(
                (
                    NON_FIELD_ERRORS,
                    f"the serial number belongs to the device '{by_serial['name']}' but the IMEI to "
                    f"'{by_imei['name']}'; a row describes one device",
                ),
            )
        checked.device = by_serial or by_imei
        if user_ref:
            person = people.get(user_ref)
            if person is None:
                problems.append(("user", f"no person with the username or email '{_shown(user_ref)}'"))
            elif person == _AMBIGUOUS:
                problems.append(("user", f"more than one person has the email {_shown(user_ref)}; use the username"))
            elif not person[1]:
                problems.append(("user", f"the account '{_shown(user_ref)}' is deactivated"))
            else:
                checked.user_id = person[0]
        if group_name:
            group = groups.get(group_name)
            if group is None:
                problems.append(("device_group", f"no device group '{_shown(group_name)}'"))
            elif checked.scope is not None and group[1] not in (None, checked.scope.pk):
                problems.append(
                    (
                        "device_group",
                        f"the device group '{group_name}' belongs to the scope "
                        f"{_scope_name(group[1], scope_names)}, not {checked.scope.name}",
                    ),
                )
            else:
                checked.group = group
    return checked_rows


def _scope_name(scope_id: int | None, known: dict[int, str]) -> str:
    if scope_id in known:
        return known[scope_id]
    return Scope.objects.filter(pk=scope_id).values_list("name", flat=True).first() or str(scope_id)
