"""Choices for the app catalog, app assignments, per-device installs and app protection (MAM)."""

from django.db import models


class AppKind(models.TextChoices):
    STORE = "store", "Store app"
    LOB = "lob", "Line-of-business package"
    WEB = "web", "Web link"


class PackageFormat(models.TextChoices):
    IPA = "ipa", ".ipa (iOS, iPadOS)"
    APK = "apk", ".apk (Android)"
    MSI = "msi", ".msi (Windows)"
    PKG = "pkg", ".pkg (macOS)"
    DEB = "deb", ".deb (Linux)"


class AppIntent(models.TextChoices):
    REQUIRED = "required", "Required (installed without asking)"
    AVAILABLE = "available", "Available (offered in the Company Portal)"
    UNINSTALL = "uninstall", "Uninstall"
    BLOCKED = "blocked", "Blocked (its presence is a compliance failure)"


class InstallState(models.TextChoices):
    INSTALLED = "installed", "Installed"
    PENDING = "pending", "Pending"
    FAILED = "failed", "Failed"
    NOT_INSTALLED = "not_installed", "Not installed"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    CONFLICT = "conflict", "Conflict"


class ClipboardLevel(models.TextChoices):
    BLOCKED = "blocked", "Blocked"
    MANAGED_APPS = "managed_apps", "Between managed apps"
    MANAGED_APPS_PASTE_IN = "managed_apps_paste_in", "Between managed apps, paste in from any app"
    ANY_APP = "any_app", "Any app"


class SharingLevel(models.TextChoices):
    NONE = "none", "No sharing of org data"
    MANAGED_APPS = "managed_apps", "Managed apps only"
    ANY_APP = "any_app", "Any app"


class WipeStatus(models.TextChoices):
    PENDING = "pending", "Pending (sent at the next check-in)"
    SENT = "sent", "Sent, waiting for confirmation"
    CONFIRMED = "confirmed", "Confirmed by the app"
    CANCELLED = "cancelled", "Cancelled"
