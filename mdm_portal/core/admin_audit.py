"""The audit log in the IT console: who did what to which object, in words first and codes second.

View-only (``ReadOnlyAdminMixin``). The action column reads "Install configuration profile —
acknowledged" above the stored code ``device.command.install_profile.acknowledged``; a device that
acted is shown by its name (one query per page, only devices the viewer may see); the changes are
a table, with the stored JSON a click away.
"""

from __future__ import annotations

import json
import uuid

from django.apps import apps
from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import capfirst

from . import authz
from .admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, key_value_table
from .choices import ActorType
from .models import AuditEvent

DEVICE_ACTOR_PREFIX = "device "


def verb_label(verb: str) -> str:
    """``device.command.install_profile.acknowledged`` → "Install configuration profile — acknowledged";
    any other code → its words ("device.compliance_change" → "Device compliance change")."""
    from devices.choices import CommandStatus, CommandType

    parts = verb.split(".")
    if len(parts) in (3, 4) and parts[:2] == ["device", "command"] and parts[2] in CommandType.values:
        label = f"{CommandType(parts[2]).label} command"
        if len(parts) == 3:
            return f"{label} queued"
        status = CommandStatus(parts[3]).label.lower() if parts[3] in CommandStatus.values else parts[3]
        return f"{label} \u2014 {status.replace('_', ' ')}"
    return capfirst(" ".join(part.replace("_", " ") for part in parts))


def _device_uuid(event: AuditEvent) -> uuid.UUID | None:
    if event.actor_type != ActorType.DEVICE or not event.actor_label.startswith(DEVICE_ACTOR_PREFIX):
        return None
    try:
        return uuid.UUID(event.actor_label.removeprefix(DEVICE_ACTOR_PREFIX))
    except ValueError:
        return None


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["created_at", "who", "action", "what", "source_ip"]
    list_filter = ["actor_type", "verb", "created_at"]
    search_fields = ["actor_label", "verb", "target_repr", "target_id"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor_type",
        "who",
        "actor_user",
        "action",
        "target_type",
        "target_id",
        "what",
        "scope",
        "changes_table",
        "source_ip",
    ]
    readonly_fields = fields

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": "Audit log", **(extra_context or {})})

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        changelist.result_list = list(changelist.result_list)
        self._name_devices(request, changelist.result_list)
        return changelist

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        self._name_devices(request, [obj])
        return obj

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # "device EMEA-PHONE-1 · Lock command — acknowledged · Lock for EMEA-PHONE-1", not the codes.
            who = f"device {obj.actor_device_name}" if getattr(obj, "actor_device_name", None) else obj.actor_label
            context["subtitle"] = " · ".join(filter(None, [who, verb_label(obj.verb), obj.target_repr]))
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _name_devices(self, request, events) -> None:
        """Put the acting device's name on each event a device did, in one query."""
        by_uuid = {event.pk: _device_uuid(event) for event in events}
        wanted = {value for value in by_uuid.values() if value is not None}
        if not wanted:
            return
        Device = apps.get_model("devices", "Device")
        visible = authz.restrict(Device.objects.filter(uuid__in=wanted), request.user, "devices.view_device")
        names = dict(visible.values_list("uuid", "name"))
        for event in events:
            event.actor_device_name = names.get(by_uuid[event.pk])

    @admin.display(description="Who", ordering="actor_label")
    def who(self, obj):
        name = getattr(obj, "actor_device_name", None)
        if name:
            return format_html('<span title="{}">device {}</span>', obj.actor_label, name)
        return obj.actor_label

    @admin.display(description="Action", ordering="verb")
    def action(self, obj):
        return format_html('{}<br><code class="quiet">{}</code>', verb_label(obj.verb), obj.verb)

    @admin.display(description="What", ordering="target_repr")
    def what(self, obj):
        return obj.target_repr or "-"

    @admin.display(description="Changes")
    def changes_table(self, obj):
        if not obj.changes:
            return "\u2014"
        return format_html(
            '{}<details class="raw-json"><summary>As stored (JSON)</summary><pre>{}</pre></details>',
            key_value_table(obj.changes),
            json.dumps(obj.changes, ensure_ascii=False, indent=2, sort_keys=True),
        )
