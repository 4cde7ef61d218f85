"""Compliance in the IT console: policies (rules, action schedule, assignments), failures and the organisation-wide
settings."""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from devices.choices import ComplianceState
from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter
from mdm_portal.core.models import Scope

from ..choices import ComplianceRule, NoncomplianceActionType
from ..models import ComplianceFailure, CompliancePolicy, ComplianceSettings
from ..targeting import targeted_devices
from .editor import EditorAdmin, proposed_copy

POLICY_FIELDS = [
    "name",
    "description",
    "scope",
    "platform",
    "os_min",
    "os_max",
    "passcode_required",
    "passcode_min_length",
    "passcode_min_quality",
    "encryption_required",
    "jailbreak_blocked",
    "checkin_max_days",
    "blocked_apps",
    "provisioning_on_time",
]


def policy_counts(policies) -> dict[int, dict[str, int]]:
    """Targeted, noncompliant and in-grace devices of each policy: two queries for the whole page.

    The targeted counts are one aggregate with a filtered count per policy (each the targeting
    filter the fan-out uses); the failing counts one GROUP BY over the failures.
    """
    policies = list(policies)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not policies:
        return counts
    targeted = Device.objects.aggregate(
        **{
            f"p{p.pk}": Count("pk", filter=Q(pk__in=targeted_devices(p, p.assignments.all()).values("pk")))
            for p in policies
        }
    )
    for p in policies:
        counts[p.pk]["targeted"] = targeted[f"p{p.pk}"]
    rows = (
        ComplianceFailure.objects.filter(policy_id__in=[p.pk for p in policies])
        .order_by()
        .values("policy_id")
        .annotate(
            noncompliant=Count(
                "device_id", distinct=True, filter=Q(device__compliance_state=ComplianceState.NONCOMPLIANT)
            ),
            in_grace=Count("device_id", distinct=True, filter=Q(device__compliance_state=ComplianceState.IN_GRACE)),
        )
    )
    for row in rows:
        counts[row["policy_id"]]["noncompliant"] = row["noncompliant"]
        counts[row["policy_id"]]["in_grace"] = row["in_grace"]
    return counts


# The policy editor ------------------------------------------------------------------------------------


