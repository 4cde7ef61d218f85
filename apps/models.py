"""The app catalog, app assignments, per-device installs, and app protection (MAM) without enrolment.

Apps belong to a scope (only its devices receive them, only its operators see them) or to none
(organisation-wide, global administrators), like profiles. Who an assignment reaches is computed
by ``policies.targeting`` (one SQL filter); ``AppInstall`` rows record the outcome per device.
App protection works on app instances (an app on a device that need not be enrolled), registered
by the employee's sign-in and checked in with an instance secret stored hashed.
"""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from devices.choices import Platform
from devices.models import Device, DeviceCommand
from mdm_portal.core.models import Scope, UserGroup
from policies.models import SCOPE_HELP, AssignmentBase

from .choices import (
    AppIntent,
    AppKind,
    ClipboardLevel,
    InstallState,
    PackageFormat,
    SharingLevel,
    WipeStatus,
)


class App(models.Model):
    """One app for one platform: a store app, a line-of-business package, or a web link."""

    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=150)
    publisher = models.CharField(max_length=150, blank=True)
    description = models.TextField(blank=True)
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="apps", help_text=SCOPE_HELP
    )
    kind = models.CharField(max_length=10, choices=AppKind.choices)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    identifier = models.CharField(
        max_length=255,
        blank=True,
        help_text="Bundle id (Apple), package name (Android), store product id or product code (Windows), "
        "package name (Linux): what the device reports in its installed apps.",
    )
    store_id = models.CharField("store id", max_length=64, blank=True, help_text="App Store numeric id.")
    url = models.URLField("web link", blank=True)
    icon = models.FileField(upload_to="app-icons/", blank=True)
    current_version = models.ForeignKey(
        "AppVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "platform"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "identifier"], condition=~Q(identifier=""), name="app_platform_identifier_unique"
            )
        ]
        permissions = [("retry_app", "Can retry failed app installs")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"


class AppVersion(models.Model):
    """A version of an app; the newest supersedes the others (devices with an older one are updated)."""

    scope_field = "app__scope"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64)
    version_key = models.CharField(max_length=64, editable=False)
    package = models.FileField(upload_to="app-packages/", blank=True)
    package_format = models.CharField(max_length=10, choices=PackageFormat.choices, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True, editable=False)
    min_os_version = models.CharField("minimum OS version", max_length=32, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["app", "-version_key"]
        constraints = [models.UniqueConstraint(fields=["app", "version"], name="app_version_unique")]

    def __str__(self) -> str:
        return f"{self.app.name} {self.version}"


class AppAssignment(AssignmentBase):
    """An app assigned with an intent. Excludes apply to every intent of the app."""

    scope_field = "app__scope"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="assignments")
    intent = models.CharField(max_length=20, choices=AppIntent.choices)

    class Meta:
        ordering = ["app", "mode", "intent", "id"]


