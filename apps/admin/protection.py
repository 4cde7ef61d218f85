"""App protection (MAM) in the IT console: protection policies (every setting, apps of the policy's
platform, user-group rows with a preview), managed app instances with "Wipe org data", and the
selective wipes, kept visible until the app confirms them, with "Cancel"."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Exists, OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from devices.choices import Platform
from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin
from mdm_portal.core.models import Scope, UserGroup
from policies.admin.editor import EditorAdmin, proposed_copy

from ..choices import WipeStatus
from ..models import App, AppDataWipe, AppProtectionPolicy, ManagedAppInstance
from .filters import ProtectedAppListFilter, scoped_filter
from .forms import PROTECTION_FIELDS, ProtectionPolicyForm, protection_row_formset

WIPE = "apps.wipe_managedappinstance"
WIPE_REASON_MISSING = (
    "Write a reason before wiping, for example “Left the company” or “Lost phone”: "
    "it is kept with the wipe and shown to the app. Nothing was wiped."
)
OPEN = (WipeStatus.PENDING, WipeStatus.SENT)
WIPE_SHORT = {WipeStatus.PENDING: "Wipe pending", WipeStatus.SENT: "Wipe sent, unconfirmed"}
WIPE_STATUS_SHORT = {
    WipeStatus.PENDING: "Pending",
    WipeStatus.SENT: "Sent",
    WipeStatus.CONFIRMED: "Confirmed",
    WipeStatus.CANCELLED: "Cancelled",
}
SAMPLE_SIZE = 10


def _short(moment) -> str:
    return date_format(localtime(moment), "j M H:i")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


# Protection policies --------------------------------------------------------------------------------------


@dataclass
class PeoplePreview:
    """Whom the proposed rows reach: how many people, a few names, their registered app instances."""

    total: int
    sample: list
    instances: int

    @property
    def sentence(self) -> str:
        if not self.total:
            return "This will apply to nobody."
        people = "1 person" if self.total == 1 else f"{self.total:,} people"
        return (
            f"This will apply to {people}; {_plural(self.instances, 'registered app instance')} of theirs "
            "receive it at their next check-in."
        )

    current_sentence = ""

    @property
    def sample_note(self) -> str:
        if self.total <= len(self.sample):
            return ""
        return f"The first {len(self.sample)} of {self.total:,} by name, among the people you may view."


def people_preview(*, user, policy: AppProtectionPolicy, rows: list[dict], apps) -> PeoplePreview:
    """The members of the included groups not in an excluded one (and of the policy's scope, if it has one)."""
    include = [r["user_group"].pk for r in rows if not r["exclude"]]
    exclude = [r["user_group"].pk for r in rows if r["exclude"]]
    people = get_user_model().objects.filter(is_active=True)
    if not include:
        people = people.none()
    members = UserGroup.members.through.objects
    people = people.filter(Exists(members.filter(user_id=OuterRef("pk"), usergroup_id__in=include)))
    if exclude:
        people = people.exclude(Exists(members.filter(user_id=OuterRef("pk"), usergroup_id__in=exclude)))
    if policy.scope_id is not None:
        people = people.filter(scope_id=policy.scope_id)
    total = people.count()
    sample = []
    if total:
        sample = list(
            authz.restrict(people, user, "core.view_user").order_by("last_name", "first_name", "username")[:SAMPLE_SIZE]
        )
    app_ids = [a.pk for a in apps or []]
    instances = (
        ManagedAppInstance.objects.filter(
            user__in=people, app_id__in=app_ids, platform=policy.platform, revoked_at__isnull=True
        ).count()
        if total and app_ids
        else 0
    )
    return PeoplePreview(total=total, sample=sample, instances=instances)


@admin.register(AppProtectionPolicy)
class AppProtectionPolicyAdmin(EditorAdmin):
    editor_template = "admin/apps/editor.html"
    list_display = ["name", "platform", "scope_label", "app_list", "groups", "version"]
    list_filter = ["platform", ("scope", scoped_filter("Organisation-wide"))]
    list_select_related = ["scope"]
    search_fields = ["name", "description"]
    show_facets = admin.ShowFacets.NEVER

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("apps", "assignments__user_group")

    @admin.display(description="Scope", ordering="scope__name")
    def scope_label(self, obj):
        return obj.scope or "Organisation-wide"

    @admin.display(description="Apps")
    def app_list(self, obj):
        return ", ".join(a.name for a in obj.apps.all()) or "-"

    @admin.display(description="User groups")
    def groups(self, obj):
        rows = [("Exclude " if a.exclude else "", a.user_group.name) for a in obj.assignments.all()]
        return format_html_join(", ", "{}{}", rows) if rows else "Nobody"

    def _platform(self, request, obj) -> str | None:
        if obj is not None:
            return obj.platform
        platform = request.GET.get("platform") or request.POST.get("platform")
        return platform if platform in Platform.values else None

    def editor_add_prelude(self, request):
        if self._platform(request, None) is not None:
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Add app protection policy: choose the platform",
            "intro": "A protection policy protects the managed apps of one platform; choose it first.",
            "kinds": [(value, label, "") for value, label in Platform.choices],
            "param": "platform",
            "add_url": reverse("admin:apps_appprotectionpolicy_add"),
        }
        return TemplateResponse(request, "admin/apps/app/choose_kind.html", context)

    def _scopes(self, request, obj=None, *, disabled=False):
        scopes = authz.scopes_for(request.user, "apps.change_appprotectionpolicy") | authz.scopes_for(
            request.user, "apps.add_appprotectionpolicy"
        )
        if disabled and obj is not None and obj.scope_id is not None:
            scopes = scopes | Scope.objects.filter(pk=obj.scope_id)
        return scopes

    def editor_form(self, request, obj, data, *, disabled):
        platform = self._platform(request, obj)
        form = ProtectionPolicyForm(
            data,
            instance=proposed_copy(obj, AppProtectionPolicy, platform=platform),
            user=request.user,
            platform=platform,
            scopes=self._scopes(request, obj, disabled=disabled).order_by("name"),
            scope_required=not authz.has_global(request.user, "apps.add_appprotectionpolicy"),
            stored_apps=list(obj.apps.values_list("pk", flat=True)) if obj is not None else (),
        )
        if disabled:
            for field in form.fields.values():
                field.disabled = True
        return form

    def editor_fieldsets(self, form):
        return [
            (None, "", ["name", "description", "scope", "platform", "apps"]),
            (
                "Data protection",
                "What org data may leave the managed apps, and how.",
                ["data_isolation", "clipboard", "sharing", "block_backup", "block_save_as"],
            ),
            (
                "Web links",
                "Links in org data open in the managed browser when it is required.",
                ["managed_browser_required", "allowed_urls", "blocked_urls"],
            ),
            ("Access", "", ["pin_required", "pin_length", "pin_recheck_minutes"]),
            (
                "Offline and conditional launch",
                "When several policies apply, the most restrictive value of each setting wins.",
                ["offline_block_minutes", "offline_wipe_days", "min_app_version", "min_os_version"],
            ),
        ]

    def editor_proposed(self, form, obj):
        data = getattr(form, "cleaned_data", None) or {}
        if not form.is_bound or form.errors:
            return proposed_copy(obj, AppProtectionPolicy, platform=form.platform)
        return proposed_copy(obj, AppProtectionPolicy, platform=form.platform, scope=data.get("scope"))

    def editor_assignments(self, request, *, data, obj, proposed_obj, disabled):
        return protection_row_formset(request, data=data, obj=obj, disabled=disabled)

    def editor_preview(self, request, proposed_obj, assignments):
        apps = []
        if request.method == "POST":
            ids = [int(v) for v in request.POST.getlist("apps") if str(v).isdigit()]
            apps = list(App.objects.filter(pk__in=ids, platform=proposed_obj.platform))
        return people_preview(user=request.user, policy=proposed_obj, rows=assignments.rows(), apps=apps)

    def editor_save(self, request, obj, form, formsets, rows):
        from ..services.protection import protection_policy_save

        stored = AppProtectionPolicy.objects.get(pk=obj.pk) if obj is not None else None
        data = {name: form.cleaned_data.get(name) for name in PROTECTION_FIELDS if name != "apps"}
        data["platform"] = form.platform
        for name in ("description", "min_app_version", "min_os_version"):
            data[name] = data.get(name) or ""
        return protection_policy_save(
            actor=self.actor(request),
            policy=stored,
            data=data,
            apps=list(form.cleaned_data.get("apps") or []),
            assignments=rows,
            user=request.user,
        )

    def editor_context(self, request, obj, form):
        context = {
            "platform": form.platform,
            "kind_label": f"{Platform(form.platform).label}" if form.platform else "",
            "badge_suffix": "app protection policy",
            "assignments_template": "admin/apps/includes/protection_rows.html",
            "preview_template": "admin/apps/includes/people_preview.html",
        }
        if obj is not None:
            context["instances_url"] = (
                reverse("admin:apps_managedappinstance_changelist") + f"?policy__id__exact={obj.pk}"
            )
        return context

    def _saved(self, request, obj, add):
        # The editor's own sentence speaks of devices; a protection policy reaches people's apps.
        if add:
            self.log_addition(request, obj, [{"added": {}}])
        else:
            self.log_change(request, obj, [{"changed": {}}])
        self.message_user(
            request,
            f"The app protection policy “{obj}” was saved (version {obj.version}); "
            "the apps receive it at their next check-in.",
            messages.SUCCESS,
        )
        name = "change" if "_continue" in request.POST else "changelist"
        args = [obj.pk] if name == "change" else []
        return HttpResponseRedirect(reverse(f"admin:apps_appprotectionpolicy_{name}", args=args))

    def editor_delete(self, request, obj):
        from ..services.protection import protection_policy_delete

        name = obj.name
        protection_policy_delete(actor=self.actor(request), policy=obj)
        return (
            f"The app protection policy “{name}” was deleted; "
            "the apps it protected get what remains at their next check-in."
        )

    def delete_consequences(self, obj):
        n = ManagedAppInstance.objects.filter(policy=obj, revoked_at__isnull=True).count()
        return [
            f"{_plural(n, 'app instance')} last received it; at their next check-in they get the policies that remain "
            "(or none).",
            "Its user-group rows are deleted with it.",
        ]


