"""Enrolment restrictions and the record of every refused or failed enrolment."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mdm_portal.core.models import UserGroup

from .enrollment import EnrollmentProfile

MIN_DEVICE_LIMIT, MAX_DEVICE_LIMIT = 1, 15


class EnrollmentRestriction(models.Model):
    """Which devices the people of some user groups may enrol.

    Restrictions are tried in ``priority`` order (1 first); the first one targeted at one of the
    person's groups applies, and the default restriction (exactly one, ``is_default``) applies to
    everyone else. Enrolment managers' bulk enrolments are exempt from the device limit.
    """

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    priority = models.PositiveIntegerField(
        unique=True, help_text="1 is tried first. The default restriction is tried last."
    )
    is_default = models.BooleanField(default=False, editable=False)
    user_groups = models.ManyToManyField(UserGroup, blank=True, related_name="enrollment_restrictions")
    device_limit = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(MIN_DEVICE_LIMIT), MaxValueValidator(MAX_DEVICE_LIMIT)]
    )
    allowed_platforms = models.JSONField(default=list, blank=True, help_text="Empty allows every platform.")
    os_versions = models.JSONField(
        default=dict, blank=True, help_text='Per platform, e.g. {"ios": {"min": "16.0", "max": ""}}.'
    )
    block_personal = models.JSONField(
        default=list, blank=True, help_text="Platforms on which personally owned devices may not enrol."
    )
    # Remediation when this restriction refuses a device.
    notify_on_refusal = models.BooleanField(
        default=True, help_text="Email the person (what was refused and how to fix it) and IT."
    )
    remediation_instructions = models.TextField(
        blank=True, help_text="Added to the person's email, e.g. how to update the OS or whom to call."
    )
    notify_repeat_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MaxValueValidator(7 * 24 * 60)],
        help_text="The same refusal of the same person is not emailed again within this many minutes.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "enrolment restriction"
        ordering = ["is_default", "priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_restriction"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EnrollmentFailure(models.Model):
    """One refused or failed enrolment: who, which device, which rule or error, when.

    Written in its own transaction, so it survives the rollback of the enrolment it records.
    """

    scope_field = "user__scope"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    platform = models.CharField(max_length=20, blank=True)
    os_version = models.CharField(max_length=64, blank=True)
    serial_number = models.CharField(max_length=64, blank=True)
    imei = models.CharField(max_length=17, blank=True)
    device_name = models.CharField(max_length=255, blank=True)
    reason_code = models.CharField(max_length=64)
    message = models.TextField()
    restriction = models.ForeignKey(
        EnrollmentRestriction, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures"
    )
    profile = models.ForeignKey(
        EnrollmentProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="failures"
    )
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "enrolment failure"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reason_code}: {self.device_name or self.serial_number or 'unknown device'}"
