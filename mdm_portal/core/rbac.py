"""Keeps Django and guardian permissions in step with role assignments.

For each ``RoleAssignment`` there is one Django ``Group`` whose members are the assignment's
effective members (its people plus the members of its user groups). If the assignment covers all
scopes, the group carries the role's permissions as ordinary Django permissions; otherwise it
carries guardian object permissions on each assigned scope, one row per (scope, scoped permission).
No permission row is ever written per device.

Everything here is set-based and idempotent: call the sync after any change and the tables match.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from .models import RoleAssignment, Scope, ScopeGroupObjectPermission, User
from .scoped_permissions import SCOPED_PERMISSIONS, twin_codename

GROUP_NAME_PREFIX = "role-assignment:"


def _ensure_group(assignment: RoleAssignment) -> Group:
    if assignment.auth_group_id is None:
        group, _ = Group.objects.get_or_create(name=f"{GROUP_NAME_PREFIX}{assignment.pk}")
        assignment.auth_group = group
        RoleAssignment.objects.filter(pk=assignment.pk).update(auth_group=group)
    return assignment.auth_group


def effective_member_ids(assignment: RoleAssignment) -> set[int]:
    return set(
        User.objects.filter(Q(role_assignments=assignment) | Q(user_groups__role_assignments=assignment))
        .values_list("pk", flat=True)
        .distinct()
    )


def _twin_permission_ids(permissions: list[Permission]) -> list[int]:
    scoped = {p for p in SCOPED_PERMISSIONS}
    wanted = {
        twin_codename(f"{p.content_type.app_label}.{p.codename}")
        for p in permissions
        if f"{p.content_type.app_label}.{p.codename}" in scoped
    }
    if not wanted:
        return []
    return list(
        Permission.objects.filter(
            content_type__app_label="core", content_type__model="scope", codename__in=wanted
        ).values_list("pk", flat=True)
    )


def role_assignment_sync(assignment: RoleAssignment) -> None:
    """Make the assignment's group, its members and its permission rows match the assignment."""
    group = _ensure_group(assignment)

    wanted_members = effective_member_ids(assignment)
    through = User.groups.through
    current_members = set(through.objects.filter(group=group).values_list("user_id", flat=True))
    through.objects.filter(group=group, user_id__in=current_members - wanted_members).delete()
    through.objects.bulk_create([through(group=group, user_id=uid) for uid in wanted_members - current_members])

    role_permissions = list(assignment.role.permissions.select_related("content_type"))
    if assignment.all_scopes:
        group.permissions.set(role_permissions)
        ScopeGroupObjectPermission.objects.filter(group=group).delete()
        return

    group.permissions.clear()
    twin_ids = _twin_permission_ids(role_permissions)
    scope_ids = list(assignment.scopes.values_list("pk", flat=True))
    wanted_rows = {(scope_id, perm_id) for scope_id in scope_ids for perm_id in twin_ids}
    current_rows = set(
        ScopeGroupObjectPermission.objects.filter(group=group).values_list("content_object_id", "permission_id")
    )
    stale = current_rows - wanted_rows
    if stale:
        stale_q = Q()
        for scope_id, perm_id in stale:
            stale_q |= Q(content_object_id=scope_id, permission_id=perm_id)
        ScopeGroupObjectPermission.objects.filter(stale_q, group=group).delete()
    ScopeGroupObjectPermission.objects.bulk_create(
        [
            ScopeGroupObjectPermission(group=group, content_object_id=scope_id, permission_id=perm_id)
            for scope_id, perm_id in wanted_rows - current_rows
        ]
    )


def role_assignment_teardown(assignment: RoleAssignment) -> None:
    """Remove every grant the assignment gave (before it is deleted)."""
    if assignment.auth_group_id is not None:
        group = assignment.auth_group
        ScopeGroupObjectPermission.objects.filter(group=group).delete()
        group.delete()


def sync_assignments(assignments) -> None:
    for assignment in assignments.select_related("role", "auth_group"):
        role_assignment_sync(assignment)


def sync_for_role(role_id: int) -> None:
    sync_assignments(RoleAssignment.objects.filter(role_id=role_id))


def sync_for_user_groups(user_group_ids: list[int]) -> None:
    sync_assignments(RoleAssignment.objects.filter(user_groups__in=user_group_ids).distinct())


def sync_for_scope(scope: Scope) -> None:
    sync_assignments(RoleAssignment.objects.filter(scopes=scope))
