"""The compliance reports as CSV tables, streamed a line at a time: one definition for the admin
dashboard's exports and the API's ``?format=csv``.

A cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return: a device name is whatever the device reported) is written with a leading
apostrophe, so opening an export never executes anything.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.http import StreamingHttpResponse
from django.utils import timezone

from devices.models import Device

from .choices import ComplianceRule, DeliveryState
from .selectors import reports

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def csv_cell(value: Any) -> str | int:
    """One cell as text, made inert for spreadsheets."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return (
            timezone.localtime(value).isoformat(timespec="seconds") if timezone.is_aware(value) else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file-like object whose ``write`` returns the line, so ``csv.writer`` can feed a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


@dataclass(frozen=True)
class Table:
    """A report as CSV: its file name and its rows (the header first), produced as they are read."""

    name: str
    rows: Iterable[Sequence[Any]]

    @property
    def filename(self) -> str:
        return f"{self.name}-{timezone.localdate().isoformat()}.csv"


def csv_response(table: Table) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(table.rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{table.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# The tables ---------------------------------------------------------------------------------------------

STATE_COLUMNS = list(reports.STATES)
DEVICE_COLUMNS = ["device_id", "device", "platform", "os_version", "scope", "primary_user", "compliance_state"]


def summary_table(*, user) -> Table:
    """Devices per compliance state: all platforms first, then each platform."""
    summary = reports.compliance_summary(user=user)
    rows: list[list[Any]] = [["platform", *STATE_COLUMNS, "total"]]
    rows.append(["all", *(summary.counts[s] for s in STATE_COLUMNS), summary.total])
    rows += [[p.platform, *(p.counts[s] for s in STATE_COLUMNS), p.total] for p in summary.platforms]
    return Table("compliance-summary", rows)


def trend_table(*, user) -> Table:
    """One line per day of the last 60; a day without a snapshot has empty cells, not zeros."""
    rows: list[list[Any]] = [["day", *STATE_COLUMNS, "total"]]
    for day in reports.compliance_trend(user=user):
        counts = day.counts
        rows.append([day.day, *((counts[s] if counts else None) for s in STATE_COLUMNS), day.total])
    return Table("compliance-trend", rows)


def failing_settings_table(*, user) -> Table:
    rows: list[list[Any]] = [["rule", "setting", "devices_failing", "noncompliant", "cannot_evaluate"]]
    rows += [
        [s.rule, s.label, s.devices, s.noncompliant, s.cannot_evaluate] for s in reports.failing_settings(user=user)
    ]
    return Table("compliance-failing-settings", rows)


def _device_values(device: Device) -> list[Any]:
    return [
        device.uuid,
        device.name,
        device.platform,
        device.os_version,
        device.scope.slug if device.scope_id else "",
        device.primary_user.username if device.primary_user_id else "",
        device.compliance_state,
    ]


def failing_rule_table(*, user, rule: str, cannot_evaluate: bool = False) -> Table:
    """Every device failing ``rule`` with what was expected and what it reported."""
    if rule not in ComplianceRule.values:
        raise LookupError(f"There is no compliance rule {rule!r}.")
    failures = reports.failing_rule_list(user=user, rule=rule, cannot_evaluate=cannot_evaluate)

    def rows() -> Iterator[list[Any]]:
        yield [*DEVICE_COLUMNS, "policy", "expected", "actual", "since"]
        for failure in failures.iterator(chunk_size=CHUNK):
            policy = failure.policy.name if failure.policy_id else ""
            yield [*_device_values(failure.device), policy, failure.expected, failure.actual, failure.since]

    suffix = "cannot-evaluate" if cannot_evaluate else "failing"
    return Table(f"compliance-{rule.replace('_', '-')}-{suffix}", rows())


def devices_without_policy_table(*, user) -> Table:
    devices = reports.devices_without_policy(user=user)

    def rows() -> Iterator[list[Any]]:
        yield [*DEVICE_COLUMNS, "ownership", "last_checkin_at"]
        for device in devices.iterator(chunk_size=CHUNK):
            yield [*_device_values(device), device.ownership, device.last_checkin_at]

    return Table("devices-without-compliance-policy", rows())


def profile_deliveries_table(*, user) -> Table:
    rows: list[list[Any]] = [["profile", *DeliveryState.values, "total"]]
    rows += [
        [p.name, *(p.counts[s] for s in DeliveryState.values), p.total]
        for p in reports.profile_delivery_counts(user=user)
    ]
    return Table("profile-deliveries", rows)


# Report name (as in URLs) -> table. ``failing-rule`` takes ``rule`` and ``cannot_evaluate``.
TABLES = {
    "summary": summary_table,
    "trend": trend_table,
    "failing-settings": failing_settings_table,
    "failing-rule": failing_rule_table,
    "devices-without-policy": devices_without_policy_table,
    "profile-deliveries": profile_deliveries_table,
}
