"""List filters of the apps console: related objects the person may see, with a word for "none"."""

from __future__ import annotations

from mdm_portal.core import authz
from mdm_portal.core.admin_base import ScopedRelatedListFilter


def scoped_filter(empty_label: str) -> type[ScopedRelatedListFilter]:
    """``ScopedRelatedListFilter`` whose choice for an empty relation reads ``empty_label`` instead of "-"."""

    class Filter(ScopedRelatedListFilter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.empty_value_display = empty_label

    return Filter


class ProtectedAppListFilter(ScopedRelatedListFilter):
    """The apps a protection policy names (the managed apps), not the whole catalog."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.empty_value_display = "Removed from the catalog"

    def field_choices(self, field, request, model_admin):
        from ..models import App

        allowed = authz.restrict(App.objects.filter(protection_policies__isnull=False), request.user, "apps.view_app")
        return field.get_choices(
            include_blank=False,
            ordering=self.field_admin_ordering(field, request, model_admin),
            limit_choices_to={"pk__in": allowed.values("pk")},
        )
