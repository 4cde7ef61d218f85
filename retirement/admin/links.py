"""The "Retire / wipe" section of a device's change page: links, each only for those who may follow it."""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html_join

from devices.models import Device
from mdm_portal.core import authz

from ..choices import RetirementAction
from ..services.requests import device_permission


def device_retirement_links(device: Device, *, user) -> str:
    links = []
    if user is not None and any(authz.can(user, device_permission(a), device) for a in RetirementAction.values):
        links.append(
            (reverse("admin:retirement_retirementrequest_request", args=[device.pk]), "Retire / wipe this device")
        )
    if user is not None and authz.can(user, "retirement.view_retirementrequest", device):
        links.append(
            (
                reverse("admin:retirement_retirementrequest_changelist") + f"?device__id__exact={device.pk}",
                "Retirement requests of this device",
            )
        )
    if not links:
        return "—"
    return format_html_join(" · ", '<a href="{}">{}</a>', links)
