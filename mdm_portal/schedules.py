"""The beat schedule, defined in code and copied into django-celery-beat by ``manage.py sync_schedules``.

After the copy the schedules live in the database: an administrator can change an interval or
disable a job in the admin, and ``sync_schedules`` keeps such edits unless run with ``--reset``.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    every_seconds: int
    description: str


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        name="Revoke expired API tokens",
        task="mdm_portal.core.tasks.api_tokens_revoke_expired",
        every_seconds=60 * 60,
        description="Marks API tokens past their expiry date as revoked.",
    ),
    Schedule(
        name="Expire unanswered device commands",
        task="devices.tasks.commands_expire",
        every_seconds=10 * 60,
        description="Closes device commands that passed their deadline without an answer.",
    ),
    Schedule(
        name="Flag overdue device provisioning",
        task="devices.tasks.provisioning_overdue_sweep",
        every_seconds=5 * 60,
        description="Flags devices that did not apply their initial settings within their enrolment profile's "
        "time limit, and notifies or marks them noncompliant as the profile says.",
    ),
    Schedule(
        name="Reconcile configuration profiles",
        task="policies.tasks.profiles_reconcile",
        every_seconds=60 * 60,
        description="Re-targets every configuration profile: devices that joined or left a group, changed owner "
        "or OS since the last change receive or lose profiles.",
    ),
    Schedule(
        name="Reconcile app installs",
        task="apps.tasks.apps_reconcile",
        every_seconds=60 * 60,
        description="Re-targets every assigned app: devices that joined or left a group, changed owner or OS since "
        "the last change receive, update or lose apps; installs whose command expired are queued again.",
    ),
    Schedule(
        name="Evaluate fleet compliance",
        task="policies.tasks.compliance_sweep_task",
        every_seconds=60 * 60,
        description="Evaluates every enrolled device against its compliance policies in id batches: grace periods "
        "that ended, devices silent past the validity period, group and ownership changes; writes the day's "
        "compliance counts for the dashboard trend.",
    ),
    Schedule(
        name="Run noncompliance actions",
        task="policies.tasks.compliance_actions_task",
        # The Company Portal promises the employee's email "within 5 minutes" once it is due.
        every_seconds=5 * 60,
        description="Runs each compliance policy's schedule for devices failing it long enough: mark noncompliant, "
        "email the user, push a notification, lock, propose retirement to IT. Each action runs once per device.",
    ),
    Schedule(
        name="Flag offline retirements",
        task="retirement.tasks.retirement_timeouts_flag_task",
        every_seconds=60 * 60,
        description="Flags retire and wipe requests whose device has not answered within the offline timeout of "
        "the retirement settings, so IT can force the unenrolment or cancel.",
    ),
    Schedule(
        name="Run device cleanup rules",
        task="retirement.tasks.cleanup_rules_run_task",
        every_seconds=24 * 60 * 60,
        description="Runs each enabled cleanup rule: enrolled devices of its platform without a check-in for the "
        "rule's number of days are retired, or removed from management (retired by force, unverified).",
    ),
    Schedule(
        name="Relay the task outbox",
        task="mdm_portal.core.tasks.outbox_relay_task",
        every_seconds=60,
        description="Sends the background jobs that were asked for while the broker could not be reached "
        "(they wait in the database's outbox, nothing is lost).",
    ),
)
