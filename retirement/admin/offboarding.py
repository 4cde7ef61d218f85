"""Offboarding in the IT console: start one for a person (preview of every device and app instance,
the username typed to confirm), and follow each record to the end.

The user's change page links here ("Offboard this person"); that is also the only way the console
deactivates an active account, because deactivation retires or wipes the person's devices.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter
from mdm_portal.core.models import User

from ..choices import OffboardingSource, OffboardingStep
from ..models import Offboarding, RetirementSettings
from ..selectors_offboarding import (
    STATE_LABELS,
    offboarding_items,
    offboarding_state,
    offboardings_for,
)
from ..services.offboarding import (
    RUN_PERMISSION,
    offboarding_app_instances,
    offboarding_devices,
    offboarding_start,
    planned_step,
)


def _badge(state: str):
    # The colour of each state is in static/console/console.css (no inline style under the CSP).
    return format_html('<span class="offboarding-state state-{}">{}</span>', state, STATE_LABELS[state])


class OffboardingStartForm(forms.Form):
    reason = forms.CharField(
        required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Kept on every request."
    )
    confirm_username = forms.CharField(label="Type the username to confirm", max_length=150)

    def __init__(self, *args, person: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.person = person
        self.fields["confirm_username"].help_text = f"Type “{person.get_username()}”."

    def clean_confirm_username(self):
        typed = self.cleaned_data["confirm_username"].strip()
        if typed != self.person.get_username():
            raise ValidationError(
                f"That is not the username. Type “{self.person.get_username()}” exactly to offboard this person."
            )
        return typed


def person_offboarding_link(user: User, viewer) -> str:
    """The "Offboard this person" link (and past offboardings) for the user's change page."""
    parts = []
    if authz.can(viewer, RUN_PERMISSION, user) and viewer.pk != user.pk:
        parts.append(
            format_html(
                '<a class="button" id="offboard-link" href="{}">{}</a>',
                reverse("admin:retirement_offboarding_start", args=[user.pk]),
                "Offboard this person" if user.is_active else "Offboard again (devices enrolled since)",
            )
        )
    past = offboardings_for(viewer).filter(user=user).order_by("-started_at")[:5]
    parts.extend(
        format_html(
            '<a href="{}">Offboarding of {}: {}</a>',
            reverse("admin:retirement_offboarding_change", args=[o.pk]),
            o.started_at.strftime("%Y-%m-%d %H:%M UTC"),
            STATE_LABELS[offboarding_state(o)].lower(),
        )
        for o in past
    )
    return format_html_join(" ", "{}", ((p,) for p in parts)) if parts else "—"


@admin.register(Offboarding)
class OffboardingAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["user_label", "started_at", "started_by_label", "source", "progress", "state_badge", "scope"]
    list_filter = ["source", "corporate_action", ("scope", ScopedRelatedListFilter)]
    search_fields = ["username", "user_label"]
    list_select_related = ["scope"]
    fieldsets = (
        ("Person", {"fields": ("user_link", "username", "scope")}),
        (
            "Offboarding",
            {"fields": ("source", "corporate_action", "reason", "started_by_label", "started_at", "state_badge")},
        ),
        ("Devices and app instances", {"fields": ("items_table",)}),
    )
    readonly_fields = ["user_link", "state_badge", "items_table", "started_at"]

    def get_queryset(self, request):
        return offboardings_for(request.user).select_related("scope")

    @admin.display(description="Done")
    def progress(self, obj):
        done = obj.item_count - obj.open_count - obj.attention_count
        return f"{done} of {obj.item_count}"

    @admin.display(description="State")
    def state_badge(self, obj):
        return _badge(offboarding_state(obj))

    @admin.display(description="Person")
    def user_link(self, obj):
        if obj.user_id is None:
            return f"{obj.user_label} (account deleted)"
        return format_html('<a href="{}">{}</a>', reverse("admin:core_user_change", args=[obj.user_id]), obj.user_label)

    @admin.display(description="What happened")
    def items_table(self, obj):
        rows = []
        for item, state in offboarding_items(obj):
            if item.retirement_request_id:
                follow = format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:retirement_retirementrequest_change", args=[item.retirement_request_id]),
                    state.text,
                )
            elif item.app_data_wipe_id:
                follow = format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:apps_appdatawipe_change", args=[item.app_data_wipe_id]),
                    state.text,
                )
            else:
                follow = state.text
            rows.append((item.label, item.get_step_display(), item.note, _badge(state.state), follow))
        if not rows:
            return "This person had no devices and no app instances: nothing to do."
        body = format_html_join(
            "", '<tr class="offboarding-item"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>', rows
        )
        return format_html(
            '<table id="offboarding-items"><thead><tr><th>Device or app</th><th>Step</th><th>Why</th>'
            "<th>State</th><th>Follow it</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    # Start ------------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "start/<int:user_id>/",
                self.admin_site.admin_view(self.start_view),
                name="retirement_offboarding_start",
            ),
            *super().get_urls(),
        ]

    def start_view(self, request, user_id):
        """Preview what offboarding does to each device and app instance; POST (username typed) runs it."""
        if not authz.has_any(request.user, RUN_PERMISSION):
            raise PermissionDenied
        person = authz.restrict(User.objects.select_related("scope"), request.user, RUN_PERMISSION).filter(pk=user_id)
        person = person.first()
        if person is None:
            raise Http404("No person with this id.")
        settings = RetirementSettings.load()
        plan = [
            (device, *planned_step(device, settings.corporate_offboarding)) for device in offboarding_devices(person)
        ]
        instances = list(offboarding_app_instances(person).select_related("device"))
        posted = request.method == "POST"
        form = OffboardingStartForm(request.POST if posted else None, person=person)
        if posted and form.is_valid():
            try:
                offboarding = offboarding_start(
                    actor=self.actor(request),
                    user=person,
                    source=OffboardingSource.ADMIN,
                    reason=form.cleaned_data["reason"],
                )
            except (ValidationError, PermissionDenied) as exc:
                form.add_error(None, " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc))
            else:
                self.message_user(
                    request,
                    f"Offboarded {person.get_username()}: account deactivated, {offboarding.items.count()} devices and "
                    "app instances handled. Follow each one below.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:retirement_offboarding_change", args=[offboarding.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Offboard {person.get_full_name() or person.get_username()}",
            "person": person,
            "plan": plan,
            "instances": instances,
            "settings": settings,
            "form": form,
            "steps": OffboardingStep,
            "user_url": reverse("admin:core_user_change", args=[person.pk]),
            "settings_url": reverse("admin:retirement_retirementsettings_changelist"),
        }
        return TemplateResponse(request, "admin/retirement/offboarding/start.html", context)
