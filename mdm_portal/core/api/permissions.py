from rest_framework import permissions

from .. import authz


class AuthzPermission(permissions.BasePermission):
    """Fail closed: a view must map each of its actions to a permission, or the request is refused.

    A view declares ``action_permissions = {"list": "devices.view_device", ...}`` (viewset action
    names, or HTTP methods for plain API views). Listing needs the permission somewhere; a single
    object needs it on that object. Lists are narrowed by the view's selector, not here.
    """

    message = "You do not have permission to do this."

    def _required(self, request, view) -> str | None:
        mapping = getattr(view, "action_permissions", None) or {}
        key = getattr(view, "action", None) or request.method.lower()
        return mapping.get(key)

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            # Nothing answers this method here: let DRF say so (405 with Allow), not "no permission".
            return True
        required = self._required(request, view)
        return required is not None and authz.has_any(user, required)

    def has_object_permission(self, request, view, obj) -> bool:
        required = self._required(request, view)
        return required is not None and authz.can(request.user, required, obj)
