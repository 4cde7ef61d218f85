from django.db import models


class Platform(models.TextChoices):
    IOS = "ios", "iOS"
    IPADOS = "ipados", "iPadOS"
    ANDROID = "android", "Android"
    WINDOWS = "windows", "Windows"
    MACOS = "macos", "macOS"
    LINUX = "linux", "Linux"


MOBILE_PLATFORMS = frozenset({Platform.IOS, Platform.IPADOS, Platform.ANDROID})
APPLE_PLATFORMS = frozenset({Platform.IOS, Platform.IPADOS, Platform.MACOS})


class Ownership(models.TextChoices):
    CORPORATE = "corporate", "Corporate"
    PERSONAL = "personal", "Personal"


class EnrollmentMethod(models.TextChoices):
    USER_SELF_SERVICE = "user_self_service", "Self-enrolment (Company Portal)"
    ADMIN_BULK = "admin_bulk", "Bulk enrolment (enrolment token)"
    CORPORATE_IDENTIFIER = "corporate_identifier", "Pre-registered corporate identifier"
    RESOURCE_GATE = "resource_gate", "Push-based (resource access gate)"
    AGENT_PUSH = "agent_push", "Agent pushed with a token"
    MANUAL = "manual", "Recorded by IT"


class EnrollmentTransport(models.TextChoices):
    OVER_THE_AIR = "over_the_air", "Over the air"
    CONNECTED = "connected", "Connected (cable or local)"


class LifecycleState(models.TextChoices):
    PENDING = "pending", "Pending enrolment"
    ENROLLED = "enrolled", "Enrolled"
    RETIRING = "retiring", "Retiring"
    RETIRED = "retired", "Retired"


class ComplianceState(models.TextChoices):
    NOT_EVALUATED = "not_evaluated", "Not evaluated"
    COMPLIANT = "compliant", "Compliant"
    IN_GRACE = "in_grace", "In grace period"
    NONCOMPLIANT = "noncompliant", "Noncompliant"
    ERROR = "error", "Error"


class GroupMembershipType(models.TextChoices):
    STATIC = "static", "Static (chosen devices)"
    DYNAMIC = "dynamic", "Rule-based"


class GroupRuleField(models.TextChoices):
    PLATFORM = "platform", "Platform is one of"
    OWNERSHIP = "ownership", "Ownership is"
    OS_VERSION_MIN = "os_version_min", "OS version at least"
    OS_VERSION_MAX = "os_version_max", "OS version at most"
    SCOPE = "scope", "Scope (slug) is"
    NAME_PATTERN = "name_pattern", "Name matches (* and ? wildcards)"


class CommandType(models.TextChoices):
    SYNC = "sync", "Sync"
    LOCK = "lock", "Lock"
    RESTART = "restart", "Restart"
    RENAME = "rename", "Rename"
    RESET_PASSCODE = "reset_passcode", "Reset passcode"
    INSTALL_PROFILE = "install_profile", "Install configuration profile"
    REMOVE_PROFILE = "remove_profile", "Remove configuration profile"
    NOTIFY = "notify", "Notification"
    INSTALL_APP = "install_app", "Install app"
    REMOVE_APP = "remove_app", "Remove app"
    RETIRE = "retire", "Retire (selective wipe)"
    WIPE = "wipe", "Full wipe"


class CommandStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ERROR = "error", "Error"
    NOT_NOW = "not_now", "Not now (device busy)"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


class IdentifierImportMode(models.TextChoices):
    GOOD_ROWS = "good_rows", "Import the good rows, report the bad ones"
    ALL_OR_NOTHING = "all_or_nothing", "All or nothing: import only if every row is good"


class IdentifierImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting to start"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    REJECTED = "rejected", "Rejected (bad rows, nothing imported)"
    FAILED = "failed", "Failed"


class ProvisioningAction(models.TextChoices):
    NOTIFY = "notify", "Notify the user and IT"
    MARK_NONCOMPLIANT = "mark_noncompliant", "Mark the device noncompliant"
    NOTIFY_AND_MARK_NONCOMPLIANT = "notify_and_mark_noncompliant", "Notify and mark noncompliant"
