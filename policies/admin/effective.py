"""The effective-policy pages of the IT console: one device, or every device of one person.

Who may look: a person who may view configuration profiles or compliance policies in the device's
scope (a Policy and profile manager of that scope, a read-only operator, a global administrator).
Without either permission anywhere the page is a 403; a device or person outside their scopes is
a 404, like a missing one.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from devices.models import Device
from mdm_portal.core import authz

from ..selectors.effective import device_effective_policy, person_effective_policy

VIEW_PERMISSIONS = ("policies.view_configurationprofile", "policies.view_compliancepolicy")


def may_view_effective(user, device: Device) -> bool:
    """Whether ``user`` may see ``device``'s effective configuration and compliance."""
    return authz.can(user, "devices.view_device", device) and any(authz.can(user, p, device) for p in VIEW_PERMISSIONS)


def effective_device_url(device: Device) -> str:
    return reverse("admin:policies_effective_device", args=[device.pk])


def _refuse_without_any(user) -> None:
    if not any(authz.has_any(user, p) for p in VIEW_PERMISSIONS):
        raise PermissionDenied


def _context(admin_site, request, **extra):
    from ..models import ConfigurationProfile

    return {
        **admin_site.each_context(request),
        "opts": ConfigurationProfile._meta,
        **extra,
    }


def effective_device_view(admin_site):
    def view(request, device_id):
        _refuse_without_any(request.user)
        device = Device.objects.select_related("scope", "primary_user").filter(pk=device_id).first()
        if device is None or not may_view_effective(request.user, device):
            raise Http404("No device with this id.")
        effective = device_effective_policy(user=request.user, device=device)
        context = _context(
            admin_site,
            request,
            title=f"Configuration and compliance of {device.name}",
            effective=effective,
            device_url=reverse("admin:devices_device_change", args=[device.pk]),
            person_url=(
                reverse("admin:policies_effective_user", args=[device.primary_user_id])
                if device.primary_user_id and authz.can(request.user, "core.view_user", device.primary_user)
                else None
            ),
        )
        request.current_app = admin_site.name
        return TemplateResponse(request, "admin/policies/effective_device.html", context)

    return view


def effective_user_view(admin_site):
    def view(request, user_id):
        _refuse_without_any(request.user)
        person = get_user_model().objects.select_related("scope").filter(pk=user_id).first()
        if person is None or not authz.can(request.user, "core.view_user", person):
            raise Http404("No person with this id.")
        devices, total = person_effective_policy(user=request.user, person=person)
        context = _context(
            admin_site,
            request,
            title=f"Configuration and compliance of {person.get_full_name() or person.get_username()}",
            person=person,
            devices=devices,
            total=total,
            user_url=reverse("admin:core_user_change", args=[person.pk]),
            groups=list(person.user_groups.order_by("name").values_list("name", flat=True)),
        )
        request.current_app = admin_site.name
        return TemplateResponse(request, "admin/policies/effective_user.html", context)

    return view


def effective_urls(admin_site) -> list:
    """Mounted under the configuration profile admin's URLs (``…/configurationprofile/effective/…``)."""
    return [
        path(
            "effective/device/<int:device_id>/",
            admin_site.admin_view(effective_device_view(admin_site)),
            name="policies_effective_device",
        ),
        path(
            "effective/user/<int:user_id>/",
            admin_site.admin_view(effective_user_view(admin_site)),
            name="policies_effective_user",
        ),
    ]


def compliance_summary(device: Device, *, link: bool):
    """The device page's line: compliance state, how many rules it fails, and the link to the details."""
    from django.utils.html import format_html

    from ..selectors.effective import failing_rule_count

    failing = failing_rule_count(device)
    text = device.get_compliance_state_display()
    if failing:
        text = f"{text}: {failing} failing rule{'s' if failing != 1 else ''}"
    if not link:
        return text
    return format_html(
        '{} · <a href="{}" id="effective-policy-link">Every setting and rule that applies, and where it comes from</a>',
        text,
        effective_device_url(device),
    )
