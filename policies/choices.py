"""Choices of the configuration and compliance stage."""

from django.db import models


class ProfileKind(models.TextChoices):
    PASSCODE = "passcode", "Passcode"
    ENCRYPTION = "encryption", "Encryption"
    RESTRICTIONS = "restrictions", "Device restrictions"
    WIFI = "wifi", "Wi-Fi"
    VPN = "vpn", "VPN"
    EMAIL = "email", "Email account"
    CERTIFICATE = "certificate", "Trusted certificate"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    ERROR = "error", "Error"
    CONFLICT = "conflict", "Conflict"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class AssignmentMode(models.TextChoices):
    INCLUDE = "include", "Include"
    EXCLUDE = "exclude", "Exclude"


class AssignmentTarget(models.TextChoices):
    ALL_DEVICES = "all_devices", "All devices"
    USER_GROUP = "user_group", "User group (the devices of its members)"
    DEVICE_GROUP = "device_group", "Device group"


class PasscodeQuality(models.TextChoices):
    NUMERIC = "numeric", "Numeric (digits)"
    ALPHANUMERIC = "alphanumeric", "Alphanumeric (letters and digits)"
    COMPLEX = "complex", "Complex (letters, digits and symbols)"


# What a device reports as its passcode quality, weakest first. A fingerprint or face unlock always
# sits on top of a numeric passcode, so it counts as numeric.
PASSCODE_QUALITY_RANK = {"none": 0, "": 0, "numeric": 1, "biometric": 1, "alphanumeric": 2, "complex": 3}


class ComplianceRule(models.TextChoices):
    OS_MIN = "os_min", "Minimum OS version"
    OS_MAX = "os_max", "Maximum OS version"
    PASSCODE_REQUIRED = "passcode_required", "Passcode required"
    PASSCODE_MIN_LENGTH = "passcode_min_length", "Minimum passcode length"
    PASSCODE_MIN_QUALITY = "passcode_min_quality", "Minimum passcode quality"
    ENCRYPTION_REQUIRED = "encryption_required", "Encryption required"
    JAILBREAK_BLOCKED = "jailbreak_blocked", "Jailbroken or rooted devices not allowed"
    CHECKIN_MAX_DAYS = "checkin_max_days", "Maximum days since last check-in"
    BLOCKED_APPS = "blocked_apps", "Blocked apps absent"
    PROVISIONING_ON_TIME = "provisioning_on_time", "Provisioning not overdue"
    # Organisation-wide rules, not part of a policy.
    VALIDITY = "validity", "Checked in within the validity period"
    NO_POLICY = "no_policy", "Has a compliance policy"


class NoncomplianceActionType(models.TextChoices):
    MARK_NONCOMPLIANT = "mark_noncompliant", "Mark the device noncompliant"
    EMAIL = "email", "Email the user"
    PUSH = "push", "Push a notification to the device"
    LOCK = "lock", "Lock the device remotely"
    RETIRE = "retire", "Propose retirement (IT approves)"


class RetireApprovalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for IT"
    APPROVED = "approved", "Approved (retirement started)"
    DISMISSED = "dismissed", "Dismissed"
