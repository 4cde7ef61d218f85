"""Profile deliveries across profiles: a read-only list with a confirmed bulk "Resend failed"."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter

from ..choices import DeliveryState
from ..models import ConfigurationProfile, ProfileDelivery
from ..profile_settings import SETTINGS
from ..services.profiles import profile_resend_failed
from .profiles import RESEND


@admin.register(ProfileDelivery)
class ProfileDeliveryAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["device_name", "profile", "state", "reason_text", "version", "updated_at"]
    list_filter = ["state", ("profile", ScopedRelatedListFilter), ("device__scope", ScopedRelatedListFilter)]
    list_select_related = ["device", "profile"]
    search_fields = ["device__name", "device__serial_number", "profile__name"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["resend_failed"]
    fields = ["device", "profile", "state", "reason", "not_applicable_list", "version", "command", "updated_at"]
    readonly_fields = fields

    @admin.display(description="Device", ordering="device__name")
    def device_name(self, obj):
        return obj.device.name

    @admin.display(description="Reason")
    def reason_text(self, obj):
        return obj.reason or "-"

    @admin.display(description="Not applicable on this device")
    def not_applicable_list(self, obj):
        labels = {s.name: s.label for s in SETTINGS.get(obj.profile.kind, ())}
        items = [(labels.get(i.get("setting"), i.get("setting")), i.get("reason", "")) for i in obj.not_applicable]
        if not items:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li><strong>{}</strong>: {}</li>", items))

    def has_resend_permission(self, request) -> bool:
        return authz.has_any(request.user, RESEND)

    @admin.action(description="Resend the selected failed deliveries…", permissions=["resend"])
    def resend_failed(self, request, queryset):
        permitted = authz.restrict(queryset, request.user, RESEND)
        failed = permitted.filter(state=DeliveryState.ERROR)
        selected = queryset.count()
        if request.POST.get("post") == "yes":
            actor = self.actor(request)
            resent = 0
            by_profile: dict[int, list[int]] = defaultdict(list)
            for profile_id, device_id in failed.values_list("profile_id", "device_id"):
                by_profile[profile_id].append(device_id)
            for profile in ConfigurationProfile.objects.filter(pk__in=list(by_profile)):
                resent += profile_resend_failed(
                    actor=actor, profile=profile, devices=Device.objects.filter(pk__in=by_profile[profile.pk])
                )
            self.message_user(
                request,
                f"Queued again for {resent} device{'s' if resent != 1 else ''}; "
                "they receive it at their next check-in.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Resend failed deliveries?",
            "selected": selected,
            "not_permitted": selected - permitted.count(),
            "failed": failed.count(),
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/profiledelivery/resend_confirm.html", context)
