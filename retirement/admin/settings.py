"""The retirement settings: one row, edited only by people who hold the permission everywhere."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin

from ..models import RetirementSettings


@admin.register(RetirementSettings)
class RetirementSettingsAdmin(AuthzModelAdmin):
    fields = [
        "require_approval",
        "allow_personal_full_wipe",
        "allow_user_reset",
        "auto_unenroll",
        "offline_timeout_days",
        "corporate_offboarding",
        "updated_at",
    ]
    readonly_fields = ["updated_at"]

    # Organisation-wide: a scoped grant is not enough.
    def has_module_permission(self, request):
        return authz.has_global(request.user, self._perm("view")) or authz.has_global(
            request.user, self._perm("change")
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return authz.has_global(request.user, self._perm("change"))

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's 403
        row = RetirementSettings.load()
        return HttpResponseRedirect(reverse("admin:retirement_retirementsettings_change", args=[row.pk]))
