from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ScopedRelatedListFilter

from .. import selectors, services
from ..choices import GroupMembershipType
from ..models import Device, DeviceGroup, DeviceGroupRule
from ..rules import rule_validate


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


@admin.register(Device)
class DeviceAdmin(AuthzModelAdmin):
    list_display = [
        "name",
        "platform",
        "os_version",
        "ownership",
        "primary_user",
        "scope",
        "lifecycle_state",
        "compliance_state",
        "last_checkin_at",
    ]
    list_filter = [
        "platform",
        "ownership",
        "lifecycle_state",
        "compliance_state",
        "enrollment_method",
        ("scope", ScopedRelatedListFilter),
        DeviceGroupListFilter,
    ]
    list_select_related = ["scope", "primary_user"]
    # Facet counts are a GROUP BY per filter over the whole fleet; not on a 100,000-device list.
    show_facets = admin.ShowFacets.NEVER
    search_fields = ["name", "serial_number", "imei", "primary_user__username", "primary_user__email"]
    autocomplete_fields = ["primary_user"]
    fieldsets = (
        (None, {"fields": ("name", "ownership", "scope", "primary_user")}),
        (
            "Hardware and OS",
            {"fields": ("uuid", "platform", "os_version", "model", "manufacturer", "serial_number", "imei")},
        ),
        (
            "Lifecycle",
            {
                "fields": (
                    "lifecycle_state",
                    "compliance_state",
                    "enrollment_method",
                    "enrollment_transport",
                    "enrolled_at",
                    "last_checkin_at",
                    "retired_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )
    readonly_fields = [
        "uuid",
        "platform",
        "os_version",
        "model",
        "manufacturer",
        "serial_number",
        "imei",
        "lifecycle_state",
        "compliance_state",
        "enrollment_method",
        "enrollment_transport",
        "enrolled_at",
        "last_checkin_at",
        "retired_at",
        "created_at",
        "updated_at",
    ]

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
