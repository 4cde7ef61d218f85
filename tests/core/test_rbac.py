"""Role assignments: every change reaches the next request, and roles grant exactly what they say.

Each change is checked twice: through a fresh HTTP request (admin device changelist, API device
list) and through ``core.authz`` with a freshly loaded user, since ``authz`` caches per user object.
"""

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse
from guardian.models import GroupObjectPermission, UserObjectPermission

from devices import services as device_services
from devices.choices import EnrollmentMethod, Ownership, Platform
from devices.models import Device
from mdm_portal.core import authz, services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Role, ScopeGroupObjectPermission, User
from mdm_portal.core.roles import BUILTIN_ROLES
from tests.factories import SYSTEM, StaffFactory, grant

pytestmark = pytest.mark.django_db

ADMIN_DEVICES = reverse("admin:devices_device_changelist")
API_DEVICES = reverse("device-list")
VIEW = "devices.view_device"


def fresh(user: User) -> User:
    """The user as the next request sees them: no permission or scope cache carried over."""
    return User.objects.get(pk=user.pk)


def sees(client, user) -> dict:
    """What a fresh request by ``user`` shows: admin status and names, API status and names."""
    client.force_login(user)
    admin = client.get(ADMIN_DEVICES)
    api = client.get(API_DEVICES)
    return {
        "admin_status": admin.status_code,
        "admin_content": admin.content.decode(),
        "api_status": api.status_code,
        "api_names": sorted(d["name"] for d in api.json()["results"]) if api.status_code == 200 else None,
    }


def assert_sees_only_a(client, user, people):
    seen = sees(client, user)
    assert seen["admin_status"] == 200
    assert "EMEA-PHONE-1" in seen["admin_content"]
    assert "AMER-PHONE-1" not in seen["admin_content"]
    assert seen["api_status"] == 200
    assert seen["api_names"] == ["EMEA-PHONE-1"]
    user = fresh(user)
    assert authz.can(user, VIEW, people.device_a)
    assert not authz.can(fresh(user), VIEW, people.device_b)


def assert_sees_only_b(client, user, people):
    seen = sees(client, user)
    assert seen["admin_status"] == 200
    assert "AMER-PHONE-1" in seen["admin_content"]
    assert "EMEA-PHONE-1" not in seen["admin_content"]
    assert seen["api_names"] == ["AMER-PHONE-1"]
    assert authz.can(fresh(user), VIEW, people.device_b)
    assert not authz.can(fresh(user), VIEW, people.device_a)


def assert_sees_both(client, user, people):
    seen = sees(client, user)
    assert seen["admin_status"] == 200
    assert "AMER-PHONE-1" in seen["admin_content"]
    assert "EMEA-PHONE-1" in seen["admin_content"]
    assert seen["api_names"] == ["AMER-PHONE-1", "EMEA-PHONE-1"]
    assert authz.can(fresh(user), VIEW, people.device_a)
    assert authz.can(fresh(user), VIEW, people.device_b)


def assert_sees_nothing(client, user, people):
    seen = sees(client, user)
    assert seen["admin_status"] == 403
    assert seen["api_status"] == 403
    user = fresh(user)
    assert not authz.has_any(user, VIEW)
    assert not authz.can(user, VIEW, people.device_a)
    assert not authz.can(user, VIEW, people.device_b)
    assert not authz.restrict(Device.objects.all(), user, VIEW).exists()


def helpdesk_assignment(user, scopes, *, name="Helpdesk EMEA"):
    return services.role_assignment_save(
        actor=SYSTEM,
        name=name,
        role=Role.objects.get(name="Helpdesk operator"),
        users=[user],
        user_groups=[],
        all_scopes=scopes is None,
        scopes=list(scopes or []),
    )


# Role assignment changes take effect at once ---------------------------------------------------


def test_staff_without_assignment_sees_nothing(client, people):
    assert_sees_nothing(client, people.no_role, people)


def test_grant_scoped_to_a_shows_a_only(client, people):
    operator = StaffFactory(username="new-operator")
    assert_sees_nothing(client, operator, people)
    helpdesk_assignment(operator, [people.scope_a])
    assert_sees_only_a(client, operator, people)


def test_revoke_by_deleting_assignment(client, people):
    operator = StaffFactory(username="new-operator")
    assignment = helpdesk_assignment(operator, [people.scope_a])
    assert_sees_only_a(client, operator, people)

    group_id = assignment.auth_group_id
    services.role_assignment_delete(actor=SYSTEM, assignment=assignment)

    assert_sees_nothing(client, operator, people)
    assert not ScopeGroupObjectPermission.objects.filter(group_id=group_id).exists()


