"""Choices for retire and wipe requests, verification evidence, cleanup rules and offboarding."""

from django.db import models


class RetirementAction(models.TextChoices):
    RETIRE = "retire", "Retire (selective wipe: company apps, profiles and data only)"
    WIPE = "wipe", "Full wipe (factory reset)"
    DELETE = "delete", "Delete the record (retired at its next check-in)"


class RetirementSource(models.TextChoices):
    ADMIN = "admin", "IT console"
    API = "api", "API"
    PORTAL = "portal", "Company Portal (the device's user)"
    NONCOMPLIANCE = "noncompliance", "Noncompliance schedule (approved by IT)"
    OFFBOARDING = "offboarding", "Offboarding"
    CLEANUP = "cleanup", "Cleanup rule"


class RetirementStatus(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for a second administrator's approval"
    COMMAND_SENT = "command_sent", "Command sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged by the device"
    VERIFIED = "verified", "Verified (waiting to unenrol)"
    UNENROLLED = "unenrolled", "Unenrolled (verified)"
    FORCED = "forced", "Unenrolled by force (unverified)"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out (device offline)"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (
    RetirementStatus.AWAITING_APPROVAL,
    RetirementStatus.COMMAND_SENT,
    RetirementStatus.ACKNOWLEDGED,
    RetirementStatus.VERIFIED,
    RetirementStatus.TIMED_OUT,
)


class CleanupAction(models.TextChoices):
    RETIRE = "retire", "Retire"
    DELETE = "delete", "Delete the record"


class CorporateOffboarding(models.TextChoices):
    WIPE = "wipe", "Full wipe"
    REASSIGN = "reassign", "Reassign to IT (keep managed, remove the user)"


class OffboardingSource(models.TextChoices):
    ADMIN = "admin", "IT console (offboarding page)"
    DEACTIVATION = "deactivation", "Account deactivated in the IT console"
    API = "api", "API"
    DIRECTORY = "directory", "Directory sync"


class OffboardingStep(models.TextChoices):
    RETIRE = "retire", "Retire (selective wipe)"
    WIPE = "wipe", "Full wipe"
    REASSIGN = "reassign", "Reassigned to IT"
    APP_DATA_WIPE = "app_data_wipe", "App data wipe"
    EXISTING = "existing", "Already being retired"
    SKIPPED = "skipped", "Nothing to do"


class OffboardingState(models.TextChoices):
    """How far an offboarding item (or the whole offboarding) got; derived, never stored."""

    DONE = "done", "Done"
    IN_PROGRESS = "in_progress", "In progress"
    ATTENTION = "attention", "Needs attention"
