"""Retire and wipe requests in the IT console: the list, a read-only record with its timeline and
evidence, the steps (approve, cancel, unenrol, force) behind confirmation pages, the evidence export,
and the "Retire / wipe this device" page the device's change page links to.

Every write is a ``retirement.services`` call; the permission checks here only decide what to offer,
and the services refuse again with their own sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import slugify

from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter
from policies.reports_csv import Table, csv_response

from ..choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from ..commands import ACTIONS_BY_RETIREMENT
from ..models import RetirementRequest, RetirementSettings
from ..services import requests as services
from .bulk import BatchListFilter
from .evidence import after_empty, after_rows, before_rows, evidence_csv_rows, timeline, verdict
from .forms import RetirementRequestForm, RetirementStepForm

Status = RetirementStatus
LEFTOVER_ROW = mark_safe(' class="leftover"')


@dataclass(frozen=True)
class Step:
    """One step an administrator takes on a request, behind a confirmation page."""

    name: str
    label: str
    statuses: tuple[str, ...]
    permissions: Callable[[RetirementRequest], tuple[str, ...]]
    run: Callable[..., RetirementRequest]
    with_reason: bool = False
    reason_required: bool = False
    done: str = ""


STEPS = {
    step.name: step
    for step in (
        Step(
            "approve",
            "Approve",
            (Status.AWAITING_APPROVAL,),
            lambda r: (services.APPROVE_PERMISSION, services.device_permission(r.action)),
            lambda actor, request, reason: services.retirement_approve(actor=actor, request=request),
            done="Approved; the command is sent to {device} at its next check-in.",
        ),
        Step(
            "cancel",
            "Cancel the request",
            services.CANCELLABLE,
            lambda r: (services.device_permission(r.action),),
            lambda actor, request, reason: services.retirement_cancel(actor=actor, request=request, reason=reason),
            with_reason=True,
            done="The request for {device} is cancelled.",
        ),
        Step(
            "unenroll",
            "Unenrol",
            (Status.VERIFIED,),
            lambda r: (services.device_permission(r.action),),
            lambda actor, request, reason: services.retirement_unenroll(actor=actor, request=request),
            done="{device} is unenrolled.",
        ),
        Step(
            "force",
            "Force the unenrolment (unverified)",
            services.FORCEABLE,
            lambda r: (services.FORCE_PERMISSION,),
            lambda actor, request, reason: services.retirement_force(actor=actor, request=request, reason=reason),
            with_reason=True,
            reason_required=True,
            done="{device} is unenrolled by force; the record says it is unverified.",
        ),
    )
}


def step_allowed(user, step: Step, request: RetirementRequest) -> bool:
    """Whether to offer ``step``: the request is in a state for it, and the person holds its permissions."""
    if request.status not in step.statuses:
        return False
    if step.name == "approve" and request.requested_by_id is not None and request.requested_by_id == user.pk:
        return False
    return all(authz.can(user, permission, request) for permission in step.permissions(request))


@admin.register(RetirementRequest)
class RetirementRequestAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = [
        "device_name",
        "action_short",
        "source",
        "status_badge",
        "requested_by_label",
        "requested_at",
        "scope",
    ]
    list_filter = ["status", "action", "source", ("scope", ScopedRelatedListFilter), BatchListFilter]
    search_fields = ["device_name", "device_serial"]
    list_select_related = ["scope"]
    fieldsets = (
        (
            "Device",
            {"fields": ("device_link", "device_serial", "device_platform", "device_ownership", "scope")},
        ),
        ("Request", {"fields": ("action", "keep_enrollment", "source", "status_badge", "reason", "steps")}),
        ("Timeline", {"fields": ("timeline_table",)}),
        ("Evidence", {"fields": ("verdict_text", "before_table", "after_table", "evidence_links")}),
    )
    readonly_fields = [
        "device_link",
        "status_badge",
        "steps",
        "timeline_table",
        "verdict_text",
        "before_table",
        "after_table",
        "evidence_links",
    ]

    # List --------------------------------------------------------------------------------------

    @admin.display(description="Action", ordering="action")
    def action_short(self, obj):
        return obj.get_action_display().split(" (")[0]

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        # The colour of each status is in static/console/console.css (no inline style under the CSP).
        return format_html('<span class="retirement-status status-{}">{}</span>', obj.status, obj.get_status_display())

    # Detail ------------------------------------------------------------------------------------

    @admin.display(description="Device")
    def device_link(self, obj):
        if obj.device_id is not None and getattr(obj, "device_visible", False):
            return format_html(
                '<a href="{}">{}</a>', reverse("admin:devices_device_change", args=[obj.device_id]), obj.device_name
            )
        return obj.device_name

    @admin.display(description="What you can do")
    def steps(self, obj):
        offered = getattr(obj, "offered_steps", [])
        if not offered:
            return "Nothing: the request is finished, or the next step needs a permission you do not have."
        return format_html_join(
            " ",
            '<a class="button retirement-step" href="{}">{}</a>',
            ((reverse("admin:retirement_retirementrequest_step", args=[obj.pk, s.name]), s.label) for s in offered),
        )

    @admin.display(description="Steps")
    def timeline_table(self, obj):
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((step, f"{when:%Y-%m-%d %H:%M} UTC" if when else "", detail) for step, when, detail in timeline(obj)),
        )
        return format_html('<table class="retirement-timeline"><tbody>{}</tbody></table>', rows)

    @admin.display(description="Verdict")
    def verdict_text(self, obj):
        return verdict(obj)

    @staticmethod
    def _evidence_table(rows, empty: str):
        if not rows:
            return empty
        body = format_html_join(
            "",
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    LEFTOVER_ROW if r.leftover else "",
                    r.kind,
                    r.identifier,
                    r.name,
                    "still there" if r.leftover else "",
                )
                for r in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>Kind</th><th>Identifier</th><th>Name</th><th></th></tr></thead>"
            "<tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="Before the command")
    def before_table(self, obj):
        return self._evidence_table(before_rows(obj), "The device reported nothing before the command.")

    @admin.display(description="After the command")
    def after_table(self, obj):
        return self._evidence_table(after_rows(obj), after_empty(obj))

    @admin.display(description="Proof of removal")
    def evidence_links(self, obj):
        return format_html(
            '<a href="{}">Download the evidence (CSV)</a> · <a href="{}">Printable proof of removal</a>',
            reverse("admin:retirement_retirementrequest_evidence_csv", args=[obj.pk]),
            reverse("admin:retirement_retirementrequest_proof", args=[obj.pk]),
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # The read-only fields render after this; they need to know who is looking.
            obj.offered_steps = [step for step in STEPS.values() if step_allowed(request.user, step, obj)]
            obj.device_visible = obj.device is not None and authz.can(request.user, "devices.view_device", obj.device)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    # Custom pages ------------------------------------------------------------------------------

    def get_urls(self):
        # Before the default routes: their "<object_id>/" catch-all would swallow these.
        info = "retirement_retirementrequest"
        return [
            path(
                "request/<int:device_id>/",
                self.admin_site.admin_view(self.request_view),
                name=f"{info}_request",
            ),
            path(
                "<path:object_id>/step/<str:step>/",
                self.admin_site.admin_view(self.step_view),
                name=f"{info}_step",
            ),
            path(
                "<path:object_id>/evidence.csv",
                self.admin_site.admin_view(self.evidence_csv_view),
                name=f"{info}_evidence_csv",
            ),
            path(
                "<path:object_id>/proof/",
                self.admin_site.admin_view(self.proof_view),
                name=f"{info}_proof",
            ),
            *super().get_urls(),
        ]

    def _change_url(self, obj) -> str:
        return reverse("admin:retirement_retirementrequest_change", args=[obj.pk])

    def step_view(self, request, object_id, step):
        """Confirm one step of one request; POST runs the service and returns to the record."""
        chosen = STEPS.get(step)
        if chosen is None:
            raise Http404("There is no such step.")
        obj = self.get_object(request, unquote(object_id))  # 403 without the model at all, 404 out of scope
        if not all(authz.can(request.user, p, obj) for p in chosen.permissions(obj)):
            raise PermissionDenied
        refusal = ""
        if obj.status not in chosen.statuses:
            refusal = f"This request is {obj.get_status_display().lower()}; you cannot {chosen.label.lower()} it now."
        elif chosen.name == "approve" and obj.requested_by_id == request.user.pk:
            refusal = (
                "You asked for this yourself; a different administrator must approve it. Ask a colleague with the "
                "approval permission."
            )
        posted = request.method == "POST"
        form = RetirementStepForm(
            request.POST if posted else None, with_reason=chosen.with_reason, reason_required=chosen.reason_required
        )
        if posted and refusal:
            form.add_error(None, refusal)
        elif posted and form.is_valid():
            try:
                chosen.run(self.actor(request), obj, form.cleaned_data.get("reason", ""))
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
            else:
                self.message_user(request, chosen.done.format(device=obj.device_name), messages.SUCCESS)
                return HttpResponseRedirect(self._change_url(obj))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{chosen.label}: {obj.device_name}",
            "object": obj,
            "step": chosen,
            "refusal": refusal,
            "form": form,
            "change_url": self._change_url(obj),
        }
        return TemplateResponse(request, "admin/retirement/retirementrequest/step.html", context)

    def evidence_csv_view(self, request, object_id):
        obj = self.get_object(request, unquote(object_id))
        name = f"proof-of-removal-{slugify(obj.device_name) or 'device'}"
        return csv_response(Table(name=name, rows=evidence_csv_rows(obj)))

    def proof_view(self, request, object_id):
        """The printable proof of removal: identity, who and when, before and after, the verdict."""
        obj = self.get_object(request, unquote(object_id))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Proof of removal: {obj.device_name}",
            "object": obj,
            "timeline": timeline(obj),
            "before": before_rows(obj),
            "after": after_rows(obj),
            "after_empty": after_empty(obj),
            "verdict": verdict(obj),
            "change_url": self._change_url(obj),
        }
        return TemplateResponse(request, "admin/retirement/retirementrequest/proof.html", context)

    def request_view(self, request, device_id):
        """Retire, wipe or delete one device: the actions the person may take on it, each refused
        with the reason when the device cannot take it; POST asks the service and opens the record."""
        user = request.user
        if not any(authz.has_any(user, services.device_permission(a)) for a in RetirementAction.values):
            raise PermissionDenied
        device = Device.objects.select_related("scope").filter(pk=device_id).first()
        actions = (
            [a for a in RetirementAction.values if authz.can(user, services.device_permission(a), device)]
            if device is not None
            else []
        )
        if not actions:
            raise Http404("No device with this id.")
        refusals = []
        for action in actions:
            command = ACTIONS_BY_RETIREMENT.get(action)
            if command is not None:
                eligibility = command.eligibility(device)
                if not eligibility.allowed:
                    refusals.append((RetirementAction(action).label.split(" (")[0], eligibility.reason))
        open_request = RetirementRequest.objects.filter(device=device, status__in=OPEN_STATUSES).only("pk").first()
        posted = request.method == "POST"
        form = RetirementRequestForm(request.POST if posted else None, device=device, actions=actions)
        if posted and form.is_valid():
            data = form.cleaned_data
            try:
                created = services.retirement_request(
                    actor=self.actor(request),
                    device=device,
                    action=data["action"],
                    source=RetirementSource.ADMIN,
                    reason=data["reason"],
                    keep_enrollment=data["keep_enrollment"],
                )
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
            else:
                waiting = created.status == Status.AWAITING_APPROVAL
                self.message_user(
                    request,
                    f"The request for {device.name} waits for a second administrator's approval."
                    if waiting
                    else f"The request for {device.name} is sent; the device receives it at its next check-in.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._change_url(created))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Retire / wipe: {device.name}",
            "device": device,
            "form": form,
            "refusals": refusals,
            "open_request_url": self._change_url(open_request) if open_request else "",
            "device_url": reverse("admin:devices_device_change", args=[device.pk]),
            # The same rule as ``services.retirement_request``: the button says which will happen.
            "needs_approval": RetirementSettings.load().require_approval
            and RetirementSource.ADMIN in services.APPROVAL_SOURCES,
        }
        return TemplateResponse(request, "admin/retirement/retirementrequest/request.html", context)
