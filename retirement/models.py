"""Retire and wipe requests with their verification evidence, cleanup rules, and the stage's settings.

A ``RetirementRequest`` follows one device from the request to unenrolment and keeps the proof:
the inventory before the command and the device's report after it, and what was left over. It
keeps the device's identity as it was (name, serial, platform, ownership, scope), so the record and
its evidence outlive a deleted device record.
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from devices.choices import Ownership, Platform
from devices.models import Device, DeviceCommand
from mdm_portal.core.models import Scope

from .choices import (
    OPEN_STATUSES,
    CleanupAction,
    CorporateOffboarding,
    OffboardingSource,
    OffboardingStep,
    RetirementAction,
    RetirementSource,
    RetirementStatus,
)


class RetirementRequest(models.Model):
    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, null=True, on_delete=models.SET_NULL, related_name="retirement_requests")
    device_name = models.CharField(max_length=255)
    device_serial = models.CharField(max_length=64, blank=True)
    device_platform = models.CharField(max_length=20, choices=Platform.choices)
    device_ownership = models.CharField(max_length=20, choices=Ownership.choices)
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=10, choices=RetirementAction.choices)
    keep_enrollment = models.BooleanField(
        "keep the enrolment",
        default=False,
        help_text="Full wipe only: the device re-enrols by itself after the reset.",
    )
    source = models.CharField(max_length=20, choices=RetirementSource.choices)
    status = models.CharField(max_length=20, choices=RetirementStatus.choices)
    reason = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255)
    requested_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    command = models.ForeignKey(DeviceCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    unenrolled_at = models.DateTimeField(null=True, blank=True)
    timed_out_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    forced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    forced_reason = models.TextField(blank=True)
    failure_reason = models.TextField(blank=True)
    # Evidence: what the device held before, what it reported after, what was still there.
    before_inventory = models.JSONField(default=dict, blank=True)
    after_inventory = models.JSONField(default=dict, blank=True)
    leftovers = models.JSONField(default=list, blank=True)
    # Requests made together (one bulk request over a filter) share a batch id, to follow their progress.
    batch = models.UUIDField(null=True, blank=True, db_index=True, editable=False)

    class Meta:
        ordering = ["-requested_at"]
        permissions = [
            ("approve_retirementrequest", "Can approve another administrator's retire or wipe request"),
            ("force_retirementrequest", "Can force the unenrolment of an offline device (unverified)"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["device"],
                condition=Q(status__in=[s.value for s in OPEN_STATUSES]),
                name="retirement_open_per_device",
            )
        ]
        indexes = [models.Index(fields=["status", "sent_at"], name="retirement_status_sent_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display().split(' (')[0]} {self.device_name} ({self.get_status_display().lower()})"


class CleanupRule(models.Model):
    """Devices of a platform silent for ``days`` days are retired or their records removed (beat)."""

    platform = models.CharField(max_length=20, choices=Platform.choices, unique=True)
    days = models.PositiveSmallIntegerField(validators=[MinValueValidator(30), MaxValueValidator(270)])
    action = models.CharField(max_length=10, choices=CleanupAction.choices, default=CleanupAction.RETIRE)
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_count = models.PositiveIntegerField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["platform"]

    def __str__(self) -> str:
        return f"{self.get_platform_display()}: {self.get_action_display().lower()} after {self.days} days"


class Offboarding(models.Model):
    """One person leaving: what happened to each of their devices and app instances.

    Keeps the person's identity as it was, so the record outlives a deleted account. Its items link
    to the retirement requests and app data wipes it started; their states say how far it got.
    """

    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="offboardings"
    )
    username = models.CharField(max_length=150)
    user_label = models.CharField(max_length=255, help_text="Full name and email at the time.")
    # The person's home scope; a person without one is seen only by global administrators.
    scope = models.ForeignKey(Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=20, choices=OffboardingSource.choices)
    corporate_action = models.CharField(
        max_length=10, choices=CorporateOffboarding.choices, help_text="The setting in force when it ran."
    )
    reason = models.TextField(blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_label = models.CharField("started by", max_length=255)
    started_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at"]
        permissions = [("run_offboarding", "Can offboard a person (deactivate, retire or wipe their devices)")]

    def __str__(self) -> str:
        return f"Offboarding of {self.user_label or self.username}"


class OffboardingItem(models.Model):
    """One device or app instance of an offboarding and what was done to it."""

    offboarding = models.ForeignKey(Offboarding, on_delete=models.CASCADE, related_name="items")
    step = models.CharField(max_length=20, choices=OffboardingStep.choices)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    label = models.CharField(max_length=255, help_text="The device's name, or the app instance's app and device.")
    retirement_request = models.ForeignKey(
        RetirementRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    app_data_wipe = models.ForeignKey(
        "apps.AppDataWipe", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.get_step_display()}: {self.label}"


class RetirementSettings(models.Model):
    """Organisation-wide retirement settings: one row (``RetirementSettings.load()``)."""

    require_approval = models.BooleanField(
        "second-person approval for retire and wipe",
        default=False,
        help_text="A request waits until a different administrator with the permission approves it.",
    )
    allow_personal_full_wipe = models.BooleanField(
        "allow a full wipe of personal devices",
        default=False,
        help_text="Off: personal devices can only be retired (company data removed, personal data kept).",
    )
    allow_user_reset = models.BooleanField(
        "employees may reset their corporate devices from the Company Portal", default=False
    )
    auto_unenroll = models.BooleanField(
        "unenrol automatically after a verified selective wipe",
        default=True,
        help_text="Off: the device stays enrolled but unmanaged until IT unenrols it.",
    )
    offline_timeout_days = models.PositiveSmallIntegerField(
        "flag a request after (days offline)", default=14, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    corporate_offboarding = models.CharField(
        "corporate devices at offboarding",
        max_length=10,
        choices=CorporateOffboarding.choices,
        default=CorporateOffboarding.REASSIGN,
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "retirement settings"

    def __str__(self) -> str:
        return "Retirement settings"

    @classmethod
    def load(cls) -> "RetirementSettings":
        return cls.objects.get_or_create(pk=1)[0]
