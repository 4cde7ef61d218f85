"""``{% outbox_warning %}``: the console index's warning about the task outbox (``core.admin_outbox``)."""

from django import template

register = template.Library()


@register.inclusion_tag("admin/core/outboxmessage/warning.html", takes_context=True)
def outbox_warning(context):
    from ..admin_outbox import outbox_warning as build

    request = context.get("request")
    return {"lines": build(request.user) if request is not None else []}
