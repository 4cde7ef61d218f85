"""The assignments editor shared by profiles and compliance policies: one row per include or exclude.

Each row is checked by ``policies.services.assignments.assignment_clean`` (the rule the services
apply), with the groups limited to what the person may see and, for a device group, to the
profile's or policy's scope. The preview counts the devices the proposed rows would reach with the
same SQL filter the fan-out uses (``policies.targeting.targeted_devices``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, Q

from devices.choices import Ownership, Platform
from devices.models import Device, DeviceGroup
from mdm_portal.core import authz
from mdm_portal.core.models import UserGroup
from mdm_portal.core.selectors import assignable_user_groups

from ..choices import AssignmentMode, AssignmentTarget
from ..models import AssignmentBase, CompliancePolicy, ConfigurationProfile
from ..services.assignments import FIELDS, assignment_clean
from ..targeting import targeted_devices

PREFIX = "assignments"
SAMPLE_SIZE = 10


def visible_user_groups(user):
    return assignable_user_groups(user=user)


def visible_device_groups(user, obj: ConfigurationProfile | CompliancePolicy | None):
    """Device groups the person may see; for a scoped profile or policy, only its scope's groups."""
    groups = DeviceGroup.objects.select_related("scope").order_by("name")
    groups = authz.restrict(groups, user, "devices.view_devicegroup")
    if obj is not None and obj.scope_id is not None:
        groups = groups.filter(scope_id=obj.scope_id)
    return groups


class DeviceGroupChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.scope})" if obj.scope_id else f"{obj.name} (organisation-wide)"


