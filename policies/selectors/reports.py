"""The compliance reports: what the dashboard, its CSV exports and the API's report routes show.

Every report counts only what the person asking may see: devices through ``authz.restrict`` with
``devices.view_device`` (failures and snapshots by their device's or their own scope, the same
rule), profile deliveries with ``policies.view_profiledelivery``. Every number is one aggregate
query over the fleet, never a loop over devices, so a report costs the same few queries at ten
devices and at a hundred thousand. The population is the enrolled devices: a pending device has
not been evaluated yet and a retiring or retired one no longer counts.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import reduce

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from devices.choices import ComplianceState, LifecycleState, Platform
from devices.models import Device
from mdm_portal.core import authz

from ..choices import ComplianceRule, DeliveryState
from ..compliance import ERROR_PREFIX
from ..models import ComplianceFailure, CompliancePolicy, ComplianceSnapshot, ProfileDelivery
from ..targeting import targeted_devices

VIEW_DEVICE = "devices.view_device"
VIEW_DELIVERY = "policies.view_profiledelivery"
TREND_DAYS = 60
# Worst first, the order of the dashboard's cards and of every report's columns.
STATES: tuple[str, ...] = (
    ComplianceState.NONCOMPLIANT,
    ComplianceState.IN_GRACE,
    ComplianceState.ERROR,
    ComplianceState.NOT_EVALUATED,
    ComplianceState.COMPLIANT,
)
DELIVERY_STATES: tuple[str, ...] = tuple(DeliveryState.values)
CANNOT_EVALUATE = Q(actual__startswith=ERROR_PREFIX)


def state_label(state: str) -> str:
    return ComplianceState(state).label if state in ComplianceState.values else state


def rule_label(rule: str) -> str:
    return ComplianceRule(rule).label if rule in ComplianceRule.values else rule


def report_devices(*, user) -> QuerySet[Device]:
    """The enrolled devices ``user`` may see: the population of every compliance report."""
    return authz.restrict(Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED), user, VIEW_DEVICE)


# Counts by state (and by platform) ------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformCounts:
    platform: str
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ComplianceSummary:
    """Devices per compliance state, overall and per platform; every state present, zeros included."""

    counts: dict[str, int]
    platforms: list[PlatformCounts] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def compliance_summary(*, user) -> ComplianceSummary:
    """One ``GROUP BY platform, compliance_state`` over the devices ``user`` may see."""
    rows = (
        report_devices(user=user)
        .order_by()
        .values("platform", "compliance_state")
        .annotate(n=Count("pk"))
        .values_list("platform", "compliance_state", "n")
    )
    counts = dict.fromkeys(STATES, 0)
    by_platform: dict[str, dict[str, int]] = {}
    for platform, state, n in rows:
        counts[state] = counts.get(state, 0) + n
        per = by_platform.setdefault(platform, dict.fromkeys(STATES, 0))
        per[state] = per.get(state, 0) + n
    labels = dict(Platform.choices)
    platforms = [
        PlatformCounts(platform=p, label=labels.get(p, p), counts=by_platform[p])
        for p in sorted(by_platform, key=lambda p: (list(labels).index(p) if p in labels else len(labels), p))
    ]
    return ComplianceSummary(counts=counts, platforms=platforms)


# Trend ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendDay:
    """One day of the trend. ``counts`` is None when no snapshot was taken that day: a gap, not zeros."""

    day: date
    counts: dict[str, int] | None

    @property
    def total(self) -> int | None:
        return None if self.counts is None else sum(self.counts.values())


def compliance_trend(*, user, days: int = TREND_DAYS, today: date | None = None) -> list[TrendDay]:
    """Devices per state on each of the last ``days`` days (today included), oldest first.

    Summed over the scopes whose devices ``user`` may see, from the daily snapshots the
    compliance sweep writes. One query.
    """
    today = today or timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        authz.restrict(ComplianceSnapshot.objects.all(), user, VIEW_DEVICE)
        .filter(day__gte=start, day__lte=today)
        .order_by()
        .values("day", "state")
        .annotate(n=Sum("count"))
        .values_list("day", "state", "n")
    )
    by_day: dict[date, dict[str, int]] = {}
    for day, state, n in rows:
        by_day.setdefault(day, dict.fromkeys(STATES, 0))[state] = n or 0
    return [TrendDay(day=start + timedelta(days=i), counts=by_day.get(start + timedelta(days=i))) for i in range(days)]


# Failing settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailingSetting:
    """One rule: how many devices fail it, how many of those are noncompliant now, how many could not
    be checked (the device did not report what the rule reads)."""

    rule: str
    label: str
    devices: int
    noncompliant: int
    cannot_evaluate: int


def failure_list(*, user) -> QuerySet[ComplianceFailure]:
    """The stored rule failures of the enrolled devices ``user`` may see."""
    return authz.restrict(ComplianceFailure.objects.all(), user, VIEW_DEVICE).filter(
        device__lifecycle_state=LifecycleState.ENROLLED
    )


def failing_settings(*, user) -> list[FailingSetting]:
    """Distinct devices per failing rule, most failed first. One ``GROUP BY rule``."""
    failing = ~CANNOT_EVALUATE
    rows = (
        failure_list(user=user)
        .order_by()
        .values("rule")
        .annotate(
            devices=Count("device", distinct=True, filter=failing),
            noncompliant=Count(
                "device", distinct=True, filter=failing & Q(device__compliance_state=ComplianceState.NONCOMPLIANT)
            ),
            cannot_evaluate=Count("device", distinct=True, filter=CANNOT_EVALUATE),
        )
    )
    settings = [
        FailingSetting(
            rule=row["rule"],
            label=rule_label(row["rule"]),
            devices=row["devices"],
            noncompliant=row["noncompliant"],
            cannot_evaluate=row["cannot_evaluate"],
        )
        for row in rows
    ]
    return sorted(settings, key=lambda s: (-s.devices, -s.cannot_evaluate, s.label))


def failing_rule_list(*, user, rule: str, cannot_evaluate: bool = False) -> QuerySet[ComplianceFailure]:
    """The devices failing ``rule`` (or, with ``cannot_evaluate``, where it could not be checked):
    one row per failure with its device, expected and actual values, by device name."""
    condition = CANNOT_EVALUATE if cannot_evaluate else ~CANNOT_EVALUATE
    return (
        failure_list(user=user)
        .filter(condition, rule=rule)
        .select_related("device", "device__scope", "device__primary_user", "policy")
        .order_by("device__name", "device_id", "policy_id")
    )


# Devices without a policy ---------------------------------------------------------------------------------


def devices_without_policy(*, user) -> QuerySet[Device]:
    """Enrolled devices ``user`` may see that no compliance policy targets, by name.

    The policies that could reach those devices (organisation-wide ones and those of the scopes
    ``user`` sees) are read once with their assignments; each becomes a ``targeted_devices``
    subquery, and their union is excluded in the database. Queries grow with the number of
    policies (and rule-based groups they target), never with the number of devices.
    """
    devices = report_devices(user=user)
    policies = CompliancePolicy.objects.prefetch_related("assignments__user_group", "assignments__device_group")
    if not authz.has_global(user, VIEW_DEVICE):
        policies = policies.filter(Q(scope__isnull=True) | Q(scope_id__in=sorted(authz.scope_ids(user, VIEW_DEVICE))))
    targeted = [Q(pk__in=targeted_devices(p, p.assignments.all()).values("pk")) for p in policies]
    if targeted:
        covered = Device.objects.filter(reduce(operator.or_, targeted)).values("pk")
        devices = devices.exclude(pk__in=covered)
    return devices.select_related("scope", "primary_user").order_by("name", "pk")


# Profile deliveries ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileDeliveryCounts:
    profile_id: int
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def profile_delivery_counts(*, user) -> list[ProfileDeliveryCounts]:
    """Deliveries per state for each profile, over the deliveries ``user`` may see. One ``GROUP BY``."""
    rows = (
        authz.restrict(ProfileDelivery.objects.all(), user, VIEW_DELIVERY)
        .order_by()
        .values("profile_id", "profile__name", "state")
        .annotate(n=Count("pk"))
    )
    profiles: dict[int, ProfileDeliveryCounts] = {}
    for row in rows:
        entry = profiles.get(row["profile_id"])
        if entry is None:
            entry = profiles[row["profile_id"]] = ProfileDeliveryCounts(
                profile_id=row["profile_id"], name=row["profile__name"], counts=dict.fromkeys(DELIVERY_STATES, 0)
            )
        entry.counts[row["state"]] = row["n"]
    return sorted(profiles.values(), key=lambda p: p.name.casefold())


def delivery_counts_by_profile(profile_ids: list[int]) -> dict[int, dict[str, int]]:
    """Deliveries per state of each of ``profile_ids`` (profiles the caller may already see): one query."""
    counts = {pk: dict.fromkeys(DELIVERY_STATES, 0) for pk in profile_ids}
    if not profile_ids:
        return counts
    rows = (
        ProfileDelivery.objects.filter(profile_id__in=profile_ids)
        .order_by()
        .values_list("profile_id", "state")
        .annotate(n=Count("pk"))
    )
    for profile_id, state, n in rows:
        counts[profile_id][state] = n
    return counts