class BlockedAppsField(forms.CharField):
    """One app identifier per line (bundle id or package name)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 50, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class PolicyForm(forms.ModelForm):
    blocked_apps = BlockedAppsField(
        required=False,
        label="Blocked apps",
        help_text="One app identifier per line (bundle id such as com.example.game, or package name).",
    )

    class Meta:
        model = CompliancePolicy
        fields = POLICY_FIELDS
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "os_min": forms.TextInput(attrs={"size": 10, "placeholder": "any"}),
            "os_max": forms.TextInput(attrs={"size": 10, "placeholder": "any"}),
        }

    def __init__(self, *args, scopes, scope_required: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].queryset = scopes
        self.fields["scope"].required = scope_required
        self.fields["scope"].empty_label = "Organisation-wide (every scope)"


class NoncomplianceActionForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "---------"), *NoncomplianceActionType.choices], required=False)
    days_after = forms.IntegerField(
        label="Days after",
        min_value=0,
        max_value=365,
        initial=0,
        widget=forms.NumberInput(attrs={"class": "days-after"}),  # width: static/console/policies.css
    )
    message = forms.CharField(required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 2, "cols": 50}))

    def is_blank(self) -> bool:
        return self.empty_permitted and not self.has_changed()

    def clean(self):
        data = super().clean()
        if not self.is_blank() and not data.get("DELETE") and not data.get("action") and not self.errors:
            self.add_error("action", "Choose what to do, or tick Delete to remove this step.")
        return data


class BaseActionFormSet(forms.BaseFormSet):
    def kept_forms(self):
        return [
            f
            for f in self.forms
            if not f.is_blank() and not (self.can_delete and self._should_delete_form(f)) and f.cleaned_data
        ]

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        seen = set()
        for form in self.kept_forms():
            key = (form.cleaned_data["action"], form.cleaned_data["days_after"])
            if key in seen:
                form.add_error("days_after", "This step is already in the schedule on the same day.")
            seen.add(key)

    def rows(self) -> list[dict]:
        return [{name: f.cleaned_data[name] for name in ("action", "days_after", "message")} for f in self.kept_forms()]


ActionFormSet = forms.formset_factory(NoncomplianceActionForm, formset=BaseActionFormSet, extra=1, can_delete=True)


@admin.register(CompliancePolicy)
class CompliancePolicyAdmin(EditorAdmin):
    list_display = ["name", "platform", "scope_label", "targeted", "noncompliant", "in_grace"]
    list_filter = ["platform", ("scope", ScopedRelatedListFilter)]
    list_select_related = ["scope"]
    search_fields = ["name", "description"]
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="Scope", ordering="scope__name")
    def scope_label(self, obj):
        return obj.scope or "Organisation-wide"

    def _count(self, obj, key):
        return getattr(obj, "policy_counts", {}).get(key, 0)

    @admin.display(description="Targeted devices")
    def targeted(self, obj):
        return self._count(obj, "targeted")

    @admin.display(description="Noncompliant")
    def noncompliant(self, obj):
        n = self._count(obj, "noncompliant")
        if not n:
            return 0
        url = reverse("admin:policies_compliancefailure_changelist") + f"?policy__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, n)

    @admin.display(description="In grace period")
    def in_grace(self, obj):
        return self._count(obj, "in_grace")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("assignments__user_group", "assignments__device_group")

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        cl = (getattr(response, "context_data", None) or {}).get("cl")
        if cl is not None:
            rows = list(cl.result_list)
            counts = policy_counts(rows)
            for row in rows:
                row.policy_counts = counts.get(row.pk, {})
        return response

    # The editor -------------------------------------------------------------------------------

    def _scopes(self, request, obj=None, *, disabled=False):
        scopes = authz.scopes_for(request.user, "policies.change_compliancepolicy") | authz.scopes_for(
            request.user, "policies.add_compliancepolicy"
        )
        if disabled and obj is not None and obj.scope_id is not None:
            # A viewer sees the scope the object has, even one they may not put objects in.
            scopes = scopes | Scope.objects.filter(pk=obj.scope_id)
        return scopes

    def editor_form(self, request, obj, data, *, disabled):
        form = PolicyForm(
            data,
            instance=proposed_copy(obj, CompliancePolicy),
            scopes=self._scopes(request, obj, disabled=disabled).order_by("name"),
            scope_required=not authz.has_global(request.user, "policies.add_compliancepolicy"),
        )
        if disabled:
            for field in form.fields.values():
                field.disabled = True
        return form

    def editor_fieldsets(self, form):
        return [
            (None, "", ["name", "description", "scope", "platform"]),
            (
                "Rules",
                "An empty rule is not checked. When several policies apply to a device, the most "
                "restrictive value of each rule wins.",
                [
                    "os_min",
                    "os_max",
                    "passcode_required",
                    "passcode_min_length",
                    "passcode_min_quality",
                    "encryption_required",
                    "jailbreak_blocked",
                    "checkin_max_days",
                    "blocked_apps",
                    "provisioning_on_time",
                ],
            ),
        ]

    def editor_formsets(self, request, obj, data, *, disabled):
        initial = (
            [{"action": a.action, "days_after": a.days_after, "message": a.message} for a in obj.actions.all()]
            if obj is not None
            else [{"action": NoncomplianceActionType.MARK_NONCOMPLIANT, "days_after": 0}]
        )
        formset = ActionFormSet(data, prefix="actions", initial=initial)
        if disabled:
            formset.extra = 0
            for form in formset.forms:
                for field in form.fields.values():
                    field.disabled = True
        formset.title = "Actions for noncompliance"
        formset.description = (
            "Days after a device starts failing. “Mark the device noncompliant” ends the grace period "
            "(0: at once; without it, at once). Retirement is only proposed: IT approves it under Retire approvals."
        )
        return {"actions": formset}

    def editor_proposed(self, form, obj):
        data = getattr(form, "cleaned_data", None) or {}
        if not form.is_bound or form.errors:
            return proposed_copy(obj, CompliancePolicy)
        return proposed_copy(obj, CompliancePolicy, scope=data.get("scope"), platform=data.get("platform"))

    def editor_save(self, request, obj, form, formsets, rows):
        from ..services.policies import policy_save

        stored = CompliancePolicy.objects.get(pk=obj.pk) if obj is not None else None
        return policy_save(
            actor=self.actor(request),
            policy=stored,
            data={name: form.cleaned_data.get(name) for name in POLICY_FIELDS},
            actions=formsets["actions"].rows(),
            assignments=rows,
            user=request.user,
        )

    def editor_context(self, request, obj, form):
        if obj is None:
            return {}
        failing = list(
            ComplianceFailure.objects.filter(policy=obj)
            .order_by()
            .values("rule")
            .annotate(n=Count("device_id", distinct=True))
            .order_by("-n")
        )
        labels = dict(ComplianceRule.choices)
        return {
            "failing_rules": [(labels.get(r["rule"], r["rule"]), r["n"]) for r in failing],
            "failures_url": reverse("admin:policies_compliancefailure_changelist") + f"?policy__id__exact={obj.pk}",
        }

    def editor_delete(self, request, obj):
        from ..services.policies import policy_delete

        name = obj.name
        policy_delete(actor=self.actor(request), policy=obj)
        return f"The compliance policy “{name}” was deleted; the devices it applied to are evaluated again without it."

    def delete_consequences(self, obj):
        failing = ComplianceFailure.objects.filter(policy=obj).values("device_id").distinct().count()
        return [
            "The devices it applies to are evaluated again without it at their next check-in or sweep.",
            f"Its failures on {failing} device{'s' if failing != 1 else ''}, its action schedule and its "
            "assignments are deleted with it.",
        ]


# Failures ----------------------------------------------------------------------------------------------


@admin.register(ComplianceFailure)
class ComplianceFailureAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["device_name", "policy_name", "rule", "expected", "actual", "since"]
    list_filter = ["rule", ("policy", ScopedRelatedListFilter), ("device__scope", ScopedRelatedListFilter)]
    list_select_related = ["device", "policy"]
    search_fields = ["device__name", "device__serial_number", "policy__name"]
    show_facets = admin.ShowFacets.NEVER
    fields = ["device", "policy", "rule", "expected", "actual", "since"]
    readonly_fields = fields

    @admin.display(description="Device", ordering="device__name")
    def device_name(self, obj):
        return obj.device.name

    @admin.display(description="Policy", ordering="policy__name")
    def policy_name(self, obj):
        return obj.policy.name if obj.policy_id else "Organisation-wide rule"


# Settings ------------------------------------------------------------------------------------------------


class ComplianceSettingsForm(forms.ModelForm):
    class Meta:
        model = ComplianceSettings
        fields = ["no_policy_compliant", "validity_days"]
        # Django's "Ensure this value is greater than or equal to 0/1" names neither the unit nor the range.
        error_messages = {
            "validity_days": dict.fromkeys(
                ["required", "invalid", "min_value", "max_value"], "Enter a whole number of days, from 1 to 365."
            )
        }


@admin.register(ComplianceSettings)
class ComplianceSettingsAdmin(AuthzModelAdmin):
    """One row for the organisation: the list goes straight to it. Global permission only (no scope)."""

    form = ComplianceSettingsForm

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settings = ComplianceSettings.load()
        return HttpResponseRedirect(reverse("admin:policies_compliancesettings_change", args=[settings.pk]))

    def save_model(self, request, obj, form, change):
        from ..services.compliance import compliance_settings_save

        compliance_settings_save(actor=self.actor(request), data=dict(form.cleaned_data))

    def save_related(self, request, form, formsets, change):
        """The settings have no relations."""

    def response_change(self, request, obj):
        self.message_user(request, "The compliance settings were saved.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:policies_compliancesettings_change", args=[obj.pk]))
