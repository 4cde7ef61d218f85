"""Base classes every API view builds on, so authorisation is never forgotten."""

from rest_framework import viewsets

from .permissions import AuthzPermission


class AuthzViewSetMixin:
    """Narrow every list through the view's selector and check each object through ``authz``.

    Subclasses set ``action_permissions`` and implement ``get_queryset`` by calling a selector with
    ``user=self.request.user``. Objects outside the caller's scope are then simply not found (404).
    """

    permission_classes = [AuthzPermission]
    action_permissions: dict[str, str] = {}


class AuthzReadOnlyViewSet(AuthzViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass


class AuthzModelViewSet(AuthzViewSetMixin, viewsets.ModelViewSet):
    pass
