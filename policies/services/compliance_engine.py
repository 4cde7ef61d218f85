"""The compliance engine: policies, settings and the SQL matching them, loaded once per run.

``Engine.rows`` reads a batch of devices in ONE query (their inventory, which policy targets each
as a ``CASE`` per policy, whether a ``compliance_sources`` source blocks apps on it, and on the
one-device path the organisation settings as subqueries);
``Engine.plan`` evaluates them in Python against their stored failures (``policies.compliance``)
and returns only what changed; ``Plan.write_failures`` and ``compliance_states_write`` write it
set-based. The services in ``policies.services.compliance`` drive it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import BooleanField, Case, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from devices.models import Device, DeviceInventory
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import AuditEvent

from ..choices import AssignmentMode, NoncomplianceActionType
from ..compliance import ERROR_PREFIX, DeviceFacts, MergedRules, Outcome, assess, merge_rules
from ..compliance_sources import blocked_apps_sources
from ..models import (
    ComplianceActionRun,
    ComplianceFailure,
    CompliancePolicy,
    ComplianceSettings,
    NoncomplianceAction,
    PolicyAssignment,
)
from ..targeting import assignments_q

DEVICE_FIELDS = (
    "pk",
    "scope_id",
    "platform",
    "os_version",
    "os_version_key",
    "last_checkin_at",
    "enrolled_at",
    "provisioning_overdue_at",
    "provisioned_at",
    "compliance_state",
    "enrollment_profile__provisioning_action",
    "inventory__reported_at",
    "inventory__encrypted",
    "inventory__passcode_set",
    "inventory__passcode_quality",
    "inventory__passcode_length",
    "inventory__jailbroken",
)
SETTINGS_FIELDS = ("no_policy_compliant", "validity_days")


def grace_days(policy: CompliancePolicy) -> int:
    """Days a device may fail ``policy`` before it is noncompliant: its mark action's (0 without one)."""
    days = [a.days_after for a in policy.actions.all() if a.action == NoncomplianceActionType.MARK_NONCOMPLIANT]
    return min(days) if days else 0


def policies_loaded(queryset: QuerySet[CompliancePolicy] | None = None) -> list[CompliancePolicy]:
    """Policies with their assignments (and device groups): two queries whatever the number of policies."""
    queryset = CompliancePolicy.objects.all() if queryset is None else queryset
    assignments = Prefetch("assignments", queryset=PolicyAssignment.objects.select_related("device_group"))
    return list(queryset.prefetch_related(assignments).order_by("pk"))


def device_policy_candidates(device: Device) -> QuerySet[CompliancePolicy]:
    """The policies that could apply to ``device``: its platform, its scope's or organisation-wide."""
    scoped = Q(scope__isnull=True) | Q(scope_id=device.scope_id)
    return CompliancePolicy.objects.filter(scoped, platform=device.platform)


def _policy_q(policy: CompliancePolicy) -> Q | None:
    assignments = list(policy.assignments.all())
    if not any(a.mode == AssignmentMode.INCLUDE for a in assignments):
        return None
    q = Q(platform=policy.platform) & assignments_q(assignments)
    return q & Q(scope_id=policy.scope_id) if policy.scope_id is not None else q


class GraceDays(Mapping):
    """``{policy id: grace days}``, read in one query the first time a device fails something."""

    def __init__(self, policy_ids: Iterable[int]):
        self.policy_ids = list(policy_ids)
        self._days: dict[int, int] | None = None

    def _load(self) -> dict[int, int]:
        if self._days is None:
            self._days = {}
            marks = NoncomplianceAction.objects.filter(
                policy_id__in=self.policy_ids, action=NoncomplianceActionType.MARK_NONCOMPLIANT
            ).values_list("policy_id", "days_after")
            for policy_id, days in marks:
                self._days[policy_id] = min(days, self._days.get(policy_id, days))
        return self._days

    def __getitem__(self, key: int) -> int:
        return self._load().get(key, 0)

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _settings_inline() -> dict[str, Subquery]:
    """The organisation settings as two columns of the device query: no query of their own."""
    row = ComplianceSettings.objects.filter(pk=1)
    return {
        "settings__validity_days": Subquery(row.values("validity_days")[:1]),
        "settings__no_policy_compliant": Subquery(row.values("no_policy_compliant")[:1]),
    }


