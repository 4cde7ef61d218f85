"""Retirement proposals from noncompliance schedules: IT approves or dismisses them here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter

from ..choices import RetireApprovalStatus
from ..models import RetireApproval

RETIRE = "devices.retire_device"


class RetireStatusFilter(admin.SimpleListFilter):
    """Waiting for IT by default: the list is a to-do list."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*RetireApprovalStatus.choices, ("all", "All")]

    def choices(self, changelist):
        value = self.value() or RetireApprovalStatus.PENDING
        for lookup, title in self.lookup_choices:
            yield {
                "selected": value == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        value = self.value() or RetireApprovalStatus.PENDING
        return queryset if value == "all" else queryset.filter(status=value)


@admin.register(RetireApproval)
class RetireApprovalAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    """Devices a noncompliance schedule proposes to retire. Approving starts the retirement; dismissing
    keeps the device. Either decision needs the right to retire the device (``retire_approval_decide``
    enforces it too); nothing else here is editable."""

    list_display = ["device_name", "policy_name", "reason", "status", "requested_at", "decided_by", "decided_at"]
    list_filter = [RetireStatusFilter, ("device__scope", ScopedRelatedListFilter)]
    list_select_related = ["device", "policy", "decided_by"]
    search_fields = ["device__name", "device__serial_number"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["approve", "dismiss"]
    fields = ["device", "policy", "reason", "status", "requested_at", "decided_by", "decided_at"]
    readonly_fields = fields

    @admin.display(description="Device", ordering="device__name")
    def device_name(self, obj):
        return obj.device.name

    @admin.display(description="Policy")
    def policy_name(self, obj):
        return obj.policy.name if obj.policy_id else "-"

    def has_decide_permission(self, request) -> bool:
        return authz.has_any(request.user, "policies.change_retireapproval") and authz.has_any(request.user, RETIRE)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="policies_retireapproval_decide",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.status == RetireApprovalStatus.PENDING and self._may_decide(request, obj):
            context["decide_url"] = reverse("admin:policies_retireapproval_decide", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _may_decide(self, request, approval) -> bool:
        return authz.can(request.user, "policies.change_retireapproval", approval) and authz.can(
            request.user, RETIRE, approval.device
        )

    def _decide(self, request, approvals, approve: bool) -> tuple[int, list[str]]:
        from ..services.compliance import retire_approval_decide

        done, problems = 0, []
        for approval in approvals:
            try:
                retire_approval_decide(actor=self.actor(request), approval=approval, approve=approve)
            except (ValidationError, PermissionDenied) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                problems.append(f"{approval.device.name}: {text}")
            else:
                done += 1
        return done, problems

    def _report(self, request, approve: bool, done: int, problems: list[str], refused: list[str]) -> None:
        verb = "Retirement started for" if approve else "Dismissed the proposal for"
        if done:
            self.message_user(request, f"{verb} {done} device{'s' if done != 1 else ''}.", messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                "Your role does not allow retiring "
                + ", ".join(refused)
                + ", so you cannot decide on them; ask someone who may retire devices in their scope.",
                messages.WARNING,
            )
        for problem in problems:
            self.message_user(request, problem, messages.ERROR)

    def decide_view(self, request, object_id):
        """One proposal: what it is, then Approve and Dismiss for those who may retire the device."""
        approval = self.get_object(request, unquote(object_id))  # 403 without the model, 404 out of scope
        change_url = reverse("admin:policies_retireapproval_change", args=[approval.pk])
        may_decide = self._may_decide(request, approval)
        if request.method == "POST":
            if not may_decide:
                raise PermissionDenied
            decision = request.POST.get("decision")
            if decision not in ("approve", "dismiss"):
                return HttpResponseRedirect(change_url)
            done, problems = self._decide(request, [approval], decision == "approve")
            self._report(request, decision == "approve", done, problems, [])
            return HttpResponseRedirect(reverse("admin:policies_retireapproval_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Retire {approval.device.name}?",
            "approvals": [approval],
            "pending": approval.status == RetireApprovalStatus.PENDING,
            "may_decide": may_decide,
            "change_url": change_url,
            "single": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/retireapproval/decide.html", context)

    def _bulk(self, request, queryset, approve: bool):
        pending = list(queryset.filter(status=RetireApprovalStatus.PENDING).select_related("device", "device__scope"))
        allowed = [a for a in pending if self._may_decide(request, a)]
        refused = [a.device.name for a in pending if a not in allowed]
        if request.POST.get("post") == "yes":
            done, problems = self._decide(request, allowed, approve)
            self._report(request, approve, done, problems, refused)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": ("Approve retirement" if approve else "Dismiss the proposals")
            + f" of {len(allowed)} device{'s' if len(allowed) != 1 else ''}?",
            "approvals": allowed,
            "refused": refused,
            "approve": approve,
            "action_name": "approve" if approve else "dismiss",
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": request.get_full_path(),
            "single": False,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/retireapproval/decide.html", context)

    @admin.action(description="Approve retirement of the selected devices…", permissions=["decide"])
    def approve(self, request, queryset):
        return self._bulk(request, queryset, True)

    @admin.action(description="Dismiss the selected proposals…", permissions=["decide"])
    def dismiss(self, request, queryset):
        return self._bulk(request, queryset, False)
