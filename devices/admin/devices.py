from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.debug import sensitive_post_parameters

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ScopedRelatedListFilter, person_name, relative_time

from .. import selectors, services
from ..choices import GroupMembershipType
from ..commands import ACTIONS, DeviceAction
from ..models import Device, DeviceGroup, DeviceGroupRule
from ..rules import rule_validate
from ..tasks_commands import BACKGROUND_THRESHOLD, enqueue_bulk_queue
from .device_actions import DeviceActionForm, bulk_preview

# Every secret an action takes; masked in Django's error reports like a password.
SECRET_INPUTS = sorted({name for action in ACTIONS.values() for name in action.secret_fields})


class DeviceGroupListFilter(admin.SimpleListFilter):
    """Filter devices by a group the operator may see, static or rule-based."""

    title = "device group"
    parameter_name = "device_group"

    def lookups(self, request, model_admin):
        return [(str(g.pk), g.name) for g in selectors.device_group_list(user=request.user)]

    def has_output(self):
        # Django skips a filter with no choices, which would silently ignore ?device_group= for a
        # group the operator cannot see and list every device instead of none.
        return super().has_output() or self.value() is not None

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        group = selectors.device_group_list(user=request.user).filter(pk=self.value()).first()
        if group is None:
            return queryset.none()
        return queryset.filter(selectors.device_group_q(group))


class ProvisioningListFilter(admin.SimpleListFilter):
    """Devices enrolled with a provisioning time limit, by how their initial setup is going."""

    title = "provisioning"
    parameter_name = "provisioning"

    CONDITIONS = {
        "overdue": Q(provisioning_overdue_at__isnull=False, provisioned_at__isnull=True),
        "in_progress": Q(
            provisioning_deadline_at__isnull=False, provisioned_at__isnull=True, provisioning_overdue_at__isnull=True
        ),
        "done": Q(provisioned_at__isnull=False),
    }

    def lookups(self, request, model_admin):
        return [("overdue", "Overdue"), ("in_progress", "In progress"), ("done", "Done")]

    def queryset(self, request, queryset):
        condition = self.CONDITIONS.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


def _bulk_action(action: DeviceAction):
    """A changelist action that asks for confirmation (and the action's inputs) before queueing."""

    @admin.action(description=f"Remote action: {action.label}…", permissions=["queue_command"])
    def queue(modeladmin, request, queryset):
        return modeladmin.bulk_action_view(request, queryset, action)

    queue.__name__ = f"queue_{action.type}"
    queue.command_type = action.type
    return queue


def device_changelist_queryset(*, user, query: str) -> QuerySet[Device]:
    """The devices the console's device list shows ``user`` for ``query`` (its filters and search).

    A bulk request that runs in the background selects its devices again this way, as the person
    whose request it is, so it acts on exactly what they confirmed and nothing they may no longer see.
    """
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = reverse("admin:devices_device_changelist")
    request.GET = QueryDict(query)
    request.user = user
    model_admin = admin.site._registry[Device]
    return model_admin.get_changelist_instance(request).get_queryset(request)


HARDWARE_FIELDS = ("uuid", "platform", "os_version", "model", "manufacturer", "serial_number", "imei")
LIFECYCLE_FIELDS = (
    "lifecycle_state",
    "compliance_state",
    "enrollment_method",
    "enrollment_transport",
    "enrolled_at",
    "last_checkin_at",
    "retired_at",
    "provisioning_deadline_at",
    "provisioned_at",
    "provisioning_overdue_at",
    "created_at",
    "updated_at",
)


