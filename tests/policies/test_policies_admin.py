"""The IT console for profiles and policies, through HTTP: the editor, assignments and their preview,
scopes, secrets, deliveries and resend, retire approvals, the effective-policy page, query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.choices import CommandType, LifecycleState
from devices.models import DeviceCommand
from mdm_portal.core.models import AuditEvent
from policies.choices import AssignmentTarget, DeliveryState, ProfileKind, RetireApprovalStatus
from policies.models import (
    CompliancePolicy,
    ComplianceSettings,
    ConfigurationProfile,
    ProfileAssignment,
    ProfileDelivery,
    RetireApproval,
)
from policies.secrets import secrets_decrypt
from policies.services.compliance import device_compliance_evaluate
from policies.targeting import targeted_devices
from tests.factories import DeviceFactory, StaffFactory, grant
from tests.policies.admin_helpers import (
    add_url,
    assignment_row,
    change_url,
    delivered,
    device_group,
    formset,
    make_policy,
    make_profile,
    passcode_form,
    policy_manager,
    wifi_form,
)

pytestmark = pytest.mark.django_db

SECRET = "Sup3r-Secret-Wifi-Pass"


@pytest.fixture
def manager_a(people):
    return policy_manager(people.scope_a)


def _errors_in_row(content: str, row_id: str) -> str:
    start = content.index(f'id="{row_id}"')
    end = content.index("</tr>", start)
    return content[content.rindex("<tr", 0, start) : end]


# Creating and editing ---------------------------------------------------------------------------------


def test_adding_starts_with_the_kind(client, people):
    client.force_login(people.global_admin)
    response = client.get(add_url())
    assert response.status_code == 200
    content = response.content.decode()
    for kind in ProfileKind.values:
        assert f"?kind={kind}" in content
    form = client.get(add_url("passcode")).content.decode()
    assert 'name="setting_min_length"' in form and 'name="setting_ssid"' not in form


def test_create_a_passcode_profile_through_the_admin(client, people):
    client.force_login(people.global_admin)
    response = client.post(add_url("passcode"), passcode_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    profile = ConfigurationProfile.objects.get(name="Passcode for everyone")
    assert profile.kind == ProfileKind.PASSCODE
    assert profile.scope is None
    assert profile.settings == {
        "require_passcode": True,
        "min_length": 8,
        "complexity": "alphanumeric",
        "max_failed_attempts": 10,
        "auto_lock_minutes": 5,
    }
    assert [(a.mode, a.target) for a in profile.assignments.all()] == [("include", "all_devices")]
    assert AuditEvent.objects.filter(verb="profile.create", target_id=str(profile.pk)).exists()
    assert AuditEvent.objects.filter(verb="profile.assignments", target_id=str(profile.pk)).exists()


def test_a_setting_out_of_range_is_shown_next_to_it_and_nothing_is_saved(client, people):
    client.force_login(people.global_admin)
    response = client.post(add_url("passcode"), passcode_form(min_length="40"))
    assert response.status_code == 200
    assert "setting_min_length" in response.context["form"].errors
    assert not ConfigurationProfile.objects.exists()


def test_a_bad_assignment_row_shows_its_error_and_nothing_is_saved(client, people):
    group_a = device_group("EMEA phones", people.scope_a, [people.device_a])
    profile = make_profile("Passcode", rows=[{"mode": "include", "target": "device_group", "device_group": group_a}])
    before_settings = dict(profile.settings)
    client.force_login(people.global_admin)

    rows = [
        assignment_row("device_group", device_group=group_a.pk),
        assignment_row("device_group"),  # no group chosen
        assignment_row("all_devices", mode="exclude", filter_os_min="not a version"),
    ]
    response = client.post(change_url(profile), passcode_form("Passcode", rows=rows, initial=1, min_length="12"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "nothing was saved" in content
    second = _errors_in_row(content, "assignments-1-row")
    assert "has-errors" in second and "Choose a device group you can see." in second
    third = _errors_in_row(content, "assignments-2-row")
    assert "has-errors" in third and "errorlist" in third
    assert "has-errors" not in _errors_in_row(content, "assignments-0-row")
    profile.refresh_from_db()
    assert profile.settings == before_settings  # the settings change was not written either
    assert profile.version == 1
    assert [(a.target, a.device_group_id) for a in profile.assignments.all()] == [("device_group", group_a.pk)]


def test_editing_keeps_stored_rows_and_replaces_them_as_a_whole(client, people):
    profile = make_profile("Passcode")
    client.force_login(people.global_admin)
    rows = [assignment_row(), assignment_row("all_devices", mode="exclude", filter_platforms=["android"])]
    response = client.post(change_url(profile), passcode_form("Passcode", rows=rows, initial=1))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert [(a.mode, a.filter_platforms) for a in profile.assignments.order_by("mode")] == [
        ("exclude", ["android"]),
        ("include", []),
    ]
    profile.refresh_from_db()
    assert profile.version == 2  # the settings changed (min length 8, ...)


def test_preview_counts_what_targeting_selects_and_saves_nothing(client, people):
    for n in range(3):
        DeviceFactory(name=f"EMEA-IPHONE-{n}", scope=people.scope_a, platform="ios")
    for n in range(2):
        DeviceFactory(name=f"EMEA-PIXEL-{n}", scope=people.scope_a, platform="android", os_version="14")
    DeviceFactory(name="EMEA-OLD-PIXEL", scope=people.scope_a, platform="android", os_version="11")
    client.force_login(people.global_admin)
    rows = [assignment_row(), assignment_row("all_devices", mode="exclude", filter_os_max="12")]
    data = passcode_form(scope=people.scope_a.pk, rows=rows) | {"_preview": "1"}

    response = client.post(add_url("passcode"), data)

    assert response.status_code == 200
    preview = response.context["preview"]
    proposed = ConfigurationProfile(kind="passcode", scope=people.scope_a)
    expected = targeted_devices(
        proposed,
        [
            ProfileAssignment(mode="include", target=AssignmentTarget.ALL_DEVICES),
            ProfileAssignment(mode="exclude", target=AssignmentTarget.ALL_DEVICES, filter_os_max="12"),
        ],
    )
    assert preview.total == expected.count() == 6  # device_a (iOS) + 3 iPhones + 2 Pixels
    assert dict(preview.by_platform) == {"iOS": 4, "Android": 2}
    content = response.content.decode()
    assert "This will apply to 6 devices: 4 iOS, 2 Android." in content
    assert "EMEA-IPHONE-0" in content and "EMEA-OLD-PIXEL" not in content
    assert 'name="_save"' in content
    assert not ConfigurationProfile.objects.exists()


def test_preview_sample_lists_at_most_ten_names(client, people):
    for n in range(12):
        DeviceFactory(name=f"EMEA-LAPTOP-{n:02d}", scope=people.scope_a, platform="windows", os_version="10.0.22631")
    client.force_login(people.global_admin)
    response = client.post(add_url("passcode"), passcode_form(scope=people.scope_a.pk) | {"_preview": "1"})
    preview = response.context["preview"]
    assert preview.total == 13
    assert len(preview.sample) == 10
    assert "The first 10 of 13" in response.content.decode()


# Scopes ---------------------------------------------------------------------------------------------


def test_scoped_manager_cannot_see_or_choose_other_scopes(client, people, manager_a):
    group_a = device_group("EMEA phones", people.scope_a, [people.device_a])
    group_b = device_group("Americas phones", people.scope_b, [people.device_b])
    in_a = make_profile("EMEA passcode", scope=people.scope_a)
    in_b = make_profile("Americas passcode", scope=people.scope_b)
    global_profile = make_profile("Everyone's passcode")
    client.force_login(manager_a)

    listing = client.get(reverse("admin:policies_configurationprofile_changelist")).content.decode()
    assert change_url(in_a) in listing
    assert change_url(in_b) not in listing and change_url(global_profile) not in listing
    assert client.get(change_url(in_b)).status_code == 404
    assert client.get(change_url(global_profile)).status_code == 404
    for name in ("deliveries", "resend"):
        url = reverse(f"admin:policies_configurationprofile_{name}", args=[in_b.pk])
        assert client.get(url).status_code == 404, name
    assert (
        client.post(reverse("admin:policies_configurationprofile_delete", args=[in_b.pk]), {"post": "yes"}).status_code
        == 404
    )
    assert ConfigurationProfile.objects.filter(pk=in_b.pk).exists()

    page = client.get(change_url(in_a))
    assert page.status_code == 200
    row = page.context["assignments"].forms[0]
    assert list(row.fields["device_group"].queryset) == [group_a]
    assert list(page.context["adminform"].form.fields["scope"].queryset) == [people.scope_a]
    assert "Americas phones" not in page.content.decode()

    before = snapshot_assignments(in_a)
    rows = [assignment_row("device_group", device_group=group_b.pk)]
    response = client.post(
        change_url(in_a), passcode_form("EMEA passcode", scope=people.scope_a.pk, rows=rows, initial=1)
    )
    assert response.status_code == 200
    assert response.context["assignments"].forms[0].errors["device_group"]
    assert snapshot_assignments(in_a) == before

    moved = client.post(change_url(in_a), passcode_form("EMEA passcode", scope=people.scope_b.pk, initial=1))
    assert moved.status_code == 200 and "scope" in moved.context["adminform"].form.errors
    organisation_wide = client.post(add_url("passcode"), passcode_form("Mine everywhere", scope=""))
    assert organisation_wide.status_code == 200 and "scope" in organisation_wide.context["adminform"].form.errors

    created = client.post(add_url("passcode"), passcode_form("EMEA strict", scope=people.scope_a.pk))
    assert created.status_code == 302
    assert ConfigurationProfile.objects.get(name="EMEA strict").scope == people.scope_a


def snapshot_assignments(obj):
    return [(a.mode, a.target, a.device_group_id, a.user_group_id) for a in obj.assignments.all()]


def test_scoped_manager_sees_only_their_scopes_policies_and_deliveries(client, people, manager_a):
    policy_a = make_policy("EMEA iOS", scope=people.scope_a, encryption_required=True)
    policy_b = make_policy("Americas iOS", scope=people.scope_b, encryption_required=True)
    profile_a = make_profile("EMEA passcode", scope=people.scope_a)
    profile_b = make_profile("Americas passcode", scope=people.scope_b)
    delivered(profile_a)
    delivered(profile_b)
    client.force_login(manager_a)

    listing = client.get(reverse("admin:policies_compliancepolicy_changelist")).content.decode()
    assert change_url(policy_a) in listing and change_url(policy_b) not in listing
    assert client.get(change_url(policy_b)).status_code == 404

    deliveries = client.get(reverse("admin:policies_profiledelivery_changelist")).content.decode()
    assert people.device_a.name in deliveries and people.device_b.name not in deliveries
    for query in ({"q": "AMER"}, {"device__scope__id__exact": people.scope_b.pk}, {"profile__id__exact": profile_b.pk}):
        content = client.get(reverse("admin:policies_profiledelivery_changelist"), query).content.decode()
        assert people.device_b.name not in content, query


# Secrets ----------------------------------------------------------------------------------------------


def test_a_secret_never_appears_in_any_response(client, people):
    client.force_login(people.global_admin)
    created = client.post(add_url("wifi"), wifi_form("Office Wi-Fi", password=SECRET))
    assert created.status_code == 302, created.content.decode()[:3000]
    profile = ConfigurationProfile.objects.get(name="Office Wi-Fi")
    assert secrets_decrypt(profile.secret_settings) == {"password": SECRET}
    assert SECRET not in profile.secret_settings
    delivered(profile)

    pages = [
        client.get(change_url(profile)),
        client.get(reverse("admin:policies_configurationprofile_changelist")),
        client.get(reverse("admin:policies_configurationprofile_deliveries", args=[profile.pk])),
        client.get(reverse("admin:policies_effective_device", args=[people.device_a.pk])),
        client.get(reverse("admin:policies_effective_user", args=[people.employee.pk])),
        client.get(reverse("admin:policies_profiledelivery_changelist")),
        # the page again after an error and after a preview, with the secret in the POST
        client.post(change_url(profile), wifi_form("", password=SECRET, initial=1)),
        client.post(change_url(profile), wifi_form("Office Wi-Fi", password=SECRET, initial=1) | {"_preview": "1"}),
    ]
    for response in pages:
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
    change_page = pages[0].content.decode()
    assert "leave blank to keep it" in change_page
    assert 'name="setting_password"' in change_page and "••••••" in change_page  # masked in the payloads
    assert not AuditEvent.objects.filter(changes__icontains=SECRET).exists()

    # Saving with the password left blank keeps it; the version does not change.
    kept = client.post(change_url(profile), wifi_form("Office Wi-Fi", password="", initial=1))
    assert kept.status_code == 302
    profile.refresh_from_db()
    assert secrets_decrypt(profile.secret_settings) == {"password": SECRET}
    assert profile.version == 1


# Deliveries, resend, native payloads -------------------------------------------------------------------


def test_change_page_shows_native_payloads_and_what_is_not_applicable(client, people):
    profile = make_profile("Encryption", kind=ProfileKind.ENCRYPTION, settings={"require_encryption": True})
    client.force_login(people.global_admin)
    response = client.get(change_url(profile))
    payloads = {p["platform"]: p for p in response.context["payloads"]}
    assert set(payloads) == {"iOS", "iPadOS", "Android", "Windows", "macOS", "Linux"}
    assert "<plist" in payloads["macOS"]["content"]
    assert payloads["iOS"]["not_applicable"]  # iOS always encrypts: reported, not dropped
    assert "not applicable" in response.content.decode()


def test_resend_failed_from_the_profile(client, people):
    extra = DeviceFactory(name="EMEA-PHONE-2", scope=people.scope_a)
    profile = make_profile("Passcode")
    delivered(profile, error_on=[people.device_a, people.device_b])
    client.force_login(people.global_admin)

    page = client.get(reverse("admin:policies_configurationprofile_deliveries", args=[profile.pk]))
    assert page.status_code == 200
    assert "payload rejected" in page.content.decode()
    counts = {state: n for state, _, n in page.context["counts"]}
    assert counts[DeliveryState.ERROR] == 2 and counts[DeliveryState.PENDING] == 1

    url = reverse("admin:policies_configurationprofile_resend", args=[profile.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and confirm.context["failed"] == 2
    assert ProfileDelivery.objects.filter(state=DeliveryState.ERROR).count() == 2  # a GET changes nothing

    commands_before = DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE).count()
    done = client.post(url, {"post": "yes"})
    assert done.status_code == 302
    assert not ProfileDelivery.objects.filter(profile=profile, state=DeliveryState.ERROR).exists()
    assert ProfileDelivery.objects.get(profile=profile, device=extra).state == DeliveryState.PENDING
    assert AuditEvent.objects.filter(verb="profile.resend_failed", target_id=str(profile.pk)).exists()
    assert DeviceCommand.objects.filter(command_type=CommandType.INSTALL_PROFILE).count() >= commands_before


def test_bulk_resend_only_on_devices_the_person_may_resend_to(client, people, manager_a):
    profile = make_profile("Passcode")  # organisation-wide: both scopes' devices
    delivered(profile, error_on=[people.device_a, people.device_b])
    deliveries = list(ProfileDelivery.objects.filter(profile=profile))
    client.force_login(manager_a)
    url = reverse("admin:policies_profiledelivery_changelist")
    selection = {"action": "resend_failed", "_selected_action": [d.pk for d in deliveries]}

    confirm = client.post(url, selection)
    assert confirm.status_code == 200
    assert confirm.context["failed"] == 1
    done = client.post(url, selection | {"post": "yes"})
    assert done.status_code == 302

    states = dict(ProfileDelivery.objects.filter(profile=profile).values_list("device_id", "state"))
    assert states[people.device_a.pk] == DeliveryState.PENDING
    assert states[people.device_b.pk] == DeliveryState.ERROR


def test_read_only_cannot_resend(client, people):
    profile = make_profile("Passcode")
    delivered(profile, error_on=[people.device_a])
    client.force_login(people.read_only)
    url = reverse("admin:policies_configurationprofile_resend", args=[profile.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"post": "yes"}).status_code == 403
    listing = client.get(reverse("admin:policies_profiledelivery_changelist")).content.decode()
    assert 'value="resend_failed"' not in listing
    assert ProfileDelivery.objects.get(profile=profile, device=people.device_a).state == DeliveryState.ERROR


def test_delete_asks_first_then_goes_through_the_service(client, people):
    profile = make_profile("Passcode")
    delivered(profile)
    client.force_login(people.global_admin)
    url = reverse("admin:policies_configurationprofile_delete", args=[profile.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and "will be told to remove it" in confirm.content.decode()
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not ConfigurationProfile.objects.filter(pk=profile.pk).exists()
    assert AuditEvent.objects.filter(verb="profile.delete").exists()
    assert DeviceCommand.objects.filter(command_type=CommandType.REMOVE_PROFILE, device=people.device_a).exists()


# Compliance policies ------------------------------------------------------------------------------------


def _policy_form(name="iOS baseline", *, scope="", rows=None, actions=None, initial=0, actions_initial=0, **rules):
    data = {
        "name": name,
        "description": "",
        "scope": scope,
        "platform": "ios",
        "os_min": "17.0",
        "os_max": "",
        "passcode_min_length": "",
        "passcode_min_quality": "",
        "checkin_max_days": "",
        "blocked_apps": "",
        "encryption_required": "on",
    }
    data.update(rules)
    data.update(formset("assignments", rows if rows is not None else [assignment_row()], initial=initial))
    default_actions = [{"action": "mark_noncompliant", "days_after": "3", "message": ""}]
    data.update(formset("actions", actions if actions is not None else default_actions, initial=actions_initial))
    return data


def test_create_a_compliance_policy_with_its_schedule(client, people):
    client.force_login(people.global_admin)
    actions = [
        {"action": "mark_noncompliant", "days_after": "3", "message": ""},
        {"action": "email", "days_after": "1", "message": "Please fix this."},
    ]
    response = client.post(
        reverse("admin:policies_compliancepolicy_add"), _policy_form(actions=actions, blocked_apps="com.example.game")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    policy = CompliancePolicy.objects.get(name="iOS baseline")
    assert policy.encryption_required and policy.os_min == "17.0"
    assert policy.blocked_apps == ["com.example.game"]
    assert sorted((a.action, a.days_after) for a in policy.actions.all()) == [("email", 1), ("mark_noncompliant", 3)]
    assert policy.assignments.count() == 1


def test_policy_schedule_errors_stay_on_their_row(client, people):
    client.force_login(people.global_admin)
    actions = [
        {"action": "email", "days_after": "1", "message": ""},
        {"action": "email", "days_after": "1", "message": ""},
    ]
    response = client.post(reverse("admin:policies_compliancepolicy_add"), _policy_form(actions=actions))
    assert response.status_code == 200
    assert response.context["formsets"]["actions"].forms[1].errors["days_after"]
    assert not CompliancePolicy.objects.exists()


def test_policy_list_counts_targeted_and_noncompliant_devices(client, people):
    policy = make_policy("iOS baseline", encryption_required=True)
    make_policy("Android baseline", platform="android")
    client.force_login(people.global_admin)
    response = client.get(reverse("admin:policies_compliancepolicy_changelist"))
    rows = {p.name: p.policy_counts for p in response.context["cl"].result_list}
    assert rows["iOS baseline"]["targeted"] == targeted_devices(policy).count() == 2
    assert rows["Android baseline"]["targeted"] == 0


# Retire approvals -----------------------------------------------------------------------------------------


def _approval(device):
    from django.utils import timezone

    return RetireApproval.objects.create(device=device, reason="Noncompliant for 30 days.", requested_at=timezone.now())


def test_global_admin_approves_and_dismisses(client, people):
    approve = _approval(people.device_a)
    dismiss = _approval(people.device_b)
    client.force_login(people.global_admin)

    page = client.get(reverse("admin:policies_retireapproval_decide", args=[approve.pk]))
    assert page.status_code == 200 and 'value="approve"' in page.content.decode()
    assert (
        client.post(
            reverse("admin:policies_retireapproval_decide", args=[approve.pk]), {"decision": "approve"}
        ).status_code
        == 302
    )
    assert (
        client.post(
            reverse("admin:policies_retireapproval_decide", args=[dismiss.pk]), {"decision": "dismiss"}
        ).status_code
        == 302
    )

    approve.refresh_from_db()
    dismiss.refresh_from_db()
    people.device_a.refresh_from_db()
    people.device_b.refresh_from_db()
    assert approve.status == RetireApprovalStatus.APPROVED and approve.decided_by == people.global_admin
    assert people.device_a.lifecycle_state == LifecycleState.RETIRING
    assert dismiss.status == RetireApprovalStatus.DISMISSED
    assert people.device_b.lifecycle_state == LifecycleState.ENROLLED


def test_bulk_approve_with_confirmation(client, people):
    approvals = [_approval(people.device_a), _approval(people.device_b)]
    client.force_login(people.global_admin)
    url = reverse("admin:policies_retireapproval_changelist")
    selection = {"action": "approve", "_selected_action": [a.pk for a in approvals]}
    confirm = client.post(url, selection)
    assert confirm.status_code == 200 and len(confirm.context["approvals"]) == 2
    assert not RetireApproval.objects.exclude(status=RetireApprovalStatus.PENDING).exists()
    assert client.post(url, selection | {"post": "yes"}).status_code == 302
    assert set(RetireApproval.objects.values_list("status", flat=True)) == {RetireApprovalStatus.APPROVED}


def test_deciding_needs_the_right_to_retire(client, people, manager_a):
    approval = _approval(people.device_a)
    client.force_login(manager_a)  # may see approvals in A, may not retire devices
    change = client.get(change_url(approval))
    assert change.status_code == 200 and "decide-link" not in change.content.decode()
    page = client.get(reverse("admin:policies_retireapproval_decide", args=[approval.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "does not allow retiring" in content and 'value="approve"' not in content
    for decision in ("approve", "dismiss"):
        response = client.post(
            reverse("admin:policies_retireapproval_decide", args=[approval.pk]), {"decision": decision}
        )
        assert response.status_code == 403
    listing = client.get(reverse("admin:policies_retireapproval_changelist")).content.decode()
    assert 'value="approve"' not in listing
    approval.refresh_from_db()
    assert approval.status == RetireApprovalStatus.PENDING


def test_a_scoped_retirer_decides_only_in_their_scope(client, people):
    retirer = StaffFactory(username="retirer-a")
    grant(retirer, "Global administrator", [people.scope_a])
    in_a, in_b = _approval(people.device_a), _approval(people.device_b)
    client.force_login(retirer)
    assert client.get(reverse("admin:policies_retireapproval_decide", args=[in_b.pk])).status_code == 404
    url = reverse("admin:policies_retireapproval_changelist")
    client.post(url, {"action": "dismiss", "_selected_action": [in_a.pk, in_b.pk], "post": "yes"})
    in_a.refresh_from_db()
    in_b.refresh_from_db()
    assert in_a.status == RetireApprovalStatus.DISMISSED
    assert in_b.status == RetireApprovalStatus.PENDING


# Settings -------------------------------------------------------------------------------------------------


def test_compliance_settings_singleton(client, people, manager_a):
    client.force_login(people.global_admin)
    listing = client.get(reverse("admin:policies_compliancesettings_changelist"))
    settings = ComplianceSettings.load()
    assert listing.status_code == 302 and listing["Location"] == change_url(settings)
    saved = client.post(change_url(settings), {"validity_days": "14"})
    assert saved.status_code == 302
    settings.refresh_from_db()
    assert settings.validity_days == 14 and settings.no_policy_compliant is False
    assert AuditEvent.objects.filter(verb="compliance.settings_change").exists()
    client.force_login(manager_a)
    assert client.get(reverse("admin:policies_compliancesettings_changelist")).status_code == 403
    assert client.get(change_url(settings)).status_code == 403


# Effective policy ------------------------------------------------------------------------------------------


def test_effective_policy_shows_the_source_assignment_and_conflicts(client, people):
    group_a = device_group("EMEA phones", people.scope_a, [people.device_a])
    make_profile(
        "EMEA passcode",
        scope=people.scope_a,
        settings={"min_length": 6},
        rows=[{"mode": "include", "target": "device_group", "device_group": group_a}],
    )
    make_profile("Everyone's passcode", settings={"min_length": 8})
    make_policy("iOS baseline", encryption_required=True, os_min="16.0")
    make_policy("EMEA iOS", scope=people.scope_a, os_min="17.2")
    device_compliance_evaluate(people.device_a)
    client.force_login(people.global_admin)

    response = client.get(reverse("admin:policies_effective_device", args=[people.device_a.pk]))

    assert response.status_code == 200
    effective = response.context["effective"]
    sources = {p.profile.name: p.assignments for p in effective.profiles}
    assert sources == {
        "EMEA passcode": ["Include device group EMEA phones"],
        "Everyone's passcode": ["Include all devices"],
    }
    assert {p.profile.name for p in effective.conflicts} == {"EMEA passcode", "Everyone's passcode"}
    rules = {r.rule: (r.value, r.policy.name) for r in effective.rules}
    assert rules["os_min"] == ("17.2", "EMEA iOS")  # the most restrictive wins
    assert rules["encryption_required"] == ("Yes", "iOS baseline")
    content = response.content.decode()
    assert "Include device group EMEA phones" in content
    assert "conflicts with" in content

    person = client.get(reverse("admin:policies_effective_user", args=[people.employee.pk]))
    assert person.status_code == 200
    assert [e.device for e in person.context["devices"]] == [people.device_a]


def test_device_and_user_pages_link_to_the_effective_policy(client, people, manager_a):
    client.force_login(manager_a)
    device_page = client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])).content.decode()
    assert reverse("admin:policies_effective_device", args=[people.device_a.pk]) in device_page
    user_page = client.get(reverse("admin:core_user_change", args=[people.employee.pk])).content.decode()
    assert reverse("admin:policies_effective_user", args=[people.employee.pk]) in user_page

    client.force_login(people.helpdesk_a)  # sees the device, not its configuration
    device_page = client.get(reverse("admin:devices_device_change", args=[people.device_a.pk])).content.decode()
    assert "Configuration and compliance" in device_page
    assert reverse("admin:policies_effective_device", args=[people.device_a.pk]) not in device_page


# Query counts ------------------------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("persona", ["global_admin", "manager_a"])
def test_profile_list_query_count_does_not_grow_with_the_page(client, people, manager_a, persona):
    user = manager_a if persona == "manager_a" else people.global_admin
    client.force_login(user)
    url = reverse("admin:policies_configurationprofile_changelist")
    make_profile("Profile 00", scope=people.scope_a)
    delivered(ConfigurationProfile.objects.get())
    one = _queries(client, url)
    for n in range(1, 30):
        delivered(make_profile(f"Profile {n:02d}", scope=people.scope_a))
    thirty = _queries(client, url)
    assert thirty == one
    assert one <= 12


def test_policy_list_query_count_does_not_grow_with_the_page(client, people):
    client.force_login(people.global_admin)
    url = reverse("admin:policies_compliancepolicy_changelist")
    make_policy("Policy 00", encryption_required=True)
    one = _queries(client, url)
    for n in range(1, 30):
        make_policy(f"Policy {n:02d}", os_min="16")
    assert _queries(client, url) == one


def test_effective_page_query_count_is_bounded(client, people):
    client.force_login(people.global_admin)
    url = reverse("admin:policies_effective_device", args=[people.device_a.pk])
    make_profile("Profile 00")
    make_policy("Policy 00", encryption_required=True)
    one = _queries(client, url)
    for n in range(1, 10):
        make_profile(f"Profile {n:02d}", kind=ProfileKind.RESTRICTIONS, settings={"allow_camera": bool(n % 2)})
        make_policy(f"Policy {n:02d}", os_min=f"1{n}")
    assert _queries(client, url) == one


def test_read_only_sees_the_page_disabled_with_the_real_scope(client, people):
    profile = make_profile("EMEA passcode", scope=people.scope_a)
    client.force_login(people.read_only)
    response = client.get(change_url(profile))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert all(field.disabled for field in form.fields.values())
    content = response.content.decode()
    assert f'<option value="{people.scope_a.pk}" selected>EMEA</option>' in content
    assert 'name="_save"' not in content and "data-add-row" not in content


def test_a_scoped_manager_may_target_any_user_group_and_still_reaches_only_their_scope(client, people, manager_a):
    from mdm_portal.core import services as core_services
    from mdm_portal.core.selectors import assignable_user_groups
    from policies.targeting import targeted_devices
    from tests.factories import SYSTEM

    everyone = core_services.user_group_save(
        actor=SYSTEM, name="Everyone", members=[people.employee, people.other_employee]
    )
    sales = core_services.user_group_save(actor=SYSTEM, name="Sales", members=[people.employee])
    profile = make_profile("EMEA passcode", scope=people.scope_a, rows=[])
    client.force_login(manager_a)
    page = client.get(change_url(profile))
    # User groups are directory-wide: whoever manages profiles in a scope may name any of them.
    assert list(page.context["assignments"].forms[0].fields["user_group"].queryset) == [everyone, sales]
    rows = [assignment_row("user_group", user_group=everyone.pk)]
    saved = client.post(
        change_url(profile), passcode_form("EMEA passcode", scope=people.scope_a.pk, rows=rows, initial=0)
    )
    assert saved.status_code == 302, saved.content.decode()[:3000]
    assert [(a.target, a.user_group_id) for a in profile.assignments.all()] == [("user_group", everyone.pk)]
    # ...but a scope-A profile reaches only scope A's devices, whoever else is in the group.
    assert list(targeted_devices(profile)) == [people.device_a]
    # People who manage nothing that can be assigned get no user groups to choose from.
    assert not assignable_user_groups(user=people.helpdesk_a).exists()
    assert not assignable_user_groups(user=people.employee).exists()