def test_change_scope_from_a_to_b(client, people):
    operator = StaffFactory(username="new-operator")
    assignment = helpdesk_assignment(operator, [people.scope_a])
    assert_sees_only_a(client, operator, people)

    services.role_assignment_save(
        actor=SYSTEM,
        assignment=assignment,
        name=assignment.name,
        role=assignment.role,
        users=[operator],
        user_groups=[],
        all_scopes=False,
        scopes=[people.scope_b],
    )

    assert_sees_only_b(client, operator, people)


def test_switch_to_all_scopes_and_back(client, people):
    operator = StaffFactory(username="new-operator")
    assignment = helpdesk_assignment(operator, [people.scope_a])
    assert_sees_only_a(client, operator, people)

    def save(all_scopes, scopes):
        services.role_assignment_save(
            actor=SYSTEM,
            assignment=assignment,
            name=assignment.name,
            role=assignment.role,
            users=[operator],
            user_groups=[],
            all_scopes=all_scopes,
            scopes=scopes,
        )

    save(True, [])
    assert_sees_both(client, operator, people)
    assert authz.has_global(fresh(operator), VIEW)

    save(False, [people.scope_a])
    assert_sees_only_a(client, operator, people)
    assert not authz.has_global(fresh(operator), VIEW)


def test_assignment_refuses_both_all_scopes_and_scopes(people):
    operator = StaffFactory(username="new-operator")
    with pytest.raises(ValidationError):
        services.role_assignment_save(
            actor=SYSTEM,
            name="Contradictory",
            role=Role.objects.get(name="Helpdesk operator"),
            users=[operator],
            user_groups=[],
            all_scopes=True,
            scopes=[people.scope_a],
        )
    with pytest.raises(ValidationError):
        helpdesk_assignment(operator, [], name="No scopes")  # [] is "some scopes: none"
    assert not authz.has_any(fresh(operator), VIEW)


def test_membership_through_user_group(client, people):
    operator = StaffFactory(username="grouped-operator")
    colleague = StaffFactory(username="colleague")
    group = services.user_group_save(actor=SYSTEM, name="EMEA helpdesk", members=[operator, colleague])
    grant([], "Helpdesk operator", [people.scope_a], name="EMEA helpdesk via group", user_groups=[group])
    assert_sees_only_a(client, operator, people)
    assert_sees_only_a(client, colleague, people)

    # Removing the person from the group revokes at once; the colleague keeps access.
    services.user_group_save(actor=SYSTEM, group=group, name=group.name, members=[colleague])
    assert_sees_nothing(client, operator, people)
    assert_sees_only_a(client, colleague, people)


def test_adding_a_person_to_an_assigned_group_grants_at_once(client, people):
    operator = StaffFactory(username="late-joiner")
    group = services.user_group_save(actor=SYSTEM, name="EMEA helpdesk", members=[])
    grant([], "Helpdesk operator", [people.scope_a], name="EMEA helpdesk via group", user_groups=[group])
    assert_sees_nothing(client, operator, people)

    services.user_group_save(actor=SYSTEM, group=group, name=group.name, members=[operator])
    assert_sees_only_a(client, operator, people)


def test_direct_and_group_membership_overlap(client, people):
    """A person who is both named and in the group keeps access when leaving the group."""
    operator = StaffFactory(username="both-ways")
    group = services.user_group_save(actor=SYSTEM, name="EMEA helpdesk", members=[operator])
    grant([operator], "Helpdesk operator", [people.scope_a], name="Both ways", user_groups=[group])
    services.user_group_save(actor=SYSTEM, group=group, name=group.name, members=[])
    assert_sees_only_a(client, operator, people)


def _perms(*names):
    result = []
    for name in names:
        app_label, codename = name.split(".")
        result.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return result


def test_custom_role_permission_change_reaches_existing_assignment(client, people):
    operator = StaffFactory(username="custom-operator")
    role = services.role_save(actor=SYSTEM, name="Device lockers", permissions=_perms("devices.view_device"))
    grant(operator, "Device lockers", [people.scope_a])
    assert_sees_only_a(client, operator, people)
    assert not authz.can(fresh(operator), "devices.lock_device", people.device_a)

    services.role_save(
        actor=SYSTEM,
        role=role,
        name=role.name,
        permissions=_perms("devices.view_device", "devices.lock_device"),
    )
    operator = fresh(operator)
    assert authz.can(operator, "devices.lock_device", people.device_a)
    assert not authz.can(operator, "devices.lock_device", people.device_b)

    services.role_save(actor=SYSTEM, role=role, name=role.name, permissions=_perms("devices.lock_device"))
    assert_sees_nothing(client, operator, people)
    assert authz.can(fresh(operator), "devices.lock_device", people.device_a)


