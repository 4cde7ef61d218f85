"""Compliance rules as pure functions: merge several policies, evaluate one device, decide its state.

Nothing here touches the database. The services feed it plain values (``DeviceFacts`` built from a
``values()`` row), so the fleet sweep evaluates a hundred thousand devices in Python with a fixed
number of queries per batch, and the tests check every rule at its boundaries without a database.

A *policy* here is any object with the ``CompliancePolicy`` rule attributes and a ``pk``; a
*settings* object has ``validity_days`` and ``no_policy_compliant``.

What the employee reads about a rule (a plain sentence and the fix steps per platform) lives in
``policies.compliance_text`` and is re-exported here as ``RULE_TEXT``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devices.choices import ComplianceState, ProvisioningAction
from devices.versions import version_key

from .choices import PASSCODE_QUALITY_RANK, ComplianceRule, PasscodeQuality
from .compliance_text import RULE_TEXT, platform_family, rule_help

__all__ = [
    "ERROR_PREFIX",
    "RULE_TEXT",
    "DeviceFacts",
    "Failure",
    "MergedRules",
    "Outcome",
    "assess",
    "device_state",
    "evaluate",
    "merge_rules",
    "os_max_key",
    "platform_family",
    "rule_help",
]

Rule = ComplianceRule
# A stored failure whose rule could not be evaluated (the device did not report the fact, or
# reported something unreadable) keeps the reason in ``actual`` behind this prefix: the device is
# then in the ``error`` state, not failing.
ERROR_PREFIX = "cannot evaluate: "
BOOLEAN_RULES = (
    Rule.PASSCODE_REQUIRED,
    Rule.ENCRYPTION_REQUIRED,
    Rule.JAILBREAK_BLOCKED,
    Rule.PROVISIONING_ON_TIME,
)
MARKS_NONCOMPLIANT = frozenset({ProvisioningAction.MARK_NONCOMPLIANT, ProvisioningAction.NOTIFY_AND_MARK_NONCOMPLIANT})


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the rules read about one device. ``inventory_reported_at`` None: it never reported."""

    platform: str
    os_version: str = ""
    os_version_key: str = ""
    last_checkin_at: datetime | None = None
    enrolled_at: datetime | None = None
    provisioning_overdue_at: datetime | None = None
    provisioned_at: datetime | None = None
    # The enrolment profile marks a device that misses its provisioning deadline noncompliant.
    provisioning_marks_noncompliant: bool = False
    inventory_reported_at: datetime | None = None
    encrypted: bool | None = None
    passcode_set: bool | None = None
    passcode_quality: str = ""
    passcode_length: int | None = None
    jailbroken: bool | None = None
    installed_apps: frozenset[str] = frozenset()  # identifiers, case-folded
    apps_error: str = ""
    # Apps blocked on this device outside the policies (``policies.compliance_sources``).
    assigned_blocked_apps: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeviceFacts:
        """From a ``Device`` ``values()`` row joined to its inventory (``inventory__<column>`` keys)."""
        apps, apps_error = installed_app_ids(row.get("inventory__installed_apps"))
        return cls(
            platform=row["platform"],
            os_version=row.get("os_version") or "",
            os_version_key=row.get("os_version_key") or "",
            last_checkin_at=row.get("last_checkin_at"),
            enrolled_at=row.get("enrolled_at"),
            provisioning_overdue_at=row.get("provisioning_overdue_at"),
            provisioned_at=row.get("provisioned_at"),
            provisioning_marks_noncompliant=row.get("enrollment_profile__provisioning_action") in MARKS_NONCOMPLIANT,
            inventory_reported_at=row.get("inventory__reported_at"),
            encrypted=row.get("inventory__encrypted"),
            passcode_set=row.get("inventory__passcode_set"),
            passcode_quality=row.get("inventory__passcode_quality") or "",
            passcode_length=row.get("inventory__passcode_length"),
            jailbroken=row.get("inventory__jailbroken"),
            installed_apps=apps,
            apps_error=apps_error,
            assigned_blocked_apps=tuple(row.get("assigned_blocked_apps") or ()),
        )

    @property
    def provisioning_overdue(self) -> bool:
        # A device provisioned late keeps its overdue flag but has done what it had to.
        return self.provisioning_overdue_at is not None and self.provisioned_at is None