class AssignmentForm(forms.Form):
    """One row. ``target`` is the profile or policy as proposed (scope and platforms from the same page)."""

    mode = forms.ChoiceField(choices=AssignmentMode.choices, initial=AssignmentMode.INCLUDE)
    # Short labels: the table has room for a word or two; the description above says what each means.
    target = forms.ChoiceField(
        choices=[
            ("", "---------"),
            (AssignmentTarget.ALL_DEVICES, "All devices"),
            (AssignmentTarget.USER_GROUP, "User group"),
            (AssignmentTarget.DEVICE_GROUP, "Device group"),
        ],
        required=False,
    )
    user_group = forms.ModelChoiceField(queryset=UserGroup.objects.none(), required=False)
    device_group = DeviceGroupChoiceField(queryset=DeviceGroup.objects.none(), required=False)
    filter_platforms = forms.MultipleChoiceField(
        label="Only platforms", choices=Platform.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    filter_ownership = forms.ChoiceField(
        label="Only ownership", choices=[("", "Any"), *Ownership.choices], required=False
    )
    filter_os_min = forms.CharField(
        label="OS at least", max_length=32, required=False, widget=forms.TextInput(attrs={"size": 6})
    )
    filter_os_max = forms.CharField(
        label="OS at most", max_length=32, required=False, widget=forms.TextInput(attrs={"size": 6})
    )

    def __init__(self, *args, user=None, target_obj=None, scope_obj=None, assigned_user_groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.target_obj = target_obj
        # A row someone else made with a user group this person cannot list stays as it is.
        self.fields["user_group"].queryset = visible_user_groups(user) | UserGroup.objects.filter(
            pk__in=list(assigned_user_groups)
        )
        self.fields["device_group"].queryset = visible_device_groups(user, scope_obj)
        self.assignment: AssignmentBase | None = None

    def clean(self):
        data = super().clean()
        if self.errors or self.is_blank() or data.get("DELETE"):
            return data
        if not data.get("target"):
            self.add_error("target", "Choose who this row includes or excludes.")
            return data
        row = {name: data.get(name) for name in FIELDS}
        try:
            self.assignment = assignment_clean(self.target_obj, row, user=self.user)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
        return data

    def is_blank(self) -> bool:
        """An extra row left empty (stored rows always count, changed or not)."""
        return self.empty_permitted and not self.has_changed()

    def row(self) -> dict[str, Any]:
        """What the services take for this row."""
        data = self.cleaned_data
        return {
            "mode": data["mode"],
            "target": data["target"],
            "user_group": data.get("user_group"),
            "device_group": data.get("device_group"),
            "filter_platforms": list(data.get("filter_platforms") or []),
            "filter_ownership": data.get("filter_ownership") or "",
            "filter_os_min": data.get("filter_os_min") or "",
            "filter_os_max": data.get("filter_os_max") or "",
        }


class BaseAssignmentFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if self.rows() and not any(r["mode"] == AssignmentMode.INCLUDE for r in self.rows()):
            raise ValidationError(
                "Only exclusions: nobody would receive it. Add an include row (for example All devices)."
            )

    def kept_forms(self) -> list[AssignmentForm]:
        return [
            f
            for f in self.forms
            if not f.is_blank() and not (self.can_delete and self._should_delete_form(f)) and f.cleaned_data
        ]

    def rows(self) -> list[dict[str, Any]]:
        return [f.row() for f in self.kept_forms()]

    def proposed(self) -> list[AssignmentBase]:
        return [f.assignment for f in self.kept_forms() if f.assignment is not None]


AssignmentFormSet = forms.formset_factory(AssignmentForm, formset=BaseAssignmentFormSet, extra=1, can_delete=True)


def assignment_initial(obj) -> list[dict[str, Any]]:
    if obj is None or obj.pk is None:
        return []
    return [
        {
            "mode": a.mode,
            "target": a.target,
            "user_group": a.user_group_id,
            "device_group": a.device_group_id,
            "filter_platforms": list(a.filter_platforms or []),
            "filter_ownership": a.filter_ownership,
            "filter_os_min": a.filter_os_min,
            "filter_os_max": a.filter_os_max,
        }
        for a in obj.assignments.all()
    ]


def assignment_formset(request, *, data, obj, proposed_obj, disabled: bool = False) -> BaseAssignmentFormSet:
    """The formset bound to ``data`` (or unbound with the stored rows). ``proposed_obj`` carries the
    scope and platforms from the same page, which rows are validated against."""
    initial = assignment_initial(obj)
    formset = AssignmentFormSet(
        data,
        prefix=PREFIX,
        initial=initial,
        form_kwargs={
            "user": request.user,
            "target_obj": proposed_obj,
            "scope_obj": proposed_obj,
            "assigned_user_groups": {row["user_group"] for row in initial if row.get("user_group")},
        },
    )
    if disabled:
        formset.extra = 0
        for form in formset.forms:
            for f in form.fields.values():
                f.disabled = True
    return formset


@dataclass
class Preview:
    """What saving the proposed assignments would do: how many devices, by platform, a few names."""

    total: int
    by_platform: list[tuple[str, int]]
    sample: list[Device]
    current: int | None = None

    @property
    def sentence(self) -> str:
        if not self.total:
            return "This will apply to no device."
        parts = ", ".join(f"{n:,} {label}" for label, n in self.by_platform)
        return f"This will apply to {self.total:,} device{'s' if self.total != 1 else ''}: {parts}."

    @property
    def current_sentence(self) -> str:
        if self.current is None:
            return ""
        return f"Today it applies to {self.current:,} device{'s' if self.current != 1 else ''}."

    @property
    def sample_note(self) -> str:
        if self.total <= len(self.sample):
            return ""
        return f"The first {len(self.sample)} of {self.total:,} by name, among the devices you may view."


def assignments_preview(*, user, obj, proposed: list[AssignmentBase]) -> Preview:
    """Two queries: one GROUP BY platform for the counts, one for a sample the person may view."""
    targeted = targeted_devices(obj, proposed)
    rows = list(targeted.order_by().values("platform").annotate(n=Count("pk")).order_by("-n", "platform"))
    labels = dict(Platform.choices)
    by_platform = [(labels.get(r["platform"], r["platform"]), r["n"]) for r in rows]
    total = sum(n for _, n in by_platform)
    sample = list(
        authz.restrict(targeted, user, "devices.view_device")
        .only("pk", "name", "platform")
        .order_by("name", "pk")[:SAMPLE_SIZE]
        if total
        else []
    )
    current = None
    if getattr(obj, "pk", None) is not None:
        current = targeted_devices(type(obj).objects.get(pk=obj.pk)).count()
    return Preview(total=total, by_platform=by_platform, sample=sample, current=current)


def targeted_count_q(obj, proposed=None) -> Q:
    """``obj``'s targeted devices as a filter usable inside one aggregate over many objects."""
    return Q(pk__in=targeted_devices(obj, proposed).values("pk"))
