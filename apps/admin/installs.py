"""App installs across apps and devices: a read-only list with a confirmed bulk "Retry failed", and the
apps of one device (linked from the device's page)."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models.functions import Lower
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime

from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter

from ..choices import InstallState
from ..models import AppInstall
from ..selectors import STATE_ORDER, VIEW_INSTALL, device_detected_apps, version_outdated
from .catalog import RETRY, install_state_badge
from .filters import scoped_filter


def may_view_device_installs(user, device: Device) -> bool:
    """Whether ``user`` may see the apps of ``device`` (the device page shows the link only then)."""
    return authz.can(user, VIEW_INSTALL, device)


def device_installs_link(device: Device, *, visible: bool):
    """The device page's link to its apps, or a dash for someone who may not follow it."""
    if not visible:
        return "-"
    return format_html(
        '<a href="{}" id="device-apps-link">{}</a>',
        reverse("admin:apps_appinstall_device", args=[device.pk]),
        "Apps on this device: install state, version and reason",
    )


@admin.register(AppInstall)
class AppInstallAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    change_list_template = "admin/apps/change_list.html"
    list_display = ["device_name", "app", "state_badge", "intent_label", "version_label", "reason_text"]
    list_filter = [
        "state",
        "intent",
        ("app", ScopedRelatedListFilter),
        ("device__scope", scoped_filter("No scope")),
    ]
    list_select_related = ["device", "app"]
    search_fields = ["device__name", "device__serial_number", "app__name", "app__identifier"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["retry_failed"]
    fields = [
        "device",
        "app",
        "intent",
        "state",
        "desired_version",
        "installed_version",
        "reason",
        "requested_by_user",
        "command",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description="Device", ordering="device__name")
    def device_name(self, obj):
        return obj.device.name

    @admin.display(description="State, since", ordering="state")
    def state_badge(self, obj):
        since = date_format(localtime(obj.updated_at), "j M H:i")
        return format_html('{}<br><span class="quiet">{}</span>', install_state_badge(obj), since)

    @admin.display(description="Intent", ordering="intent")
    def intent_label(self, obj):
        label = obj.intent.capitalize() if obj.intent else "-"
        return f"{label} (from the portal)" if obj.requested_by_user else label

    @admin.display(description="Version")
    def version_label(self, obj):
        installed, wanted = obj.installed_version or "-", obj.desired_version
        if wanted and wanted != obj.installed_version:
            return format_html('{}<br><span class="quiet">wants {}</span>', installed, wanted)
        return installed

    @admin.display(description="Reason")
    def reason_text(self, obj):
        return obj.reason or "-"

    def has_retry_permission(self, request) -> bool:
        return authz.has_any(request.user, RETRY)

    @admin.action(description="Retry the selected failed installs…", permissions=["retry"])
    def retry_failed(self, request, queryset):
        permitted = authz.restrict(queryset, request.user, RETRY)
        failed = permitted.filter(state=InstallState.FAILED)
        selected = queryset.count()
        if request.POST.get("post") == "yes":
            from ..services import app_installs_retry_failed

            retried = app_installs_retry_failed(actor=self.actor(request), installs=failed)
            retried = retried if isinstance(retried, int) else len(retried or [])
            self.message_user(
                request,
                f"Queued again on {retried} device{'s' if retried != 1 else ''}; "
                "they install it at their next check-in.",
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Retry failed installs?",
            "selected": selected,
            "not_permitted": selected - permitted.count(),
            "failed": failed.count(),
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "changelist_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/appinstall/retry_confirm.html", context)

    # The apps of one device ------------------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "device/<int:device_id>/",
                self.admin_site.admin_view(self.device_view),
                name="apps_appinstall_device",
            ),
            *super().get_urls(),
        ]

    def device_view(self, request, device_id):
        """Every app known on one device: state, intent, versions and the reason the device gave."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        device = Device.objects.select_related("scope", "primary_user").filter(pk=device_id).first()
        if device is None or not may_view_device_installs(request.user, device):
            raise Http404("No device with this id.")
        installs = list(
            AppInstall.objects.filter(device=device)
            .select_related("app", "app__current_version")
            .order_by(Lower("app__name"), "app_id")
        )
        counts: dict[str, int] = defaultdict(int)
        for install in installs:
            counts[install.state] += 1
            install.app_url = (
                reverse("admin:apps_app_installs", args=[install.app_id])
                if authz.can(request.user, "apps.view_app", install.app)
                else None
            )
            install.update_available = install.state == InstallState.INSTALLED and version_outdated(
                install.installed_version, install.app.current_version
            )
        # Catalogue apps the device reports although IT never installed them: the Company Portal shows
        # them as installed, so the console lists them too (and says IT did not install them).
        detected = []
        for found in device_detected_apps(device, exclude_app_ids=[install.app_id for install in installs]):
            counts[InstallState.INSTALLED] += 1
            can_view = authz.can(request.user, "apps.view_app", found.app)
            detected.append(
                {
                    "app": found.app,
                    "version": found.version,
                    "update_available": found.update_available,
                    "app_url": reverse("admin:apps_app_installs", args=[found.app.pk]) if can_view else None,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Apps on {device.name}",
            "device": device,
            "device_url": (
                reverse("admin:devices_device_change", args=[device.pk])
                if authz.can(request.user, "devices.view_device", device)
                else None
            ),
            "installs": installs,
            "detected": detected,
            "counts": [(s, InstallState(s).label, counts[s]) for s in STATE_ORDER if counts[s]],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/appinstall/device.html", context)
