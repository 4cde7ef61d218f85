"""Corporate identifiers and their CSV imports in the IT console.

Identifiers are scoped like devices: a scoped operator sees their scopes' identifiers. Imports span
scopes, so only people who hold the permission everywhere see them. An import's page shows a
progress bar that polls a JSON view of this admin (same permission checks) while the task runs,
then the report of bad rows, downloadable as CSV.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ScopedRelatedListFilter

from ..choices import IdentifierImportMode, IdentifierImportStatus
from ..models import CorporateIdentifier, IdentifierImport
from ..services import identifiers as services

RUNNING = (IdentifierImportStatus.PENDING, IdentifierImportStatus.RUNNING)


def _apply_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's sentences on the form's fields (or at the top when the form has no such field)."""
    for name, messages in error.message_dict.items():
        form.add_error(name if name in form.fields else None, messages)


# Identifiers ---------------------------------------------------------------------------------------


class MatchedListFilter(admin.SimpleListFilter):
    title = "matched to a device"
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return [("yes", "Matched to a device"), ("no", "Not enrolled yet")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(device__isnull=self.value() == "no")
        return queryset


class CorporateIdentifierForm(forms.ModelForm):
    class Meta:
        model = CorporateIdentifier
        fields = ["serial_number", "imei", "scope", "user", "device_group", "description"]

    def clean(self):
        data = super().clean()
        if not self.errors and data.get("scope") is not None:
            try:
                services.corporate_identifier_clean(
                    scope=data["scope"],
                    serial_number=data.get("serial_number", ""),
                    imei=data.get("imei", ""),
                    user=data.get("user"),
                    device_group=data.get("device_group"),
                    description=data.get("description", ""),
                )
            except ValidationError as exc:
                _apply_errors(self, exc)
        return data

    def validate_unique(self):
        # The service checks duplicates (against identifiers and live devices) with its own sentences.
        pass


@admin.register(CorporateIdentifier)
class CorporateIdentifierAdmin(AuthzModelAdmin):
    form = CorporateIdentifierForm
    list_display = ["serial_number", "imei", "scope", "user", "device_group", "matched", "created_at"]
    list_display_links = ["serial_number", "imei"]
    list_filter = [("scope", ScopedRelatedListFilter), MatchedListFilter]
    list_select_related = ["scope", "user", "device_group"]
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["serial_number", "imei"]
    autocomplete_fields = ["user"]
    readonly_fields = ["matched_device", "source_import", "created_at"]

    @admin.display(boolean=True, description="Matched", ordering="device")
    def matched(self, obj):
        return obj.device_id is not None

    @admin.display(description="Device")
    def matched_device(self, obj):
        if obj.device_id is None:
            return "Not enrolled yet."
        viewer = getattr(obj, "viewer", None)
        if viewer is None or not authz.can(viewer, "devices.view_device", obj.device):
            # The device may sit in a scope this person cannot see: say only that it exists.
            return "A device outside your scopes."
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:devices_device_change", args=[obj.device_id]), obj.device
        )

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        obj.viewer = request.user
        return obj

    def has_change_permission(self, request, obj=None):
        # An identifier is listed or removed, never edited: delete it and list it again.
        return False

    def get_readonly_fields(self, request, obj=None):
        return [*self.form.Meta.fields, *self.readonly_fields] if obj is not None else []

    def get_fields(self, request, obj=None):
        return [*self.form.Meta.fields, *self.readonly_fields] if obj is not None else self.form.Meta.fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.corporate_identifier_create(
            actor=self.actor(request),
            scope=data["scope"],
            serial_number=data.get("serial_number", ""),
            imei=data.get("imei", ""),
            user=data.get("user"),
            device_group=data.get("device_group"),
            description=data.get("description", ""),
        )
        obj.pk, obj.serial_number, obj.imei = created.pk, created.serial_number, created.imei

    def delete_via_service(self, request, obj):
        services.corporate_identifier_delete(actor=self.actor(request), identifier=obj)


# Imports ---------------------------------------------------------------------------------------------


class IdentifierImportUploadForm(forms.ModelForm):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 CSV with a header line: serial_number and/or imei, then optionally user (username or "
        "email), scope (slug), device_group (name), description. One row per device.",
    )

    class Meta:
        model = IdentifierImport
        fields = ["file", "mode", "default_scope"]
        widgets = {"mode": forms.RadioSelect}

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                services.identifier_import_check(
                    uploaded_file=data["file"], mode=data["mode"], default_scope=data.get("default_scope")
                )
            except ValidationError as exc:
                _apply_errors(self, exc)
        return data

    def _post_clean(self):
        # The service stores the file and the record; nothing here is copied onto a model instance.
        pass


