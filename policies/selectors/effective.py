"""The effective policy of a device or of a person: every setting and rule that applies, and where from.

For one device: each configuration profile that targets it, with the include assignment that
brought it in and the delivery state on the device; every setting of those profiles (secrets
masked), with conflicts between them marked; the compliance rules merged across the policies that
target it (``policies.compliance.merge_rules``), each with the policy its value comes from; and
the device's current compliance detail. A fixed number of queries per device, whatever the size of
the fleet or the number of profiles (plus one per rule-based device group the assignments use).

Authorisation is the caller's: ``device_effective_policy`` trusts that the person may see this
device's configuration; ``person_devices`` restricts the person's devices with ``core.authz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import BooleanField, Case, QuerySet, Value, When

from devices.choices import LifecycleState
from devices.models import Device
from mdm_portal.core import authz

from ..choices import AssignmentMode, ComplianceRule, DeliveryState, PasscodeQuality
from ..conflicts import conflict_keys, conflicts_between
from ..models import AssignmentBase, CompliancePolicy, ConfigurationProfile, ProfileDelivery
from ..profile_settings import BOOL, CHOICE, PEM, SETTINGS
from ..secrets import secrets_decrypt
from ..targeting import assignment_q, candidates_for, device_matches

MASK = "••••••"
DEVICES_PER_PERSON = 20


@dataclass
class EffectiveSetting:
    label: str
    value: str
    secret: bool = False
    not_applicable: str = ""  # the reason, when the device's platform cannot express it
    conflicts_with: list[str] = field(default_factory=list)  # names of profiles that set it differently


@dataclass
class EffectiveProfile:
    profile: ConfigurationProfile
    assignments: list[str]  # the include assignments that bring it to this device
    delivery_state: str
    delivery_state_label: str
    delivery_reason: str
    settings: list[EffectiveSetting]
    can_view: bool = False

    @property
    def has_conflict(self) -> bool:
        return self.delivery_state == DeliveryState.CONFLICT or any(s.conflicts_with for s in self.settings)


@dataclass
class EffectiveRule:
    rule: str
    label: str
    value: str
    policy: CompliancePolicy | None
    failing: bool = False


@dataclass
class EffectivePolicy:
    device: Device
    enrolled: bool
    profiles: list[EffectiveProfile]
    policies: list[tuple[CompliancePolicy, list[str]]]  # each policy with the assignments that bring it
    rules: list[EffectiveRule]
    failures: list[Any]
    compliance: Any = None

    @property
    def conflicts(self) -> list[EffectiveProfile]:
        return [p for p in self.profiles if p.has_conflict]


def assignment_describe(assignment: AssignmentBase) -> str:
    """ "Include device group Sales phones (only iOS, corporate, OS at least 17)"."""
    filters = []
    if assignment.filter_platforms:
        filters.append("only " + ", ".join(assignment.filter_platforms))
    if assignment.filter_ownership:
        filters.append(assignment.get_filter_ownership_display().lower())
    if assignment.filter_os_min:
        filters.append(f"OS at least {assignment.filter_os_min}")
    if assignment.filter_os_max:
        filters.append(f"OS at most {assignment.filter_os_max}")
    text = str(assignment)
    return f"{text} ({', '.join(filters)})" if filters else text


def _matching_assignments(device: Device, objs) -> set[tuple[str, int]]:
    """Which include assignments of ``objs`` match ``device``: one query for all of them."""
    annotations = {}
    for obj in objs:
        for a in obj.assignments.all():
            if a.mode == AssignmentMode.INCLUDE:
                key = f"{'p' if isinstance(obj, ConfigurationProfile) else 'c'}{a.pk}"
                annotations[key] = Case(
                    When(assignment_q(a), then=Value(True)), default=Value(False), output_field=BooleanField()
                )
    if not annotations:
        return set()
    row = Device.objects.filter(pk=device.pk).values(**annotations).first() or {}
    return {(key[0], int(key[1:])) for key, matched in row.items() if matched}


def _value(spec, value) -> str:
    if spec.type == BOOL:
        return "Yes" if value else "No"
    if spec.type == CHOICE:
        return dict(spec.choices).get(value, str(value))
    if spec.type == PEM:
        return "Certificate (PEM, not shown)"
    return str(value)


def _profile_settings(profile: ConfigurationProfile, secrets: dict, not_applicable: dict) -> list[EffectiveSetting]:
    rows = []
    for spec in SETTINGS.get(profile.kind, ()):
        if spec.secret:
            if spec.name in secrets:
                rows.append(
                    EffectiveSetting(spec.label, MASK, secret=True, not_applicable=not_applicable.get(spec.name, ""))
                )
            continue
        if spec.name in (profile.settings or {}):
            rows.append(
                EffectiveSetting(
                    spec.label,
                    _value(spec, profile.settings[spec.name]),
                    not_applicable=not_applicable.get(spec.name, ""),
                )
            )
    return rows


def _secrets(profile: ConfigurationProfile) -> dict:
    try:
        return secrets_decrypt(profile.secret_settings)
    except ImproperlyConfigured:
        return {}


RULE_LABELS = dict(ComplianceRule.choices)


def _rule_value(rule: str, value: Any) -> str:
    if rule in (ComplianceRule.OS_MIN, ComplianceRule.OS_MAX):
        return str(value)
    if rule == ComplianceRule.PASSCODE_MIN_QUALITY:
        return dict(PasscodeQuality.choices).get(value, str(value))
    if rule == ComplianceRule.BLOCKED_APPS:
        return ", ".join(sorted(identifier for identifier, _ in value.values()))
    if rule == ComplianceRule.CHECKIN_MAX_DAYS:
        return f"{value} days"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return str(value)


def _merged_rules(policies: list[CompliancePolicy], failing: set[str]) -> list[EffectiveRule]:
    from ..compliance import merge_rules

    merged = merge_rules(policies)
    rows = []
    for rule in ComplianceRule.values:
        if rule not in merged:
            continue
        value, policy = merged[rule]
        if rule == ComplianceRule.BLOCKED_APPS:
            # ({identifier: (identifier, policy)}, first policy): list each app's policy when they differ.
            by_policy = {p.pk: p for _, p in value.values()}
            policy = next(iter(by_policy.values())) if len(by_policy) == 1 else policy
        rows.append(
            EffectiveRule(
                rule=rule,
                label=RULE_LABELS.get(rule, rule),
                value=_rule_value(rule, value),
                policy=policy,
                failing=rule in failing,
            )
        )
    return rows


def device_effective_policy(*, user, device: Device, compliance_detail: bool = True) -> EffectivePolicy:
    """Everything that applies to ``device`` (see the module docstring); ``user`` decides only links."""
    from ..models import ComplianceFailure

    enrolled = device.lifecycle_state == LifecycleState.ENROLLED
    profiles = list(candidates_for(ConfigurationProfile, device).select_related("scope"))
    policies = list(candidates_for(CompliancePolicy, device).select_related("scope"))
    matched_profiles = device_matches(device, profiles) if enrolled else set()
    matched_policies = device_matches(device, policies) if enrolled else set()
    profiles = [p for p in profiles if p.pk in matched_profiles]
    policies = [p for p in policies if p.pk in matched_policies]
    matching = _matching_assignments(device, [*profiles, *policies])

    deliveries = {
        d.profile_id: d
        for d in ProfileDelivery.objects.filter(device=device, profile_id__in=[p.pk for p in profiles]).only(
            "profile_id", "state", "reason", "not_applicable"
        )
    }
    secrets = {p.pk: _secrets(p) for p in profiles}
    effective: list[EffectiveProfile] = []
    for profile in profiles:
        delivery = deliveries.get(profile.pk)
        not_applicable = {i.get("setting"): i.get("reason", "") for i in (delivery.not_applicable if delivery else [])}
        state = delivery.state if delivery else ""
        effective.append(
            EffectiveProfile(
                profile=profile,
                assignments=[assignment_describe(a) for a in profile.assignments.all() if ("p", a.pk) in matching],
                delivery_state=state,
                delivery_state_label=DeliveryState(state).label if state else "Not delivered yet",
                delivery_reason=delivery.reason if delivery else "",
                settings=_profile_settings(profile, secrets[profile.pk], not_applicable),
                can_view=authz.can(user, "policies.view_configurationprofile", profile),
            )
        )
    _mark_conflicts(effective, secrets)

    failures = list(
        ComplianceFailure.objects.filter(device=device).select_related("policy").order_by("rule", "policy_id")
    )
    rules = _merged_rules(policies, {f.rule for f in failures})
    detail = None
    if compliance_detail:
        from .compliance import device_compliance_detail

        detail = device_compliance_detail(device)
    return EffectivePolicy(
        device=device,
        enrolled=enrolled,
        profiles=effective,
        policies=[
            (p, [assignment_describe(a) for a in p.assignments.all() if ("c", a.pk) in matching]) for p in policies
        ],
        rules=rules,
        failures=failures,
        compliance=detail,
    )


def _mark_conflicts(effective: list[EffectiveProfile], secrets: dict) -> None:
    """Two profiles of one kind that set one setting differently: marked on both, never resolved."""
    keys = {
        e.profile.pk: conflict_keys(e.profile.kind, e.profile.settings or {}, secrets[e.profile.pk]) for e in effective
    }
    for a, b in combinations(effective, 2):
        if a.profile.kind != b.profile.kind:
            continue
        labels = set(conflicts_between(a.profile.kind, keys[a.profile.pk], keys[b.profile.pk]))
        for mine, other in ((a, b), (b, a)):
            for setting in mine.settings:
                if setting.label in labels:
                    setting.conflicts_with.append(other.profile.name)


def person_devices(*, user, person) -> QuerySet[Device]:
    """The person's devices whose configuration ``user`` may see (profiles or policies of their scope)."""
    devices = Device.objects.filter(primary_user=person).select_related("scope").order_by("name", "pk")
    return authz.restrict(devices, user, "policies.view_configurationprofile") | authz.restrict(
        devices, user, "policies.view_compliancepolicy"
    )


def person_effective_policy(*, user, person) -> tuple[list[EffectivePolicy], int]:
    """The effective policy of each of the person's devices ``user`` may see (at most 20), and how many there are."""
    devices = person_devices(user=user, person=person)
    shown = list(devices[:DEVICES_PER_PERSON])
    total = len(shown) if len(shown) < DEVICES_PER_PERSON else devices.count()
    return [device_effective_policy(user=user, device=d) for d in shown], total


def failing_rule_count(device: Device) -> int:
    """How many rules ``device`` fails now (one query)."""
    from ..models import ComplianceFailure

    return ComplianceFailure.objects.filter(device=device).count()