# Managed app instances ------------------------------------------------------------------------------------


class OpenWipeFilter(admin.SimpleListFilter):
    title = "selective wipe"
    parameter_name = "wipe"

    def lookups(self, request, model_admin):
        return [("open", "Wipe pending or sent"), ("wiped", "Wiped (confirmed)"), ("none", "No open wipe")]

    def queryset(self, request, queryset):
        open_wipes = AppDataWipe.objects.filter(instance=OuterRef("pk"), status__in=OPEN)
        if self.value() == "open":
            return queryset.filter(Exists(open_wipes))
        if self.value() == "wiped":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "none":
            return queryset.exclude(Exists(open_wipes))
        return queryset


def wipe_allowed(user) -> bool:
    return authz.has_any(user, WIPE)


@admin.register(ManagedAppInstance)
class ManagedAppInstanceAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    change_list_template = "admin/apps/change_list.html"
    list_display = [
        "user_label",
        "app_label",
        "device_label",
        "checkin",
        "policy_label",
        "wipe_label",
    ]
    list_filter = [
        "platform",
        OpenWipeFilter,
        ("app", ProtectedAppListFilter),
        ("policy", scoped_filter("No policy")),
        ("user__scope", scoped_filter("No scope")),
    ]
    list_select_related = ["user", "app", "policy"]
    search_fields = [
        "user__username",
        "user__email",
        "user__first_name",
        "user__last_name",
        "device_name",
        "app_identifier",
    ]
    show_facets = admin.ShowFacets.NEVER
    actions = ["wipe_org_data"]
    fields = [
        "user",
        "app",
        "app_identifier",
        "platform",
        "device_name",
        "device",
        "os_version",
        "app_version",
        "policy",
        "registered_at",
        "last_checkin_at",
        "revoked_at",
        "reported_state",
        "wipe_history",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        open_wipe = AppDataWipe.objects.filter(instance=OuterRef("pk"), status__in=OPEN).order_by("-requested_at")
        return super().get_queryset(request).annotate(open_wipe_status=Subquery(open_wipe.values("status")[:1]))

    @admin.display(description="Person", ordering="user__username")
    def user_label(self, obj):
        name = obj.user.get_full_name()
        return f"{name} ({obj.user.username})" if name else obj.user.username

    @admin.display(description="App", ordering="app__name")
    def app_label(self, obj):
        name = obj.app.name if obj.app_id else obj.app_identifier
        return format_html('{}<br><span class="quiet">{}</span>', name, obj.app_version or "version not reported")

    @admin.display(description="Device", ordering="device_name")
    def device_label(self, obj):
        os = " ".join(filter(None, [obj.get_platform_display(), obj.os_version]))
        return format_html('{}<br><span class="quiet">{}</span>', obj.device_name or "-", os)

    @admin.display(description="Last check-in", ordering="last_checkin_at")
    def checkin(self, obj):
        return _short(obj.last_checkin_at) if obj.last_checkin_at else "Never"

    @admin.display(description="Policy applied", ordering="policy__name")
    def policy_label(self, obj):
        return obj.policy.name if obj.policy_id else "None"

    @admin.display(description="Selective wipe")
    def wipe_label(self, obj):
        status = getattr(obj, "open_wipe_status", None)
        if status:
            return format_html('<span class="wipe-state state-{}">{}</span>', status, WIPE_SHORT[status])
        if obj.revoked_at is not None:
            return format_html('<span class="wipe-state state-confirmed">Wiped {}</span>', f"{obj.revoked_at:%Y-%m-%d}")
        return "-"

    @admin.display(description="What the app last reported")
    def reported_state(self, obj):
        if not obj.state:
            return "-"
        return format_html_join(format_html("<br>"), "<strong>{}</strong>: {}", sorted(obj.state.items()))

    @admin.display(description="Selective wipes")
    def wipe_history(self, obj):
        wipes = list(obj.wipes.order_by("-requested_at"))
        if not wipes:
            return "None"
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{}: {} by {}{}</li>",
                (
                    (
                        f"{w.requested_at:%Y-%m-%d %H:%M}",
                        w.get_status_display(),
                        w.requested_by_label,
                        f" ({w.reason})" if w.reason else "",
                    )
                    for w in wipes
                ),
            ),
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        person_id = request.GET.get("user__id__exact")
        if person_id and person_id.isdigit():
            person = get_user_model().objects.filter(pk=int(person_id)).first()
            if person is not None and authz.can(request.user, "apps.view_managedappinstance", person):
                extra_context["title"] = f"App instances of {person.get_full_name() or person.username}"
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        obj = self.get_object(request, unquote(object_id))
        if wipe_allowed(request.user) and authz.can(request.user, WIPE, obj) and obj.revoked_at is None:
            extra_context["wipe_url"] = reverse("admin:apps_managedappinstance_wipe", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra_context)

    # Wipe org data ---------------------------------------------------------------------------------------

    def has_wipe_permission(self, request) -> bool:
        return wipe_allowed(request.user)

    def _wipe(self, request, instances, reason: str) -> tuple[int, int]:
        from ..services.mam import app_data_wipe_request

        requested = refused = 0
        actor = self.actor(request)
        for instance in instances:
            try:
                app_data_wipe_request(actor=actor, instance=instance, reason=reason)
                requested += 1
            except ValidationError:
                refused += 1
        return requested, refused

    def _wipe_message(self, request, requested: int, refused: int) -> None:
        sentence = (
            f"Org data will be wiped from {_plural(requested, 'app instance')} at their next check-in; "
            "the wipe stays pending until each app confirms it."
        )
        if refused:
            verb = "was" if refused == 1 else "were"
            sentence += f" {_plural(refused, 'instance')} had been wiped already and {verb} left alone."
        self.message_user(request, sentence, messages.SUCCESS if requested else messages.WARNING)

    @admin.action(description="Wipe org data from the selected app instances…", permissions=["wipe"])
    def wipe_org_data(self, request, queryset):
        permitted = authz.restrict(queryset, request.user, WIPE)
        wipeable = permitted.filter(revoked_at__isnull=True)
        selected = queryset.count()
        reason = (request.POST.get("reason") or "").strip()
        error = ""
        if request.POST.get("post") == "yes":
            if reason:
                requested, refused = self._wipe(request, list(wipeable), reason)
                self._wipe_message(request, requested, refused)
                return None
            error = WIPE_REASON_MISSING
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Wipe org data from app instances?",
            "selected": selected,
            "not_permitted": selected - permitted.count(),
            "wipeable": wipeable.count(),
            "instances": list(wipeable.select_related("user", "app")[:20]),
            "more": max(0, wipeable.count() - 20),
            "reason": reason,
            "error": error,
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "form_action": request.get_full_path(),
            "cancel_url": request.get_full_path(),
            "bulk": True,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/managedappinstance/wipe_confirm.html", context)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/wipe/",
                self.admin_site.admin_view(self.wipe_view),
                name="apps_managedappinstance_wipe",
            ),
            *super().get_urls(),
        ]

    def wipe_view(self, request, object_id):
        """One instance: confirm with a reason, then the wipe is pending until the app confirms it."""
        instance = self.get_object(request, unquote(object_id))
        if not authz.can(request.user, WIPE, instance):
            raise PermissionDenied
        change_url = reverse("admin:apps_managedappinstance_change", args=[instance.pk])
        reason = (request.POST.get("reason") or "").strip()
        error = ""
        if request.method == "POST" and request.POST.get("post") == "yes":
            if reason:
                requested, refused = self._wipe(request, [instance], reason)
                self._wipe_message(request, requested, refused)
                return HttpResponseRedirect(change_url)
            error = WIPE_REASON_MISSING
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Wipe org data from {instance.app.name if instance.app_id else instance.app_identifier}?",
            "selected": 1,
            "not_permitted": 0,
            "wipeable": 0 if instance.revoked_at else 1,
            "instances": [instance] if instance.revoked_at is None else [],
            "reason": reason,
            "error": error,
            "form_action": request.get_full_path(),
            "cancel_url": change_url,
            "bulk": False,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/apps/managedappinstance/wipe_confirm.html", context)


