"""``{% recent_actions %}``: the console home's "Your recent actions", from the audit log.

Django's own box reads the admin's LogEntry table, which this console never writes (every change
is an ``AuditEvent``), so it always said "None available".
"""

from django import template
from django.urls import reverse

from .. import selectors
from ..admin_audit import verb_label

register = template.Library()

SHOWN = 10


@register.inclusion_tag("admin/recent_actions.html", takes_context=True)
def recent_actions(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"events": []}
    # Only the person's own actions: their own record needs no authorisation beyond being them.
    events = selectors.audit_events_by(user=user, limit=SHOWN)
    for event in events:
        event.label = verb_label(event.verb)
    # The link to the whole log only for those the console lists it for (the index's own app list).
    apps = context.get("available_apps") or []
    can_see_log = any(model.get("object_name") == "AuditEvent" for app in apps for model in app.get("models", []))
    return {"events": events, "log_url": reverse("admin:core_auditevent_changelist") if can_see_log else None}
