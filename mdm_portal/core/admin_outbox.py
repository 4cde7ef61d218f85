"""The task outbox in the IT console: what could not reach the message broker, and what to do about it.

A view-only list (never the payload: ``shown`` is what a message carries, secrets redacted) with
three actions, each through ``core.services_outbox`` and audited: "Send now" on waiting messages,
"Retry" on dead ones (the relay tries them again), and "Discard" behind a confirmation page.
Global operational data: its permissions are sensitive (``core.roles``) and not scoped, so only the
Global administrator role over all scopes opens it. ``outbox_warning`` (the console index) says
when messages wait too long or are dead.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from . import authz, selectors
from .admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, relative_time
from .models import OutboxMessage
from .services_outbox import outbox_messages_discard, outbox_messages_retry, outbox_messages_send

SEND = "core.change_outboxmessage"
DISCARD = "core.delete_outboxmessage"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class OutboxStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("waiting", "Waiting"), ("dead", "Dead")]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(dead_at__isnull=True)
        if self.value() == "dead":
            return queryset.filter(dead_at__isnull=False)
        return queryset


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["task", "state", "carries", "created", "attempts", "last_attempt", "error"]
    list_filter = [OutboxStateFilter]
    search_fields = ["task"]
    ordering = ["pk"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["send_now", "retry", "discard"]
    fields = ["task", "shown", "state", "created_at", "attempts", "last_attempt_at", "last_error", "dead_at", "sealed"]
    readonly_fields = fields

    def get_queryset(self, request):
        return selectors.outbox_message_list(user=request.user)

    @admin.display(description="Carries")
    def carries(self, obj):
        return obj.shown[:200] or "-"

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return relative_time(obj.created_at)

    @admin.display(description="Last attempt", ordering="last_attempt_at")
    def last_attempt(self, obj):
        return relative_time(obj.last_attempt_at, empty="-")

    @admin.display(description="Last error")
    def error(self, obj):
        return obj.last_error[:300] or "-"

    @admin.display(description="State", ordering="dead_at")
    def state(self, obj):
        if obj.is_dead:
            since = date_format(localtime(obj.dead_at), "j M H:i")
            return format_html('<strong class="outbox-dead">Dead</strong> since {}', since)
        return "Waiting"

    # Actions -------------------------------------------------------------------------------------

    def has_send_permission(self, request) -> bool:
        return authz.has_global(request.user, SEND)

    def has_discard_permission(self, request) -> bool:
        return authz.has_global(request.user, DISCARD)

    @admin.action(description="Send the selected waiting messages now", permissions=["send"])
    def send_now(self, request, queryset):
        result = outbox_messages_send(actor=self.actor(request), messages=queryset)
        level = messages.SUCCESS if not result.stayed else messages.WARNING
        text = f"Sent {_plural(result.sent, 'message')}; {result.stayed} stayed waiting."
        if result.stayed:
            text += " The message broker refused one: see its last error, and try again once the broker is back."
        if result.skipped:
            text += f" {_plural(result.skipped, 'dead message')} skipped: retry them first."
        self.message_user(request, text, level)

    @admin.action(description="Retry the selected dead messages", permissions=["send"])
    def retry(self, request, queryset):
        revived = outbox_messages_retry(actor=self.actor(request), messages=queryset)
        if not revived:
            self.message_user(request, "None of the selected messages is dead; nothing to retry.", messages.WARNING)
            return
        self.message_user(
            request,
            f"{_plural(revived, 'message')} waiting again: the relay tries them within a minute "
            "(or use “Send now”). If the cause is not fixed, they are set aside again.",
            messages.SUCCESS,
        )

    @admin.action(description="Discard the selected messages…", permissions=["discard"])
    def discard(self, request, queryset):
        if request.POST.get("post") == "yes":
            count = outbox_messages_discard(actor=self.actor(request), messages=queryset)
            self.message_user(
                request, f"Discarded {_plural(count, 'message')}; they will never be sent.", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Discard these task messages?",
            "rows": list(queryset.order_by("pk")),
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/core/outboxmessage/discard_confirm.html", context)


def outbox_warning(user) -> list[tuple[str, str]]:
    """The console index's warning lines about the outbox, each with its link; none for someone who may not look."""
    health = selectors.outbox_health(user=user)
    if health is None:
        return []
    changelist = reverse("admin:core_outboxmessage_changelist")
    lines = []
    if health.stale:
        since = date_format(localtime(health.waiting_since), "H:i")
        verb = "is" if health.waiting == 1 else "are"
        lines.append(
            (
                f"{_plural(health.waiting, 'background task')} {verb} waiting for the message broker since {since}.",
                f"{changelist}?state=waiting",
            )
        )
    if health.dead:
        lines.append(
            (
                f"{_plural(health.dead, 'background task')} could not be sent: "
                f"review {'it' if health.dead == 1 else 'them'}.",
                f"{changelist}?state=dead",
            )
        )
    return lines
