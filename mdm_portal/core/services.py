"""Writes to the directory, roles, role assignments and API tokens. Each one audits itself."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from . import rbac
from .audit import Actor, audit_record, model_changes
from .models import APIToken, Role, RoleAssignment, Scope, User, UserGroup
from .signals import user_deactivated, user_group_changed

TOKEN_PREFIX = "mdm"  # noqa: S105 (a label, not a secret)


# Generic records -------------------------------------------------------------------------------


@transaction.atomic
def record_save(*, actor: Actor, instance: models.Model, fields: list[str], created: bool) -> models.Model:
    """Save a plain record that has no rules of its own beyond its form (scopes, schedules)."""
    instance.save()
    model_fields = {f.name for f in instance._meta.get_fields()}
    verb = f"{instance._meta.model_name}.{'create' if created else 'update'}"
    changes = model_changes(instance, [f for f in fields if f in model_fields])
    audit_record(actor=actor, verb=verb, target=instance, changes=changes)
    return instance


@transaction.atomic
def record_delete(*, actor: Actor, instance: models.Model) -> None:
    fields = [f.name for f in instance._meta.concrete_fields if not f.primary_key]
    audit_record(
        actor=actor,
        verb=f"{instance._meta.model_name}.delete",
        target=instance,
        changes=model_changes(instance, fields),
    )
    instance.delete()


# Scopes ----------------------------------------------------------------------------------------


@transaction.atomic
def scope_create(*, actor: Actor, name: str, slug: str, description: str = "") -> Scope:
    scope = Scope(name=name, slug=slug, description=description)
    scope.full_clean()
    scope.save()
    audit_record(actor=actor, verb="scope.create", target=scope, changes=model_changes(scope, ("name", "slug")))
    return scope


# User groups -----------------------------------------------------------------------------------


@transaction.atomic
def user_deactivate(*, actor: Actor, user: User, source: str, reason: str = "") -> User:
    """Deactivate an account: it can no longer sign in and its sessions and API tokens stop working.

    Receivers of ``user_deactivated`` do the rest in the same transaction (the retirement stage
    offboards the person's devices and app instances), so a refusal there undoes the deactivation.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.is_active:
        raise ValidationError(f"{user.get_username()} is already deactivated.")
    if actor.user is not None and actor.user.pk == user.pk:
        raise ValidationError("You cannot deactivate your own account. Ask another administrator.")
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit_record(actor=actor, verb="user.deactivate", target=user, changes={"source": source, "reason": reason})
    user_deactivated.send(sender=User, user=user, actor=actor, source=source, reason=reason)
    return user


@transaction.atomic
def user_group_save(
    *,
    actor: Actor,
    group: UserGroup | None = None,
    name: str,
    description: str = "",
    members: list[User] | None = None,
    source: str | None = None,
    external_id: str | None = None,
) -> UserGroup:
    """Create or update a user group; membership changes reach role assignments at once."""
    group = group or UserGroup()
    created = group._state.adding
    group.name, group.description = name, description
    if source is not None:
        group.source = source
    if external_id is not None:
        group.external_id = external_id
    group.full_clean()
    group.save()
    if members is not None:
        group.members.set(members)
        rbac.sync_for_user_groups([group.pk])
        user_group_changed.send(sender=UserGroup, group=group)
    audit_record(
        actor=actor,
        verb="user_group.create" if created else "user_group.update",
        target=group,
        changes=model_changes(group, ("name", "description", "members")),
    )
    return group


# Roles -----------------------------------------------------------------------------------------


def _check_role_editable(role: Role) -> None:
    if role.is_builtin:
        raise ValidationError(f"'{role.name}' is a built-in role and cannot be changed. Create a custom role instead.")


@transaction.atomic
def role_save(
    *, actor: Actor, role: Role | None = None, name: str, description: str = "", permissions: list[Permission]
) -> Role:
    """Create or update a custom role; assignments of the role get the new permissions at once."""
    if role is not None and not role._state.adding:
        _check_role_editable(role)
    role = role or Role()
    created = role._state.adding
    role.name, role.description = name, description
    role.full_clean()
    role.save()
    role.permissions.set(permissions)
    rbac.sync_for_role(role.pk)
    audit_record(
        actor=actor,
        verb="role.create" if created else "role.update",
        target=role,
        changes={
            "name": role.name,
            "permissions": sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions),
        },
    )
    return role


