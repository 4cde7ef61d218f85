"""Bulk retire and full wipe from the device list, and the progress page of such a bulk request.

How it hooks into the devices app, which must not import retirement: this module subclasses the
``ModelAdmin`` registered for ``Device`` (whatever it is when the retirement admin loads, so another
app's extension survives) and registers the subclass in its place. The subclass adds the two
changelist actions and the ``has_*_permission`` checks Django's action permissions call; everything
else is the devices app's own admin. The progress page is mounted on the admin site
(``retirement/bulk/<batch>/``), next to the retirement report.

The actions mirror the devices app's bulk remote actions: a preview counting (in SQL) what would
happen, a confirmation (for a full wipe, typing "wipe 42 devices", since names do not work in bulk),
then the requests are made in the web request, or above ``BACKGROUND_THRESHOLD`` devices by a Celery
task acting as the person, and the progress page follows the requests of the batch.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import AdminSite, helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

import devices.admin  # noqa: F401  (registers the Device admin this module extends)
from devices.models import Device
from devices.tasks_commands import BACKGROUND_THRESHOLD
from mdm_portal.core import authz

from .. import selectors
from ..choices import RetirementAction, RetirementStatus
from ..models import RetirementRequest
from ..services import retirement_request_bulk
from ..services.requests import device_permission
from ..tasks import enqueue_retirement_request_bulk

ACTION_TITLES = {RetirementAction.RETIRE: "Retire", RetirementAction.WIPE: "Full wipe"}
PROGRESS_URL = "admin:retirement_bulk_progress"


def wipe_phrase(count: int) -> str:
    return f"wipe {count} device{'s' if count != 1 else ''}"


class BulkRetirementForm(forms.Form):
    """The reason, and for a full wipe the typed count of devices that get it."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        required=False,
        help_text="Recorded on every request of this bulk request.",
    )
    keep_enrollment = forms.BooleanField(
        label="Keep the enrolment",
        required=False,
        help_text="The devices re-enrol by themselves after the reset.",
    )
    confirm = forms.CharField(label="Type to confirm", required=False, widget=forms.TextInput(attrs={"size": 30}))

    def __init__(self, *args, action: str, eligible: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action
        self.phrase = wipe_phrase(eligible)
        if action == RetirementAction.WIPE:
            self.fields[
                "confirm"
            ].help_text = f"Type “{self.phrase}”. A full wipe erases everything on each device, personal data included."
        else:
            del self.fields["keep_enrollment"]
            del self.fields["confirm"]

    def clean(self):
        data = super().clean()
        if self.action == RetirementAction.WIPE and (data.get("confirm") or "").strip().lower() != self.phrase:
            self.add_error("confirm", f"Type “{self.phrase}” exactly to confirm the full wipe.")
        return data


def _bulk_action(action: str):
    label = ACTION_TITLES[action]

    @admin.action(description=f"{label} selected devices…", permissions=[device_permission(action).split(".", 1)[1]])
    def run(modeladmin, request, queryset):
        return bulk_retirement_view(modeladmin, request, queryset, action)

    run.__name__ = f"retirement_{action}_selected"
    return run


def bulk_retirement_view(modeladmin, request, queryset: QuerySet[Device], action: str):
    """The changelist action: a preview of what would happen; confirmed, the bulk request.

    ``queryset`` is the ticked devices, or every device matching the list's filters ("select all");
    only devices where the person holds the action's permission get a request.
    """
    user = request.user
    permission = device_permission(action)
    if not authz.has_any(user, permission):
        raise PermissionDenied
    preview = selectors.retirement_bulk_preview(user=user, action=action, selected=queryset)
    confirmed = request.POST.get("post") == "yes"
    form = BulkRetirementForm(request.POST if confirmed else None, action=action, eligible=preview.eligible)
    if confirmed and preview.eligible and form.is_valid():
        return _bulk_request(modeladmin, request, action, authz.restrict(queryset, user, permission), form.cleaned_data)
    label = ACTION_TITLES[action]
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": f"{label}: {preview.selected} selected device{'s' if preview.selected != 1 else ''}",
        "action": action,
        "action_label": label,
        "action_name": f"retirement_{action}_selected",
        "preview": preview,
        "form": form,
        "wipe": action == RetirementAction.WIPE,
        "select_across": request.POST.get("select_across", "0"),
        "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "background": preview.eligible > BACKGROUND_THRESHOLD,
        "changelist_url": request.get_full_path(),
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/retirement/bulk_preview.html", context)


def _bulk_request(modeladmin, request, action: str, permitted: QuerySet[Device], data: dict):
    actor = modeladmin.actor(request)
    batch = uuid.uuid4()
    progress_url = reverse(PROGRESS_URL, args=[batch])
    keep_enrollment = bool(data.get("keep_enrollment"))
    label = ACTION_TITLES[action]
    if permitted.order_by().count() > BACKGROUND_THRESHOLD:
        selection: dict = {"admin_query": request.GET.urlencode()}
        if request.POST.get("select_across") not in ("1", "True", "true"):
            selection["ids"] = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        enqueue_retirement_request_bulk(
            user=request.user,
            source_ip=actor.source_ip,
            action=action,
            reason=data["reason"],
            keep_enrollment=keep_enrollment,
            batch=batch,
            selection=selection,
        )
        modeladmin.message_user(
            request,
            f"{label}: the requests are being made in the background for every selected device you may act on; "
            "this page shows them as they are made and answered.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(progress_url + "?pending=1")
    try:
        outcome = retirement_request_bulk(
            actor=actor,
            devices=permitted,
            action=action,
            reason=data["reason"],
            keep_enrollment=keep_enrollment,
            batch=batch,
        )
    except ValidationError as exc:
        modeladmin.message_user(request, " ".join(exc.messages), messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())
    skipped = f"; {outcome['skipped']} skipped" if outcome["skipped"] else ""
    if not outcome["requested"]:
        modeladmin.message_user(request, f"{label}: no device could take it{skipped}.", messages.WARNING)
        return HttpResponseRedirect(request.get_full_path())
    waiting = (
        f", {outcome['awaiting_approval']} waiting for a second administrator's approval"
        if outcome["awaiting_approval"]
        else ""
    )
    count = outcome["requested"]
    modeladmin.message_user(
        request,
        f"{label} requested for {count} device{'s' if count != 1 else ''}{waiting}{skipped}.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(progress_url)


def extend_device_admin(site: AdminSite) -> None:
    """Register, in place of the Device admin, a subclass with the bulk retire and wipe actions (once)."""
    current = type(site._registry[Device])
    if getattr(current, "retirement_bulk_actions", False):
        return

    class RetirementDeviceAdmin(current):
        retirement_bulk_actions = True
        actions = [*current.actions, *(_bulk_action(a) for a in (RetirementAction.RETIRE, RetirementAction.WIPE))]

        def has_retire_device_permission(self, request) -> bool:
            return authz.has_any(request.user, device_permission(RetirementAction.RETIRE))

        def has_wipe_device_permission(self, request) -> bool:
            return authz.has_any(request.user, device_permission(RetirementAction.WIPE))

    RetirementDeviceAdmin.__name__ = RetirementDeviceAdmin.__qualname__ = f"Retirement{current.__name__}"
    site.unregister(Device)
    site.register(Device, RetirementDeviceAdmin)


# Progress of one bulk request ------------------------------------------------------------------------------

PROGRESS_ROWS = (
    (RetirementStatus.AWAITING_APPROVAL, "Awaiting approval"),
    (RetirementStatus.COMMAND_SENT, "Command sent"),
    (RetirementStatus.ACKNOWLEDGED, "Acknowledged by the device"),
    (RetirementStatus.VERIFIED, "Verified, waiting to unenrol"),
    (RetirementStatus.TIMED_OUT, "Timed out (device offline)"),
    (RetirementStatus.UNENROLLED, "Unenrolled"),
    (RetirementStatus.FORCED, "Unenrolled by force"),
    (RetirementStatus.FAILED, "Failed"),
    (RetirementStatus.CANCELLED, "Cancelled"),
)


def progress_view(site: AdminSite):
    def view(request, batch: uuid.UUID):
        """Counts by status of the requests of one bulk request the person may see; refreshes itself
        while any is open (or the background task has not made any yet)."""
        if not authz.has_any(request.user, selectors.VIEW_REQUEST):
            raise PermissionDenied
        progress = selectors.retirement_batch_progress(user=request.user, batch=batch)
        pending = request.GET.get("pending") == "1"
        if not progress.total and not pending:
            # A bulk request of another scope and one that never was look the same.
            raise Http404("No bulk request with this id.")
        list_url = reverse("admin:retirement_retirementrequest_changelist") + f"?batch={batch}"
        context = {
            **site.each_context(request),
            "opts": RetirementRequest._meta,
            "title": f"Progress: {ACTION_TITLES.get(progress.action, 'bulk request')}",
            "progress": progress,
            "action_label": ACTION_TITLES.get(progress.action, ""),
            "rows": [(value, label, progress.counts[value]) for value, label in PROGRESS_ROWS],
            "pending": pending and not progress.total,
            "refresh": progress.still_open > 0 or (pending and not progress.total),
            "list_url": list_url,
        }
        request.current_app = site.name
        return TemplateResponse(request, "admin/retirement/bulk_progress.html", context)

    return view


class BatchListFilter(admin.SimpleListFilter):
    """``?batch=<uuid>``: the requests of one bulk request (shown only while it is applied)."""

    title = "bulk request"
    parameter_name = "batch"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, "This bulk request")] if value else []

    def has_output(self):
        return self.value() is not None

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(batch=uuid.UUID(value))
        except ValueError:
            return queryset.none()


def mount(site: AdminSite) -> None:
    """The bulk actions on the device list, and the progress page's URL before the site's own (once)."""
    extend_device_admin(site)
    if getattr(site, "retirement_bulk_mounted", False):
        return
    site.retirement_bulk_mounted = True
    site_urls = site.get_urls
    urls = [
        path("retirement/bulk/<uuid:batch>/", site.admin_view(progress_view(site)), name="retirement_bulk_progress")
    ]
    site.get_urls = lambda: [*urls, *site_urls()]


mount(admin.site)
