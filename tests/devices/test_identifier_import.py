"""Corporate identifiers: CSV import (streamed, per-row errors, two modes), single entries, and enrolment."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, OperationalError, connection
from django.test.utils import CaptureQueriesContext

from devices import services as device_services
from devices.choices import IdentifierImportMode, IdentifierImportStatus, LifecycleState, Ownership
from devices.models import CorporateIdentifier, Device, IdentifierImport
from devices.services import identifiers
from devices.services.enrollment import enrollment_code_create
from devices.services.identifiers import (
    corporate_identifier_create,
    corporate_identifier_delete,
    identifier_import_create,
    identifier_import_run,
)
from devices.tasks_identifiers import identifier_import_process
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, ScopeFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "serial_number,imei,user,scope,device_group,description\n"
GOOD_IMEI = "356938035643809"
OTHER_IMEI = "490154203237518"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def admin_actor(people):
    return Actor.for_user(people.global_admin)


@pytest.fixture
def group_a(people):
    return device_services.device_group_save(actor=SYSTEM, name="EMEA scanners", scope=people.scope_a)


def upload(actor, text: str | bytes, *, mode=IdentifierImportMode.GOOD_ROWS, default_scope=None, name="ids.csv"):
    data = text.encode() if isinstance(text, str) else text
    return identifier_import_create(
        actor=actor, uploaded_file=SimpleUploadedFile(name, data), mode=mode, default_scope=default_scope
    )


def run(actor, text, **kwargs) -> IdentifierImport:
    identifier_import = upload(actor, text, **kwargs)
    return identifier_import_run(import_id=identifier_import.pk)


def reasons(identifier_import) -> dict[int, str]:
    return {error["line"]: error["reason"] for error in identifier_import.errors}


# A good file -------------------------------------------------------------------------------------


def test_a_good_file_imports_every_row_and_creates_no_device(admin_actor, people, group_a):
    devices_before = Device.objects.count()
    result = run(
        admin_actor,
        HEADER
        + f"c02x1234abcd,{GOOD_IMEI},employee,emea,EMEA scanners,Warehouse scanner\n"
        + " SN-2 ,,employee@example.com,americas,,\n"
        + f",{OTHER_IMEI},,EMEA,,\n",
    )
    assert result.status == IdentifierImportStatus.DONE
    assert (result.total_rows, result.processed_rows, result.imported_rows, result.error_rows) == (3, 3, 3, 0)
    assert result.errors == []
    assert result.finished_at is not None
    first = CorporateIdentifier.objects.get(serial_number="C02X1234ABCD")  # normalised upper-case
    assert (first.imei, first.scope, first.user, first.device_group) == (
        GOOD_IMEI,
        people.scope_a,
        people.employee,
        group_a,
    )
    assert first.description == "Warehouse scanner"
    assert first.source_import_id == result.pk
    second = CorporateIdentifier.objects.get(serial_number="SN-2")  # stripped
    assert (second.scope, second.user) == (people.scope_b, people.employee)  # user found by email
    assert CorporateIdentifier.objects.get(imei=OTHER_IMEI).serial_number == ""
    assert Device.objects.count() == devices_before  # pre-registration: enrolment consults the list
    verbs = AuditEvent.objects.filter(target_id=str(result.pk), verb__startswith="identifier_import.")
    verbs = list(verbs.values_list("verb", flat=True))
    assert sorted(verbs) == ["identifier_import.create", "identifier_import.finish"]


def test_semicolons_a_byte_order_mark_and_header_spelling_are_accepted(admin_actor, people):
    text = "\ufeffSerial;IMEI;Scope\r\nAB1;;emea\r\n;" + GOOD_IMEI + ";americas\r\n"
    result = run(admin_actor, text)
    assert result.status == IdentifierImportStatus.DONE, result.errors
    assert result.imported_rows == 2
    assert CorporateIdentifier.objects.get(serial_number="AB1").scope == people.scope_a


def test_blank_header_cells_from_a_spreadsheet_are_ignored(admin_actor, people):
    result = run(admin_actor, "serial_number,scope,,\nB1,emea,,\nB2,emea,,note\nB3,emea,,,surplus\n")
    assert result.imported_rows == 2
    assert reasons(result) == {4: "Line 4: it has 5 values but the header names 4 columns."}


def test_the_default_scope_applies_to_rows_without_one(admin_actor, people):
    result = run(admin_actor, f"serial_number,imei\nDEF1,\n,{GOOD_IMEI}\n", default_scope=people.scope_b)
    assert result.status == IdentifierImportStatus.DONE
    assert set(CorporateIdentifier.objects.values_list("scope", flat=True)) == {people.scope_b.pk}


def test_a_file_without_scopes_needs_a_default_scope(admin_actor, people):
    with pytest.raises(ValidationError) as error:
        upload(admin_actor, "serial_number\nDEF1\n")
    assert error.value.message_dict == {
        "default_scope": ["The file has no scope column. Choose a default scope, or add a scope column."]
    }
    assert IdentifierImport.objects.count() == 0


# Bad rows ------------------------------------------------------------------------------------------


BAD_FILE = (
    HEADER
    + f"GOOD1,{GOOD_IMEI},,emea,,\n"  # line 2
    + "GOOD2,,,americas,,\n"  # line 3
    + "BAD1,12345,,emea,,\n"  # line 4
    + "good1,,,emea,,\n"  # line 5: duplicate of line 2 (case-insensitive)
    + "BAD2,,,emae,,\n"  # line 6
    + ",,,emea,,just a note\n"  # line 7
    + "BAD3,,nobody,emea,,\n"  # line 8
    + "BAD4,,,americas,EMEA scanners,\n"  # line 9
    + "BAD5,3.56938E+14,,emea,,\n"  # line 10
    + "BAD 6,,,emea,,\n"  # line 11
    + "BAD7,,,emea,,,surplus\n"  # line 12
    + "\n"  # line 13: blank, skipped
    + f"BAD8,{GOOD_IMEI},,emea,,\n"  # line 14: IMEI duplicate of line 2
    + "BAD9,,,nowhere,NO GROUP,\n"  # line 15: two problems
)


def test_bad_rows_are_reported_by_line_with_a_sentence_and_good_rows_imported(admin_actor, people, group_a):
    result = run(admin_actor, BAD_FILE)
    assert result.status == IdentifierImportStatus.DONE
    assert (result.total_rows, result.processed_rows, result.imported_rows, result.error_rows) == (13, 13, 2, 11)
    assert sorted(CorporateIdentifier.objects.values_list("serial_number", flat=True)) == ["GOOD1", "GOOD2"]
    assert reasons(result) == {
        4: "Line 4: the IMEI 12345 is not 15 digits with a valid check digit.",
        5: "Line 5: serial number GOOD1 already listed on line 2.",
        6: "Line 6: no scope 'emae'. Use one of: americas, emea.",
        7: "Line 7: there is no serial number or IMEI; give at least one.",
        8: "Line 8: no person with the username or email 'nobody'.",
        9: "Line 9: the device group 'EMEA scanners' belongs to the scope EMEA, not Americas.",
        10: "Line 10: the IMEI 3.56938E+14 was turned into a number by a spreadsheet; format the column as text "
        "and export again.",
        11: "Line 11: the serial number 'BAD 6' has characters other than letters, digits and - . _ /.",
        12: "Line 12: it has 7 values but the header names 6 columns.",
        14: f"Line 14: IMEI {GOOD_IMEI} already listed on line 2.",
        15: "Line 15: no scope 'nowhere'. Use one of: americas, emea. No device group 'NO GROUP'.",
    }


def test_all_or_nothing_rejects_a_file_with_a_bad_row_and_writes_nothing(admin_actor, people, group_a):
    audit_before = AuditEvent.objects.filter(verb="device.update").count()
    result = run(admin_actor, BAD_FILE, mode=IdentifierImportMode.ALL_OR_NOTHING)
    assert result.status == IdentifierImportStatus.REJECTED
    assert (result.imported_rows, result.error_rows) == (0, 11)
    assert reasons(result)[4] == "Line 4: the IMEI 12345 is not 15 digits with a valid check digit."
    assert CorporateIdentifier.objects.count() == 0
    assert AuditEvent.objects.filter(verb="device.update").count() == audit_before


def test_all_or_nothing_imports_a_good_file(admin_actor, people):
    result = run(admin_actor, HEADER + "A1,,,emea,,\nA2,,,americas,,\n", mode=IdentifierImportMode.ALL_OR_NOTHING)
    assert result.status == IdentifierImportStatus.DONE
    assert result.imported_rows == 2
    assert CorporateIdentifier.objects.count() == 2


def test_only_the_first_thousand_errors_are_kept_but_all_are_counted(admin_actor, people, monkeypatch):
    monkeypatch.setattr(identifiers, "MAX_KEPT_ERRORS", 5)
    result = run(admin_actor, HEADER + "".join(f"S{n},123,,emea,,\n" for n in range(12)))
    assert result.error_rows == 12
    assert [error["line"] for error in result.errors] == [2, 3, 4, 5, 6]


def test_people_are_found_by_username_or_email_and_must_be_unambiguous_and_active(admin_actor, people):
    UserFactory(username="twin-1", email="shared@example.com")
    UserFactory(username="twin-2", email="SHARED@example.com")
    UserFactory(username="gone", is_active=False)
    result = run(
        admin_actor,
        HEADER + "U1,,Employee@Example.com,emea,,\nU2,,shared@example.com,emea,,\nU3,,gone,emea,,\n",
    )
    assert CorporateIdentifier.objects.get(serial_number="U1").user == people.employee
    assert reasons(result) == {
        3: "Line 3: more than one person has the email shared@example.com; use the username.",
        4: "Line 4: the account 'gone' is deactivated.",
    }


# Duplicates against the database -------------------------------------------------------------------


def test_numbers_already_listed_are_reported(admin_actor, people):
    corporate_identifier_create(actor=SYSTEM, scope=people.scope_a, serial_number="TAKEN", imei=GOOD_IMEI)
    result = run(admin_actor, HEADER + "taken,,,emea,,\n" + f"FRESH,{GOOD_IMEI},,emea,,\n" + "FRESH2,,,emea,,\n")
    assert reasons(result) == {
        2: "Line 2: the serial number TAKEN is already a corporate identifier.",
        3: f"Line 3: the IMEI {GOOD_IMEI} is already a corporate identifier.",
    }
    assert result.imported_rows == 1


def test_a_live_device_with_the_number_is_linked_and_made_corporate(admin_actor, people, group_a):
    personal = DeviceFactory(
        name="BYOD-1", scope=people.scope_a, ownership=Ownership.PERSONAL, serial_number="LIVE1", imei=""
    )
    retired = DeviceFactory(
        name="OLD-1", scope=people.scope_a, serial_number="OLD1", imei="", state=LifecycleState.RETIRED
    )
    result = run(admin_actor, HEADER + "live1,,,emea,EMEA scanners,\nOLD1,,,emea,,\n")
    assert result.status == IdentifierImportStatus.DONE
    assert result.imported_rows == 2
    assert CorporateIdentifier.objects.get(serial_number="LIVE1").device == personal
    assert CorporateIdentifier.objects.get(serial_number="OLD1").device is None  # retired records are history
    personal.refresh_from_db()
    assert personal.ownership == Ownership.CORPORATE
    assert group_a.static_members.filter(pk=personal.pk).exists()
    event = AuditEvent.objects.get(verb="device.update", target_id=str(personal.pk))
    assert event.changes == {"ownership": [Ownership.PERSONAL, Ownership.CORPORATE]}
    assert event.actor_user == people.global_admin
    assert event.actor_label.startswith(f"system:identifier_import {result.pk}")
    retired.refresh_from_db()
    assert retired.ownership == Ownership.CORPORATE  # factory default; untouched either way


def test_many_matched_devices_are_made_corporate_set_based_and_audited(admin_actor, people, monkeypatch):
    monkeypatch.setattr(identifiers, "PER_DEVICE_UPDATE_LIMIT", 1)
    devices = [
        DeviceFactory(scope=people.scope_a, ownership=Ownership.PERSONAL, serial_number=f"BULK{n}") for n in range(3)
    ]
    result = run(admin_actor, HEADER + "".join(f"BULK{n},,,emea,,\n" for n in range(3)))
    assert result.imported_rows == 3
    assert set(Device.objects.filter(pk__in=[d.pk for d in devices]).values_list("ownership", flat=True)) == {
        Ownership.CORPORATE
    }
    events = AuditEvent.objects.filter(verb="device.update", target_id__in=[str(d.pk) for d in devices])
    assert events.count() == 3
    assert {e.scope_id for e in events} == {people.scope_a.pk}


def test_a_row_whose_serial_and_imei_belong_to_different_devices_is_refused(admin_actor, people):
    DeviceFactory(name="PHONE-S", scope=people.scope_a, serial_number="SPLIT1", imei="")
    DeviceFactory(name="PHONE-I", scope=people.scope_a, serial_number="SPLIT2", imei=GOOD_IMEI)
    result = run(admin_actor, HEADER + f"SPLIT1,{GOOD_IMEI},,emea,,\n")
    assert reasons(result) == {
        2: "Line 2: the serial number belongs to the device 'PHONE-S' but the IMEI to 'PHONE-I'; "
        "a row describes one device."
    }


# Malformed files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"PK\x03\x04rest-of-a-zip", "This is a spreadsheet (or another zip file), not CSV."),
        ("serial_number\nA1\n".encode("utf-16"), "The file is UTF-16 text."),
        (b"serial_n\xe9mber,scope\nA1,emea\n", "Line 1: the file is not UTF-8 text."),
        (b'{"serial_number": "A1"}\n', "The header has no serial_number or imei column."),
        (b"name,owner\nA1,x\n", "The header has no serial_number or imei column."),
        (b"serial_number,scpoe\nA1,emea\n", "The header has unknown column(s): 'scpoe'."),
        (b"serial_number,imei,Serial\nA1,,\n", "The header names serial_number more than once."),
        (b"serial_number,scope\nA\x00,emea\n", "This is not a text file."),
    ],
    ids=["empty", "blank-lines", "xlsx", "utf-16", "latin-1-header", "json", "no-id-column", "typo", "twice", "nul"],
)
def test_a_malformed_file_is_refused_at_upload_with_one_sentence(admin_actor, people, content, sentence):
    with pytest.raises(ValidationError) as error:
        upload(admin_actor, content, default_scope=people.scope_a)
    assert error.value.message_dict["file"][0].startswith(sentence)
    assert IdentifierImport.objects.count() == 0


FILLER_ROWS = 8000  # past the first 64 KB, which the upload itself checks


@pytest.mark.parametrize("mode", IdentifierImportMode.values)
@pytest.mark.parametrize(
    ("bad_row", "sentence"),
    [
        (b"A\xe9\xff,emea\n", "the file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."),
        (b'"A10,emea\n', "the file is not valid CSV"),
    ],
    ids=["not-utf8", "open-quote"],
)
def test_a_file_that_breaks_part_way_fails_and_writes_nothing(admin_actor, people, mode, bad_row, sentence):
    filler = b"".join(b"F%05d,emea\n" % n for n in range(FILLER_ROWS))
    content = b"serial_number,scope\n" + filler + bad_row + b"LAST,emea\n"
    sentence = f"Line {FILLER_ROWS + 2}: {sentence}"
    result = run(admin_actor, content, mode=mode)
    assert result.status == IdentifierImportStatus.FAILED
    assert result.errors[0]["reason"].startswith(sentence), result.errors
    assert len(result.errors) == 1
    assert (result.imported_rows, result.error_rows) == (0, 0)
    assert CorporateIdentifier.objects.count() == 0


def test_a_header_without_rows_fails(admin_actor, people):
    result = run(admin_actor, HEADER)
    assert result.status == IdentifierImportStatus.FAILED
    assert result.errors == [
        {"line": None, "reason": "The file has a header but no rows. Add one row per device under the header."}
    ]


def test_an_unknown_mode_is_refused(admin_actor, people):
    with pytest.raises(ValidationError) as error:
        upload(admin_actor, HEADER + "A1,,,emea,,\n", mode="some")
    assert "mode" in error.value.message_dict


# Progress, batches and memory ------------------------------------------------------------------------


def test_progress_moves_after_every_batch(admin_actor, people, monkeypatch):
    monkeypatch.setattr(identifiers, "BATCH_SIZE", 10)
    seen = []
    original = identifiers._Run._progress

    def spy(self):
        original(self)
        stored = IdentifierImport.objects.get(pk=self.pk)
        seen.append((stored.status, stored.total_rows, stored.processed_rows, stored.imported_rows))

    monkeypatch.setattr(identifiers._Run, "_progress", spy)
    result = run(admin_actor, HEADER + "".join(f"P{n},,,emea,,\n" for n in range(35)))
    assert seen == [
        ("running", 35, 10, 10),
        ("running", 35, 20, 20),
        ("running", 35, 30, 30),
        ("running", 35, 35, 35),
    ]
    assert result.status == IdentifierImportStatus.DONE


def test_rows_are_read_and_checked_in_batches_with_a_bounded_number_of_queries(
    admin_actor, people, group_a, monkeypatch
):
    """5,000 rows with people and groups: a few queries per batch of 2,000, never a query per row."""
    sizes = []
    original = identifiers.check_rows

    def spy(batch, context):
        sizes.append(len(batch))
        return original(batch, context)

    monkeypatch.setattr(identifiers, "check_rows", spy)
    text = HEADER + "".join(f"Q{n:05d},,employee,emea,EMEA scanners,\n" for n in range(5000))
    identifier_import = upload(admin_actor, text)
    with CaptureQueriesContext(connection) as queries:
        result = identifier_import_run(import_id=identifier_import.pk)
    assert sizes == [2000, 2000, 1000]
    assert result.imported_rows == 5000
    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "devices_corporateidentifier"')]
    others = len(queries.captured_queries) - len(inserts)
    # The database backend may split a bulk insert (SQLite: by its limit on query parameters).
    fields = [f for f in CorporateIdentifier._meta.concrete_fields if not f.primary_key]
    per_insert = connection.ops.bulk_batch_size(fields, [None] * 2000) or 2000
    assert len(inserts) <= 3 * -(-2000 // per_insert)
    assert others <= 3 * 9 + 8, [q["sql"][:80] for q in queries.captured_queries if q not in inserts]


# Re-delivery and restarts -------------------------------------------------------------------------


def test_a_finished_import_is_never_run_again(admin_actor, people):
    result = run(admin_actor, HEADER + "R1,,,emea,,\n")
    CorporateIdentifier.objects.all().delete()
    again = identifier_import_run(import_id=result.pk)
    assert again.status == IdentifierImportStatus.DONE
    assert CorporateIdentifier.objects.count() == 0
    assert identifier_import_process(result.pk) == IdentifierImportStatus.DONE
    assert identifier_import_process(999_999) is None


def test_an_interrupted_import_resumes_without_duplicates(admin_actor, people, monkeypatch):
    monkeypatch.setattr(identifiers, "BATCH_SIZE", 10)
    original = identifiers.check_rows
    calls = []

    def dies_on_the_third_batch(batch, context):
        calls.append(1)
        if len(calls) == 3:
            raise OperationalError("server closed the connection unexpectedly")
        return original(batch, context)

    monkeypatch.setattr(identifiers, "check_rows", dies_on_the_third_batch)
    text = HEADER + "".join(f"I{n},,,emea,,\n" for n in range(25)) + "I3,,,emea,,\n"
    identifier_import = upload(admin_actor, text)
    with pytest.raises(OperationalError):
        identifier_import_run(import_id=identifier_import.pk)
    identifier_import.refresh_from_db()
    assert identifier_import.status == IdentifierImportStatus.RUNNING
    assert CorporateIdentifier.objects.count() == 20

    monkeypatch.setattr(identifiers, "check_rows", original)
    result = identifier_import_run(import_id=identifier_import.pk)
    assert result.status == IdentifierImportStatus.DONE
    assert (result.imported_rows, result.error_rows) == (25, 1)
    assert reasons(result) == {27: "Line 27: serial number I3 already listed on line 5."}
    assert CorporateIdentifier.objects.count() == 25


def test_an_unexpected_error_fails_the_import_with_a_sentence(admin_actor, people, monkeypatch):
    def broken(batch, context):
        raise RuntimeError("bug")

    monkeypatch.setattr(identifiers, "check_rows", broken)
    result = run(admin_actor, HEADER + "E1,,,emea,,\n")
    assert result.status == IdentifierImportStatus.FAILED
    assert result.errors[0]["reason"].startswith("The import stopped on an unexpected error.")


@pytest.fixture
def eager_celery():
    from mdm_portal.celery import app as celery_app

    keys = ("task_always_eager", "task_eager_propagates")
    before = {key: celery_app.conf.get(key) for key in keys}
    celery_app.conf.update(dict.fromkeys(keys, True))
    yield
    celery_app.conf.update(before)


def test_upload_queues_the_task_after_commit(admin_actor, people, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        identifier_import = upload(admin_actor, HEADER + "T1,,,emea,,\n")
        assert CorporateIdentifier.objects.count() == 0
    assert len(callbacks) == 1
    identifier_import.refresh_from_db()
    assert identifier_import.status == IdentifierImportStatus.DONE
    assert identifier_import.created_by == people.global_admin
    assert identifier_import_process.name == "devices.tasks_identifiers.identifier_import_process"


# Single identifiers ------------------------------------------------------------------------------


def test_single_identifiers_are_checked_like_rows_and_audited(people, group_a):
    actor = Actor.for_user(people.global_admin)
    with pytest.raises(ValidationError) as error:
        corporate_identifier_create(actor=actor, scope=people.scope_b, imei="12345", device_group=group_a)
    assert error.value.message_dict == {
        "imei": ["The IMEI 12345 is not 15 digits with a valid check digit."],
        "device_group": ["The device group 'EMEA scanners' belongs to the scope EMEA, not Americas."],
    }
    identifier = corporate_identifier_create(
        actor=actor, scope=people.scope_a, serial_number=" ab-1 ", device_group=group_a, user=people.employee
    )
    assert identifier.serial_number == "AB-1"
    with pytest.raises(ValidationError) as error:
        corporate_identifier_create(actor=actor, scope=people.scope_a, serial_number="ab-1")
    assert error.value.message_dict == {"serial_number": ["The serial number AB-1 is already a corporate identifier."]}
    identifier_id = str(identifier.pk)
    corporate_identifier_delete(actor=actor, identifier=identifier)
    assert not CorporateIdentifier.objects.exists()
    verbs = AuditEvent.objects.filter(target_id=identifier_id, verb__startswith="corporate_identifier.")
    assert sorted(verbs.values_list("verb", flat=True)) == [
        "corporate_identifier.create",
        "corporate_identifier.delete",
    ]


# Enrolment ------------------------------------------------------------------------------------------


def test_a_device_enrolling_with_an_imported_serial_is_corporate_in_the_identifier_scope_and_group(
    client, admin_actor, people
):
    group_b = device_services.device_group_save(actor=SYSTEM, name="Americas scanners", scope=people.scope_b)
    result = run(admin_actor, HEADER + "r58n12345ab,,other-employee,americas,Americas scanners,Scanner\n")
    assert result.imported_rows == 1
    # The employee asks for a personal enrolment in their own scope (A); the identifier decides.
    _, code = enrollment_code_create(actor=SYSTEM, user=people.employee, platform="android", ownership="personal")
    body = {
        "enrollment_code": code,
        "device": {"platform": "android", "name": "SCANNER-01", "serial_number": "R58N12345AB", "os_version": "14"},
    }
    response = client.post("/agent/v1/enroll", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    device = Device.objects.get(uuid=response.json()["device_id"])
    assert device.ownership == Ownership.CORPORATE
    assert device.scope == people.scope_b
    assert device.primary_user == people.other_employee
    assert device.lifecycle_state == LifecycleState.ENROLLED
    assert group_b.static_members.filter(pk=device.pk).exists()
    assert CorporateIdentifier.objects.get(serial_number="R58N12345AB").device == device


def test_scopes_are_listed_by_slug_in_the_error(admin_actor, people):
    ScopeFactory(name="Asia Pacific", slug="apac")
    result = run(admin_actor, HEADER + "Z1,,,emae,,\n")
    assert reasons(result) == {2: "Line 2: no scope 'emae'. Use one of: americas, apac, emea."}


# Races and storage --------------------------------------------------------------------------------


@pytest.fixture
def someone_else_lists_race2(people, monkeypatch):
    """Right after a batch is checked (before it is written), another request lists RACE2."""
    original = identifiers.check_rows

    def check_then_race(batch, context):
        checked = original(batch, context)
        CorporateIdentifier.objects.get_or_create(serial_number="RACE2", defaults={"scope": people.scope_b})
        return checked

    monkeypatch.setattr(identifiers, "check_rows", check_then_race)


def test_a_number_listed_meanwhile_is_reported_and_the_rest_imported(admin_actor, people, someone_else_lists_race2):
    result = run(admin_actor, HEADER + "RACE1,,,emea,,\nRACE2,,,emea,,\nRACE3,,,emea,,\n")
    assert result.status == IdentifierImportStatus.DONE
    assert reasons(result) == {3: "Line 3: the serial number or IMEI was listed by someone else meanwhile."}
    assert result.imported_rows == 2
    assert CorporateIdentifier.objects.get(serial_number="RACE2").scope == people.scope_b  # theirs, untouched


def test_all_or_nothing_rolls_back_when_a_number_is_listed_meanwhile(admin_actor, people, someone_else_lists_race2):
    result = run(admin_actor, HEADER + "RACE1,,,emea,,\nRACE2,,,emea,,\n", mode=IdentifierImportMode.ALL_OR_NOTHING)
    # The second pass (the writing one) checks again, finds it, and rolls back.
    assert result.status == IdentifierImportStatus.REJECTED
    assert result.imported_rows == 0
    assert reasons(result) == {3: "Line 3: the serial number RACE2 is already a corporate identifier."}
    assert list(CorporateIdentifier.objects.values_list("serial_number", flat=True)) == ["RACE2"]


def test_a_file_missing_from_storage_fails_with_a_sentence(admin_actor, people):
    identifier_import = upload(admin_actor, HEADER + "M1,,,emea,,\n")
    identifier_import.file.storage.delete(identifier_import.file.name)
    result = identifier_import_run(import_id=identifier_import.pk)
    assert result.status == IdentifierImportStatus.FAILED
    assert "must share MEDIA_ROOT" in result.errors[0]["reason"]


def test_all_or_nothing_rolls_back_when_the_insert_itself_collides(admin_actor, people, monkeypatch):
    def collides(rows, import_id):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(identifiers, "_insert", collides)
    result = run(admin_actor, HEADER + "C1,,,emea,,\n", mode=IdentifierImportMode.ALL_OR_NOTHING)
    assert result.status == IdentifierImportStatus.REJECTED
    assert result.errors == [
        {
            "line": None,
            "reason": "Someone listed some of these numbers while the import ran; nothing was imported. "
            "Upload the file again to see which.",
        }
    ]
    assert not CorporateIdentifier.objects.exists()
