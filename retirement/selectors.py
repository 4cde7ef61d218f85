"""Reads for retire and wipe requests, verification evidence, cleanup rules and offboarding, restricted
by ``core.authz``.

The bulk preview and the retirement report count in SQL (one GROUP BY or one conditional aggregate
each), so what they cost does not grow with the fleet or the number of rows they describe.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from devices.choices import LifecycleState, Ownership, Platform
from devices.models import Device
from mdm_portal.core import authz

from .choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from .models import RetirementRequest, RetirementSettings

VIEW_REQUEST = "retirement.view_retirementrequest"
VIEW_DEVICE = "devices.view_device"

# Bulk requests ------------------------------------------------------------------------------------------

# Why a device of a bulk request gets no request: short, without the device's name, so they group.
SKIP_NOT_PERMITTED = "outside the scopes where you may {label} devices"
SKIP_NOT_ENROLLED = "not enrolled (pending, already retiring or retired)"
SKIP_OPEN_REQUEST = "already has an open retirement request"
SKIP_LINUX_WIPE = "Linux, full wipe not available (retire it instead)"
SKIP_PERSONAL_WIPE = "personal device, full wipe not allowed by the retirement settings"

ACTION_LABELS = {RetirementAction.RETIRE: "retire", RetirementAction.WIPE: "full wipe"}


def bulk_skip_reason(
    *,
    action: str,
    platform: str,
    ownership: str,
    lifecycle_state: str,
    has_open_request: bool,
    allow_personal_wipe: bool,
) -> str | None:
    """Why a device the person may act on cannot get ``action`` in a bulk request, or None when it can.

    The same rules as ``retirement_request`` (which still checks every device itself), on the fields
    a GROUP BY can count.
    """
    if has_open_request:
        return SKIP_OPEN_REQUEST
    if lifecycle_state != LifecycleState.ENROLLED:
        return SKIP_NOT_ENROLLED
    if action == RetirementAction.WIPE:
        if platform == Platform.LINUX:
            return SKIP_LINUX_WIPE
        if ownership == Ownership.PERSONAL and not allow_personal_wipe:
            return SKIP_PERSONAL_WIPE
    return None


def open_request_exists() -> Exists:
    return Exists(RetirementRequest.objects.filter(device=OuterRef("pk"), status__in=OPEN_STATUSES))


@dataclass
class BulkRetirementPreview:
    """What a bulk retire or wipe would do, counted in SQL."""

    action: str
    selected: int
    permitted: int
    eligible: int
    skipped: list[tuple[str, int]] = field(default_factory=list)

    @property
    def not_permitted(self) -> int:
        return self.selected - self.permitted

    @property
    def skipped_count(self) -> int:
        return sum(count for _, count in self.skipped)


def retirement_bulk_preview(*, user, action: str, selected: QuerySet[Device]) -> BulkRetirementPreview:
    """Count the selection, the devices ``user`` may ``action``, and which of those are eligible.

    Three queries whatever the selection's size: the selection's count, the settings, and one GROUP BY
    of the permitted devices by the fields the eligibility rules read.
    """
    from .services.requests import device_permission

    permitted = authz.restrict(selected, user, device_permission(action))
    allow_personal_wipe = RetirementSettings.load().allow_personal_full_wipe
    rows = (
        permitted.order_by()
        .annotate(has_open_request=open_request_exists())
        .values("platform", "ownership", "lifecycle_state", "has_open_request")
        .annotate(devices=Count("pk"))
    )
    permitted_count = eligible = 0
    reasons: dict[str, int] = {}
    for row in rows:
        count = row.pop("devices")
        permitted_count += count
        reason = bulk_skip_reason(action=action, allow_personal_wipe=allow_personal_wipe, **row)
        if reason is None:
            eligible += count
        else:
            reasons[reason] = reasons.get(reason, 0) + count
    return BulkRetirementPreview(
        action=action,
        selected=selected.order_by().count(),
        permitted=permitted_count,
        eligible=eligible,
        skipped=sorted(reasons.items(), key=lambda item: (-item[1], item[0])),
    )


# Where a request of a bulk request stands; the progress bar counts the finished ones.
FINISHED_STATUSES = (
    RetirementStatus.UNENROLLED,
    RetirementStatus.FORCED,
    RetirementStatus.FAILED,
    RetirementStatus.CANCELLED,
)


@dataclass
class BatchProgress:
    batch: uuid.UUID
    counts: dict[str, int]
    action: str = ""
    requested_by: str = ""
    started_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts[s] for s in FINISHED_STATUSES)

    @property
    def still_open(self) -> int:
        return sum(self.counts[s] for s in OPEN_STATUSES)

    @property
    def percent(self) -> int:
        return round(100 * self.finished / self.total) if self.total else 0


def retirement_batch_progress(*, user, batch: uuid.UUID) -> BatchProgress:
    """The requests of one bulk request that ``user`` may see, counted by status. One query."""
    rows = list(
        authz.restrict(RetirementRequest.objects.filter(batch=batch), user, VIEW_REQUEST)
        .order_by()
        .values("status", "action", "requested_by_label")
        .annotate(n=Count("pk"), first=Min("requested_at"))
    )
    counts = {status: 0 for status in RetirementStatus.values}
    for row in rows:
        counts[row["status"]] += row["n"]
    first = min(rows, key=lambda r: r["first"]) if rows else None
    return BatchProgress(
        batch=batch,
        counts=counts,
        action=first["action"] if first else "",
        requested_by=first["requested_by_label"] if first else "",
        started_at=first["first"] if first else None,
    )


# The retirement report ----------------------------------------------------------------------------------

REPORT_WINDOWS = (30, 90)
STALE_DAYS = (30, 60, 90, 180)
OVERDUE_SHOWN = 50


def retirement_request_list(*, user) -> QuerySet[RetirementRequest]:
    """The retirement requests ``user`` may see."""
    return authz.restrict(RetirementRequest.objects.all(), user, VIEW_REQUEST)


def _windowed_counts(requests: QuerySet[RetirementRequest], by: str, now: datetime) -> dict[str, dict[str, int]]:
    windows = {
        f"last_{days}_days": Count("pk", filter=Q(requested_at__gte=now - timedelta(days=days)))
        for days in REPORT_WINDOWS
    }
    rows = requests.order_by().values(by).annotate(all_time=Count("pk"), **windows)
    return {row.pop(by): row for row in rows}


@dataclass(frozen=True)
class CountRow:
    value: str
    label: str
    last_30_days: int
    last_90_days: int
    all_time: int


def retirement_counts_by(*, user, by: str, now: datetime | None = None) -> list[CountRow]:
    """Requests ``user`` may see per status (``by="status"``) or source, in the last 30 and 90 days and
    all time; every choice listed, zeros included. One query."""
    choices = {"status": RetirementStatus.choices, "source": RetirementSource.choices}[by]
    found = _windowed_counts(retirement_request_list(user=user), by, now or timezone.now())
    empty = {"last_30_days": 0, "last_90_days": 0, "all_time": 0}
    return [CountRow(value, label, **found.get(value, empty)) for value, label in choices]


def overdue_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=RetirementSettings.load().offline_timeout_days)


def retirement_overdue_list(*, user, now: datetime | None = None) -> QuerySet[RetirementRequest]:
    """Open requests ``user`` may see, asked for longer ago than the offline timeout; oldest first."""
    return (
        retirement_request_list(user=user)
        .filter(status__in=OPEN_STATUSES, requested_at__lt=overdue_cutoff(now))
        .select_related("scope")
        .order_by("requested_at", "pk")
    )


def retirement_recent_finished(*, user, limit: int = 10) -> list[RetirementRequest]:
    """The last requests that ended in an unenrolment, for their proof of removal."""
    return list(
        retirement_request_list(user=user)
        .filter(status__in=[RetirementStatus.UNENROLLED, RetirementStatus.FORCED])
        .order_by("-finished_at", "-pk")[:limit]
    )


def stale_cutoffs(now: datetime) -> dict[int, datetime]:
    # To the minute: the device list's links then read the same for a minute and stay cacheable.
    start = now.replace(second=0, microsecond=0)
    return {days: start - timedelta(days=days) for days in STALE_DAYS}


def stale_device_list(*, user) -> QuerySet[Device]:
    """Enrolled devices ``user`` may see (stale or not: the buckets and the CSV narrow them)."""
    return authz.restrict(Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED), user, VIEW_DEVICE)


def stale_device_buckets(*, user, now: datetime | None = None) -> tuple[dict[int, datetime], list[dict]]:
    """Enrolled devices ``user`` may see without a check-in for 30, 60, 90 and 180 days or more
    (each bucket counts every device at least that long silent), and never checked in; per platform,
    with a total row. One query."""
    cutoffs = stale_cutoffs(now or timezone.now())
    buckets = {f"days_{days}": Count("pk", filter=Q(last_checkin_at__lt=cutoff)) for days, cutoff in cutoffs.items()}
    rows = {
        row.pop("platform"): row
        for row in stale_device_list(user=user)
        .order_by()
        .values("platform")
        .annotate(never=Count("pk", filter=Q(last_checkin_at__isnull=True)), **buckets)
    }
    empty = {**{key: 0 for key in buckets}, "never": 0}
    table = [{"platform": value, "label": label, **rows.get(value, empty)} for value, label in Platform.choices]
    total = {"platform": "", "label": "All platforms", **{key: sum(r[key] for r in table) for key in empty}}
    return cutoffs, [*table, total]


def stale_device_rows(*, user, now: datetime | None = None) -> Iterator[Device]:
    """Every enrolled device ``user`` may see silent for 30 days or more, or never checked in; the
    longest silent first. Read in chunks (for the CSV)."""
    cutoff = stale_cutoffs(now or timezone.now())[STALE_DAYS[0]]
    devices = (
        stale_device_list(user=user)
        .filter(Q(last_checkin_at__lt=cutoff) | Q(last_checkin_at__isnull=True))
        .select_related("scope", "primary_user")
        .order_by(F("last_checkin_at").asc(nulls_first=True), "pk")
    )
    return devices.iterator(chunk_size=2000)