def test_custom_role_change_reaches_all_scopes_assignment(client, people):
    operator = StaffFactory(username="custom-global")
    role = services.role_save(actor=SYSTEM, name="Viewers", permissions=_perms("devices.view_device"))
    grant(operator, "Viewers")
    assert_sees_both(client, operator, people)

    services.role_save(actor=SYSTEM, role=role, name=role.name, permissions=_perms("devices.sync_device"))
    assert_sees_nothing(client, operator, people)
    assert authz.has_global(fresh(operator), "devices.sync_device")


# Built-in roles --------------------------------------------------------------------------------


def test_builtin_roles_exist_after_migrate():
    builtin = Role.objects.filter(is_builtin=True)
    assert sorted(builtin.values_list("name", flat=True)) == sorted(d.name for d in BUILTIN_ROLES)
    for role in builtin:
        assert role.permissions.exists(), f"{role.name} has no permissions"
    helpdesk = Role.objects.get(name="Helpdesk operator")
    codenames = {f"{p.content_type.app_label}.{p.codename}" for p in helpdesk.permissions.all()}
    assert "devices.view_device" in codenames
    assert "devices.lock_device" in codenames


@pytest.mark.parametrize("role_name", [d.name for d in BUILTIN_ROLES])
def test_builtin_role_cannot_be_edited_or_deleted(role_name):
    role = Role.objects.get(name=role_name)
    before = set(role.permissions.values_list("pk", flat=True))
    with pytest.raises(ValidationError, match="built-in role"):
        services.role_save(actor=SYSTEM, role=role, name=role.name, description="Changed", permissions=[])
    with pytest.raises(ValidationError, match="built-in role"):
        services.role_delete(actor=SYSTEM, role=role)
    role = Role.objects.get(pk=role.pk)
    assert role.description != "Changed"
    assert set(role.permissions.values_list("pk", flat=True)) == before


def test_builtin_role_admin_change_page_is_read_only(client, people):
    role = Role.objects.get(name="Helpdesk operator")
    before = set(role.permissions.values_list("pk", flat=True))
    url = reverse("admin:core_role_change", args=[role.pk])
    client.force_login(people.global_admin)

    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert b'name="_continue"' not in page.content

    refused = client.post(url, {"name": "Hijacked", "description": "", "permissions": []})
    assert refused.status_code == 403
    assert client.post(reverse("admin:core_role_delete", args=[role.pk]), {"post": "yes"}).status_code == 403

    role = Role.objects.get(pk=role.pk)
    assert role.name == "Helpdesk operator"
    assert set(role.permissions.values_list("pk", flat=True)) == before


def test_custom_role_admin_change_page_is_editable(client, people):
    """The contrast to the built-in case: the same page saves a custom role."""
    role = services.role_save(actor=SYSTEM, name="Lockers", permissions=_perms("devices.view_device"))
    url = reverse("admin:core_role_change", args=[role.pk])
    client.force_login(people.global_admin)
    assert b'name="_save"' in client.get(url).content
    lock = _perms("devices.lock_device")[0]
    response = client.post(url, {"name": "Lockers", "description": "Lock only", "permissions": [lock.pk]})
    assert response.status_code == 302
    assert list(Role.objects.get(pk=role.pk).permissions.all()) == [lock]


def test_helpdesk_has_no_wipe_or_retire_global_admin_has(people):
    helpdesk, admin = fresh(people.helpdesk_a), fresh(people.global_admin)
    for action in ("devices.wipe_device", "devices.retire_device", "devices.delete_device"):
        assert not authz.can(helpdesk, action, people.device_a), action
        assert authz.can(admin, action, people.device_a), action
        assert authz.can(admin, action, people.device_b), action
    assert authz.can(helpdesk, "devices.lock_device", people.device_a)
    assert not authz.can(helpdesk, "devices.lock_device", people.device_b)


def test_sensitive_permissions_not_granted_by_patterns():
    """Read-only operator's ``*.view_*`` pattern does not reach recovery secrets."""
    read_only = Role.objects.get(name="Read-only operator")
    codenames = {f"{p.content_type.app_label}.{p.codename}" for p in read_only.permissions.all()}
    assert "devices.view_device" in codenames
    assert "devices.view_device_secret" not in codenames
    assert not any(c.startswith(("devices.change_", "devices.wipe", "core.change_")) for c in codenames)