def installed_app_ids(value: Any) -> tuple[frozenset[str], str]:
    """The identifiers of an inventory's ``installed_apps`` and, if it is malformed, why."""
    if value is None:
        return frozenset(), ""
    if not isinstance(value, list):
        return frozenset(), "the list of installed apps is not a list"
    ids = set()
    for app in value:
        identifier = app.get("identifier") if isinstance(app, dict) else None
        if not isinstance(identifier, str):
            return frozenset(), "the list of installed apps has an entry without an identifier"
        ids.add(identifier.casefold())
    return frozenset(ids), ""


@dataclass(frozen=True, slots=True)
class Failure:
    """One rule one device fails (or, with ``error``, could not be evaluated), attributed to ``policy``.

    ``policy`` is None for the organisation-wide rules (validity period, no policy, an enrolment
    profile's provisioning deadline).
    """

    rule: str
    policy: Any
    expected: str
    actual: str
    error: str = ""

    @property
    def policy_id(self) -> int | None:
        return getattr(self.policy, "pk", None)

    @property
    def key(self) -> tuple[int | None, str]:
        return (self.policy_id, self.rule)

    @property
    def stored_actual(self) -> str:
        return (ERROR_PREFIX + self.error if self.error else self.actual)[:255]


class MergedRules(dict):
    """``{rule: (value, policy)}`` plus ``policies``: every policy that applies, even one without rules.

    ``BLOCKED_APPS`` maps to ``({identifier_casefold: (identifier, policy)}, first policy)``.
    """

    policies: tuple = ()


def os_max_key(value: str) -> str:
    """The highest key an "at most ``value``" rule admits: every release of the given version.

    "17" admits 17.4.1 (like the device-group rule "OS version at most"); "17.4" admits 17.4.1
    but not 17.5.
    """
    key = version_key(value)
    if not key:
        return ""
    parts = key.split(".")
    given = min(len(re.findall(r"\d+", value)), len(parts))
    return ".".join(parts[:given] + ["999999"] * (len(parts) - given))


def merge_rules(policies: Iterable[Any]) -> MergedRules:
    """The most restrictive value of each rule across ``policies``, with the policy it came from.

    Highest minimum OS, lowest maximum OS, longest minimum passcode length, strongest minimum
    quality, any "required" wins, fewest days since check-in, the union of blocked apps (each
    attributed to the first policy that blocks it). On a tie the first policy keeps the rule.
    """
    merged = MergedRules()
    policies = list(policies)
    merged.policies = tuple(policies)
    better = {
        Rule.OS_MIN: lambda new, old: version_key(new) > version_key(old),
        Rule.OS_MAX: lambda new, old: os_max_key(new) < os_max_key(old),
        Rule.PASSCODE_MIN_LENGTH: lambda new, old: new > old,
        Rule.PASSCODE_MIN_QUALITY: lambda new, old: PASSCODE_QUALITY_RANK[new] > PASSCODE_QUALITY_RANK[old],
        Rule.CHECKIN_MAX_DAYS: lambda new, old: new < old,
    }
    blocked: dict[str, tuple[str, Any]] = {}
    for policy in policies:
        for rule, is_better in better.items():
            value = getattr(policy, rule)
            if value in (None, ""):
                continue
            if rule in (Rule.OS_MIN, Rule.OS_MAX) and not version_key(value):
                continue  # validated on save; an unreadable stored value is not a rule
            if rule == Rule.PASSCODE_MIN_QUALITY and value not in PASSCODE_QUALITY_RANK:
                continue
            if rule not in merged or is_better(value, merged[rule][0]):
                merged[rule] = (value, policy)
        for rule in BOOLEAN_RULES:
            if getattr(policy, rule) and rule not in merged:
                merged[rule] = (True, policy)
        for identifier in getattr(policy, "blocked_apps", None) or []:
            blocked.setdefault(str(identifier).casefold(), (str(identifier), policy))
    if blocked:
        merged[Rule.BLOCKED_APPS] = (blocked, next(iter(blocked.values()))[1])
    return merged


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def _quality_label(value: str) -> str:
    return PasscodeQuality(value).label.split(" (")[0].lower() if value in PasscodeQuality.values else value


