"""The app assignments editor: the policies editor's rows with an intent each, and a preview by intent.

Rows are the policies editor's (``policies.admin.assignments.AssignmentForm``: target, group,
ownership and OS filters, each checked by the rule the services apply) plus the intent of an
include row; an app has one platform, so the platform filter is left out. The preview resolves
the proposed intents per device with ``apps.targeting`` (the rule the installs follow): one
aggregate query for the counts by effective intent and the conflicts, one for a sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.db.models import Count

from devices.models import Device
from mdm_portal.core import authz
from policies.admin.assignments import SAMPLE_SIZE, AssignmentForm, BaseAssignmentFormSet
from policies.choices import AssignmentMode

from ..choices import AppIntent
from ..models import App, AppAssignment
from ..targeting import effective_intent_q, intent_qs, targeted_devices

PREFIX = "assignments"
INTENT_LABELS = {
    AppIntent.REQUIRED: "required",
    AppIntent.AVAILABLE: "available",
    AppIntent.UNINSTALL: "uninstall",
    AppIntent.BLOCKED: "blocked",
}


class AppAssignmentForm(AssignmentForm):
    """One row: include or exclude a target; an include row says what happens (its intent)."""

    intent = forms.ChoiceField(
        choices=[("", "---------"), *[(value, INTENT_LABELS[value].capitalize()) for value in AppIntent.values]],
        required=False,
    )
    field_order = ["mode", "intent", "target"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # An app is for one platform: a platform filter on a row could only empty it.
        del self.fields["filter_platforms"]

    def clean(self):
        data = super().clean()
        if self.is_blank() or data.get("DELETE") or self.errors:
            return data
        if data.get("mode") == AssignmentMode.INCLUDE and not data.get("intent"):
            self.add_error(
                "intent",
                "Choose what this row does: required, available, uninstall or blocked.",
            )
            self.assignment = None
            return data
        if self.assignment is not None:
            self.assignment = _as_app_assignment(self.assignment, self.target_obj, self.row())
        return data

    def row(self) -> dict[str, Any]:
        row = super().row()
        row["filter_platforms"] = []
        # An exclude applies to every intent of the app; its own intent means nothing.
        row["intent"] = (self.cleaned_data.get("intent") or "") if row["mode"] == AssignmentMode.INCLUDE else ""
        return row


def _as_app_assignment(cleaned, app: App, row: dict[str, Any]) -> AppAssignment:
    """The policies row rule gives a policy's assignment; the same values as the app's."""
    return AppAssignment(
        app=app if app is not None and app.pk is not None else None,
        mode=cleaned.mode,
        target=cleaned.target,
        user_group=cleaned.user_group,
        device_group=cleaned.device_group,
        filter_platforms=[],
        filter_ownership=cleaned.filter_ownership,
        filter_os_min=cleaned.filter_os_min,
        filter_os_max=cleaned.filter_os_max,
        intent=row["intent"] or AppIntent.AVAILABLE,
    )


class BaseAppAssignmentFormSet(BaseAssignmentFormSet):
    pass


AppAssignmentFormSet = forms.formset_factory(
    AppAssignmentForm, formset=BaseAppAssignmentFormSet, extra=1, can_delete=True
)


def app_assignment_initial(app: App | None) -> list[dict[str, Any]]:
    if app is None or app.pk is None:
        return []
    return [
        {
            "mode": a.mode,
            "intent": a.intent if a.mode == AssignmentMode.INCLUDE else "",
            "target": a.target,
            "user_group": a.user_group_id,
            "device_group": a.device_group_id,
            "filter_ownership": a.filter_ownership,
            "filter_os_min": a.filter_os_min,
            "filter_os_max": a.filter_os_max,
        }
        for a in app.assignments.all()
    ]


def app_assignment_formset(request, *, data, obj, proposed_obj, disabled: bool = False) -> BaseAppAssignmentFormSet:
    """Bound to ``data`` (or unbound with the stored rows); rows are checked against the proposed app."""
    initial = app_assignment_initial(obj)
    formset = AppAssignmentFormSet(
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
            for field in form.fields.values():
                field.disabled = True
    return formset


# The preview ---------------------------------------------------------------------------------------------


@dataclass
class AppPreview:
    """What saving the proposed rows would do: devices by effective intent, conflicts, a few names."""

    total: int
    by_intent: list[tuple[str, int]]
    conflicts: int
    sample: list[Device]
    current: int | None = None

    @property
    def sentence(self) -> str:
        if not self.total:
            return "This will apply to no device."
        parts = ", ".join(f"{n:,} {label}" for label, n in self.by_intent if n)
        if self.conflicts:
            parts = ", ".join(filter(None, [parts, f"{self.conflicts:,} in conflict"]))
        return f"This will apply to {self.total:,} device{'s' if self.total != 1 else ''}: {parts}."

    @property
    def conflict_sentence(self) -> str:
        if not self.conflicts:
            return ""
        n = self.conflicts
        return (
            f"{n:,} device{'s are' if n != 1 else ' is'} reached both as required and as uninstall or blocked: "
            "nothing is installed or removed there until the rows agree."
        )

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


def app_assignments_preview(*, user, app: App, proposed: list[AppAssignment]) -> AppPreview:
    """Two queries: one aggregate of the devices per effective intent, one sample the person may view."""
    includes = intent_qs(app, proposed)
    counts = {}
    if includes:
        counts = targeted_devices(app, proposed).aggregate(
            **{name: Count("pk", filter=q) for name, q in effective_intent_q(includes).items()}
        )
    by_intent = [(INTENT_LABELS[i], counts.get(i, 0)) for i in AppIntent.values]
    conflicts = counts.get("conflict", 0)
    total = sum(n for _, n in by_intent) + conflicts
    sample = []
    if total:
        sample = list(
            authz.restrict(targeted_devices(app, proposed), user, "devices.view_device")
            .only("pk", "name", "platform")
            .order_by("name", "pk")[:SAMPLE_SIZE]
        )
    current = None
    if app.pk is not None:
        current = targeted_devices(App.objects.get(pk=app.pk)).count()
    return AppPreview(total=total, by_intent=by_intent, conflicts=conflicts, sample=sample, current=current)
