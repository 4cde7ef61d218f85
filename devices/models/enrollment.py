"""How devices get in: bulk enrolment profiles (tokens) and self-service one-time codes."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from mdm_portal.core.models import Scope

from ..choices import Ownership, Platform, ProvisioningAction
from .device import Device
from .groups import DeviceGroup

MAX_PROFILE_CAPACITY = 1000


class EnrollmentProfile(models.Model):
    """A bulk enrolment token owned by an enrolment-manager account.

    Every device that enrols with it gets the profile's defaults (ownership, scope, device group,
    primary user). The token is shown once; only its hash is stored. ``use_count`` only grows
    through a conditional UPDATE, so concurrent enrolments cannot pass ``capacity``.
    """

    scope_field = "scope"

    name = models.CharField(max_length=150)
    description = models.TextField(blank=True)
    enrollment_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="enrollment_profiles",
        verbose_name="enrolment manager",
        help_text="The account that owns the devices enrolled with this token (not counted against its limit).",
    )
    scope = models.ForeignKey(Scope, on_delete=models.PROTECT, related_name="enrollment_profiles")
    ownership = models.CharField(max_length=20, choices=Ownership.choices, default=Ownership.CORPORATE)
    device_group = models.ForeignKey(
        DeviceGroup,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A static group every enrolled device is added to.",
    )
    primary_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Leave empty for shared devices without a user.",
    )
    platforms = models.JSONField(default=list, blank=True, help_text="Platforms allowed; empty allows every one.")
    capacity = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(MAX_PROFILE_CAPACITY)]
    )
    use_count = models.PositiveIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    provisioning_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Deadline for the initial policies and apps to be applied."
    )
    provisioning_action = models.CharField(
        max_length=40,
        choices=ProvisioningAction.choices,
        default=ProvisioningAction.NOTIFY,
        help_text="What happens to a device that misses the provisioning deadline.",
    )
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "enrolment profile"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(use_count__lte=models.F("capacity")), name="profile_within_capacity"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EnrollmentCode(models.Model):
    """A one-time self-enrolment code an employee gets in the Company Portal for one device."""

    owner_field = "user"
    scope_field = "user__scope"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrollment_codes")
    platform = models.CharField(max_length=20, choices=Platform.choices)
    ownership = models.CharField(max_length=20, choices=Ownership.choices)
    code_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "enrolment code"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} code for {self.user}"
