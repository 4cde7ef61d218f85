"""A retirement's evidence as rows and sentences: one reading for the detail page, the CSV and the
printable proof of removal."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..choices import RetirementStatus
from ..models import RetirementRequest


@dataclass(frozen=True)
class EvidenceRow:
    kind: str
    identifier: str
    name: str
    leftover: bool = False


def _items(value: Any) -> list[dict]:
    return [item for item in value or [] if isinstance(item, dict)] if isinstance(value, list) else []


def before_rows(request: RetirementRequest) -> list[EvidenceRow]:
    """What the device held: the managed set first, then what else it reported (kept by a retire)."""
    before = request.before_inventory or {}
    rows = [
        EvidenceRow("managed app", str(i.get("identifier") or ""), str(i.get("name") or ""))
        for i in _items(before.get("managed_apps"))
    ]
    rows += [
        EvidenceRow("managed profile", str(i.get("identifier") or ""), str(i.get("name") or ""))
        for i in _items(before.get("managed_profiles"))
    ]
    managed = {row.identifier for row in rows}
    rows += [
        EvidenceRow("other app", str(i.get("identifier") or ""), str(i.get("name") or ""))
        for i in _items(before.get("installed_apps"))
        if str(i.get("identifier") or "") not in managed
    ]
    return rows


def after_empty(request: RetirementRequest) -> str:
    """What an empty after-table means: a report that lists nothing left, or no report yet."""
    if request.after_inventory:
        return "The device's report lists nothing left: no managed app, no profile, no corporate data."
    return "No report from the device after the command yet."


def after_rows(request: RetirementRequest) -> list[EvidenceRow]:
    """What the device reported after the command, each leftover marked."""
    after = request.after_inventory or {}
    left = {(str(i.get("kind")), str(i.get("identifier"))) for i in _items(request.leftovers)}
    rows = [
        EvidenceRow(
            "app", str(i.get("identifier") or ""), str(i.get("name") or ""), ("app", str(i.get("identifier"))) in left
        )
        for i in _items(after.get("installed_apps"))
    ]
    rows += [
        EvidenceRow(
            "profile",
            str(i.get("identifier") or ""),
            str(i.get("name") or ""),
            ("profile", str(i.get("identifier"))) in left,
        )
        for i in _items(after.get("profiles"))
    ]
    rows += [
        EvidenceRow("corporate data", str(i.get("identifier") or ""), str(i.get("name") or ""), True)
        for i in _items(request.leftovers)
        if i.get("kind") in ("corporate_data", "report")
    ]
    return rows


def verdict(request: RetirementRequest) -> str:
    """One sentence: what the record proves."""
    status = request.status
    if status in (RetirementStatus.VERIFIED, RetirementStatus.UNENROLLED) and request.verified_at:
        return (
            "Verified: the device's report after the command shows none of the managed apps or profiles "
            "and no corporate data."
        )
    if status == RetirementStatus.UNENROLLED:
        return "Unenrolled; no report after the command was verified."
    if status == RetirementStatus.FORCED:
        who = request.forced_by.get_username() if request.forced_by else "an administrator"
        return f"Unverified: unenrolled by force by {who}. Reason: {request.forced_reason}"
    if status == RetirementStatus.FAILED:
        names = ", ".join(
            f"{i.get('name') or i.get('identifier')} ({str(i.get('kind', '')).replace('_', ' ')})"
            for i in _items(request.leftovers)
        )
        if names:
            return f"Failed: still on the device after the command: {names}."
        return f"Failed: {request.failure_reason or 'the device reported an error.'}"
    return f"Not verified: the request is {request.get_status_display().lower()}."


def timeline(request: RetirementRequest) -> list[tuple[str, Any, str]]:
    """The steps the request went through, with when and by whom: (step, time, detail)."""
    steps: list[tuple[str, Any, str]] = [("Requested", request.requested_at, request.requested_by_label)]
    if request.approved_at:
        steps.append(
            ("Approved", request.approved_at, request.approved_by.get_username() if request.approved_by else "")
        )
    if request.sent_at:
        steps.append(("Command sent", request.sent_at, ""))
    if request.acknowledged_at:
        steps.append(("Acknowledged by the device", request.acknowledged_at, ""))
    if request.timed_out_at:
        steps.append(("Timed out (device offline)", request.timed_out_at, ""))
    if request.verified_at:
        steps.append(("Verified", request.verified_at, ""))
    if request.status == RetirementStatus.FORCED:
        steps.append(
            (
                "Unenrolled by force (unverified)",
                request.unenrolled_at,
                f"{request.forced_by.get_username() if request.forced_by else ''}: {request.forced_reason}",
            )
        )
    elif request.unenrolled_at:
        steps.append(("Unenrolled", request.unenrolled_at, ""))
    elif request.status == RetirementStatus.FAILED:
        steps.append(("Failed", request.finished_at, request.failure_reason))
    elif request.status == RetirementStatus.CANCELLED:
        steps.append(("Cancelled", request.finished_at, ""))
    return steps


CSV_HEADER = (
    "record",
    "device",
    "serial number",
    "platform",
    "ownership",
    "action",
    "status",
    "requested by",
    "requested at",
    "approved by",
    "verified at",
    "unenrolled at",
    "verdict",
    "inventory",
    "kind",
    "identifier",
    "name",
    "leftover",
)


def evidence_csv_rows(request: RetirementRequest) -> Iterator[tuple]:
    """The header, then one line per inventory item, before and after, each with the record's identity."""
    yield CSV_HEADER
    identity = (
        str(request.uuid),
        request.device_name,
        request.device_serial,
        request.get_device_platform_display(),
        request.get_device_ownership_display(),
        request.get_action_display(),
        request.get_status_display(),
        request.requested_by_label,
        request.requested_at,
        request.approved_by.get_username() if request.approved_by else "",
        request.verified_at,
        request.unenrolled_at,
        verdict(request),
    )
    rows = [("before", row) for row in before_rows(request)] + [("after", row) for row in after_rows(request)]
    if not rows:
        yield (*identity, "", "", "", "", "")
    for inventory, row in rows:
        yield (*identity, inventory, row.kind, row.identifier, row.name, row.leftover)
