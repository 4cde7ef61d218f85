"""Corporate identifiers: serial numbers and IMEIs IT registers so those devices enrol as corporate."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from mdm_portal.core.models import Scope

from ..choices import IdentifierImportMode, IdentifierImportStatus
from .device import Device
from .groups import DeviceGroup


class IdentifierImport(models.Model):
    """One CSV upload of corporate identifiers, processed by a Celery task with progress."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    file = models.FileField(upload_to="identifier-imports/")
    original_name = models.CharField(max_length=255)
    mode = models.CharField(max_length=20, choices=IdentifierImportMode.choices, default=IdentifierImportMode.GOOD_ROWS)
    default_scope = models.ForeignKey(
        Scope,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The scope of rows that name none (a file without a scope column, or an empty cell).",
    )
    status = models.CharField(
        max_length=20, choices=IdentifierImportStatus.choices, default=IdentifierImportStatus.PENDING
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    error_rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, reason}], the first 1,000.")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"


class CorporateIdentifier(models.Model):
    """A serial number and/or IMEI of a device the organisation owns, with where it should land."""

    scope_field = "scope"

    serial_number = models.CharField(max_length=64, blank=True)
    imei = models.CharField(max_length=17, blank=True, verbose_name="IMEI")
    description = models.CharField(max_length=255, blank=True)
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="corporate_identifiers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    device_group = models.ForeignKey(DeviceGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_import = models.ForeignKey(
        IdentifierImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="identifiers"
    )
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=~Q(serial_number="", imei=""), name="identifier_has_a_number"),
            models.UniqueConstraint(
                fields=["serial_number"], condition=~Q(serial_number=""), name="identifier_serial_unique"
            ),
            models.UniqueConstraint(fields=["imei"], condition=~Q(imei=""), name="identifier_imei_unique"),
        ]

    def __str__(self) -> str:
        return self.serial_number or self.imei
