"""One device's compliance, explained: what the Company Portal and the admin's device page show.

The caller has already authorised access to the device (the portal through ownership, the admin
through ``authz``). A fixed number of queries whatever the fleet size: the candidate policies with
their assignments and schedules, which of them target the device (one query), its failures, the
actions already done for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from devices.choices import ComplianceState
from devices.models import Device

from ..choices import ComplianceRule, NoncomplianceActionType
from ..compliance import ERROR_PREFIX, rule_help
from ..models import ComplianceActionRun, ComplianceFailure
from ..services.compliance_engine import device_policy_candidates, grace_days, policies_loaded
from ..targeting import device_matches

NEXT_ACTION_WORDS = {
    NoncomplianceActionType.MARK_NONCOMPLIANT: "Marked noncompliant",
    NoncomplianceActionType.EMAIL: "Email to the user",
    NoncomplianceActionType.PUSH: "Notification on the device",
    NoncomplianceActionType.LOCK: "Device locked",
    NoncomplianceActionType.RETIRE: "Retirement proposed to IT",
}
ACTING_STATES = (ComplianceState.IN_GRACE, ComplianceState.NONCOMPLIANT)


@dataclass(frozen=True)
class FailingSetting:
    rule: str
    label: str
    policy_name: str
    expected: str
    actual: str
    since: datetime
    plain: str
    fix_steps: list[str]
    # The rule could not be evaluated (``actual`` then says why).
    error: bool = False


@dataclass(frozen=True)
class NextAction:
    action: str
    label: str
    policy_name: str
    due_at: datetime
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class DeviceComplianceDetail:
    state: str
    state_label: str
    policies: list[str]
    failing: list[FailingSetting] = field(default_factory=list)
    grace_ends_at: datetime | None = None
    next_actions: list[NextAction] = field(default_factory=list)

    @property
    def errors(self) -> list[FailingSetting]:
        return [f for f in self.failing if f.error]


def _day(moment: datetime) -> str:
    local = timezone.localtime(moment)
    return f"{local.day} {local:%b}"


def _failing(device: Device, failure: ComplianceFailure) -> FailingSetting:
    error = failure.actual.startswith(ERROR_PREFIX)
    actual = failure.actual[len(ERROR_PREFIX) :] if error else failure.actual
    plain, steps = rule_help(failure.rule, device.platform, failure.expected, actual, error=error)
    label = ComplianceRule(failure.rule).label if failure.rule in ComplianceRule.values else failure.rule
    return FailingSetting(
        rule=failure.rule,
        label=label,
        policy_name=failure.policy.name if failure.policy_id else "Organisation settings",
        expected=failure.expected,
        actual=actual,
        since=failure.since,
        plain=plain,
        fix_steps=steps,
        error=error,
    )


def device_compliance_detail(device: Device, *, now: datetime | None = None) -> DeviceComplianceDetail:
    """State, applying policies, every failing setting in plain words with fix steps, grace end, next actions."""
    now = now or timezone.now()
    candidates = policies_loaded(device_policy_candidates(device).prefetch_related("actions"))
    applying = device_matches(device, candidates)
    policies = {p.pk: p for p in candidates}
    failures = list(ComplianceFailure.objects.filter(device=device).select_related("policy").order_by("since", "rule"))
    failing = [_failing(device, f) for f in failures]
    state = device.compliance_state
    # Since when each policy fails (its oldest real failure): grace and schedule count from there.
    since: dict[int, datetime] = {}
    for failure in failures:
        if failure.policy_id and not failure.actual.startswith(ERROR_PREFIX):
            since[failure.policy_id] = min(failure.since, since.get(failure.policy_id, failure.since))
    grace_ends_at = None
    if state == ComplianceState.IN_GRACE and since:
        grace_ends_at = min(
            at + timedelta(days=grace_days(policies[pk]) if pk in policies else 0) for pk, at in since.items()
        )
    next_actions: list[NextAction] = []
    if state in ACTING_STATES and since:
        done = set(ComplianceActionRun.objects.filter(device=device).values_list("action_id", flat=True))
        for pk, at in since.items():
            policy = policies.get(pk)
            if policy is None:
                continue
            for action in policy.actions.all():
                if action.pk in done:
                    continue
                if action.action == NoncomplianceActionType.MARK_NONCOMPLIANT and state == ComplianceState.NONCOMPLIANT:
                    continue
                due = at + timedelta(days=action.days_after)
                words = NEXT_ACTION_WORDS.get(action.action, action.get_action_display())
                text = f"{words} on {_day(due)}" if due > now else f"{words}: due now"
                next_actions.append(NextAction(action.action, words, policy.name, due, text))
        next_actions.sort(key=lambda item: (item.due_at, item.action))
    return DeviceComplianceDetail(
        state=state,
        state_label=ComplianceState(state).label if state in ComplianceState.values else state,
        policies=sorted(p.name for p in candidates if p.pk in applying),
        failing=failing,
        grace_ends_at=grace_ends_at,
        next_actions=next_actions,
    )
