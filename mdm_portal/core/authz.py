"""The one place that decides who may see or do what.

Vocabulary: an *action* is a Django permission name, ``"app_label.codename"``
(``"devices.view_device"``, ``"devices.wipe_device"``). A person holds an action

* everywhere, when a role assignment covering all scopes gives it (or they are a superuser), or
* in some scopes, when a scoped role assignment gives it and the action is listed in
  ``core.scoped_permissions`` (grants stored by ``core.rbac`` as guardian permissions on scopes).

A model takes part in scoping by naming the path to its scope in a ``scope_field`` class attribute
(``"scope"``, ``"device__scope"``); a model without one is visible only to global holders. A model
with an ``owner_field`` (``"primary_user"``) is also reachable by its owner through ``owned``.

Every adapter goes through these functions: ``restrict`` for lists, ``can`` for one object (the
same rule), ``get_or_404`` for "fetch and authorise" (404 for both missing and forbidden).
Celery tasks and the agent protocol read through ``unrestricted`` and say who they are.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models
from django.http import Http404

from .audit import Actor
from .choices import ActorType
from .scoped_permissions import SCOPED_PERMISSIONS, twin_codename

M = TypeVar("M", bound=models.Model)

_SCOPED = frozenset(SCOPED_PERMISSIONS)


def permission_name(model: type[models.Model], verb: str) -> str:
    """``permission_name(Device, "view")`` -> ``"devices.view_device"``."""
    return f"{model._meta.app_label}.{verb}_{model._meta.model_name}"


def _active(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def has_global(user: Any, action: str) -> bool:
    """True when ``user`` holds ``action`` in every scope."""
    return _active(user) and (user.is_superuser or user.has_perm(action))


def _grants(user: Any) -> dict[str, frozenset[int]]:
    """Every scoped grant of ``user``, by permission: one query, cached on the user for the request."""
    from .models import ScopeGroupObjectPermission

    cached = user.__dict__.get("_authz_grants")
    if cached is None:
        by_codename: dict[str, set[int]] = {}
        rows = ScopeGroupObjectPermission.objects.filter(
            group__user=user,
            permission__content_type__app_label="core",
            permission__content_type__model="scope",
        ).values_list("permission__codename", "content_object_id")
        for codename, scope_id in rows:
            by_codename.setdefault(codename, set()).add(scope_id)
        cached = {codename: frozenset(ids) for codename, ids in by_codename.items()}
        user.__dict__["_authz_grants"] = cached
    return cached


def scope_ids(user: Any, action: str) -> frozenset[int]:
    """The ids of the scopes in which ``user`` holds ``action`` through a scoped assignment."""
    if not _active(user) or action not in _SCOPED:
        return frozenset()
    return _grants(user).get(twin_codename(action), frozenset())


def scopes_for(user: Any, action: str) -> models.QuerySet:
    """The scopes in which ``user`` may perform ``action`` (all of them for a global holder)."""
    from .models import Scope

    if has_global(user, action):
        return Scope.objects.all()
    return Scope.objects.filter(pk__in=scope_ids(user, action))


def has_any(user: Any, action: str) -> bool:
    """True when ``user`` holds ``action`` anywhere: everywhere, or in at least one scope."""
    return has_global(user, action) or bool(scope_ids(user, action))


def restrict(queryset: models.QuerySet[M], user: Any, action: str) -> models.QuerySet[M]:
    """``queryset`` narrowed to the objects on which ``user`` may perform ``action``."""
    if not _active(user):
        return queryset.none()
    if has_global(user, action):
        return queryset
    scope_field = getattr(queryset.model, "scope_field", None)
    allowed = scope_ids(user, action)
    if scope_field is None or not allowed:
        return queryset.none()
    return queryset.filter(**{f"{scope_field}__in": sorted(allowed)})


def _scope_id_of(obj: models.Model) -> int | None:
    scope_field = getattr(type(obj), "scope_field", None)
    if scope_field is None:
        return None
    if scope_field == "pk":
        return obj.pk
    *path, last = scope_field.split("__")
    target: Any = obj
    for step in path:
        target = getattr(target, step, None)
        if target is None:
            return None
    return getattr(target, f"{last}_id", None)


def can(user: Any, action: str, obj: models.Model) -> bool:
    """True when ``user`` may perform ``action`` on ``obj``: the same rule as ``restrict``."""
    if not _active(user):
        return False
    if has_global(user, action):
        return True
    scope_id = _scope_id_of(obj)
    return scope_id is not None and scope_id in scope_ids(user, action)


def get_or_404(queryset: models.QuerySet[M], user: Any, action: str, **lookup: Any) -> M:
    """Fetch one object the user may act on; missing and forbidden are the same 404."""
    try:
        return restrict(queryset, user, action).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


def owned(queryset: models.QuerySet[M], user: Any) -> models.QuerySet[M]:
    """The employee's own objects (Company Portal): ``owner_field`` equals the user."""
    owner_field = getattr(queryset.model, "owner_field", None)
    if owner_field is None or not _active(user):
        return queryset.none()
    return queryset.filter(**{owner_field: user})


def owns(user: Any, obj: models.Model) -> bool:
    owner_field = getattr(type(obj), "owner_field", None)
    if owner_field is None or not _active(user):
        return False
    return getattr(obj, f"{owner_field}_id", None) == user.pk


def get_owned_or_404(queryset: models.QuerySet[M], user: Any, **lookup: Any) -> M:
    try:
        return owned(queryset, user).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"No {queryset.model._meta.verbose_name} matches the given query.") from exc


def unrestricted(queryset: models.QuerySet[M], *, actor: Actor) -> models.QuerySet[M]:
    """The whole table, for code acting as the system or as a device on its own record.

    Only Celery tasks, management commands and the agent protocol may call this, and they say so
    through ``actor``; a person's request never does.
    """
    if actor.type not in (ActorType.SYSTEM, ActorType.DEVICE):
        raise PermissionError(f"{actor.label} is not a system or device actor; use restrict().")
    return queryset
