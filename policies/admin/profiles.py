"""Configuration profiles in the IT console: the list, the editor, deliveries and resend."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join

from devices.choices import Platform
from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.admin_base import ScopedRelatedListFilter
from mdm_portal.core.models import Scope

from ..choices import DeliveryState, ProfileKind
from ..models import ConfigurationProfile, ProfileDelivery
from ..profile_settings import SETTINGS
from ..secrets import secrets_decrypt
from ..services.profiles import profile_delete, profile_resend_failed, profile_save
from .editor import EditorAdmin, proposed_copy
from .profile_forms import SECRET_INPUTS, SETTING_PREFIX, ProfileForm, native_payloads

RESEND = "policies.resend_configurationprofile"
KIND_HELP = {
    ProfileKind.PASSCODE: "Minimum length, complexity, maximum age, history, failed attempts and auto-lock.",
    ProfileKind.ENCRYPTION: "Require storage encryption (FileVault, BitLocker, Android) and escrow recovery keys.",
    ProfileKind.RESTRICTIONS: "Camera, screenshots, the app store, USB and file sharing, account changes.",
    ProfileKind.WIFI: "A Wi-Fi network, its security and its password (stored encrypted).",
    ProfileKind.VPN: "A VPN connection: server, type, connect on demand.",
    ProfileKind.EMAIL: "An Exchange or IMAP email account.",
    ProfileKind.CERTIFICATE: "A trusted CA certificate.",
}
STATE_ORDER = [
    DeliveryState.SUCCEEDED,
    DeliveryState.PENDING,
    DeliveryState.ERROR,
    DeliveryState.CONFLICT,
    DeliveryState.NOT_APPLICABLE,
]


def delivery_counts(profile_ids) -> dict[int, dict[str, int]]:
    """Deliveries per state of each profile: one GROUP BY for any number of profiles."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not profile_ids:
        return counts
    rows = (
        ProfileDelivery.objects.filter(profile_id__in=list(profile_ids))
        .order_by()
        .values("profile_id", "state")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        counts[row["profile_id"]][row["state"]] = row["n"]
    return counts


# The ModelAdmin ---------------------------------------------------------------------------------------


@admin.register(ConfigurationProfile)
class ConfigurationProfileAdmin(EditorAdmin):
    list_display = ["name", "kind", "scope_label", "platform_list", "version", "deliveries"]
    list_filter = ["kind", ("scope", ScopedRelatedListFilter)]
    list_select_related = ["scope"]
    search_fields = ["name", "description"]
    show_facets = admin.ShowFacets.NEVER
    sensitive_fields = SECRET_INPUTS

    @admin.display(description="Scope", ordering="scope__name")
    def scope_label(self, obj):
        return obj.scope or "Organisation-wide"

    @admin.display(description="Platforms")
    def platform_list(self, obj):
        return ", ".join(Platform(p).label for p in obj.platforms if p in Platform.values) or "Every platform"

    @admin.display(description="Deliveries")
    def deliveries(self, obj):
        counts = getattr(obj, "delivery_counts", None)
        if counts is None:
            return "-"
        if not counts:
            return "None yet"
        url = reverse("admin:policies_configurationprofile_deliveries", args=[obj.pk])
        return format_html_join(
            " ",
            '<a class="delivery-state state-{}" href="{}?state={}">{} {}</a>',
            (
                (state, url, state, counts[state], DeliveryState(state).label.lower())
                for state in STATE_ORDER
                if counts.get(state)
            ),
        )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = (getattr(response, "context_data", None) or {}).get("cl")
        if cl is not None:
            rows = list(cl.result_list)
            counts = delivery_counts([row.pk for row in rows])
            for row in rows:
                row.delivery_counts = counts.get(row.pk, {})
        return response

    # The editor -------------------------------------------------------------------------------

    def _kind(self, request, obj) -> str | None:
        if obj is not None:
            return obj.kind
        kind = request.GET.get("kind") or request.POST.get("kind")
        return kind if kind in SETTINGS else None

    def editor_add_prelude(self, request):
        if self._kind(request, None) is not None:
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add configuration profile: choose what it configures",
            "kinds": [(kind, ProfileKind(kind).label, KIND_HELP.get(kind, "")) for kind in SETTINGS],
            "add_url": reverse("admin:policies_configurationprofile_add"),
        }
        return TemplateResponse(request, "admin/policies/configurationprofile/choose_kind.html", context)

    def _scopes(self, request, obj=None, *, disabled=False):
        scopes = authz.scopes_for(request.user, "policies.change_configurationprofile") | authz.scopes_for(
            request.user, "policies.add_configurationprofile"
        )
        if disabled and obj is not None and obj.scope_id is not None:
            # A viewer sees the scope the object has, even one they may not put objects in.
            scopes = scopes | Scope.objects.filter(pk=obj.scope_id)
        return scopes

    def editor_form(self, request, obj, data, *, disabled):
        kind = self._kind(request, obj)
        stored = ()
        if obj is not None and obj.secret_settings:
            try:
                stored = tuple(secrets_decrypt(obj.secret_settings))
            except ImproperlyConfigured:
                stored = ()
        # The form writes onto its instance while validating; the service gets the stored record.
        instance = proposed_copy(obj, ConfigurationProfile, kind=kind)
        form = ProfileForm(
            data,
            instance=instance,
            kind=kind,
            user=request.user,
            scopes=self._scopes(request, obj, disabled=disabled).order_by("name"),
            scope_required=not authz.has_global(request.user, "policies.add_configurationprofile"),
            stored_secrets=stored,
        )
        if disabled:
            for field in form.fields.values():
                field.disabled = True
        return form

    def editor_fieldsets(self, form):
        kind = ProfileKind(form.kind).label
        return [
            (None, "", ["name", "description", "scope", "platforms"]),
            (
                f"{kind} settings",
                "Leave a setting empty (Not configured) to leave it as the device has it.",
                [f"{SETTING_PREFIX}{s.name}" for s in form.specs],
            ),
        ]

    def editor_proposed(self, form, obj):
        data = getattr(form, "cleaned_data", None) or {}
        if not form.is_bound or form.errors:
            return proposed_copy(obj, ConfigurationProfile, kind=form.kind)
        return proposed_copy(
            obj, ConfigurationProfile, kind=form.kind, scope=data.get("scope"), platforms=list(data.get("platforms"))
        )

    def editor_save(self, request, obj, form, formsets, rows):
        data = form.cleaned_data
        stored = ConfigurationProfile.objects.get(pk=obj.pk) if obj is not None else None
        return profile_save(
            actor=self.actor(request),
            profile=stored,
            data={
                "name": data["name"],
                "description": data.get("description", ""),
                "scope": data.get("scope"),
                "kind": form.kind,
                "platforms": list(data.get("platforms") or []),
            },
            settings=form.setting_values(),
            assignments=rows,
            user=request.user,
        )

    def editor_context(self, request, obj, form):
        context = {"kind": form.kind, "kind_label": ProfileKind(form.kind).label}
        if obj is None:
            return context
        counts = delivery_counts([obj.pk]).get(obj.pk, {})
        payloads = native_payloads(obj)
        context.update(
            {
                "payloads": payloads,
                "open_payload": next((p["platform"] for p in payloads if p.get("applicable")), None),
                "delivery_counts": [(s, DeliveryState(s).label, counts.get(s, 0)) for s in STATE_ORDER],
                "deliveries_url": reverse("admin:policies_configurationprofile_deliveries", args=[obj.pk]),
                "resend_url": (
                    reverse("admin:policies_configurationprofile_resend", args=[obj.pk])
                    if authz.can(request.user, RESEND, obj) and counts.get(DeliveryState.ERROR)
                    else None
                ),
            }
        )
        return context

    def editor_delete(self, request, obj):
        name = obj.name
        removed = profile_delete(actor=self.actor(request), profile=obj)
        return (
            f"The profile “{name}” was deleted; {removed} device{'s' if removed != 1 else ''} "
            "will be told to remove it at their next check-in."
        )

    def delete_consequences(self, obj):
        held = ProfileDelivery.objects.filter(
            profile=obj, state__in=[DeliveryState.SUCCEEDED, DeliveryState.PENDING, DeliveryState.ERROR]
        ).count()
        return [
            f"{held} device{'s' if held != 1 else ''} that hold it or are receiving it will be told to remove it.",
            "Its assignments and delivery records are deleted with it.",
        ]

    # Deliveries and resend ----------------------------------------------------------------------

    def get_urls(self):
        from .effective import effective_urls

        return [
            path(
                "<path:object_id>/deliveries/",
                self.admin_site.admin_view(self.deliveries_view),
                name="policies_configurationprofile_deliveries",
            ),
            path(
                "<path:object_id>/resend/",
                self.admin_site.admin_view(self.resend_view),
                name="policies_configurationprofile_resend",
            ),
            *effective_urls(self.admin_site),
            *super().get_urls(),
        ]

    def deliveries_view(self, request, object_id):
        """Where this profile stands on each device: counts by state, then the devices page by page."""
        profile = self.get_object(request, unquote(object_id))
        deliveries = authz.restrict(
            ProfileDelivery.objects.filter(profile=profile), request.user, "policies.view_profiledelivery"
        )
        counts = delivery_counts([profile.pk]).get(profile.pk, {})
        state = request.GET.get("state", "")
        if state in DeliveryState.values:
            deliveries = deliveries.filter(state=state)
        else:
            state = ""
        page = Paginator(
            deliveries.select_related("device").order_by("device__name", "device_id"),
            100,
        ).get_page(request.GET.get("p"))
        labels = {s.name: s.label for s in SETTINGS[profile.kind]}
        rows = [
            {
                "delivery": d,
                "device_url": (
                    reverse("admin:devices_device_change", args=[d.device_id])
                    if authz.can(request.user, "devices.view_device", d.device)
                    else None
                ),
                "not_applicable": [
                    (labels.get(item.get("setting"), item.get("setting")), item.get("reason", ""))
                    for item in d.not_applicable or []
                ],
            }
            for d in page.object_list
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Deliveries of “{profile}”",
            "profile": profile,
            "counts": [(s, DeliveryState(s).label, counts.get(s, 0)) for s in STATE_ORDER],
            "total": sum(counts.values()),
            "state": state,
            "page": page,
            "rows": rows,
            "change_url": reverse("admin:policies_configurationprofile_change", args=[profile.pk]),
            "resend_url": (
                reverse("admin:policies_configurationprofile_resend", args=[profile.pk])
                if authz.can(request.user, RESEND, profile) and counts.get(DeliveryState.ERROR)
                else None
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/configurationprofile/deliveries.html", context)

    def resend_view(self, request, object_id):
        """Confirm, then queue the current version again for every device where it failed."""
        profile = self.get_object(request, unquote(object_id))
        if not authz.can(request.user, RESEND, profile):
            raise PermissionDenied
        deliveries_url = reverse("admin:policies_configurationprofile_deliveries", args=[profile.pk])
        failed = ProfileDelivery.objects.filter(profile=profile, state=DeliveryState.ERROR).count()
        if request.method == "POST" and request.POST.get("post") == "yes":
            devices = (
                None
                if authz.has_global(request.user, RESEND)
                else authz.restrict(Device.objects.all(), request.user, RESEND)
            )
            resent = profile_resend_failed(actor=self.actor(request), profile=profile, devices=devices)
            self.message_user(
                request,
                f"“{profile}” is queued again for {resent} device{'s' if resent != 1 else ''}; "
                "they receive it at their next check-in.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(deliveries_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Resend “{profile}” where it failed?",
            "profile": profile,
            "failed": failed,
            "deliveries_url": deliveries_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/policies/configurationprofile/resend_confirm.html", context)
