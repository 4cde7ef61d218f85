"""The command queue in the IT console: what was asked of which device, and what became of it.

Read-only. Whoever may see a device may see its commands (``devices.view_device`` on the device's
scope, through ``core.authz``); cancelling one needs the permission of the action itself on that
device. Secret inputs (a new passcode) are never shown.
"""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Min
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from mdm_portal.core import authz
from mdm_portal.core.admin_base import (
    AuthzModelAdmin,
    ReadOnlyAdminMixin,
    ScopedRelatedListFilter,
    key_value_table,
    relative_time,
)

from .. import services
from ..choices import CommandStatus
from ..commands import ACTIONS
from ..models import OPEN_STATUSES, DeviceCommand

VIEW_COMMANDS = "devices.view_device"
# A command is done, one way or another, in these states; the progress bar counts them.
CLOSED_STATUSES = (CommandStatus.ACKNOWLEDGED, CommandStatus.ERROR, CommandStatus.EXPIRED, CommandStatus.CANCELLED)
CANCELLABLE = (CommandStatus.QUEUED, CommandStatus.NOT_NOW)
MASK = "••••••"


class CommandScopeFilter(ScopedRelatedListFilter):
    """The device's scope: only the scopes where the person may see devices."""

    def field_choices(self, field, request, model_admin):
        allowed = authz.scopes_for(request.user, VIEW_COMMANDS)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": allowed.values("pk")}
        )


def public_payload(command: DeviceCommand) -> dict:
    """The payload with the action's secret fields masked."""
    action = ACTIONS.get(command.command_type)
    secret = action.secret_fields if action else ()
    return {key: (MASK if key in secret else value) for key, value in (command.payload or {}).items()}


@admin.register(DeviceCommand)
class DeviceCommandAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = [
        "command_type",
        "device_link",
        "status",
        "requester",
        "queued",
        "sent",
        "completed",
        "short_error",
    ]
    # The device column links to the device, so the command's own page opens from its type.
    list_display_links = ["command_type"]
    list_filter = ["command_type", "status", ("device__scope", CommandScopeFilter)]
    list_select_related = ["device"]
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["device__name"]
    actions = ["cancel"]
    fields = [
        "command_id",
        "device_link",
        "command_type",
        "status",
        "shown_payload",
        "requester",
        "batch_link",
        "created_at",
        "sent_at",
        "send_count",
        "deadline_at",
        "completed_at",
        "error",
        "shown_result",
    ]
    readonly_fields = fields

    def _perm(self, verb: str) -> str:
        # Commands are part of the device's record: seeing one follows seeing the device.
        return VIEW_COMMANDS if verb == "view" else super()._perm(verb)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("device")

    @admin.display(description="device", ordering="device__name")
    def device_link(self, obj):
        url = reverse("admin:devices_device_change", args=[obj.device_id])
        return format_html('<a href="{}">{}</a>', url, obj.device.name)

    @admin.display(description="command id")
    def command_id(self, obj):
        return str(obj.uuid)

    @admin.display(description="requested by", ordering="requested_by_label")
    def requester(self, obj):
        return obj.requested_by_label

    @admin.display(description="Queued", ordering="created_at")
    def queued(self, obj):
        return relative_time(obj.created_at)

    @admin.display(description="Sent", ordering="sent_at")
    def sent(self, obj):
        return relative_time(obj.sent_at, empty="-")

    @admin.display(description="Completed", ordering="completed_at")
    def completed(self, obj):
        return relative_time(obj.completed_at, empty="-")

    @admin.display(description="error")
    def short_error(self, obj):
        return obj.error[:80] + ("…" if len(obj.error) > 80 else "")

    @admin.display(description="payload")
    def shown_payload(self, obj):
        return key_value_table(public_payload(obj))

    @admin.display(description="result")
    def shown_result(self, obj):
        return key_value_table(obj.result)

    @admin.display(description="bulk request")
    def batch_link(self, obj):
        if obj.batch is None:
            return "-"
        return format_html(
            '<a href="{}">Progress of this bulk request</a>',
            reverse("admin:devices_devicecommand_batch", args=[obj.batch]),
        )

    # Cancelling ---------------------------------------------------------------------------------

    def has_cancel_permission(self, request) -> bool:
        return any(authz.has_any(request.user, action.permission) for action in ACTIONS.values())

    @admin.action(description="Cancel the selected commands (queued or not now only)", permissions=["cancel"])
    def cancel(self, request, queryset):
        actor = self.actor(request)
        cancelled, refused = 0, {}
        for command in queryset.filter(status__in=CANCELLABLE).select_related("device"):
            action = ACTIONS.get(command.command_type)
            if action is None or not authz.can(request.user, action.permission, command.device):
                reason = f"you may not {action.label.lower() if action else 'act on'} these devices"
                refused[reason] = refused.get(reason, 0) + 1
                continue
            try:
                services.device_command_cancel(actor=actor, command=command)
            except ValidationError as exc:
                refused[" ".join(exc.messages)] = refused.get(" ".join(exc.messages), 0) + 1
            else:
                cancelled += 1
        closed = queryset.exclude(status__in=CANCELLABLE).count()
        if closed:
            refused["already sent or closed; only a queued command can be cancelled"] = closed
        self.message_user(request, f"Cancelled {cancelled} command{'s' if cancelled != 1 else ''}.", messages.SUCCESS)
        for reason, count in refused.items():
            self.message_user(request, f"{count} not cancelled: {reason}.", messages.WARNING)

    # Progress of one bulk request ---------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "batch/<uuid:batch>/",
                self.admin_site.admin_view(self.batch_view),
                name="devices_devicecommand_batch",
            ),
            *super().get_urls(),
        ]

    def batch_view(self, request, batch: uuid.UUID):
        """Counts by status of the commands of one bulk request that the person may see; refreshes itself."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = list(
            self.get_queryset(request)
            .filter(batch=batch)
            .order_by()
            .values("status", "command_type", "requested_by_label")
            .annotate(n=Count("pk"), first=Min("created_at"))
        )
        pending = request.GET.get("pending") == "1"
        if not rows and not pending:
            # A request of another scope and one that never was look the same.
            raise Http404("No bulk request with this id.")
        counts = {status: 0 for status in CommandStatus.values}
        for row in rows:
            counts[row["status"]] += row["n"]
        total = sum(counts.values())
        closed = sum(counts[s] for s in CLOSED_STATUSES)
        still_open = sum(counts[s] for s in OPEN_STATUSES)
        first = rows[0] if rows else None
        action = ACTIONS.get(first["command_type"]) if first else None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Progress: {action.label if action else 'bulk request'}",
            "batch": batch,
            "action": action,
            "requested_by": first["requested_by_label"] if first else "",
            "created_at": min(r["first"] for r in rows) if rows else None,
            "total": total,
            "closed": closed,
            "still_open": still_open,
            "percent": round(100 * closed / total) if total else 0,
            "statuses": [(value, label, counts[value]) for value, label in CommandStatus.choices],
            "pending": pending and not rows,
            "refresh": still_open > 0 or (pending and not rows),
            "list_url": reverse("admin:devices_devicecommand_changelist") + f"?batch={batch}",
        }
        return TemplateResponse(request, "admin/devices/devicecommand/batch_progress.html", context)