@admin.register(IdentifierImport)
class IdentifierImportAdmin(AuthzModelAdmin):
    list_display = [
        "original_name",
        "status",
        "short_mode",
        "rows",
        "imported",
        "with_problems",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "mode"]
    list_select_related = ["created_by"]
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["original_name"]
    fields = [
        "original_name",
        "status",
        "mode",
        "default_scope",
        "created_by",
        "created_at",
        "finished_at",
        "progress",
        "error_report",
    ]
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        # An import is a record of what happened; it changes only by its task.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = IdentifierImportUploadForm
            kwargs["fields"] = IdentifierImportUploadForm.Meta.fields
        form = super().get_form(request, obj, change=change, **kwargs)
        widget = form.base_fields.get("default_scope") and form.base_fields["default_scope"].widget
        if widget is not None:
            # Choosing a scope here is all; creating or editing one is not part of an upload.
            widget.can_add_related = widget.can_change_related = widget.can_delete_related = False
            widget.can_view_related = False
        return form

    def add_view(self, request, form_url="", extra_context=None):
        context = {"show_save_and_add_another": False, "show_save_and_continue": False, **(extra_context or {})}
        return super().add_view(request, form_url, context)

    def get_fields(self, request, obj=None):
        return IdentifierImportUploadForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.identifier_import_create(
            actor=self.actor(request),
            uploaded_file=data["file"],
            mode=data["mode"],
            default_scope=data.get("default_scope"),
        )
        obj.pk, obj.original_name = created.pk, created.original_name

    def save_related(self, request, form, formsets, change):
        pass

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:devices_identifierimport_change", args=[obj.pk]))

    # Extra pages ----------------------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/progress/",
                wrap(self.progress_view),
                name="devices_identifierimport_progress",
            ),
            path(
                "<path:object_id>/errors.csv",
                wrap(self.errors_csv_view),
                name="devices_identifierimport_errors",
            ),
            *super().get_urls(),
        ]

    def progress_view(self, request, object_id):
        obj = self.get_object(request, object_id)  # 403 without the permission, 404 out of reach
        return JsonResponse(
            {
                "status": obj.status,
                "status_label": obj.get_status_display(),
                "total_rows": obj.total_rows,
                "processed_rows": obj.processed_rows,
                "imported_rows": obj.imported_rows,
                "error_rows": obj.error_rows,
                "finished": obj.status not in RUNNING,
                "summary": _summary(obj),
            }
        )

    def errors_csv_view(self, request, object_id):
        obj = self.get_object(request, object_id)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stem = obj.original_name.rsplit(".", 1)[0] or "import"
        response["Content-Disposition"] = f'attachment; filename="{_safe_filename(stem)}-errors.csv"'
        writer = csv.writer(response)
        writer.writerow(["line", "reason"])
        for error in obj.errors:
            writer.writerow([error.get("line") or "", error.get("reason", "")])
        return response

    # Read-only fields -----------------------------------------------------------------------------

    @admin.display(description="Rows")
    def rows(self, obj):
        if obj.status in RUNNING:
            return f"{obj.processed_rows:,} of {obj.total_rows:,}" if obj.total_rows else "-"
        return f"{obj.total_rows:,}"

    @admin.display(description="Mode", ordering="mode")
    def short_mode(self, obj):
        return "All or nothing" if obj.mode == IdentifierImportMode.ALL_OR_NOTHING else "Good rows"

    @admin.display(description="Imported", ordering="imported_rows")
    def imported(self, obj):
        return f"{obj.imported_rows:,}"

    @admin.display(description="With problems", ordering="error_rows")
    def with_problems(self, obj):
        return f"{obj.error_rows:,}"

    @admin.display(description="Progress")
    def progress(self, obj):
        url = reverse("admin:devices_identifierimport_progress", args=[obj.pk])
        value = format_html(' value="{}"', obj.processed_rows) if obj.total_rows else ""
        return format_html(
            '<div id="identifier-import-progress" data-url="{}" data-status="{}">'
            '<progress max="{}"{}></progress> '
            '<span class="identifier-import-summary">{}</span></div>'
            '<script src="{}"></script>',
            url,
            obj.status,
            max(obj.total_rows, 1),
            value,
            _summary(obj),
            static("console/identifier_import.js"),
        )

    @admin.display(description="Problems")
    def error_report(self, obj):
        if obj.status in RUNNING:
            return "The rows with problems are listed here when the import finishes."
        if not obj.errors:
            return "None."
        shown = len(obj.errors)
        intro = (
            f"{obj.error_rows:,} row(s) have problems; the first {shown:,} are listed."
            if obj.error_rows > shown
            else f"{obj.error_rows:,} row(s) have problems."
            if obj.error_rows
            else "The file could not be imported."
        )
        download = reverse("admin:devices_identifierimport_errors", args=[obj.pk])
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td></tr>", ((e.get("line") or "", e.get("reason", "")) for e in obj.errors)
        )
        return format_html(
            '<p>{} <a href="{}">Download the problems as CSV</a>.</p>'
            '<table id="identifier-import-errors"><thead><tr><th>Line</th><th>Reason</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            intro,
            download,
            rows,
        )


def _summary(obj: IdentifierImport) -> str:
    if obj.status == IdentifierImportStatus.PENDING:
        return "Waiting for a worker to start the import."
    if obj.status == IdentifierImportStatus.FAILED:
        return "The file could not be imported; see the problem below."
    checked = f"{obj.processed_rows:,} of {obj.total_rows:,} rows checked"
    counts = f"{obj.imported_rows:,} imported, {obj.error_rows:,} with problems"
    if obj.status == IdentifierImportStatus.RUNNING:
        return f"{checked}: {counts}."
    if obj.status == IdentifierImportStatus.REJECTED:
        return (
            f"Nothing imported: {obj.error_rows:,} of {obj.total_rows:,} rows have problems. Fix them and upload again."
        )
    return f"Done. {obj.total_rows:,} rows: {counts}."


def _safe_filename(stem: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)[:100]