@admin.register(Device)
class DeviceAdmin(AuthzModelAdmin):
    actions = [_bulk_action(action) for action in ACTIONS.values()]
    list_display = [
        "name",
        "platform",
        "os_version",
        "ownership",
        "primary_user_name",
        "scope",
        "lifecycle_state",
        "compliance_state",
        "last_checkin",
    ]
    list_filter = [
        "platform",
        "ownership",
        "lifecycle_state",
        "compliance_state",
        "enrollment_method",
        ("scope", ScopedRelatedListFilter),
        DeviceGroupListFilter,
        ProvisioningListFilter,
    ]
    list_select_related = ["scope", "primary_user"]
    # Facet counts are a GROUP BY per filter over the whole fleet; not on a 100,000-device list.
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name", "serial_number", "imei", "primary_user__username", "primary_user__email"]
    autocomplete_fields = ["primary_user"]
    fieldsets = (
        (None, {"fields": ("name", "ownership", "scope", "primary_user")}),
        ("Hardware and OS", {"fields": HARDWARE_FIELDS}),
        ("Lifecycle", {"fields": LIFECYCLE_FIELDS}),
        ("Configuration and compliance", {"fields": ("configuration_and_compliance", "apps_on_device")}),
        ("Retire / wipe", {"fields": ("retirement_links",)}),
    )
    # Everything but the first section is reported by the device or set by the lifecycle.
    readonly_fields = [
        *HARDWARE_FIELDS,
        *LIFECYCLE_FIELDS,
        "configuration_and_compliance",
        "apps_on_device",
        "retirement_links",
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "scope" and formfield is not None:
            # Scopes are managed on their own page: no add/edit/delete/view links beside a device's.
            widget = formfield.widget
            widget.can_add_related = widget.can_change_related = False
            widget.can_delete_related = widget.can_view_related = False
        return formfield

    @admin.display(description="Primary user", ordering="primary_user__last_name")
    def primary_user_name(self, obj):
        return person_name(obj.primary_user)

    @admin.display(description="Last check-in", ordering="last_checkin_at")
    def last_checkin(self, obj):
        return relative_time(obj.last_checkin_at)

    @admin.display(description="Compliance")
    def configuration_and_compliance(self, obj):
        from policies.admin.effective import compliance_summary

        # render_change_form knows who is asking; the link is only for those who may follow it.
        return compliance_summary(obj, link=getattr(obj, "effective_policy_visible", False))

    @admin.display(description="Apps")
    def apps_on_device(self, obj):
        from apps.admin.installs import device_installs_link

        return device_installs_link(obj, visible=getattr(obj, "app_installs_visible", False))

    RETIREMENT_PERMISSIONS = (
        "devices.retire_device",
        "devices.wipe_device",
        "devices.delete_device",
        "retirement.view_retirementrequest",
    )

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not any(authz.has_any(request.user, p) for p in self.RETIREMENT_PERMISSIONS):
            # Nothing to offer (e.g. the helpdesk): no empty section.
            fieldsets = [f for f in fieldsets if f[1]["fields"] != ("retirement_links",)]
        return fieldsets

    @admin.display(description="Retire / wipe")
    def retirement_links(self, obj):
        from retirement.admin.links import device_retirement_links

        return device_retirement_links(obj, user=getattr(obj, "viewer", None))

    def has_add_permission(self, request, *args):
        # Devices come from enrolment and corporate-identifier import, not from a blank form.
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a device is a retirement action with its own confirmation, not a row delete.
        return False

    def save_model(self, request, obj, form, change):
        data = {
            field: form.cleaned_data[field] for field in form.changed_data if field in services.DEVICE_EDITABLE_FIELDS
        }
        # The form has already copied its values onto ``obj``; the service needs the stored
        # record to tell what changed, or the edit is saved without an audit event.
        stored = Device.objects.get(pk=obj.pk)
        services.device_update(actor=self.actor(request), device=stored, data=data)

    # Remote actions ------------------------------------------------------------------------------

    def get_urls(self):
        # Before the default routes: their "<object_id>/" catch-all would swallow this one.
        return [
            path(
                "<path:object_id>/actions/<str:command_type>/",
                self.admin_site.admin_view(self.remote_action_view),
                name="devices_device_action",
            ),
            *super().get_urls(),
        ]

    def has_queue_command_permission(self, request) -> bool:
        return any(authz.has_any(request.user, action.permission) for action in ACTIONS.values())

    def get_actions(self, request):
        # Each remote action is offered only to people who hold its permission somewhere.
        return {
            name: entry
            for name, entry in super().get_actions(request).items()
            if getattr(entry[0], "command_type", None) is None
            or authz.has_any(request.user, ACTIONS[entry[0].command_type].permission)
        }

    def remote_actions_for(self, request, device: Device) -> list[dict]:
        """The action buttons of the change page: only actions the person may perform on this device,
        greyed with the reason when the device cannot take them."""
        offered = []
        for action in ACTIONS.values():
            if not authz.can(request.user, action.permission, device):
                continue
            verdict = action.eligibility(device)
            offered.append(
                {
                    "type": action.type,
                    "label": action.label,
                    "allowed": verdict.allowed,
                    "reason": verdict.reason,
                    "url": reverse("admin:devices_device_action", args=[device.pk, action.type]),
                }
            )
        return offered

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            from apps.admin.installs import may_view_device_installs
            from policies.admin.effective import may_view_effective

            obj.effective_policy_visible = may_view_effective(request.user, obj)
            obj.app_installs_visible = may_view_device_installs(request.user, obj)
            obj.viewer = request.user
            context["remote_actions"] = self.remote_actions_for(request, obj)
            context["device_commands_url"] = (
                reverse("admin:devices_devicecommand_changelist") + f"?device__id__exact={obj.pk}"
            )
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @method_decorator(sensitive_post_parameters(*SECRET_INPUTS))
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, extra_context)

    @method_decorator(sensitive_post_parameters(*SECRET_INPUTS))
    def remote_action_view(self, request, object_id, command_type):
        """One device, one action: a confirmation page with the action's inputs; POST queues it."""
        action = ACTIONS.get(command_type)
        if action is None:
            raise Http404("There is no such remote action.")
        device = self.get_object(request, unquote(object_id))  # 403 without devices at all, 404 out of scope
        if not authz.can(request.user, action.permission, device):
            raise PermissionDenied
        verdict = action.eligibility(device)
        change_url = reverse("admin:devices_device_change", args=[device.pk])
        initial = {"name": device.name} if action.type == "rename" else None
        posted = request.method == "POST"
        form = DeviceActionForm(request.POST if posted else None, action=action, initial=initial)
        if posted and not verdict.allowed:
            form.add_error(None, verdict.reason)
        elif posted and form.is_valid():
            try:
                services.device_command_queue(
                    actor=self.actor(request), device=device, command_type=action.type, params=form.params
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(
                    request,
                    f"{action.label} is queued for {device.name}; the device receives it at its next check-in.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{action.label}: {device.name}",
            "device": device,
            "action": action,
            "verdict": verdict,
            "form": form,
            "change_url": change_url,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/devices/device/remote_action.html", context)

    def bulk_action_view(self, request, queryset, action: DeviceAction):
        """The changelist action: a confirmation page counting what would happen; confirmed, queue it.

        ``queryset`` is the selection (or every device matching the list's filters, "select all");
        only the devices on which the person holds the action's permission get a command.
        """
        permitted = authz.restrict(queryset, request.user, action.permission)
        confirmed = request.POST.get("post") == "yes"
        form = DeviceActionForm(request.POST if confirmed else None, action=action)
        if confirmed and form.is_valid():
            return self._bulk_queue(request, action, permitted, form.params)
        preview = bulk_preview(action, queryset, permitted)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{action.label}: {preview.selected} selected device{'s' if preview.selected != 1 else ''}",
            "action": action,
            "action_name": f"queue_{action.type}",
            "preview": preview,
            "form": form,
            "select_across": request.POST.get("select_across", "0"),
            "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "background": preview.eligible > BACKGROUND_THRESHOLD,
            "changelist_url": request.get_full_path(),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/devices/device/remote_action_bulk.html", context)

    def _bulk_queue(self, request, action: DeviceAction, permitted: QuerySet[Device], params: dict):
        actor = self.actor(request)
        if permitted.order_by().count() > BACKGROUND_THRESHOLD:
            batch = uuid.uuid4()
            selection: dict = {"admin_query": request.GET.urlencode()}
            if request.POST.get("select_across") not in ("1", "True", "true"):
                selection["ids"] = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            enqueue_bulk_queue(
                user=request.user,
                source_ip=actor.source_ip,
                command_type=action.type,
                params=params,
                batch=batch,
                selection=selection,
            )
            self.message_user(
                request,
                f"{action.label} is being queued in the background for every selected device you may "
                "act on; this page shows the commands as they are queued and answered.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:devices_devicecommand_batch", args=[batch]) + "?pending=1")
        try:
            outcome = services.device_command_queue_bulk(
                actor=actor, devices=permitted, command_type=action.type, params=params
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        skipped = f"; {outcome['skipped']} skipped (not eligible)" if outcome["skipped"] else ""
        if not outcome["queued"]:
            self.message_user(request, f"{action.label}: no device could take it{skipped}.", messages.WARNING)
            return HttpResponseRedirect(request.get_full_path())
        self.message_user(
            request,
            f"{action.label} queued for {outcome['queued']} device{'s' if outcome['queued'] != 1 else ''}{skipped}.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:devices_devicecommand_batch", args=[outcome["batch"]]))


class DeviceGroupRuleForm(forms.ModelForm):
    class Meta:
        model = DeviceGroupRule
        fields = ["field", "value"]

    def clean(self):
        data = super().clean()
        if data.get("field") and not data.get("DELETE"):
            try:
                data["value"] = rule_validate(data["field"], data.get("value", ""))
            except forms.ValidationError as exc:
                self.add_error("value", exc)
        return data


class DeviceGroupRuleFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        has_rules = any(
            f.cleaned_data.get("field") and not f.cleaned_data.get("DELETE") for f in self.forms if f.cleaned_data
        )
        if has_rules and self.instance.membership_type != GroupMembershipType.DYNAMIC:
            raise forms.ValidationError("A static group has no rules. Make the group rule-based, or remove the rules.")


class DeviceGroupRuleInline(admin.TabularInline):
    model = DeviceGroupRule
    form = DeviceGroupRuleForm
    formset = DeviceGroupRuleFormSet
    extra = 1

    def _group_permission(self, request, obj, verb):
        return obj is None or self.admin_site._registry[DeviceGroup]._allowed(request, verb, obj)

    def has_view_permission(self, request, obj=None):
        return self._group_permission(request, obj, "view")

    def has_add_permission(self, request, obj=None):
        return (
            self._group_permission(request, obj, "change")
            if obj
            else self.admin_site._registry[DeviceGroup].has_add_permission(request)
        )

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


class DeviceGroupForm(forms.ModelForm):
    class Meta:
        model = DeviceGroup
        fields = ["name", "description", "scope", "membership_type", "match_all", "static_members"]
        # The form shows both sets of fields whatever the type (no JavaScript): say which type each is for.
        help_texts = {
            "match_all": "Used when the membership type is Rule-based: ticked, a device must match every rule; "
            "unticked, any one rule.",
            "static_members": "Used when the membership type is Static: these devices are the members. "
            "Leave empty for a rule-based group.",
        }

    def clean(self):
        data = super().clean()
        if data.get("membership_type") == GroupMembershipType.DYNAMIC and data.get("static_members"):
            self.add_error(
                "static_members", "A rule-based group has no hand-picked members; clear them or make it static."
            )
        return data


@admin.register(DeviceGroup)
class DeviceGroupAdmin(AuthzModelAdmin):
    form = DeviceGroupForm
    inlines = [DeviceGroupRuleInline]
    list_display = ["name", "membership_type", "scope", "description"]
    list_filter = ["membership_type", ("scope", ScopedRelatedListFilter)]
    list_select_related = ["scope"]
    search_fields = ["name"]
    autocomplete_fields = ["static_members"]
    readonly_fields = ["members"]

    @admin.display(description="Members")
    def members(self, obj):
        if obj.pk is None:
            return "-"
        count = getattr(obj, "visible_member_count", None)
        if count is None:
            return "-"
        url = reverse("admin:devices_device_changelist") + f"?device_group={obj.pk}"
        return format_html('<a href="{}">{} device(s)</a>', url, count)

    def get_object(self, request, object_id, from_field=None):
        group = super().get_object(request, object_id, from_field)
        # Count only the members this operator may see; the total would leak other scopes' sizes.
        group.visible_member_count = (
            selectors.device_list(user=request.user).filter(selectors.device_group_q(group)).count()
        )
        return group

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "scope" in form.base_fields:
            # Only global administrators may leave the scope empty (an organisation-wide group).
            form.base_fields["scope"].required = not authz.has_global(request.user, "devices.add_devicegroup")
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        services.device_group_save(
            actor=self.actor(request),
            group=obj,
            name=data["name"],
            description=data["description"],
            scope=data["scope"],
            membership_type=data["membership_type"],
            match_all=data["match_all"],
            static_members=list(data["static_members"]),
        )

    def save_related(self, request, form, formsets, change):
        rules = [
            (f.cleaned_data["field"], f.cleaned_data["value"])
            for formset in formsets
            for f in formset.forms
            if f.cleaned_data and f.cleaned_data.get("field") and not f.cleaned_data.get("DELETE")
        ]
        services.device_group_rules_set(actor=self.actor(request), group=form.instance, rules=rules)

    def construct_change_message(self, request, form, formsets, add=False):
        # The rule formsets were never saved by the admin (the service replaced the rules and
        # audited them), so they have no saved objects to describe.
        return super().construct_change_message(request, form, [], add)

    def delete_via_service(self, request, obj):
        services.device_group_delete(actor=self.actor(request), group=obj)