def evaluate(facts: DeviceFacts, merged: Mapping, now: datetime, settings: Any) -> list[Failure]:
    """Every rule ``facts`` fails under ``merged`` (and the organisation-wide ones under ``settings``,
    and apps blocked by an app assignment: ``facts.assigned_blocked_apps``).

    A rule whose fact the device did not report (or reported unreadably) is a ``Failure`` with
    ``error`` set. A device that never reported an inventory is checked only against the
    organisation-wide rules.
    """
    failures: list[Failure] = []
    seen = facts.last_checkin_at or facts.enrolled_at
    if settings is not None and seen is not None and now - seen > timedelta(days=settings.validity_days):
        failures.append(
            Failure(
                Rule.VALIDITY,
                None,
                f"a check-in within {settings.validity_days} days",
                f"last check-in {_days(now - seen)} days ago",
            )
        )
    if facts.provisioning_marks_noncompliant and facts.provisioning_overdue:
        failures.append(Failure(Rule.PROVISIONING_ON_TIME, None, "setup finished on time", "setup overdue"))
    if facts.inventory_reported_at is None:
        return failures
    failures.extend(_assigned_blocked(facts))
    policies = getattr(merged, "policies", None)
    if not (policies if policies is not None else merged):
        if settings is not None and not settings.no_policy_compliant:
            failures.append(Failure(Rule.NO_POLICY, None, "a compliance policy", "none applies"))
        return failures
    for rule, (value, policy) in merged.items():
        failures.extend(_check(rule, value, policy, facts, now))
    return failures


def _check(rule: str, value: Any, policy: Any, facts: DeviceFacts, now: datetime) -> list[Failure]:
    def fail(expected: str, actual: str) -> list[Failure]:
        return [Failure(rule, policy, expected, actual)]

    def error(expected: str, reason: str) -> list[Failure]:
        return [Failure(rule, policy, expected, "", error=reason)]

    if rule in (Rule.OS_MIN, Rule.OS_MAX):
        expected = f"{value} or {'later' if rule == Rule.OS_MIN else 'earlier'}"
        if not facts.os_version_key:
            shown = f"'{facts.os_version}'" if facts.os_version else "no OS version"
            return error(expected, f"the device reported {shown}, which is not a version number")
        if rule == Rule.OS_MIN and facts.os_version_key < version_key(value):
            return fail(expected, facts.os_version)
        if rule == Rule.OS_MAX and facts.os_version_key > os_max_key(value):
            return fail(expected, facts.os_version)
        return []
    if rule == Rule.PASSCODE_REQUIRED:
        if facts.passcode_set is None:
            return error("a passcode", "the device did not report whether a passcode is set")
        return [] if facts.passcode_set else fail("a passcode", "no passcode")
    if rule == Rule.PASSCODE_MIN_LENGTH:
        expected = f"at least {value} characters"
        if facts.passcode_set is False:
            return fail(expected, "no passcode")
        if facts.passcode_length is None:
            return error(expected, "the device did not report its passcode length")
        return fail(expected, f"{facts.passcode_length} characters") if facts.passcode_length < value else []
    if rule == Rule.PASSCODE_MIN_QUALITY:
        expected = f"{_quality_label(value)} or stronger"
        if facts.passcode_set is False:
            return fail(expected, "no passcode")
        reported = facts.passcode_quality
        if not reported:
            return error(expected, "the device did not report its passcode quality")
        if reported not in PASSCODE_QUALITY_RANK:
            return error(expected, f"the device reported '{reported}', which is not a passcode quality")
        if PASSCODE_QUALITY_RANK[reported] < PASSCODE_QUALITY_RANK[value]:
            return fail(expected, "no passcode" if reported == "none" else _quality_label(reported))
        return []
    if rule == Rule.ENCRYPTION_REQUIRED:
        if facts.encrypted is None:
            return error("encrypted", "the device did not report whether its storage is encrypted")
        return [] if facts.encrypted else fail("encrypted", "not encrypted")
    if rule == Rule.JAILBREAK_BLOCKED:
        if facts.jailbroken is None:
            return error("not jailbroken or rooted", "the device did not report whether it is jailbroken or rooted")
        return fail("not jailbroken or rooted", "jailbroken or rooted") if facts.jailbroken else []
    if rule == Rule.CHECKIN_MAX_DAYS:
        seen = facts.last_checkin_at or facts.enrolled_at
        expected = f"a check-in within {value} days"
        if seen is None:
            return fail(expected, "never checked in")
        return (
            fail(expected, f"last check-in {_days(now - seen)} days ago") if now - seen > timedelta(days=value) else []
        )
    if rule == Rule.BLOCKED_APPS:
        if facts.apps_error:
            return error("no blocked apps", facts.apps_error)
        found: dict[int, tuple[Any, list[str]]] = {}
        for folded, (identifier, owner) in value.items():
            if folded in facts.installed_apps:
                found.setdefault(id(owner), (owner, []))[1].append(identifier)
        return [
            Failure(rule, owner, "none of: " + ", ".join(_blocked_of(value, owner)), ", ".join(sorted(apps)))
            for owner, apps in found.values()
        ]
    if rule == Rule.PROVISIONING_ON_TIME:
        return fail("setup finished on time", "setup overdue") if facts.provisioning_overdue else []
    return []


