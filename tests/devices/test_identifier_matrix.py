"""Permission matrix of corporate identifiers and their CSV imports: admin pages and API routes.

The rules of ``tests/test_permission_matrix.py``: anonymous people and employees are sent to the admin
sign-in (the API answers 401/403); staff without the permission anywhere get 403; an object outside
the person's scopes is a 404 like a missing one; a view-only person's write is refused (403) and
changes nothing. Identifiers are scoped (the Helpdesk operator reads its scope's ones); imports span
scopes, so only people who hold the permission everywhere see them.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.choices import IdentifierImportStatus
from devices.models import CorporateIdentifier, IdentifierImport
from devices.services.identifiers import corporate_identifier_create, identifier_import_create, identifier_import_run
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, StaffFactory, grant
from tests.matrix import admin_ids, covers
from tests.test_permission_matrix import (
    ADMIN_LOGIN,
    PERSONAS,
    STAFF_PERSONAS,
    admin_url,
    assert_api_error,
    assert_outcome,
    changelist_url,
    sign_in,
    snapshot,
)

pytestmark = pytest.mark.django_db

CSV = b"serial_number,imei,scope\nMATRIX-1,,emea\nMATRIX-2,12345,americas\n"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def identifiers(people):
    in_a = corporate_identifier_create(actor=SYSTEM, scope=people.scope_a, serial_number="EMEA-0001")
    in_b = corporate_identifier_create(actor=SYSTEM, scope=people.scope_b, serial_number="AMER-0001")
    return in_a, in_b


@pytest.fixture
def finished_import(people):
    created = identifier_import_create(
        actor=Actor.for_user(people.global_admin), uploaded_file=SimpleUploadedFile("fleet.csv", CSV)
    )
    finished = identifier_import_run(import_id=created.pk)
    assert (finished.imported_rows, finished.error_rows) == (1, 1)
    return finished


def state():
    return (
        sorted(CorporateIdentifier.objects.values_list("serial_number", flat=True)),
        IdentifierImport.objects.count(),
        AuditEvent.objects.count(),
    )


# Admin ---------------------------------------------------------------------------------------------

IDENTIFIER_ADMIN = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403}
IDENTIFIER_ADMIN |= {"global_admin": 200, "read_only": 200, "helpdesk_a": 200}
IMPORT_ADMIN = {**IDENTIFIER_ADMIN, "helpdesk_a": 403}


@covers(*admin_ids(CorporateIdentifier))
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_identifier_pages(client, people, identifiers, persona):
    in_a, in_b = identifiers
    sign_in(client, people, persona)
    expected = IDENTIFIER_ADMIN[persona]
    changelist = client.get(changelist_url(CorporateIdentifier))
    assert_outcome(changelist, expected, f"{persona} on the identifier list")
    assert_outcome(client.get(admin_url(in_a)), expected, f"{persona} on scope A's identifier")
    expected_b = 404 if persona == "helpdesk_a" else expected
    assert_outcome(client.get(admin_url(in_b)), expected_b, f"{persona} on scope B's identifier")
    if expected == 200:
        content = changelist.content.decode()
        assert admin_url(in_a) in content
        assert (admin_url(in_b) in content) is (persona != "helpdesk_a")
        # Search and filters go through the same restricted list.
        found = client.get(changelist_url(CorporateIdentifier), {"q": "AMER-0001", "matched": "no"}).content.decode()
        assert (admin_url(in_b) in found) is (persona != "helpdesk_a")


@covers(
    *admin_ids(IdentifierImport), "admin:devices_identifierimport_progress", "admin:devices_identifierimport_errors"
)
@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_import_pages(client, people, finished_import, persona):
    sign_in(client, people, persona)
    expected = IMPORT_ADMIN[persona]
    assert_outcome(client.get(changelist_url(IdentifierImport)), expected, f"{persona} on the import list")
    page = client.get(admin_url(finished_import))
    assert_outcome(page, expected, f"{persona} on an import page")
    progress_url = reverse("admin:devices_identifierimport_progress", args=[finished_import.pk])
    errors_url = reverse("admin:devices_identifierimport_errors", args=[finished_import.pk])
    progress, errors = client.get(progress_url), client.get(errors_url)
    assert_outcome(progress, expected, f"{persona} on the progress view")
    assert_outcome(errors, expected, f"{persona} on the errors download")
    if expected == 200:
        content = page.content.decode()
        assert "<progress" in content and progress_url in content
        assert "Line 3: the IMEI 12345 is not 15 digits with a valid check digit." in content
        assert progress.json() == {
            "status": "done",
            "status_label": "Done",
            "total_rows": 2,
            "processed_rows": 2,
            "imported_rows": 1,
            "error_rows": 1,
            "finished": True,
            "summary": "Done. 2 rows: 1 imported, 1 with problems.",
        }
        assert errors["Content-Type"] == "text/csv; charset=utf-8"
        assert errors.content.decode().splitlines() == [
            "line,reason",
            "3,Line 3: the IMEI 12345 is not 15 digits with a valid check digit.",
        ]
        missing = reverse("admin:devices_identifierimport_progress", args=[finished_import.pk + 1000])
        assert client.get(missing).status_code == 404


ADD_PAGE = {"anonymous": ADMIN_LOGIN, "employee": ADMIN_LOGIN, "no_role": 403}
ADD_PAGE |= {"global_admin": 200, "read_only": 403, "helpdesk_a": 403}


@pytest.mark.parametrize("persona", PERSONAS)
def test_admin_add_pages_and_uploads(client, people, persona):
    sign_in(client, people, persona)
    expected = ADD_PAGE[persona]
    for model in (CorporateIdentifier, IdentifierImport):
        url = reverse(f"admin:devices_{model._meta.model_name}_add")
        assert_outcome(client.get(url), expected, f"{persona} on the {model._meta.verbose_name} add page")
    before = state()
    added = client.post(
        reverse("admin:devices_corporateidentifier_add"),
        {"serial_number": "added-1", "imei": "", "scope": people.scope_a.pk, "description": "By hand"},
    )
    uploaded = client.post(
        reverse("admin:devices_identifierimport_add"),
        {"file": SimpleUploadedFile("fleet.csv", CSV), "mode": "all_or_nothing"},
    )
    if expected == 200:
        assert added.status_code == 302, added.content.decode()
        assert CorporateIdentifier.objects.get(serial_number="ADDED-1").scope == people.scope_a
        assert uploaded.status_code == 302, uploaded.content.decode()
        created = IdentifierImport.objects.get()
        assert uploaded["Location"] == admin_url(created)
        assert created.mode == "all_or_nothing"
    else:
        assert_outcome(added, expected, f"{persona} adding an identifier")
        assert_outcome(uploaded, expected, f"{persona} uploading a file")
        assert state() == before


def test_admin_upload_form_reports_a_bad_file_and_a_missing_scope(client, people):
    client.force_login(people.global_admin)
    url = reverse("admin:devices_identifierimport_add")
    before = state()
    bad = client.post(url, {"file": SimpleUploadedFile("fleet.csv", b"name,owner\nA,b\n"), "mode": "good_rows"})
    assert bad.status_code == 200
    assert "The header has no serial_number or imei column." in bad.content.decode()
    no_scope = client.post(url, {"file": SimpleUploadedFile("fleet.csv", b"serial_number\nA1\n"), "mode": "good_rows"})
    assert "The file has no scope column. Choose a default scope, or add a scope column." in no_scope.content.decode()
    duplicate = client.post(
        reverse("admin:devices_corporateidentifier_add"), {"imei": "12345", "scope": people.scope_a.pk}
    )
    assert "The IMEI 12345 is not 15 digits with a valid check digit." in duplicate.content.decode()
    assert state() == before


def _refused_admin_writes():
    for persona, expected in (("anonymous", ADMIN_LOGIN), ("employee", ADMIN_LOGIN), ("no_role", 403)):
        yield pytest.param(persona, "in_a", expected, id=persona)
    yield pytest.param("read_only", "in_a", 403, id="read_only")
    yield pytest.param("helpdesk_a", "in_a", 403, id="helpdesk_a")
    yield pytest.param("helpdesk_a", "in_b", 404, id="helpdesk_a-scope_b")
    # Nobody edits an identifier (it is deleted and listed again), not even a global administrator.
    yield pytest.param("global_admin", "in_a", 403, id="global_admin-edit")


@pytest.mark.parametrize(("persona", "target", "expected"), list(_refused_admin_writes()))
def test_admin_identifier_writes_refused(client, people, identifiers, persona, target, expected):
    obj = identifiers[0] if target == "in_a" else identifiers[1]
    sign_in(client, people, persona)
    before, audit_count = snapshot(obj), AuditEvent.objects.count()
    edit = {"serial_number": "CHANGED", "scope": people.scope_a.pk, "description": "Changed by a test"}
    assert_outcome(client.post(admin_url(obj), edit), expected, f"{persona} editing an identifier")
    if persona != "global_admin":
        deleted = client.post(admin_url(obj, "delete"), {"post": "yes"})
        assert_outcome(deleted, expected, f"{persona} deleting an identifier")
    assert snapshot(obj) == before
    assert AuditEvent.objects.count() == audit_count


def test_admin_global_admin_deletes_an_identifier_through_the_service(client, people, identifiers):
    client.force_login(people.global_admin)
    in_a, _ = identifiers
    response = client.post(admin_url(in_a, "delete"), {"post": "yes"})
    assert response.status_code == 302
    assert not CorporateIdentifier.objects.filter(pk=in_a.pk).exists()
    assert AuditEvent.objects.filter(verb="corporate_identifier.delete", target_id=str(in_a.pk)).exists()


@pytest.mark.parametrize("persona", STAFF_PERSONAS)
def test_admin_imports_cannot_be_edited_or_deleted(client, people, finished_import, persona):
    sign_in(client, people, persona)
    before, audit_count = snapshot(finished_import), AuditEvent.objects.count()
    expected = 403
    assert_outcome(client.post(admin_url(finished_import), {"mode": "good_rows"}), expected, persona)
    assert_outcome(client.post(admin_url(finished_import, "delete"), {"post": "yes"}), expected, persona)
    assert snapshot(finished_import) == before
    assert AuditEvent.objects.count() == audit_count


# API -----------------------------------------------------------------------------------------------

API_LIST = {"anonymous": 401, "employee": 403, "no_role": 403}
API_LIST |= {"global_admin": {"EMEA-0001", "AMER-0001"}, "read_only": {"EMEA-0001", "AMER-0001"}}
API_LIST |= {"helpdesk_a": {"EMEA-0001"}}
API_DETAIL = {"anonymous": 401, "employee": 403, "no_role": 403, "global_admin": 200, "read_only": 200}
API_DETAIL_A = {**API_DETAIL, "helpdesk_a": 200}
API_DETAIL_B = {**API_DETAIL, "helpdesk_a": 404}
# Writes: only the global administrator may; the rest are refused before any lookup.
API_WRITE = {"anonymous": 401, "employee": 403, "no_role": 403, "read_only": 403, "helpdesk_a": 403}


@covers("api:corporate-identifier-list", "api:corporate-identifier-detail")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_identifier_reads(client, people, identifiers, persona):
    sign_in(client, people, persona)
    listed = client.get(reverse("corporate-identifier-list"))
    expected = API_LIST[persona]
    if isinstance(expected, set):
        assert listed.status_code == 200
        assert {row["serial_number"] for row in listed.json()["results"]} == expected
    else:
        assert_api_error(listed, expected)
    for obj, table in zip(identifiers, (API_DETAIL_A, API_DETAIL_B), strict=True):
        response = client.get(reverse("corporate-identifier-detail", args=[obj.pk]))
        if table[persona] == 200:
            assert response.status_code == 200
            assert response.json()["serial_number"] == obj.serial_number
        else:
            assert_api_error(response, table[persona])


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_identifier_writes(client, people, identifiers, persona):
    sign_in(client, people, persona)
    before = state()
    created = client.post(
        reverse("corporate-identifier-list"),
        json.dumps({"serial_number": "api-1", "scope": "emea", "description": "From a script"}),
        content_type="application/json",
    )
    deleted = client.delete(reverse("corporate-identifier-detail", args=[identifiers[1].pk]))
    if persona == "global_admin":
        assert created.status_code == 201, created.content
        assert created.json()["serial_number"] == "API-1"
        assert deleted.status_code == 204
        assert not CorporateIdentifier.objects.filter(pk=identifiers[1].pk).exists()
    else:
        assert_api_error(created, API_WRITE[persona])
        assert_api_error(deleted, API_WRITE[persona])
        assert state() == before


def test_api_a_scoped_writer_stays_in_its_scope(client, people, identifiers):
    permissions = Permission.objects.filter(
        content_type__app_label="devices",
        codename__in=["view_corporateidentifier", "add_corporateidentifier", "delete_corporateidentifier"],
    )
    role = core_services.role_save(actor=SYSTEM, name="Identifier keeper", permissions=list(permissions))
    keeper = StaffFactory(username="keeper-a")
    grant(keeper, role.name, [people.scope_a])
    client.force_login(keeper)
    before = state()
    outside = client.post(
        reverse("corporate-identifier-list"),
        json.dumps({"serial_number": "OUT-1", "scope": "americas"}),
        content_type="application/json",
    )
    assert outside.status_code == 400
    assert outside.json() == {"scope": ["No scope 'americas' where you may add identifiers."]}
    assert client.delete(reverse("corporate-identifier-detail", args=[identifiers[1].pk])).status_code == 404
    assert state() == before
    duplicate = client.post(
        reverse("corporate-identifier-list"),
        json.dumps({"serial_number": "emea-0001", "scope": "emea"}),
        content_type="application/json",
    )
    assert duplicate.status_code == 400
    assert duplicate.json() == {"serial_number": ["The serial number EMEA-0001 is already a corporate identifier."]}
    inside = client.post(
        reverse("corporate-identifier-list"),
        json.dumps({"serial_number": "IN-1", "scope": "emea"}),
        content_type="application/json",
    )
    assert inside.status_code == 201
    assert client.delete(reverse("corporate-identifier-detail", args=[identifiers[0].pk])).status_code == 204
    # The upload of a file stays global: it may name any scope.
    upload = client.post(reverse("corporate-identifier-import-list"), {"file": SimpleUploadedFile("f.csv", CSV)})
    assert_api_error(upload, 403)


IMPORT_API = {"anonymous": 401, "employee": 403, "no_role": 403, "global_admin": 200, "read_only": 200}
IMPORT_API |= {"helpdesk_a": 403}


@covers("api:corporate-identifier-import-list", "api:corporate-identifier-import-detail")
@pytest.mark.parametrize("persona", PERSONAS)
def test_api_import_reads(client, people, finished_import, persona):
    sign_in(client, people, persona)
    listed = client.get(reverse("corporate-identifier-import-list"))
    detail = client.get(reverse("corporate-identifier-import-detail", args=[finished_import.pk]))
    if IMPORT_API[persona] == 200:
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["results"]] == [finished_import.pk]
        assert "errors" not in listed.json()["results"][0]
        assert detail.status_code == 200
        body = detail.json()
        assert (body["status"], body["imported_rows"], body["error_rows"]) == ("done", 1, 1)
        assert body["errors"] == [
            {"line": 3, "reason": "Line 3: the IMEI 12345 is not 15 digits with a valid check digit."}
        ]
        missing = client.get(reverse("corporate-identifier-import-detail", args=[finished_import.pk + 1000]))
        assert_api_error(missing, 404)
    else:
        assert_api_error(listed, IMPORT_API[persona])
        assert_api_error(detail, IMPORT_API[persona])


@pytest.mark.parametrize("persona", PERSONAS)
def test_api_import_upload(client, people, persona, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(
        "devices.tasks_identifiers.identifier_import_process.apply_async",
        lambda args, kwargs, **options: queued.extend(args),
    )
    sign_in(client, people, persona)
    before = state()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("corporate-identifier-import-list"),
            {"file": SimpleUploadedFile("fleet.csv", CSV), "mode": "good_rows"},
        )
    if persona == "global_admin":
        assert response.status_code == 202, response.content
        body = response.json()
        assert body["status"] == IdentifierImportStatus.PENDING
        assert body["url"].endswith(reverse("corporate-identifier-import-detail", args=[body["id"]]))
        assert response["Location"] == body["url"]
        assert queued == [body["id"]]
    else:
        assert_api_error(response, API_WRITE[persona])
        assert state() == before
        assert queued == []


def test_api_upload_of_a_bad_file_is_a_400_with_a_sentence(client, people):
    client.force_login(people.global_admin)
    before = state()
    response = client.post(
        reverse("corporate-identifier-import-list"), {"file": SimpleUploadedFile("fleet.xlsx", b"PK\x03\x04zip")}
    )
    assert response.status_code == 400
    assert response.json() == {
        "file": ["This is a spreadsheet (or another zip file), not CSV. Save it as 'CSV UTF-8' and upload that."]
    }
    unknown_scope = client.post(
        reverse("corporate-identifier-import-list"),
        {"file": SimpleUploadedFile("fleet.csv", b"serial_number\nA1\n"), "default_scope": "nowhere"},
    )
    assert unknown_scope.json() == {"default_scope": ["No scope 'nowhere'."]}
    assert state() == before


@pytest.mark.parametrize("persona", ["global_admin", "helpdesk_a"])
def test_a_matched_device_outside_the_viewers_scopes_stays_hidden(client, people, persona):
    """An identifier of scope A can match a device of scope B: its viewer in A learns nothing about it."""
    identifier = corporate_identifier_create(
        actor=SYSTEM, scope=people.scope_a, serial_number=people.device_b.serial_number
    )
    assert identifier.device == people.device_b
    sign_in(client, people, persona)
    body = client.get(reverse("corporate-identifier-detail", args=[identifier.pk])).json()
    page = client.get(admin_url(identifier)).content.decode()
    if persona == "global_admin":
        assert body["device"] == str(people.device_b.uuid)
        assert admin_url(people.device_b) in page
    else:
        assert body["device"] is None
        assert "A device outside your scopes." in page
        assert people.device_b.name not in page
