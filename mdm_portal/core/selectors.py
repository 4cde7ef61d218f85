"""Reads of the directory, roles and audit trail for a person, restricted by ``core.authz``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from . import authz
from .models import AuditEvent, OutboxMessage, Role, RoleAssignment, Scope, User, UserGroup


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


# Permissions that let a person target what they manage at people (by user group).
TARGETING_PERMISSIONS = (
    "policies.add_configurationprofile",
    "policies.change_configurationprofile",
    "policies.add_compliancepolicy",
    "policies.change_compliancepolicy",
    "apps.add_app",
    "apps.change_app",
    "apps.add_appprotectionpolicy",
    "apps.change_appprotectionpolicy",
)


def assignable_user_groups(*, user) -> QuerySet[UserGroup]:
    """User groups a person may choose as an assignment target.

    User groups are organisation-wide directory objects without a scope. Whoever may view them
    sees all of them; so does anyone who manages profiles, policies or apps in some scope, because
    an assignment of a scoped object only ever reaches that scope's devices or people, whatever
    group it names. Everyone else sees none.
    """
    groups = UserGroup.objects.order_by("name")
    if authz.has_any(user, "core.view_usergroup") or any(authz.has_any(user, p) for p in TARGETING_PERMISSIONS):
        return groups
    return groups.none()


# The task outbox ---------------------------------------------------------------------------------

VIEW_OUTBOX = "core.view_outboxmessage"
# Messages waiting longer than this mean the broker has been down for more than a blip.
OUTBOX_STALE_AFTER = timedelta(minutes=5)


def outbox_message_list(*, user) -> QuerySet[OutboxMessage]:
    """The outbox rows ``user`` may see (global holders only: the model has no scope), without payloads."""
    return authz.restrict(OutboxMessage.objects.defer("payload"), user, VIEW_OUTBOX)


@dataclass(frozen=True)
class OutboxHealth:
    """What the console warns about: messages waiting since ``waiting_since``, and dead ones."""

    waiting: int
    waiting_since: datetime | None
    dead: int
    stale: bool  # the oldest waiting message has waited longer than OUTBOX_STALE_AFTER


def outbox_health(*, user) -> OutboxHealth | None:
    """Whether the outbox needs attention, for someone who may see it; ``None`` otherwise. One query.

    Attention: a message has waited longer than ``OUTBOX_STALE_AFTER``, or any message is dead.
    """
    if not authz.has_global(user, VIEW_OUTBOX):
        return None
    waiting = Q(dead_at__isnull=True)
    totals = OutboxMessage.objects.aggregate(
        waiting=Count("pk", filter=waiting),
        waiting_since=Min("created_at", filter=waiting),
        dead=Count("pk", filter=~waiting),
    )
    since = totals["waiting_since"]
    stale = since is not None and since <= timezone.now() - OUTBOX_STALE_AFTER
    return OutboxHealth(**totals, stale=stale) if stale or totals["dead"] else None


def audit_events_by(*, user, limit: int = 10) -> list[AuditEvent]:
    """The latest audit events ``user`` caused, newest first: their own record (the console home)."""
    return list(
        AuditEvent.objects.filter(actor_user=user).only("verb", "target_repr", "created_at")
        .order_by("-created_at", "-pk")[:limit]
    )  # fmt: skip