def test_unscoped_permission_in_scoped_assignment_grants_nothing(client, people):
    operator = StaffFactory(username="would-be-role-admin")
    services.role_save(actor=SYSTEM, name="Role editors", permissions=_perms("core.change_role", "core.view_role"))
    assignment = grant(operator, "Role editors", [people.scope_a])

    operator = fresh(operator)
    builtin = Role.objects.get(name="Helpdesk operator")
    for action in ("core.change_role", "core.view_role"):
        assert not authz.has_any(operator, action)
        assert not authz.has_global(operator, action)
        assert not authz.can(operator, action, builtin)
        assert not operator.has_perm(action)
    assert not ScopeGroupObjectPermission.objects.filter(group_id=assignment.auth_group_id).exists()

    client.force_login(operator)
    assert client.get(reverse("admin:core_role_changelist")).status_code == 403
    assert client.get(reverse("admin:core_role_change", args=[builtin.pk])).status_code in (403, 404)


def test_no_permission_rows_per_device(people):
    grant(StaffFactory(username="helpdesk-ab"), "Helpdesk operator", [people.scope_a, people.scope_b])
    counts_before = (
        ScopeGroupObjectPermission.objects.count(),
        GroupObjectPermission.objects.count(),
        UserObjectPermission.objects.count(),
        Permission.objects.count(),
    )
    assert counts_before[0] > 0  # the scoped assignments above do write scope grants

    for n in range(50):
        device_services.device_register(
            actor=SYSTEM,
            name=f"BULK-{n:03d}",
            platform=Platform.ANDROID,
            ownership=Ownership.CORPORATE,
            scope=people.scope_a if n % 2 else people.scope_b,
            enrollment_method=EnrollmentMethod.ADMIN_BULK,
            serial_number=f"BULK{n:06d}",
        )

    counts_after = (
        ScopeGroupObjectPermission.objects.count(),
        GroupObjectPermission.objects.count(),
        UserObjectPermission.objects.count(),
        Permission.objects.count(),
    )
    assert counts_after == counts_before
    # ...and the new devices are visible through the scope grants alone.
    visible = authz.restrict(Device.objects.filter(name__startswith="BULK-"), fresh(people.helpdesk_a), VIEW)
    assert visible.count() == 25


def test_deactivated_user_gets_nothing(client, people):
    client.force_login(people.helpdesk_a)
    assert client.get(ADMIN_DEVICES).status_code == 200
    _, plaintext = services.api_token_create(actor=SYSTEM, user=people.global_admin, name="automation")

    for user in (people.helpdesk_a, people.global_admin):
        user.is_active = False
        services.record_save(actor=SYSTEM, instance=user, fields=["is_active"], created=False)

    # The helpdesk session from before is no longer honoured.
    admin = client.get(ADMIN_DEVICES)
    assert admin.status_code == 302
    assert reverse("admin:login") in admin["Location"]
    assert client.get(API_DEVICES).status_code in (401, 403)

    for user in (fresh(people.helpdesk_a), fresh(people.global_admin)):
        assert not authz.has_any(user, VIEW)
        assert not authz.can(user, VIEW, people.device_a)
        assert not authz.can(user, "devices.wipe_device", people.device_a)
        assert not authz.restrict(Device.objects.all(), user, VIEW).exists()

    client.logout()
    by_token = client.get(API_DEVICES, HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert by_token.status_code in (401, 403)
    assert "deactivated" in by_token.json()["detail"]


def test_superuser_flag_alone_is_inert_when_deactivated(people):
    boss = StaffFactory(username="boss", is_superuser=True)
    assert authz.can(fresh(boss), "devices.wipe_device", people.device_b)
    boss.is_active = False
    services.record_save(actor=Actor.system("tests"), instance=boss, fields=["is_active"], created=False)
    assert not authz.can(fresh(boss), "devices.wipe_device", people.device_b)


def test_api_token_grants_its_owners_roles_whatever_its_characters(client, people, monkeypatch):
    """The secret part is URL-safe base64 and often contains "_"; such a token must still work."""
    monkeypatch.setattr(services.secrets, "token_urlsafe", lambda n: "ab_cd-ef_" + "x" * 34)
    _, plaintext = services.api_token_create(actor=SYSTEM, user=people.helpdesk_a, name="report")
    assert plaintext.count("_") > 2
    response = client.get(API_DEVICES, HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200, response.content
    assert [d["name"] for d in response.json()["results"]] == ["EMEA-PHONE-1"]

    wrong = client.get(API_DEVICES, HTTP_AUTHORIZATION=f"Bearer {plaintext[:-1]}y")
    assert wrong.status_code in (401, 403)
