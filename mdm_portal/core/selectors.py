"""Reads of the directory, roles and audit trail for a person, restricted by ``core.authz``."""

from __future__ import annotations

from django.db.models import QuerySet

from . import authz
from .models import AuditEvent, Role, RoleAssignment, Scope, User, UserGroup


def user_list(*, user, action: str = "core.view_user") -> QuerySet[User]:
    return authz.restrict(User.objects.select_related("scope"), user, action)


def user_group_list(*, user) -> QuerySet[UserGroup]:
    return authz.restrict(UserGroup.objects.all(), user, "core.view_usergroup")


def scope_list(*, user) -> QuerySet[Scope]:
    return authz.restrict(Scope.objects.all(), user, "core.view_scope")


def role_list(*, user) -> QuerySet[Role]:
    return authz.restrict(Role.objects.all(), user, "core.view_role")


def role_assignment_list(*, user) -> QuerySet[RoleAssignment]:
    return authz.restrict(RoleAssignment.objects.select_related("role"), user, "core.view_roleassignment")


def audit_event_list(*, user) -> QuerySet[AuditEvent]:
    return authz.restrict(AuditEvent.objects.select_related("target_type", "actor_user"), user, "core.view_auditevent")