class AppInstall(models.Model):
    """Where one app stands on one device: desired by an assignment, or reported by the device."""

    scope_field = "device__scope"

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="app_installs")
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="installs")
    intent = models.CharField(max_length=20, choices=AppIntent.choices, blank=True)
    state = models.CharField(max_length=20, choices=InstallState.choices, default=InstallState.PENDING)
    desired_version = models.CharField(max_length=64, blank=True)
    installed_version = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    requested_by_user = models.BooleanField(default=False, help_text="Installed from the Company Portal.")
    command = models.ForeignKey(DeviceCommand, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["app_id", "device_id"]
        constraints = [models.UniqueConstraint(fields=["device", "app"], name="app_install_unique")]
        indexes = [models.Index(fields=["app", "state"], name="app_install_state_idx")]

    def __str__(self) -> str:
        return f"{self.app} on {self.device_id}: {self.state}"


class AppProtectionPolicy(models.Model):
    """How org data is protected inside managed apps, enrolled device or not (MAM)."""

    scope_field = "scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    scope = models.ForeignKey(
        Scope, null=True, blank=True, on_delete=models.PROTECT, related_name="app_protection_policies",
        help_text="Only people whose home scope it is receive it. Leave empty for the whole organisation.",
    )  # fmt: skip
    platform = models.CharField(max_length=20, choices=Platform.choices)
    apps = models.ManyToManyField(App, related_name="protection_policies", help_text="The managed apps it protects.")
    data_isolation = models.BooleanField("org data only to managed apps", default=True)
    clipboard = models.CharField(max_length=30, choices=ClipboardLevel.choices, default=ClipboardLevel.MANAGED_APPS)
    block_backup = models.BooleanField("block backup of org data", default=True)
    block_save_as = models.BooleanField('block "save as" outside org storage', default=True)
    sharing = models.CharField(
        "org data sharing", max_length=20, choices=SharingLevel.choices, default=SharingLevel.MANAGED_APPS
    )
    managed_browser_required = models.BooleanField(default=False)
    allowed_urls = models.JSONField(default=list, blank=True)
    blocked_urls = models.JSONField(default=list, blank=True)
    pin_required = models.BooleanField("app PIN required", default=True)
    pin_length = models.PositiveSmallIntegerField(default=6, validators=[MinValueValidator(4), MaxValueValidator(16)])
    pin_recheck_minutes = models.PositiveIntegerField(
        "re-check the PIN after (minutes)", default=30, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    offline_block_minutes = models.PositiveIntegerField(
        "block access when offline for (minutes)",
        default=720,
        validators=[MinValueValidator(1), MaxValueValidator(43200)],
    )
    offline_wipe_days = models.PositiveSmallIntegerField(
        "wipe org data when offline for (days)", default=90, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    min_app_version = models.CharField("minimum app version", max_length=32, blank=True)
    min_os_version = models.CharField("minimum OS version", max_length=32, blank=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "app protection policies"

    def __str__(self) -> str:
        return self.name


class AppProtectionAssignment(models.Model):
    """A protection policy applies to the members of a user group (include) unless excluded."""

    scope_field = "policy__scope"

    policy = models.ForeignKey(AppProtectionPolicy, on_delete=models.CASCADE, related_name="assignments")
    user_group = models.ForeignKey(UserGroup, on_delete=models.CASCADE, related_name="+")
    exclude = models.BooleanField(default=False)

    class Meta:
        ordering = ["policy", "exclude", "id"]
        constraints = [models.UniqueConstraint(fields=["policy", "user_group"], name="protection_assignment_unique")]

    def __str__(self) -> str:
        return f"{'Exclude' if self.exclude else 'Include'} {self.user_group}"


class ManagedAppInstance(models.Model):
    """One managed app on one device (enrolled or not), signed in by one person."""

    scope_field = "user__scope"
    owner_field = "user"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="app_instances")
    app = models.ForeignKey(App, null=True, blank=True, on_delete=models.SET_NULL, related_name="instances")
    app_identifier = models.CharField(max_length=255)
    platform = models.CharField(max_length=20, choices=Platform.choices)
    device_name = models.CharField(max_length=255, blank=True)
    device = models.ForeignKey(Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="app_instances")
    os_version = models.CharField(max_length=64, blank=True)
    app_version = models.CharField(max_length=64, blank=True)
    # SHA-256 of the instance's secret (shown once at registration).
    secret_hash = models.CharField(max_length=64, editable=False)
    policy = models.ForeignKey(AppProtectionPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    policy_version = models.PositiveIntegerField(default=0)
    state = models.JSONField(default=dict, blank=True, help_text="What the app last reported about itself.")
    registered_at = models.DateTimeField(auto_now_add=True)
    last_checkin_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_checkin_at", "id"]
        permissions = [("wipe_managedappinstance", "Can wipe org data from managed app instances")]

    def __str__(self) -> str:
        return f"{self.app_identifier} for {self.user} on {self.device_name or self.platform}"


class AppDataWipe(models.Model):
    """A selective wipe of one instance's org data: kept until the app confirms it."""

    scope_field = "instance__user__scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instance = models.ForeignKey(ManagedAppInstance, on_delete=models.CASCADE, related_name="wipes")
    status = models.CharField(max_length=20, choices=WipeStatus.choices, default=WipeStatus.PENDING)
    reason = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255)
    requested_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance"], condition=Q(status__in=["pending", "sent"]), name="app_wipe_open_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Wipe {self.instance} ({self.status})"
