"""Device groups: rule-based membership per rule kind, static membership, validation and the admin."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from devices import services as device_services
from devices.choices import GroupMembershipType, GroupRuleField, Ownership, Platform
from devices.models import DeviceGroup, DeviceGroupRule
from devices.rules import rule_validate
from devices.selectors import device_group_devices
from devices.versions import InvalidVersion, parse_version, version_key
from mdm_portal.core.models import AuditEvent
from tests.factories import SYSTEM, DeviceFactory, grant

pytestmark = pytest.mark.django_db

DYNAMIC = GroupMembershipType.DYNAMIC
STATIC = GroupMembershipType.STATIC


def dynamic_group(scope, rules, *, match_all=True, name="Rule group"):
    group = device_services.device_group_save(
        actor=SYSTEM, name=name, scope=scope, membership_type=DYNAMIC, match_all=match_all
    )
    device_services.device_group_rules_set(actor=SYSTEM, group=group, rules=rules)
    return group


def members(group) -> set[str]:
    return set(device_group_devices(group).values_list("name", flat=True))


@pytest.fixture
def fleet(scope_a, scope_b):
    """Named devices covering every rule kind; names say what each one is."""
    specs = [
        ("IPHONE-17.4.1", Platform.IOS, "17.4.1", Ownership.CORPORATE, scope_a),
        ("IPHONE-17.0", Platform.IOS, "17.0", Ownership.PERSONAL, scope_a),
        ("IPHONE-18.0", Platform.IOS, "18.0", Ownership.CORPORATE, scope_b),
        ("IPHONE-16.7.8", Platform.IOS, "16.7.8", Ownership.PERSONAL, scope_b),
        ("PIXEL-14", Platform.ANDROID, "14", Ownership.PERSONAL, scope_a),
        ("PIXEL-9.1", Platform.ANDROID, "9.1", Ownership.CORPORATE, scope_b),
        ("WIN-10.0.22631", Platform.WINDOWS, "10.0.22631", Ownership.CORPORATE, scope_a),
        ("MAC-NOVERSION", Platform.MACOS, "", Ownership.CORPORATE, scope_b),
    ]
    return {
        name: DeviceFactory(name=name, platform=platform, os_version=version, ownership=ownership, scope=scope)
        for name, platform, version, ownership, scope in specs
    }


ALL = {
    "IPHONE-17.4.1",
    "IPHONE-17.0",
    "IPHONE-18.0",
    "IPHONE-16.7.8",
    "PIXEL-14",
    "PIXEL-9.1",
    "WIN-10.0.22631",
    "MAC-NOVERSION",
}


# Each rule kind --------------------------------------------------------------------------------


def test_platform_list(fleet, scope_a):
    group = dynamic_group(None, [("platform", "Android, windows")])
    assert members(group) == {"PIXEL-14", "PIXEL-9.1", "WIN-10.0.22631"}
    assert list(group.rules.values_list("value", flat=True)) == ["android,windows"]


def test_single_platform(fleet, scope_a):
    assert members(dynamic_group(None, [("platform", "macos")])) == {"MAC-NOVERSION"}


def test_ownership(fleet, scope_a):
    group = dynamic_group(None, [("ownership", "Personal")])
    assert members(group) == {"IPHONE-17.0", "IPHONE-16.7.8", "PIXEL-14"}


def test_os_version_min_is_inclusive(fleet, scope_a):
    group = dynamic_group(None, [("platform", "ios"), ("os_version_min", "17")])
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-17.0", "IPHONE-18.0"}
    group = dynamic_group(None, [("platform", "ios"), ("os_version_min", "17.4.1")], name="min exact")
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-18.0"}


def test_os_version_max_includes_every_release_of_the_given_version(fleet, scope_a):
    group = dynamic_group(None, [("platform", "ios"), ("os_version_max", "17")])
    # "At most 17" includes 17.4.1 and excludes 18.0.
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-17.0", "IPHONE-16.7.8"}

    group = dynamic_group(None, [("platform", "ios"), ("os_version_max", "17.0")], name="max 17.0")
    assert members(group) == {"IPHONE-17.0", "IPHONE-16.7.8"}

    group = dynamic_group(None, [("platform", "ios"), ("os_version_max", "17.4.0")], name="max 17.4.0")
    assert members(group) == {"IPHONE-17.0", "IPHONE-16.7.8"}


def test_os_version_max_excludes_devices_without_a_version(fleet, scope_a):
    group = dynamic_group(None, [("os_version_max", "99")])
    assert members(group) == ALL - {"MAC-NOVERSION"}


def test_os_version_compare_is_numeric(fleet, scope_a):
    # 10.0 > 9.1 although "10.0" < "9.1" as text.
    group = dynamic_group(None, [("os_version_min", "10.0")])
    assert "PIXEL-9.1" not in members(group)
    assert {"WIN-10.0.22631", "PIXEL-14", "IPHONE-16.7.8"} <= members(group)

    group = dynamic_group(None, [("os_version_max", "9.1")], name="max 9.1")
    assert members(group) == {"PIXEL-9.1"}

    group = dynamic_group(None, [("os_version_min", "9.2"), ("os_version_max", "14")], name="between")
    assert members(group) == {"PIXEL-14", "WIN-10.0.22631"}


def test_version_range_between_min_and_max(fleet, scope_a):
    group = dynamic_group(None, [("os_version_min", "16.7.8"), ("os_version_max", "17.0")])
    assert members(group) == {"IPHONE-17.0", "IPHONE-16.7.8"}


def test_scope_slug(fleet, scope_a):
    group = dynamic_group(None, [("scope", "americas")])
    assert members(group) == {"IPHONE-18.0", "IPHONE-16.7.8", "PIXEL-9.1", "MAC-NOVERSION"}


def test_name_pattern_star_and_question_mark(fleet, scope_a):
    assert members(dynamic_group(None, [("name_pattern", "IPHONE-*")])) == {
        "IPHONE-17.4.1",
        "IPHONE-17.0",
        "IPHONE-18.0",
        "IPHONE-16.7.8",
    }
    # ? is exactly one character; the whole name must match.
    assert members(dynamic_group(None, [("name_pattern", "PIXEL-??")], name="two")) == {"PIXEL-14"}
    assert members(dynamic_group(None, [("name_pattern", "PIXEL-?")], name="one")) == set()
    assert members(dynamic_group(None, [("name_pattern", "PIXEL")], name="whole")) == set()
    assert members(dynamic_group(None, [("name_pattern", "*-1?.?")], name="mid")) == {"IPHONE-17.0", "IPHONE-18.0"}


def test_name_pattern_is_case_insensitive(fleet, scope_a):
    assert members(dynamic_group(None, [("name_pattern", "pixel-*")])) == {"PIXEL-14", "PIXEL-9.1"}
    assert members(dynamic_group(None, [("name_pattern", "Win-*")], name="mixed")) == {"WIN-10.0.22631"}


@pytest.mark.parametrize(
    "pattern, matches, misses",
    [
        ("A.B", ["A.B"], ["AXB", "A-B"]),
        ("LAB (1)", ["LAB (1)"], ["LAB 1"]),
        ("X+Y", ["X+Y"], ["XXY"]),
        ("C[1]", ["C[1]"], ["C1"]),
        ("cost$", ["COST$"], ["COST"]),
        ("^HEAD", ["^HEAD"], ["HEAD"]),
        ("a|b", ["A|B"], ["A", "B"]),
        ("back\\slash", ["BACK\\SLASH"], ["BACKSLASH"]),
        ("under_score{2}", ["UNDER_SCORE{2}"], ["UNDER_SCOREE"]),
        ("50% *", ["50% OFF"], ["50 OFF"]),
    ],
)
def test_name_pattern_treats_regex_metacharacters_literally(scope_a, pattern, matches, misses):
    for name in matches + misses:
        DeviceFactory(name=name, scope=scope_a)
    group = dynamic_group(None, [("name_pattern", pattern)])
    assert members(group) == set(matches)


def test_match_all_versus_match_any(fleet, scope_a):
    rules = [("platform", "ios"), ("ownership", "personal")]
    assert members(dynamic_group(None, rules, match_all=True, name="all")) == {"IPHONE-17.0", "IPHONE-16.7.8"}
    assert members(dynamic_group(None, rules, match_all=False, name="any")) == {
        "IPHONE-17.4.1",
        "IPHONE-17.0",
        "IPHONE-18.0",
        "IPHONE-16.7.8",
        "PIXEL-14",
    }


def test_switching_match_all_changes_membership_at_once(fleet, scope_a):
    rules = [("scope", "emea"), ("platform", "macos")]
    group = dynamic_group(None, rules, match_all=True)
    assert members(group) == set()
    device_services.device_group_save(
        actor=SYSTEM, group=group, name=group.name, scope=None, membership_type=DYNAMIC, match_all=False
    )
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-17.0", "PIXEL-14", "WIN-10.0.22631", "MAC-NOVERSION"}


def test_empty_rule_set_has_no_members(fleet, scope_a):
    assert members(dynamic_group(None, [], match_all=True, name="all")) == set()
    assert members(dynamic_group(None, [], match_all=False, name="any")) == set()


def test_membership_follows_device_changes(fleet, scope_a):
    group = dynamic_group(None, [("ownership", "corporate"), ("scope", "emea")])
    assert members(group) == {"IPHONE-17.4.1", "WIN-10.0.22631"}
    device_services.device_update(actor=SYSTEM, device=fleet["PIXEL-14"], data={"ownership": Ownership.CORPORATE})
    assert members(group) == {"IPHONE-17.4.1", "WIN-10.0.22631", "PIXEL-14"}


def test_static_membership(fleet, scope_a):
    picked = [fleet["PIXEL-14"], fleet["MAC-NOVERSION"]]
    group = device_services.device_group_save(actor=SYSTEM, name="Hand-picked", scope=None, static_members=picked)
    assert members(group) == {"PIXEL-14", "MAC-NOVERSION"}

    device_services.device_group_save(
        actor=SYSTEM, group=group, name=group.name, scope=None, static_members=[fleet["IPHONE-18.0"]]
    )
    assert members(group) == {"IPHONE-18.0"}


def test_static_group_refuses_rules(fleet, scope_a):
    group = device_services.device_group_save(actor=SYSTEM, name="Static", scope=scope_a)
    with pytest.raises(ValidationError, match="static group has no rules"):
        device_services.device_group_rules_set(actor=SYSTEM, group=group, rules=[("platform", "ios")])
    assert not group.rules.exists()


def test_dynamic_group_refuses_hand_picked_members(fleet, scope_a):
    with pytest.raises(ValidationError, match="cannot have hand-picked members"):
        device_services.device_group_save(
            actor=SYSTEM, name="Both", scope=scope_a, membership_type=DYNAMIC, static_members=[fleet["PIXEL-14"]]
        )
    assert not DeviceGroup.objects.filter(name="Both").exists()


# Validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, expected",
    [
        (GroupRuleField.PLATFORM, " iOS , Android ", "ios,android"),
        (GroupRuleField.OWNERSHIP, "Corporate", "corporate"),
        (GroupRuleField.OS_VERSION_MIN, "17.4", "17.4"),
        (GroupRuleField.OS_VERSION_MAX, " 10.0.22631 ", "10.0.22631"),
        (GroupRuleField.NAME_PATTERN, "LAB-*", "LAB-*"),
    ],
)
def test_rule_validate_normalises(field, value, expected):
    assert rule_validate(field, value) == expected


def test_rule_validate_scope_slug(scope_a):
    assert rule_validate(GroupRuleField.SCOPE, "emea") == "emea"


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        (GroupRuleField.PLATFORM, "symbian", "symbian"),
        (GroupRuleField.PLATFORM, "ios, blackberry", "blackberry"),
        (GroupRuleField.PLATFORM, ",,", "platform"),
        (GroupRuleField.OWNERSHIP, "leased", "Ownership must be one of"),
        (GroupRuleField.OS_VERSION_MIN, "seventeen", "is not a version number"),
        (GroupRuleField.OS_VERSION_MAX, "17.x", "is not a version number"),
        (GroupRuleField.OS_VERSION_MAX, "17.4.1.2.5", "is not a version number"),
        (GroupRuleField.OS_VERSION_MIN, "v17", "is not a version number"),
        (GroupRuleField.SCOPE, "atlantis", "no scope with the slug"),
        (GroupRuleField.NAME_PATTERN, "X" * 101, "at most 100 characters"),
        (GroupRuleField.PLATFORM, "   ", "Enter a value"),
        ("serial_number", "123", "Unknown rule field"),
    ],
)
def test_rule_validate_refuses_with_a_sentence(scope_a, field, value, fragment):
    with pytest.raises(ValidationError) as info:
        rule_validate(field, value)
    message = " ".join(info.value.messages)
    assert fragment.lower() in message.lower()
    # A sentence: words, a capital (or a quoted value) first, a full stop last.
    assert message[0].isupper() or message[0] == "'"
    assert " " in message.strip()
    assert message.rstrip().endswith(".")


def test_rules_set_saves_nothing_if_one_rule_is_bad(fleet, scope_a):
    group = dynamic_group(None, [("platform", "ios")])
    events = AuditEvent.objects.filter(verb="device_group.rules_set").count()
    with pytest.raises(ValidationError) as info:
        device_services.device_group_rules_set(
            actor=SYSTEM,
            group=group,
            rules=[("platform", "android"), ("os_version_min", "abc"), ("ownership", "personal")],
        )
    assert info.value.messages[0].startswith("Rule 2:")
    assert len(info.value.messages) == 1
    assert list(group.rules.values_list("field", "value")) == [("platform", "ios")]
    assert AuditEvent.objects.filter(verb="device_group.rules_set").count() == events
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-17.0", "IPHONE-18.0", "IPHONE-16.7.8"}


def test_rules_set_reports_every_bad_rule(scope_a):
    group = dynamic_group(None, [])
    with pytest.raises(ValidationError) as info:
        device_services.device_group_rules_set(
            actor=SYSTEM, group=group, rules=[("platform", "palm"), ("ownership", "corporate"), ("scope", "nowhere")]
        )
    assert [m.split(":")[0] for m in info.value.messages] == ["Rule 1", "Rule 3"]
    assert not group.rules.exists()


# Admin -----------------------------------------------------------------------------------------


def group_form(**overrides):
    data = {
        "name": "Admin group",
        "description": "",
        "scope": "",
        "membership_type": DYNAMIC,
        "match_all": "on",
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
        "rules-0-field": "platform",
        "rules-0-value": "ios",
    }
    data.update(overrides)
    return data


def test_admin_add_dynamic_group_with_rules(client, people):
    client.force_login(people.global_admin)
    response = client.post(reverse("admin:devices_devicegroup_add"), group_form(scope=""))
    assert response.status_code == 302, response.content.decode()[:3000]
    group = DeviceGroup.objects.get(name="Admin group")
    assert group.scope is None
    assert list(group.rules.values_list("field", "value")) == [("platform", "ios")]
    assert set(device_group_devices(group).values_list("name", flat=True)) == {"EMEA-PHONE-1", "AMER-PHONE-1"}


# A group's scope bounds its membership -----------------------------------------------------------


def test_rule_group_in_a_scope_holds_only_that_scopes_devices(fleet, scope_a):
    group = dynamic_group(scope_a, [("platform", "ios")])
    assert members(group) == {"IPHONE-17.4.1", "IPHONE-17.0"}


def test_static_group_in_a_scope_refuses_devices_of_another_scope(fleet, scope_a):
    with pytest.raises(ValidationError, match=r"not in the scope EMEA: IPHONE-18\.0"):
        device_services.device_group_save(
            actor=SYSTEM, name="Mixed", scope=scope_a, static_members=[fleet["PIXEL-14"], fleet["IPHONE-18.0"]]
        )
    assert not DeviceGroup.objects.filter(name="Mixed").exists()


def test_scoped_operator_must_choose_a_scope_for_a_new_group(client, people):
    editor = people.helpdesk_a
    grant(editor, "Global administrator", [people.scope_a])
    client.force_login(editor)
    response = client.post(reverse("admin:devices_devicegroup_add"), group_form(scope=""))
    assert response.status_code == 200
    assert b"This field is required" in response.content
    assert not DeviceGroup.objects.filter(name="Admin group").exists()


def test_group_member_count_in_the_admin_counts_only_what_the_operator_sees(client, people):
    group = dynamic_group(None, [("platform", "ios")], name="Every iPhone")
    viewer = people.helpdesk_a
    grant(viewer, "Read-only operator", [people.scope_a])
    client.force_login(people.global_admin)
    assert b"2 device(s)" in client.get(reverse("admin:devices_devicegroup_change", args=[group.pk])).content
    scoped_group = dynamic_group(people.scope_a, [("platform", "ios")], name="EMEA iPhones")
    client.force_login(viewer)
    page = client.get(reverse("admin:devices_devicegroup_change", args=[scoped_group.pk]))
    assert page.status_code == 200
    assert b"1 device(s)" in page.content


def test_admin_add_form_with_invalid_rule_shows_error_and_writes_nothing(client, people):
    client.force_login(people.global_admin)
    groups, rules, events = DeviceGroup.objects.count(), DeviceGroupRule.objects.count(), AuditEvent.objects.count()
    response = client.post(
        reverse("admin:devices_devicegroup_add"),
        group_form(scope=people.scope_a.pk, **{"rules-0-field": "os_version_min", "rules-0-value": "latest"}),
    )
    assert response.status_code == 200
    assert b"is not a version number" in response.content
    assert (DeviceGroup.objects.count(), DeviceGroupRule.objects.count(), AuditEvent.objects.count()) == (
        groups,
        rules,
        events,
    )


def test_admin_static_group_with_rules_is_refused_with_an_error(client, people):
    client.force_login(people.global_admin)
    groups, events = DeviceGroup.objects.count(), AuditEvent.objects.count()
    response = client.post(
        reverse("admin:devices_devicegroup_add"), group_form(scope=people.scope_a.pk, membership_type=STATIC)
    )
    assert response.status_code == 200
    assert b"A static group has no rules" in response.content
    assert (DeviceGroup.objects.count(), AuditEvent.objects.count()) == (groups, events)


def test_admin_change_dynamic_to_static_with_rules_is_refused(client, people):
    group = dynamic_group(people.scope_a, [("platform", "ios")], name="Existing")
    rule = group.rules.get()
    client.force_login(people.global_admin)
    response = client.post(
        reverse("admin:devices_devicegroup_change", args=[group.pk]),
        group_form(
            name="Existing",
            scope=people.scope_a.pk,
            membership_type=STATIC,
            **{"rules-INITIAL_FORMS": "1", "rules-0-id": rule.pk, "rules-0-group": group.pk},
        ),
    )
    assert response.status_code == 200
    assert b"A static group has no rules" in response.content
    assert DeviceGroup.objects.get(pk=group.pk).membership_type == DYNAMIC


def test_admin_device_changelist_filters_by_rule_group(client, people, fleet):
    group = dynamic_group(None, [("platform", "android")])
    client.force_login(people.global_admin)
    response = client.get(reverse("admin:devices_device_changelist") + f"?device_group={group.pk}")
    assert response.status_code == 200
    content = response.content.decode()
    assert "PIXEL-14" in content
    assert "PIXEL-9.1" in content
    for name in ("IPHONE-17.4.1", "WIN-10.0.22631", "EMEA-PHONE-1", "AMER-PHONE-1"):
        assert name not in content


def test_admin_device_changelist_filters_by_static_group(client, people, fleet):
    group = device_services.device_group_save(
        actor=SYSTEM, name="Picked", scope=people.scope_a, static_members=[fleet["WIN-10.0.22631"]]
    )
    client.force_login(people.global_admin)
    content = client.get(reverse("admin:devices_device_changelist") + f"?device_group={group.pk}").content.decode()
    assert "WIN-10.0.22631" in content
    assert "PIXEL-14" not in content
    assert "EMEA-PHONE-1" not in content


def test_admin_group_filter_stays_within_the_operators_scope(client, people, fleet):
    """A helpdesk operator filtering by a group sees only its members in their own scope."""
    group = dynamic_group(people.scope_a, [("platform", "ios")])
    client.force_login(people.helpdesk_a)
    content = client.get(reverse("admin:devices_device_changelist") + f"?device_group={group.pk}").content.decode()
    assert "IPHONE-17.4.1" in content
    assert "EMEA-PHONE-1" in content
    assert "IPHONE-18.0" not in content  # a member, but in scope B
    assert "PIXEL-14" not in content


def test_admin_group_filter_for_a_group_out_of_scope_shows_nothing(client, people, fleet):
    group = dynamic_group(people.scope_b, [("platform", "ios")])
    client.force_login(people.helpdesk_a)
    content = client.get(reverse("admin:devices_device_changelist") + f"?device_group={group.pk}").content.decode()
    assert "IPHONE-17.4.1" not in content
    assert "EMEA-PHONE-1" not in content


# versions.version_key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, key",
    [
        ("17.4.1", "000017.000004.000001.000000"),
        ("17", "000017.000000.000000.000000"),
        ("10.0.22631.3155", "000010.000000.022631.003155"),
        ("6.1.0-18-amd64", "000006.000001.000000.000000"),
        ("14 (UP1A.231005.007)", "000014.000000.000000.000000"),
        ("1.2.3.4.5", "000001.000002.000003.000004"),
        ("", ""),
        ("beta", ""),
    ],
)
def test_version_key(version, key):
    assert version_key(version) == key


@pytest.mark.parametrize(
    "lower, higher",
    [("9.1", "10.0"), ("17.4", "17.4.1"), ("17.9", "17.10"), ("2", "10"), ("", "0.1"), ("16.7.8", "17")],
)
def test_version_key_orders_numerically(lower, higher):
    assert version_key(lower) < version_key(higher)


def test_version_key_missing_components_count_as_zero():
    assert version_key("17") == version_key("17.0") == version_key("17.0.0.0")


def test_parse_version():
    assert parse_version(" 17.4 ") == version_key("17.4")
    for bad in ("", "17.", ".17", "17..4", "17.4-beta", "v17", "1.2.3.4.5"):
        with pytest.raises(InvalidVersion, match="is not a version number"):
            parse_version(bad)
