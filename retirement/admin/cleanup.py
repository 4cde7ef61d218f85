"""Cleanup rules in the IT console: the rules, a dry-run preview of what each would take now, and "Run now".

Who may do what (cleanup rules are organisation-wide: a rule takes devices in every scope, so none
of this is granted by a scoped role assignment):

* seeing the rules and their previews needs ``retirement.view_cleanuprule`` (or change) everywhere;
* adding, editing and deleting a rule needs ``retirement.add/change/delete_cleanuprule`` everywhere;
* running a rule now needs ``retirement.change_cleanuprule`` everywhere. The run acts like the daily
  job: the runner's device permissions are not checked per device.

The preview lists only the devices the viewer may see (``devices.view_device``): someone who may see
the rules but only some scopes' devices sees their scopes' part of the rule, and its count.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin

from ..choices import CleanupAction
from ..models import CleanupRule
from ..services import cleanup as services

PREVIEW_PER_PAGE = 50
DEVICE_VIEW = "devices.view_device"


class CleanupRuleForm(forms.ModelForm):
    days = forms.IntegerField(
        label="Days without a check-in",
        help_text=f"Between {services.MIN_DAYS} and {services.MAX_DAYS} days. A device that never checked in counts "
        "from its enrolment.",
        error_messages={"invalid": services.DAYS_SENTENCE, "required": services.DAYS_SENTENCE},
    )

    class Meta:
        model = CleanupRule
        fields = ["platform", "days", "action", "enabled"]
        help_texts = {
            "action": "Retire: the device is sent the retire command and retired when it answers. Delete the record: "
            "the device is removed from management at once (retired by force, unverified).",
            "enabled": "Enabled rules run every day. Off: the rule only runs when someone presses “Run now”.",
        }

    def clean_days(self):
        days = self.cleaned_data["days"]
        if not services.MIN_DAYS <= days <= services.MAX_DAYS:
            raise forms.ValidationError(services.DAYS_SENTENCE, code="days_range")
        return days


@admin.register(CleanupRule)
class CleanupRuleAdmin(AuthzModelAdmin):
    form = CleanupRuleForm
    fields = ["platform", "days", "action", "enabled", "last_run_at", "last_run_count", "preview_link"]
    readonly_fields = ["last_run_at", "last_run_count", "preview_link"]

    # Permissions: organisation-wide, so only a global grant counts ----------------------------

    def has_module_permission(self, request):
        return authz.has_global(request.user, self._perm("view")) or authz.has_global(
            request.user, self._perm("change")
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return authz.has_global(request.user, self._perm("change"))

    def has_add_permission(self, request, *args):
        return authz.has_global(request.user, self._perm("add"))

    def has_delete_permission(self, request, obj=None):
        return authz.has_global(request.user, self._perm("delete"))

    def may_run(self, request) -> bool:
        return authz.has_global(request.user, self._perm("change"))

    # List --------------------------------------------------------------------------------------

    def get_list_display(self, request):
        user = request.user

        # Bound to this request: the count is of the devices the viewer may see (one query per rule,
        # and there is at most one rule per platform).
        @admin.display(description="Would take now")
        def would_take_now(obj):
            count = authz.restrict(services.cleanup_candidates(obj), user, DEVICE_VIEW).count()
            return format_html('<a href="{}">{}</a>', self._preview_url(obj), count)

        return ["__str__", "platform", "days", "action", "enabled", "last_run_at", "last_run_count", would_take_now]

    # Change page -------------------------------------------------------------------------------

    @admin.display(description="Dry run")
    def preview_link(self, obj):
        if obj is None or obj.pk is None:
            return "Save the rule first, then preview which devices it would take."
        return format_html(
            '<a class="button" href="{}">Preview the devices it would take now</a>', self._preview_url(obj)
        )

    def save_via_service(self, request, obj, form, change) -> None:
        services.cleanup_rule_save(actor=self.actor(request), rule=obj)

    def delete_via_service(self, request, obj) -> None:
        services.cleanup_rule_delete(actor=self.actor(request), rule=obj)

    # Custom pages ------------------------------------------------------------------------------

    def get_urls(self):
        # Before the default routes: their "<object_id>/" catch-all would swallow these.
        info = "retirement_cleanuprule"
        return [
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view), name=f"{info}_preview"),
            path("<path:object_id>/run/", self.admin_site.admin_view(self.run_view), name=f"{info}_run"),
            *super().get_urls(),
        ]

    def _preview_url(self, obj) -> str:
        return reverse("admin:retirement_cleanuprule_preview", args=[obj.pk])

    def _context(self, request, obj, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "object": obj,
            "change_url": reverse("admin:retirement_cleanuprule_change", args=[obj.pk]),
            "preview_url": self._preview_url(obj),
            "run_url": reverse("admin:retirement_cleanuprule_run", args=[obj.pk]),
            "reason": services.cleanup_reason(obj),
        }

    def preview_view(self, request, object_id):
        """What the rule would take now, restricted to the devices the viewer may see; paginated."""
        obj = self.get_object(request, unquote(object_id))  # 403 without the permission, 404 when missing
        now = timezone.now()
        visible = (
            authz.restrict(services.cleanup_candidates(obj, now), request.user, DEVICE_VIEW)
            .select_related("primary_user", "scope")
            .order_by("last_seen", "pk")
        )
        page = Paginator(visible, PREVIEW_PER_PAGE).get_page(request.GET.get("p"))
        rows = [
            {
                "device": device,
                "url": reverse("admin:devices_device_change", args=[device.pk]),
                "user": device.primary_user.get_full_name() or device.primary_user.get_username()
                if device.primary_user
                else "",
                "last_checkin": device.last_checkin_at,
                "enrolled_at": device.enrolled_at,
                "days_silent": (now - device.last_seen).days,
            }
            for device in page.object_list
        ]
        context = {
            **self._context(request, obj, f"Dry run: {obj}"),
            "page": page,
            "rows": rows,
            "count": page.paginator.count,
            "all_scopes": authz.has_global(request.user, DEVICE_VIEW),
            "may_run": self.may_run(request),
            "now": now,
        }
        return TemplateResponse(request, "admin/retirement/cleanuprule/preview.html", context)

    def run_view(self, request, object_id):
        """Confirm, then run the rule now over exactly what it takes now (every scope)."""
        obj = self.get_object(request, unquote(object_id))
        if not self.may_run(request):
            raise PermissionDenied
        if request.method == "POST":
            result = services.cleanup_rule_run(rule=obj, actor=self.actor(request))
            text = f"{obj}: {result['taken']} device(s) taken"
            if result["skipped"]:
                reasons = "; ".join(f"{n}: {why}" for why, n in result["skipped_reasons"].items())
                text += f", {result['skipped']} skipped ({reasons})"
            requests_url = (
                reverse("admin:retirement_retirementrequest_changelist") + f"?batch={result['batch']}"
                if result["taken"]
                else ""
            )
            self.message_user(
                request,
                format_html('{}. <a href="{}">See their requests</a>.', text, requests_url) if requests_url else text,
                messages.WARNING if result["skipped"] else messages.SUCCESS,
            )
            return HttpResponseRedirect(self._preview_url(obj))
        context = {
            **self._context(request, obj, f"Run now: {obj}"),
            "count": services.cleanup_candidates(obj).count(),
            "deletes": obj.action == CleanupAction.DELETE,
        }
        return TemplateResponse(request, "admin/retirement/cleanuprule/run.html", context)
