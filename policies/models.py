"""Configuration profiles, compliance policies, their assignments, and what became of them per device.

Profiles and policies belong to a scope (only that scope's devices receive them, and only that
scope's operators see them) or to none (organisation-wide, global administrators only), like
device groups. Who receives one is never stored per device by hand: ``policies.targeting`` turns a
profile's or policy's assignments into one SQL filter over ``Device``; the rows below record only
outcomes (a delivery per device and profile, a failure per device and failing rule).
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from devices.choices import Ownership, Platform
from devices.models import Device, DeviceCommand, DeviceGroup
from mdm_portal.core.models import Scope, UserGroup

from .choices import (
    AssignmentMode,
    AssignmentTarget,
    ComplianceRule,
    DeliveryState,
    NoncomplianceActionType,
    PasscodeQuality,
    ProfileKind,
    RetireApprovalStatus,
)

SCOPE_HELP = (
    "Only this scope's devices receive it and only its operators see it. Leave empty for the whole organisation."
)


class ConfigurationProfile(models.Model):
    """Settings of one kind (passcode, Wi-Fi, ...) written once, rendered natively per platform.

    ``settings`` holds the platform-neutral values (validated by ``policies.profile_settings``);
    secret values (a Wi-Fi or account password) are kept encrypted in ``secret_settings`` and never
    shown, audited or returned by the API. ``version`` goes up with every change, so a delivery
    knows whether the device has the current one.
    """

    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="profiles", help_text=SCOPE_HELP
    )
    kind = models.CharField(max_length=20, choices=ProfileKind.choices)
    platforms = models.JSONField(
        default=list, blank=True, help_text="Platforms that receive it. Empty: every platform that can express it."
    )
    settings = models.JSONField(default=dict, blank=True)
    secret_settings = models.TextField(blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("resend_configurationprofile", "Can resend a configuration profile to devices")]

    def __str__(self) -> str:
        return self.name


class CompliancePolicy(models.Model):
    """What a device of one platform must look like. An empty rule is not checked.

    Several policies can apply to one device; the most restrictive value of each rule wins
    (``policies.compliance.merge_rules``).
    """

    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="compliance_policies", help_text=SCOPE_HELP
    )
    platform = models.CharField(max_length=20, choices=Platform.choices)
    os_min = models.CharField("minimum OS version", max_length=32, blank=True)
    os_max = models.CharField("maximum OS version", max_length=32, blank=True)
    passcode_required = models.BooleanField(default=False)
    passcode_min_length = models.PositiveSmallIntegerField(
        "minimum passcode length", null=True, blank=True, validators=[MinValueValidator(4), MaxValueValidator(16)]
    )
    passcode_min_quality = models.CharField(
        "minimum passcode quality", max_length=20, blank=True, choices=PasscodeQuality.choices
    )
    encryption_required = models.BooleanField(default=False)
    jailbreak_blocked = models.BooleanField("block jailbroken or rooted devices", default=False)
    checkin_max_days = models.PositiveSmallIntegerField(
        "maximum days since last check-in",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    blocked_apps = models.JSONField(
        default=list, blank=True, help_text="App identifiers (bundle id or package name) that must not be installed."
    )
    provisioning_on_time = models.BooleanField("provisioning must not be overdue", default=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "compliance policies"

    def __str__(self) -> str:
        return self.name


class NoncomplianceAction(models.Model):
    """One step of a policy's schedule: ``days_after`` days after a device started failing, do ``action``.

    The ``mark_noncompliant`` step is the grace period (0 = at once); a policy without one marks
    at once.
    """

    scope_field = "policy__scope"

    policy = models.ForeignKey(CompliancePolicy, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=20, choices=NoncomplianceActionType.choices)
    days_after = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(365)])
    message = models.TextField(
        blank=True, help_text="Added to the email or shown in the notification, above the list of what to fix."
    )

    class Meta:
        ordering = ["policy", "days_after", "id"]
        constraints = [models.UniqueConstraint(fields=["policy", "action", "days_after"], name="policy_action_unique")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} after {self.days_after} days"


class AssignmentBase(models.Model):
    """Who a profile or policy applies to: a target, included or excluded, narrowed by filters.

    A device receives it when some include matches it and no exclude does; always only devices of
    the profile's or policy's scope.
    """

    mode = models.CharField(max_length=10, choices=AssignmentMode.choices, default=AssignmentMode.INCLUDE)
    target = models.CharField(max_length=20, choices=AssignmentTarget.choices)
    user_group = models.ForeignKey(UserGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    device_group = models.ForeignKey(DeviceGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    filter_platforms = models.JSONField("only platforms", default=list, blank=True)
    filter_ownership = models.CharField("only ownership", max_length=20, blank=True, choices=Ownership.choices)
    filter_os_min = models.CharField("only OS version at least", max_length=32, blank=True)
    filter_os_max = models.CharField("only OS version at most", max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        if self.target == AssignmentTarget.USER_GROUP:
            what = f"user group {self.user_group}"
        elif self.target == AssignmentTarget.DEVICE_GROUP:
            what = f"device group {self.device_group}"
        else:
            what = "all devices"
        return f"{self.get_mode_display()} {what}"


class ProfileAssignment(AssignmentBase):
    scope_field = "profile__scope"

    profile = models.ForeignKey(ConfigurationProfile, on_delete=models.CASCADE, related_name="assignments")

    class Meta:
        ordering = ["profile", "mode", "id"]


class PolicyAssignment(AssignmentBase):
    scope_field = "policy__scope"

    policy = models.ForeignKey(CompliancePolicy, on_delete=models.CASCADE, related_name="assignments")

    class Meta:
        ordering = ["policy", "mode", "id"]


class ProfileDelivery(models.Model):
    """Where one profile stands on one device: one row per targeted device, kept by the fan-out."""

    scope_field = "device__scope"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="profile_deliveries")
    profile = models.ForeignKey(ConfigurationProfile, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=20, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    version = models.PositiveIntegerField(default=0)
    reason = models.TextField(blank=True)
    # Settings this device's platform cannot express: [{"setting": ..., "reason": ...}].
    not_applicable = models.JSONField(default=list, blank=True)
    command = models.ForeignKey(DeviceCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "profile deliveries"
        ordering = ["profile_id", "device_id"]
        constraints = [models.UniqueConstraint(fields=["device", "profile"], name="delivery_device_profile_unique")]
        indexes = [models.Index(fields=["profile", "state"], name="delivery_profile_state_idx")]

    def __str__(self) -> str:
        return f"{self.profile} on {self.device_id}: {self.state}"


class ComplianceFailure(models.Model):
    """One rule one device fails, since when. A compliant device has none.

    ``policy`` is the policy whose value of the rule was the most restrictive (the one the device
    failed); empty for the organisation-wide rules (validity period, no policy).
    """

    scope_field = "device__scope"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="compliance_failures")
    policy = models.ForeignKey(
        CompliancePolicy, null=True, blank=True, on_delete=models.CASCADE, related_name="failures"
    )
    rule = models.CharField(max_length=32, choices=ComplianceRule.choices)
    expected = models.CharField(max_length=255, blank=True)
    actual = models.CharField(max_length=255, blank=True)
    since = models.DateTimeField()

    class Meta:
        ordering = ["device_id", "rule"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "policy", "rule"], condition=Q(policy__isnull=False), name="failure_policy_unique"
            ),
            models.UniqueConstraint(
                fields=["device", "rule"], condition=Q(policy__isnull=True), name="failure_org_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["rule"], name="failure_rule_idx"),
            models.Index(fields=["policy", "since"], name="failure_policy_since_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} fails {self.rule}"


class ComplianceActionRun(models.Model):
    """A noncompliance action done for a device: once per failing spell (cleared when it complies again)."""

    scope_field = "device__scope"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    action = models.ForeignKey(NoncomplianceAction, on_delete=models.CASCADE, related_name="runs")
    ran_at = models.DateTimeField()
    outcome = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-ran_at"]
        constraints = [models.UniqueConstraint(fields=["device", "action"], name="action_run_unique")]

    def __str__(self) -> str:
        return f"{self.action} for {self.device_id}"


class RetireApproval(models.Model):
    """A device a noncompliance schedule proposes to retire; nothing happens until IT approves it."""

    scope_field = "device__scope"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="retire_approvals")
    policy = models.ForeignKey(CompliancePolicy, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.TextField()
    status = models.CharField(max_length=20, choices=RetireApprovalStatus.choices, default=RetireApprovalStatus.PENDING)
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"], condition=Q(status="pending"), name="retire_approval_pending_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Retire {self.device} ({self.status})"


class ComplianceSnapshot(models.Model):
    """Devices per compliance state per scope on one day: the dashboard's trend, written by the sweep."""

    scope_field = "scope"

    day = models.DateField()
    scope = models.ForeignKey(Scope, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20)
    count = models.PositiveIntegerField()

    class Meta:
        ordering = ["day", "scope_id", "state"]
        constraints = [models.UniqueConstraint(fields=["day", "scope", "state"], name="snapshot_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.scope_id} {self.state}: {self.count}"


class ComplianceSettings(models.Model):
    """Organisation-wide compliance settings: one row (``ComplianceSettings.load()``)."""

    no_policy_compliant = models.BooleanField(
        "devices without a policy are compliant",
        default=True,
        help_text="Off: a device no compliance policy applies to is noncompliant.",
    )
    validity_days = models.PositiveSmallIntegerField(
        "validity period (days)",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="A device that has not checked in for longer is noncompliant, whatever its policies say.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "compliance settings"

    def __str__(self) -> str:
        return "Compliance settings"

    @classmethod
    def load(cls) -> "ComplianceSettings":
        return cls.objects.get_or_create(pk=1)[0]