def _settings_of(row: dict[str, Any]) -> SimpleNamespace:
    defaults = {f.name: f.default for f in ComplianceSettings._meta.fields if f.name in SETTINGS_FIELDS}
    return SimpleNamespace(
        **{
            name: default if row[f"settings__{name}"] is None else row[f"settings__{name}"]
            for name, default in defaults.items()
        }
    )


@dataclass
class Plan:
    """What evaluating a set of devices changes: failures to insert and delete, devices fixed, states."""

    create: list[ComplianceFailure] = field(default_factory=list)
    delete: list[int] = field(default_factory=list)
    fixed_devices: list[int] = field(default_factory=list)
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)

    @property
    def writes(self) -> bool:
        return bool(self.create or self.delete or any(a != b for a, b in self.outcomes.values()))

    def write_failures(self) -> None:
        if self.delete:
            ComplianceFailure.objects.filter(pk__in=self.delete).delete()
        if self.create:
            # A concurrent evaluation of the same device may have written the same failure.
            ComplianceFailure.objects.bulk_create(self.create, ignore_conflicts=True)
        if self.fixed_devices:
            _runs_clear(self.fixed_devices)


class Engine:
    """What one evaluation run holds once: policies, grace periods, settings and the SQL matching them.

    Per batch it reads the devices (their inventory and which policy targets each, in ONE query)
    and, unless told the batch holds no failure rows, their stored failures; then it writes only
    what changed. ``settings`` None: read with each device row (the one-device path).
    """

    def __init__(self, policies: Iterable[CompliancePolicy], *, now: datetime | None = None, settings=None):
        self.now = now or timezone.now()
        self.settings = settings
        self.policies = {policy.pk: policy for policy in policies}
        self.grace = GraceDays(self.policies)
        self.annotations: dict[str, Any] = {} if settings is not None else _settings_inline()
        for pk, policy in self.policies.items():
            q = _policy_q(policy)
            if q is not None:
                matched = Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())
                self.annotations[f"m{pk}"] = matched
        self.matchers = [key for key in self.annotations if key.startswith("m")]
        # Apps blocked outside the policies (app assignments): a flag per source in the device query.
        self.sources = blocked_apps_sources()
        for index, source in enumerate(self.sources):
            self.annotations[f"xblocked{index}"] = source.flag()
        fields = list(DEVICE_FIELDS)
        if any(policy.blocked_apps for policy in self.policies.values()):
            fields.append("inventory__installed_apps")
        self.fields = tuple(fields)
        self._merged: dict[frozenset[int], MergedRules] = {}

    def rows(self, devices: QuerySet[Device], limit: int | None = None) -> list[dict[str, Any]]:
        rows = devices.values(*self.fields, **self.annotations)
        return list(rows[:limit] if limit is not None else rows)

    def merged(self, row: dict[str, Any]) -> MergedRules:
        ids = frozenset(int(key[1:]) for key in self.matchers if row.get(key))
        if ids not in self._merged:
            self._merged[ids] = merge_rules(self.policies[pk] for pk in sorted(ids))
        return self._merged[ids]

    def plan(self, rows: list[dict[str, Any]], *, read_failures: bool = True) -> Plan:
        """Evaluate ``rows`` against what is stored; ``outcomes`` holds (old state, new state) for every row."""
        stored: dict[int, dict[tuple[int | None, str], tuple]] = defaultdict(dict)
        if read_failures and rows:
            ids = sorted(row["pk"] for row in rows)
            failures = ComplianceFailure.objects.filter(device_id__in=ids)
            if ids[-1] - ids[0] < 2 * len(ids):
                # A dense batch (the sweep's): an id range, not 2,000 parameters; other devices' rows are ignored.
                failures = ComplianceFailure.objects.filter(device_id__gte=ids[0], device_id__lte=ids[-1])
            for pk, device_id, policy_id, rule, expected, actual, since in failures.values_list(
                "pk", "device_id", "policy_id", "rule", "expected", "actual", "since"
            ):
                stored[device_id][(policy_id, rule)] = (pk, expected, actual, since)
        extra = self.assigned_blocked(rows)
        plan = Plan()
        for row in rows:
            if row["pk"] in extra:
                row = {**row, **extra[row["pk"]]}
            known = stored.get(row["pk"], {})
            dated, outcome = self.assess(row, known)
            fresh = set()
            for failure, since in dated:
                fresh.add(failure.key)
                expected, actual = failure.expected[:255], failure.stored_actual
                old = known.get(failure.key)
                if old is not None and (old[1], old[2], old[3]) == (expected, actual, since):
                    continue
                if old is not None:
                    plan.delete.append(old[0])
                plan.create.append(
                    ComplianceFailure(
                        device_id=row["pk"],
                        policy_id=failure.policy_id,
                        rule=failure.rule,
                        expected=expected,
                        actual=actual,
                        since=since,
                    )
                )
            gone = [old[0] for key, old in known.items() if key not in fresh]
            if gone:
                plan.delete += gone
                plan.fixed_devices.append(row["pk"])
            plan.outcomes[row["pk"]] = (row["compliance_state"], outcome.state)
        return plan

    def assigned_blocked(self, rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """``{device id: row additions}`` for the devices a registered source blocks apps on.

        One query per source that flagged a device of the batch, plus one read of those devices'
        installed apps when no policy made the device query read them already; nothing otherwise.
        """
        found: dict[int, list[str]] = defaultdict(list)
        for index, source in enumerate(self.sources):
            flagged = [row["pk"] for row in rows if row.get(f"xblocked{index}")]
            if flagged:
                for device_id, identifiers in source.identifiers(flagged).items():
                    found[device_id].extend(identifiers)
        extra: dict[int, dict[str, Any]] = {
            pk: {"assigned_blocked_apps": tuple(ids)} for pk, ids in found.items() if ids
        }
        if extra and "inventory__installed_apps" not in self.fields:
            inventories = DeviceInventory.objects.filter(device_id__in=list(extra))
            for device_id, apps in inventories.values_list("device_id", "installed_apps"):
                extra[device_id]["inventory__installed_apps"] = apps
        return extra

    def apply(self, rows: list[dict[str, Any]], *, read_failures: bool = True) -> dict[int, tuple[str, str]]:
        """Evaluate ``rows`` and write their failures (the caller writes the states)."""
        plan = self.plan(rows, read_failures=read_failures)
        plan.write_failures()
        return plan.outcomes

    def assess(self, row: dict[str, Any], known: dict) -> tuple[list, Outcome]:
        facts = DeviceFacts.from_row(row)
        return assess(
            facts,
            self.merged(row),
            self.now,
            self.settings if self.settings is not None else _settings_of(row),
            self.grace,
            {key: (old[3], old[2].startswith(ERROR_PREFIX)) for key, old in known.items()},
        )


def _runs_clear(device_ids: list[int]) -> None:
    """Forget the actions done for a policy on devices that no longer fail it: a new spell starts afresh."""
    failing = ComplianceFailure.objects.filter(device_id=OuterRef("device_id"), policy_id=OuterRef("action__policy_id"))
    ComplianceActionRun.objects.filter(device_id__in=device_ids).exclude(Exists(failing)).delete()


def compliance_states_write(*, actor: Actor, outcomes: dict[int, tuple[str, str]], scopes: dict[int, int], now) -> int:
    """One UPDATE per new state, one audit event per scope with the counts. Returns devices changed."""
    changed = {pk: pair for pk, pair in outcomes.items() if pair[0] != pair[1]}
    if not changed:
        return 0
    by_state: dict[str, list[int]] = defaultdict(list)
    for pk, (_before, after) in changed.items():
        by_state[after].append(pk)
    for state, ids in by_state.items():
        Device.objects.filter(pk__in=ids).update(compliance_state=state, updated_at=now)
    per_scope: dict[int, dict[str, Any]] = defaultdict(lambda: {"transitions": Counter(), "devices": defaultdict(list)})
    for pk, (before, after) in changed.items():
        entry = per_scope[scopes[pk]]
        entry["transitions"][f"{before} -> {after}"] += 1
        entry["devices"][after].append(pk)
    content_type = ContentType.objects.get_for_model(Device)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_type=actor.type,
            actor_user=actor.user,
            actor_label=actor.label[:255],
            verb="device.compliance_change",
            target_type=content_type,
            target_id="",
            target_repr=f"{sum(entry['transitions'].values())} device(s)",
            scope_id=scope_id,
            changes={
                "count": sum(entry["transitions"].values()),
                "transitions": dict(entry["transitions"]),
                "devices": {state: sorted(ids) for state, ids in entry["devices"].items()},
            },
            source_ip=None,
        )
        for scope_id, entry in per_scope.items()
    )
    return len(changed)
