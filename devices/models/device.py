"""The shared ``Device`` every lifecycle stage points at."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from mdm_portal.core.models import Scope

from ..choices import (
    ComplianceState,
    EnrollmentMethod,
    EnrollmentTransport,
    LifecycleState,
    Ownership,
    Platform,
)


class Device(models.Model):
    """A phone, tablet, laptop, desktop or server under management.

    Other apps own their tables and point here; they never write these fields themselves but call
    ``devices.services``. ``lifecycle_state`` changes only through ``devices.lifecycle``.
    ``os_version_key`` is a sortable form of ``os_version`` kept by the services, so version rules
    run in SQL.
    """

    scope_field = "scope"
    owner_field = "primary_user"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name="device id")
    name = models.CharField(max_length=255)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    os_version = models.CharField(max_length=64, blank=True, verbose_name="OS version")
    os_version_key = models.CharField(max_length=32, blank=True, editable=False)
    model = models.CharField(max_length=128, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    serial_number = models.CharField(max_length=64, blank=True)
    imei = models.CharField(max_length=17, blank=True, verbose_name="IMEI")
    ownership = models.CharField(max_length=20, choices=Ownership.choices)
    primary_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="devices"
    )
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="devices")
    enrollment_method = models.CharField("enrolment method", max_length=32, choices=EnrollmentMethod.choices)
    enrollment_transport = models.CharField(
        "enrolment transport",
        max_length=20,
        choices=EnrollmentTransport.choices,
        default=EnrollmentTransport.OVER_THE_AIR,
    )
    lifecycle_state = models.CharField(
        max_length=20, choices=LifecycleState.choices, default=LifecycleState.PENDING, editable=False
    )
    compliance_state = models.CharField(
        max_length=20, choices=ComplianceState.choices, default=ComplianceState.NOT_EVALUATED, editable=False
    )
    enrolled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_checkin_at = models.DateTimeField(null=True, blank=True, editable=False, verbose_name="last check-in")
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set at enrolment when the profile has a provisioning time limit; ``provisioned_at`` once a
    # check-in finds nothing left to apply, ``provisioning_overdue_at`` when the sweep flags it late.
    provisioning_deadline_at = models.DateTimeField(null=True, blank=True, editable=False)
    provisioned_at = models.DateTimeField(null=True, blank=True, editable=False)
    provisioning_overdue_at = models.DateTimeField(null=True, blank=True, editable=False)
    enrollment_profile = models.ForeignKey(
        "devices.EnrollmentProfile",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="devices",
        verbose_name="enrolment profile",
    )
    # The agent's secret, hashed (SHA-256 of a 256-bit random value): shown once, never stored.
    agent_secret_hash = models.CharField(max_length=64, blank=True, editable=False)
    # SHA-256 of the last inventory as received, so an unchanged check-in writes only its time.
    inventory_hash = models.CharField(max_length=64, blank=True, editable=False)
    # Bumped whenever the device has something new to be told (a command queued, a "not now" to
    # retry); ``command_seq_delivered`` is the value of the last check-in that told it everything.
    # Equal values let a check-in skip the command lookup altogether.
    command_seq = models.PositiveBigIntegerField(default=0, editable=False)
    command_seq_delivered = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [
            ("sync_device", "Can sync device"),
            ("lock_device", "Can lock device"),
            ("reset_passcode_device", "Can reset device passcode"),
            ("restart_device", "Can restart device"),
            ("locate_device", "Can locate device"),
            ("wipe_device", "Can wipe device (factory reset)"),
            ("retire_device", "Can retire device (selective wipe)"),
            ("view_device_secret", "Can read device recovery secrets"),
            ("check_device_access", "Can ask whether a device may reach company resources (access gates)"),
        ]
        constraints = [
            # One live record per physical device; retired records keep their identifiers as history.
            models.UniqueConstraint(
                fields=["serial_number"],
                condition=Q(serial_number__gt="") & ~Q(lifecycle_state=LifecycleState.RETIRED),
                name="device_serial_unique_live",
            ),
            models.UniqueConstraint(
                fields=["imei"],
                condition=Q(imei__gt="") & ~Q(lifecycle_state=LifecycleState.RETIRED),
                name="device_imei_unique_live",
            ),
        ]
        indexes = [
            # The console's default order, for everyone and per scope.
            models.Index(fields=["name", "id"], name="device_name_idx"),
            models.Index(fields=["scope", "name", "id"], name="device_scope_name_idx"),
            models.Index(fields=["lifecycle_state", "last_checkin_at"], name="device_state_checkin_idx"),
            models.Index(fields=["compliance_state"], name="device_compliance_idx"),
            models.Index(fields=["platform", "os_version_key"], name="device_platform_os_idx"),
            models.Index(fields=["serial_number"], name="device_serial_idx"),
            # The provisioning sweep's "deadline passed, still waiting" lookup, over those rows only.
            models.Index(
                fields=["provisioning_deadline_at", "id"],
                condition=Q(
                    provisioning_deadline_at__isnull=False,
                    provisioned_at__isnull=True,
                    provisioning_overdue_at__isnull=True,
                ),
                name="device_provisioning_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class DeviceInventory(models.Model):
    """What the device last reported about itself.

    The facts that compliance rules read are columns (filterable in SQL across the fleet); the
    rest of the report is kept as it came in ``facts``.
    """

    scope_field = "device__scope"

    device = models.OneToOneField(Device, primary_key=True, on_delete=models.CASCADE, related_name="inventory")
    encrypted = models.BooleanField(null=True)
    passcode_set = models.BooleanField(null=True)
    passcode_quality = models.CharField(max_length=20, blank=True)
    passcode_length = models.PositiveSmallIntegerField(null=True)
    jailbroken = models.BooleanField(null=True)
    free_storage_mb = models.PositiveBigIntegerField(null=True)
    total_storage_mb = models.PositiveBigIntegerField(null=True)
    battery_percent = models.PositiveSmallIntegerField(null=True)
    installed_apps = models.JSONField(default=list, blank=True)
    facts = models.JSONField(default=dict, blank=True)
    reported_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "device inventories"

    def __str__(self) -> str:
        return f"Inventory of {self.device_id}"