def _assigned_blocked(facts: DeviceFacts) -> list[Failure]:
    """Apps blocked by an app assignment: an organisation-wide failure (no policy, no grace period)."""
    if not facts.assigned_blocked_apps:
        return []
    if facts.apps_error:
        return [Failure(Rule.BLOCKED_APPS, None, "no blocked apps", "", error=facts.apps_error)]
    blocked = sorted(set(facts.assigned_blocked_apps), key=str.casefold)
    found = [identifier for identifier in blocked if identifier.casefold() in facts.installed_apps]
    if not found:
        return []
    return [Failure(Rule.BLOCKED_APPS, None, "none of: " + ", ".join(blocked), ", ".join(found))]


def _blocked_of(value: Mapping, owner: Any) -> list[str]:
    return sorted(identifier for identifier, policy in value.values() if policy is owner)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A device's compliance state, why it is in error, and when its grace period ends."""

    state: str
    reason: str = ""
    grace_ends_at: datetime | None = None


def device_state(
    facts: DeviceFacts,
    failures: Iterable[tuple[Failure, datetime]],
    grace_days: Mapping[int, int],
    now: datetime,
) -> Outcome:
    """The state of a device given its failures and since when each one holds.

    An organisation-wide failure (validity period, no policy, provisioning deadline of its
    enrolment profile) makes it noncompliant at once. Else a device that never reported an
    inventory is not evaluated. A device failing policy P for at least P's grace days
    (``grace_days[P.pk]``, the ``mark_noncompliant`` action's ``days_after``, 0 when P has none)
    is noncompliant; one that could not be evaluated is in error; one failing only within grace
    is in grace; else compliant.
    """
    failures = list(failures)
    errors = [failure.error for failure, _ in failures if failure.error]
    failing: dict[int, datetime] = {}
    for failure, since in failures:
        if failure.error:
            continue
        if failure.policy is None:
            return Outcome(ComplianceState.NONCOMPLIANT)
        pk = failure.policy_id
        failing[pk] = min(since, failing.get(pk, since))
    if facts.inventory_reported_at is None:
        return Outcome(ComplianceState.NOT_EVALUATED)
    ends = [since + timedelta(days=grace_days.get(pk, 0)) for pk, since in failing.items()]
    if any(now >= end for end in ends):
        return Outcome(ComplianceState.NONCOMPLIANT)
    if errors:
        return Outcome(ComplianceState.ERROR, reason="; ".join(sorted(set(errors))))
    if ends:
        return Outcome(ComplianceState.IN_GRACE, grace_ends_at=min(ends))
    return Outcome(ComplianceState.COMPLIANT)


def assess(
    facts: DeviceFacts,
    merged: Mapping,
    now: datetime,
    settings: Any,
    grace_days: Mapping[int, int],
    known: Mapping[tuple[int | None, str], tuple[datetime, bool]] | None = None,
) -> tuple[list[tuple[Failure, datetime]], Outcome]:
    """Evaluate and decide the state. ``known``: ``{(policy id, rule): (since, was an error)}`` stored.

    A rule failing before keeps its ``since`` (unless it turned from "cannot evaluate" into a real
    failure or back); a new one starts ``now``.
    """
    known = known or {}
    dated = []
    for failure in evaluate(facts, merged, now, settings):
        since, was_error = known.get(failure.key, (now, bool(failure.error)))
        dated.append((failure, since if was_error == bool(failure.error) else now))
    return dated, device_state(facts, dated, grace_days, now)