@transaction.atomic
def role_delete(*, actor: Actor, role: Role) -> None:
    _check_role_editable(role)
    if role.assignments.exists():
        raise ValidationError(f"'{role.name}' is still assigned. Delete or change its assignments first.")
    audit_record(actor=actor, verb="role.delete", target=role, changes={"name": role.name})
    role.delete()


# Role assignments ------------------------------------------------------------------------------


@transaction.atomic
def role_assignment_save(
    *,
    actor: Actor,
    assignment: RoleAssignment | None = None,
    name: str,
    role: Role,
    users: list[User],
    user_groups: list[UserGroup],
    all_scopes: bool,
    scopes: list[Scope],
    description: str = "",
) -> RoleAssignment:
    """Create or change an assignment and re-grant its permissions before the transaction ends."""
    if all_scopes and scopes:
        raise ValidationError("Choose either 'all scopes' or some scopes, not both.")
    if not all_scopes and not scopes:
        raise ValidationError("Choose the scopes this assignment covers, or tick 'all scopes'.")
    assignment = assignment or RoleAssignment()
    created = assignment._state.adding
    assignment.name, assignment.description = name, description
    assignment.role, assignment.all_scopes = role, all_scopes
    assignment.full_clean()
    assignment.save()
    assignment.users.set(users)
    assignment.user_groups.set(user_groups)
    assignment.scopes.set(scopes)
    rbac.role_assignment_sync(assignment)
    audit_record(
        actor=actor,
        verb="role_assignment.create" if created else "role_assignment.update",
        target=assignment,
        changes=model_changes(assignment, ("name", "role", "users", "user_groups", "all_scopes", "scopes")),
    )
    return assignment


@transaction.atomic
def role_assignment_delete(*, actor: Actor, assignment: RoleAssignment) -> None:
    audit_record(
        actor=actor,
        verb="role_assignment.delete",
        target=assignment,
        changes=model_changes(assignment, ("name", "role", "users", "user_groups", "all_scopes", "scopes")),
    )
    rbac.role_assignment_teardown(assignment)
    assignment.delete()


# API tokens ------------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def split_token(token: str) -> str | None:
    """The lookup prefix of a well-formed token, or None."""
    # The secret part is URL-safe base64, which itself may contain "_": split off two fields only.
    parts = token.split("_", 2)
    if len(parts) != 3 or not parts[2] or parts[0] != TOKEN_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


ISSUE_FOR_OTHERS_REFUSED = (
    "You can issue API tokens only for your own account: a token acts with all of its person's roles. "
    "Sign in as that account to issue one, or ask a superuser."
)
EXPIRY_IN_THE_PAST = "The expiry date is in the past. Choose a future date or leave it empty."


@transaction.atomic
def api_token_create(
    *, actor: Actor, user: User, name: str, expires_at: datetime | None = None
) -> tuple[APIToken, str]:
    """Issue a token for ``user``. Returns the record and the token itself, which is never stored.

    A token acts with every role of its person, so people issue tokens for their own account only;
    a superuser (or a system job) may issue one for another account, e.g. an automation account.
    """
    if actor.user is not None and actor.user.pk != user.pk and not actor.user.is_superuser:
        raise PermissionDenied(ISSUE_FOR_OTHERS_REFUSED)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError(EXPIRY_IN_THE_PAST)
    prefix = secrets.token_hex(6)
    plaintext = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = APIToken(user=user, name=name, prefix=prefix, key_hash=hash_token(plaintext), expires_at=expires_at)
    token.created_by = actor.user
    token.full_clean()
    token.save()
    audit_record(actor=actor, verb="api_token.create", target=token, changes={"user": user.pk, "name": name})
    return token, plaintext


@transaction.atomic
def api_token_revoke(*, actor: Actor, token: APIToken) -> APIToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, verb="api_token.revoke", target=token, changes={"name": token.name})
    return token