def person_app_instances_link(person):
    """The user page's link to the person's app instances."""
    url = reverse("admin:apps_managedappinstance_changelist") + f"?user__id__exact={person.pk}"
    return format_html('<a href="{}" id="app-instances-link">{}</a>', url, "Managed app instances of this person")


# Selective wipes -----------------------------------------------------------------------------------------


@admin.register(AppDataWipe)
class AppDataWipeAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    change_list_template = "admin/apps/change_list.html"
    list_display = ["person", "app_device", "status_badge", "reason", "requested", "progress"]
    list_filter = ["status", ("instance__user__scope", scoped_filter("No scope"))]
    list_select_related = ["instance__user", "instance__app"]
    search_fields = ["instance__user__username", "instance__user__email", "instance__device_name", "reason"]
    show_facets = admin.ShowFacets.NEVER
    actions = ["cancel_wipes"]
    fields = [
        "instance",
        "status",
        "reason",
        "requested_by_label",
        "requested_at",
        "sent_at",
        "confirmed_at",
    ]
    readonly_fields = fields

    @admin.display(description="Person", ordering="instance__user__username")
    def person(self, obj):
        user = obj.instance.user
        name = user.get_full_name()
        return f"{name} ({user.username})" if name else user.username

    @admin.display(description="App and device", ordering="instance__app_identifier")
    def app_device(self, obj):
        instance = obj.instance
        name = instance.app.name if instance.app_id else instance.app_identifier
        return format_html(
            '{}<br><span class="quiet">{}</span>', name, instance.device_name or instance.get_platform_display()
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="wipe-state state-{}">{}</span>', obj.status, WIPE_STATUS_SHORT[obj.status])

    @admin.display(description="Requested", ordering="requested_at")
    def requested(self, obj):
        return format_html(
            '{}<br><span class="quiet">by {}</span>', _short(obj.requested_at), obj.requested_by_label or "-"
        )

    @admin.display(description="Delivered")
    def progress(self, obj):
        if obj.confirmed_at:
            return f"Confirmed {_short(obj.confirmed_at)}"
        if obj.sent_at:
            return f"Sent {_short(obj.sent_at)}, waiting for the app"
        return "Not yet" if obj.status == WipeStatus.PENDING else "-"

    def has_cancel_permission(self, request) -> bool:
        return wipe_allowed(request.user)

    @admin.action(description="Cancel the selected wipes (only those not yet sent)", permissions=["cancel"])
    def cancel_wipes(self, request, queryset):
        from ..services.mam import app_data_wipe_cancel

        permitted = authz.restrict(queryset, request.user, WIPE)
        cancelled = left = 0
        actor = self.actor(request)
        for wipe in permitted.filter(~Q(status=WipeStatus.CANCELLED)):
            try:
                app_data_wipe_cancel(actor=actor, wipe=wipe)
                cancelled += 1
            except ValidationError:
                left += 1
        not_permitted = queryset.count() - permitted.count()
        parts = [f"Cancelled {_plural(cancelled, 'wipe')}."]
        if left:
            parts.append(
                f"{_plural(left, 'wipe')} had already been sent to the app or confirmed and "
                f"{'was' if left == 1 else 'were'} left as {'it was' if left == 1 else 'they were'}."
            )
        if not_permitted:
            parts.append(
                f"{_plural(not_permitted, 'wipe')} outside your scopes "
                f"{'was' if not_permitted == 1 else 'were'} not touched."
            )
        self.message_user(request, " ".join(parts), messages.SUCCESS if cancelled else messages.WARNING)
        return HttpResponseRedirect(request.get_full_path())
