"""Every compliance rule at its boundaries, the most-restrictive merge, and the state logic: pure, no database."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from devices.choices import ComplianceState, ProvisioningAction
from devices.versions import version_key
from policies.choices import ComplianceRule as Rule
from policies.compliance import (
    ERROR_PREFIX,
    RULE_TEXT,
    DeviceFacts,
    Failure,
    assess,
    device_state,
    evaluate,
    merge_rules,
)
from policies.compliance_text import FAMILIES, rule_help

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SETTINGS = SimpleNamespace(validity_days=30, no_policy_compliant=True)
RULE_DEFAULTS = {
    "os_min": "",
    "os_max": "",
    "passcode_required": False,
    "passcode_min_length": None,
    "passcode_min_quality": "",
    "encryption_required": False,
    "jailbreak_blocked": False,
    "checkin_max_days": None,
    "blocked_apps": [],
    "provisioning_on_time": False,
}


def policy(pk=1, **rules):
    return SimpleNamespace(pk=pk, name=f"Policy {pk}", **{**RULE_DEFAULTS, **rules})


def facts(**overrides):
    values = {
        "platform": "ios",
        "os_version": "17.4",
        "last_checkin_at": NOW - timedelta(minutes=5),
        "enrolled_at": NOW - timedelta(days=100),
        "inventory_reported_at": NOW - timedelta(minutes=5),
        "encrypted": True,
        "passcode_set": True,
        "passcode_quality": "alphanumeric",
        "passcode_length": 8,
        "jailbroken": False,
    }
    values.update(overrides)
    values.setdefault("os_version_key", version_key(values["os_version"]))
    return DeviceFacts(**values)


def failures(device, *policies, settings=SETTINGS):
    return evaluate(device, merge_rules(policies or [policy()]), NOW, settings)


def rules_failing(device, *policies, **kwargs):
    return sorted(f.rule for f in failures(device, *policies, **kwargs) if not f.error)


def rules_in_error(device, *policies):
    return sorted(f.rule for f in failures(device, *policies) if f.error)


# -- OS version ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "reported", "fails"),
    [
        ("17", "17", False),  # equal
        ("17", "16.7.9", True),  # below
        ("17", "17.0.1", False),  # "17" means 17.0.0: 17.0.1 is above it
        ("17.0.1", "17", True),
        ("17.0.1", "17.0.1", False),
        ("17.4", "17.10", False),  # numeric, not string, comparison
        ("10.0.22631", "10.0.19045", True),
        ("10.0.22631", "10.0.22631.3155", False),
    ],
)
def test_minimum_os_version(minimum, reported, fails):
    assert (rules_failing(facts(os_version=reported), policy(os_min=minimum)) == [Rule.OS_MIN]) is fails


@pytest.mark.parametrize(
    ("maximum", "reported", "fails"),
    [
        ("17", "17", False),
        ("17", "17.0.1", False),  # "at most 17" admits every 17.x, like the device-group rule
        ("17", "17.9.9", False),
        ("17", "18", True),
        ("17.0", "17.0.1", False),
        ("17.0", "17.1", True),
        ("17.4.1", "17.4.2", True),
    ],
)
def test_maximum_os_version(maximum, reported, fails):
    assert (rules_failing(facts(os_version=reported), policy(os_max=maximum)) == [Rule.OS_MAX]) is fails


def test_an_unreadable_os_version_is_an_error_not_a_failure():
    device = facts(os_version="beta", os_version_key="")
    found = failures(device, policy(os_min="17"))
    assert [(f.rule, bool(f.error)) for f in found] == [(Rule.OS_MIN, True)]
    assert "'beta'" in found[0].error
    assert found[0].stored_actual.startswith(ERROR_PREFIX)


# -- passcode ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("passcode_set", "outcome"), [(True, []), (False, [Rule.PASSCODE_REQUIRED]), (None, "error")])
def test_passcode_required(passcode_set, outcome):
    device = facts(passcode_set=passcode_set)
    if outcome == "error":
        assert rules_in_error(device, policy(passcode_required=True)) == [Rule.PASSCODE_REQUIRED]
    else:
        assert rules_failing(device, policy(passcode_required=True)) == outcome


@pytest.mark.parametrize(
    ("passcode_set", "length", "outcome"),
    [(True, 6, "pass"), (True, 5, "fail"), (True, 7, "pass"), (False, None, "fail"), (True, None, "error")],
)
def test_minimum_passcode_length_exactly_the_minimum_passes(passcode_set, length, outcome):
    device = facts(passcode_set=passcode_set, passcode_length=length)
    rule = policy(passcode_min_length=6)
    assert (Rule.PASSCODE_MIN_LENGTH in rules_failing(device, rule)) is (outcome == "fail")
    assert (Rule.PASSCODE_MIN_LENGTH in rules_in_error(device, rule)) is (outcome == "error")


@pytest.mark.parametrize(
    ("minimum", "reported", "outcome"),
    [
        ("numeric", "numeric", "pass"),
        ("numeric", "biometric", "pass"),  # a fingerprint sits on a numeric passcode
        ("numeric", "none", "fail"),
        ("alphanumeric", "numeric", "fail"),
        ("alphanumeric", "biometric", "fail"),
        ("alphanumeric", "alphanumeric", "pass"),
        ("alphanumeric", "complex", "pass"),
        ("complex", "alphanumeric", "fail"),
        ("complex", "complex", "pass"),
        ("complex", "", "error"),
        ("complex", "pattern", "error"),
    ],
)
def test_minimum_passcode_quality_by_rank(minimum, reported, outcome):
    device = facts(passcode_quality=reported)
    rule = policy(passcode_min_quality=minimum)
    assert (Rule.PASSCODE_MIN_QUALITY in rules_failing(device, rule)) is (outcome == "fail")
    assert (Rule.PASSCODE_MIN_QUALITY in rules_in_error(device, rule)) is (outcome == "error")


def test_no_passcode_fails_quality_and_length_rules_with_plain_values():
    device = facts(passcode_set=False, passcode_quality="none", passcode_length=None)
    found = {f.rule: f for f in failures(device, policy(passcode_min_quality="numeric", passcode_min_length=4))}
    assert found[Rule.PASSCODE_MIN_QUALITY].actual == "no passcode"
    assert found[Rule.PASSCODE_MIN_LENGTH].actual == "no passcode"
    assert found[Rule.PASSCODE_MIN_LENGTH].expected == "at least 4 characters"


# -- encryption, jailbreak, check-in, blocked apps, provisioning --------------------------------


@pytest.mark.parametrize(("value", "outcome"), [(True, "pass"), (False, "fail"), (None, "error")])
def test_encryption_required(value, outcome):
    device = facts(encrypted=value)
    assert (rules_failing(device, policy(encryption_required=True)) == [Rule.ENCRYPTION_REQUIRED]) is (
        outcome == "fail"
    )
    assert (rules_in_error(device, policy(encryption_required=True)) != []) is (outcome == "error")


@pytest.mark.parametrize(("value", "outcome"), [(False, "pass"), (True, "fail"), (None, "error")])
def test_jailbroken_devices_blocked(value, outcome):
    device = facts(jailbroken=value)
    assert (rules_failing(device, policy(jailbreak_blocked=True)) == [Rule.JAILBREAK_BLOCKED]) is (outcome == "fail")
    assert (rules_in_error(device, policy(jailbreak_blocked=True)) != []) is (outcome == "error")


@pytest.mark.parametrize(
    ("silent", "fails"),
    [(timedelta(days=7), False), (timedelta(days=7, seconds=1), True), (timedelta(days=6, hours=23), False)],
)
def test_maximum_days_since_check_in_exactly_n_days_passes(silent, fails):
    device = facts(last_checkin_at=NOW - silent)
    assert (rules_failing(device, policy(checkin_max_days=7)) == [Rule.CHECKIN_MAX_DAYS]) is fails


def test_blocked_apps_match_case_insensitively_and_name_the_apps():
    device = facts(installed_apps=frozenset({"com.microsoft.teams", "com.example.game"}))
    found = failures(device, policy(blocked_apps=["com.Example.Game", "com.other.app"]))
    assert [(f.rule, f.actual) for f in found] == [(Rule.BLOCKED_APPS, "com.Example.Game")]
    assert rules_failing(facts(installed_apps=frozenset({"com.microsoft.teams"})), policy(blocked_apps=["x.y"])) == []


def test_a_malformed_app_list_is_an_error():
    row = {"platform": "android", "inventory__installed_apps": "not a list", "inventory__reported_at": NOW}
    device = DeviceFacts.from_row(row)
    assert rules_in_error(device, policy(blocked_apps=["com.example.game"])) == [Rule.BLOCKED_APPS]


@pytest.mark.parametrize(
    ("overdue", "provisioned", "fails"),
    [(None, None, False), (NOW - timedelta(hours=1), None, True), (NOW - timedelta(hours=1), NOW, False)],
)
def test_provisioning_must_not_be_overdue(overdue, provisioned, fails):
    device = facts(provisioning_overdue_at=overdue, provisioned_at=provisioned)
    assert (rules_failing(device, policy(provisioning_on_time=True)) == [Rule.PROVISIONING_ON_TIME]) is fails


def test_an_enrolment_profile_that_marks_overdue_devices_noncompliant_is_an_organisation_rule():
    row = {
        "platform": "ios",
        "provisioning_overdue_at": NOW - timedelta(hours=1),
        "enrollment_profile__provisioning_action": ProvisioningAction.MARK_NONCOMPLIANT,
    }
    device = DeviceFacts.from_row(row)
    found = evaluate(device, merge_rules([]), NOW, SETTINGS)
    assert [(f.rule, f.policy) for f in found] == [(Rule.PROVISIONING_ON_TIME, None)]
    assert device_state(device, [(found[0], NOW)], {}, NOW).state == ComplianceState.NONCOMPLIANT


# -- organisation-wide rules ---------------------------------------------------------------------


@pytest.mark.parametrize(("silent", "fails"), [(timedelta(days=30), False), (timedelta(days=30, seconds=1), True)])
def test_validity_period_applies_whatever_the_policies(silent, fails):
    device = facts(last_checkin_at=NOW - silent)
    found = evaluate(device, merge_rules([]), NOW, SETTINGS)
    assert ([f.rule for f in found] == [Rule.VALIDITY]) is fails
    if fails:
        assert device_state(device, [(f, NOW) for f in found], {}, NOW).state == ComplianceState.NONCOMPLIANT


@pytest.mark.parametrize(("no_policy_compliant", "state"), [(True, "compliant"), (False, "noncompliant")])
def test_a_device_without_policy_follows_the_setting(no_policy_compliant, state):
    settings = SimpleNamespace(validity_days=30, no_policy_compliant=no_policy_compliant)
    dated, outcome = assess(facts(), merge_rules([]), NOW, settings, {})
    assert outcome.state == state
    assert [f.rule for f, _ in dated] == ([] if no_policy_compliant else [Rule.NO_POLICY])


def test_a_policy_without_rules_still_counts_as_a_policy():
    settings = SimpleNamespace(validity_days=30, no_policy_compliant=False)
    assert assess(facts(), merge_rules([policy()]), NOW, settings, {})[1].state == ComplianceState.COMPLIANT


def test_a_device_that_never_reported_is_not_evaluated():
    device = facts(inventory_reported_at=None, encrypted=None)
    dated, outcome = assess(device, merge_rules([policy(encryption_required=True)]), NOW, SETTINGS, {})
    assert (dated, outcome.state) == ([], ComplianceState.NOT_EVALUATED)


# -- most restrictive merge ----------------------------------------------------------------------


def test_the_most_restrictive_value_wins_with_its_policy():
    a = policy(1, os_min="16", os_max="18", passcode_min_length=6, passcode_min_quality="numeric", checkin_max_days=14)
    b = policy(2, os_min="17.2", passcode_min_length=4, passcode_min_quality="complex", encryption_required=True)
    c = policy(3, os_min="17.1.9", os_max="17.5", passcode_min_length=8, checkin_max_days=7, jailbreak_blocked=True)
    merged = merge_rules([a, b, c])
    assert {rule: (value, p.pk) for rule, (value, p) in merged.items()} == {
        Rule.OS_MIN: ("17.2", 2),
        Rule.OS_MAX: ("17.5", 3),
        Rule.PASSCODE_MIN_LENGTH: (8, 3),
        Rule.PASSCODE_MIN_QUALITY: ("complex", 2),
        Rule.CHECKIN_MAX_DAYS: (7, 3),
        Rule.ENCRYPTION_REQUIRED: (True, 2),
        Rule.JAILBREAK_BLOCKED: (True, 3),
    }
    assert merged.policies == (a, b, c)
    # The failure is attributed to the policy whose value was the strictest.
    found = {f.rule: f.policy.pk for f in failures(facts(os_version="17.1", passcode_length=7), a, b, c)}
    assert found == {Rule.OS_MIN: 2, Rule.PASSCODE_MIN_LENGTH: 3, Rule.PASSCODE_MIN_QUALITY: 2}


def test_on_a_tie_the_first_policy_keeps_the_rule():
    merged = merge_rules([policy(1, os_min="17", encryption_required=True), policy(2, os_min="17.0.0")])
    assert merged[Rule.OS_MIN][1].pk == 1
    assert merged[Rule.ENCRYPTION_REQUIRED][1].pk == 1


def test_blocked_apps_are_the_union_each_attributed_to_a_policy_that_blocks_it():
    a, b = policy(1, blocked_apps=["com.game.one", "com.both"]), policy(2, blocked_apps=["com.game.two", "com.both"])
    merged = merge_rules([a, b])
    apps = {identifier: owner.pk for identifier, owner in merged[Rule.BLOCKED_APPS][0].values()}
    assert apps == {"com.game.one": 1, "com.both": 1, "com.game.two": 2}
    device = facts(installed_apps=frozenset({"com.game.one", "com.game.two", "com.both"}))
    found = sorted((f.policy.pk, f.actual) for f in failures(device, a, b))
    assert found == [(1, "com.both, com.game.one"), (2, "com.game.two")]


# -- grace and state -----------------------------------------------------------------------------


def _failing(p, rule=Rule.ENCRYPTION_REQUIRED, error=""):
    return Failure(rule, p, "encrypted", "not encrypted", error=error)


def test_grace_period_boundaries():
    p = policy(1)
    just_in = [(_failing(p), NOW - timedelta(days=3) + timedelta(seconds=1))]
    outcome = device_state(facts(), just_in, {1: 3}, NOW)
    assert outcome.state == ComplianceState.IN_GRACE
    assert outcome.grace_ends_at == NOW + timedelta(seconds=1)
    assert device_state(facts(), [(_failing(p), NOW - timedelta(days=3))], {1: 3}, NOW).state == "noncompliant"
    # No mark action: 0 days of grace.
    assert device_state(facts(), [(_failing(p), NOW)], {}, NOW).state == ComplianceState.NONCOMPLIANT


def test_the_shortest_grace_of_the_failing_policies_decides():
    a, b = policy(1), policy(2)
    items = [(_failing(a), NOW - timedelta(days=2)), (_failing(b, Rule.OS_MIN), NOW - timedelta(days=2))]
    assert device_state(facts(), items, {1: 7, 2: 2}, NOW).state == ComplianceState.NONCOMPLIANT
    assert device_state(facts(), items, {1: 7, 2: 3}, NOW).grace_ends_at == NOW + timedelta(days=1)


def test_errors_give_the_error_state_unless_a_failure_is_past_grace():
    p = policy(1)
    error = (_failing(p, Rule.JAILBREAK_BLOCKED, error="the device did not report it"), NOW)
    outcome = device_state(facts(), [error, (_failing(p), NOW)], {1: 3}, NOW)
    assert (outcome.state, outcome.reason) == (ComplianceState.ERROR, "the device did not report it")
    assert device_state(facts(), [error, (_failing(p), NOW)], {1: 0}, NOW).state == ComplianceState.NONCOMPLIANT


def test_assess_keeps_since_of_a_rule_that_keeps_failing():
    p = policy(1, encryption_required=True)
    earlier = NOW - timedelta(days=1)
    dated, outcome = assess(
        facts(encrypted=False), merge_rules([p]), NOW, SETTINGS, {1: 3}, {(1, "encryption_required"): (earlier, False)}
    )
    assert [since for _, since in dated] == [earlier]
    assert outcome.state == ComplianceState.IN_GRACE


# -- what the employee reads ---------------------------------------------------------------------


@pytest.mark.parametrize("rule", Rule.values)
def test_every_rule_has_a_plain_sentence_and_steps_for_every_platform_family(rule):
    text = RULE_TEXT[rule]
    assert text.plain.endswith(".")
    for family in FAMILIES:
        assert text.fix[family], (rule, family)


def test_rule_help_fills_in_the_values_and_picks_the_platform():
    plain, steps = rule_help(Rule.ENCRYPTION_REQUIRED, "macos")
    assert plain == "Your device's storage is not encrypted."
    assert any("FileVault" in step for step in steps)
    plain, steps = rule_help(Rule.PASSCODE_REQUIRED, "ipados")
    assert any("Face ID & Passcode" in step for step in steps)
    plain, steps = rule_help(Rule.OS_MIN, "windows", "17 or later", "16.4")
    assert "16.4" in plain and "17 or later" in plain
    assert any("Windows Update" in step for step in steps)
