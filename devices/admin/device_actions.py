"""Remote actions in the IT console: the form that takes an action's inputs, and the bulk preview.

The command classes in ``devices.commands`` decide everything (who, on which devices, which
inputs are valid); these helpers only collect what the person typed and count what a bulk
request would do before they confirm it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet

from ..choices import CommandType
from ..commands import DeviceAction
from ..models import Device

# The device fields the built-in actions' eligibility reads. The preview counts devices by these
# (one GROUP BY, whatever the fleet size); the service still checks every device itself.
ELIGIBILITY_FIELDS = ("platform", "ownership", "lifecycle_state")


def _lock_fields() -> dict[str, forms.Field]:
    return {
        "message": forms.CharField(
            label="Lock-screen message",
            required=False,
            widget=forms.Textarea(attrs={"rows": 3, "cols": 50, "maxlength": 200}),
            help_text="Shown on the locked screen, for example who to call to get the device back.",
        ),
        "phone_number": forms.CharField(
            label="Phone number",
            required=False,
            widget=forms.TextInput(attrs={"maxlength": 32, "inputmode": "tel"}),
            help_text="Shown on the locked screen.",
        ),
    }


def _rename_fields() -> dict[str, forms.Field]:
    # Not ``required``: the command class says what is missing, in its own words.
    return {"name": forms.CharField(label="New name", required=False, widget=forms.TextInput(attrs={"maxlength": 63}))}


def _reset_passcode_fields() -> dict[str, forms.Field]:
    return {
        "new_passcode": forms.CharField(
            label="New passcode",
            required=False,
            strip=False,
            # Never rendered back into the page, not even after an error.
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=(
                "4 to 16 digits, for Android and Windows devices. Leave it empty to clear the passcode; "
                "iPhones and iPads always clear it and the user sets a new one."
            ),
        )
    }


ACTION_FIELDS = {
    CommandType.LOCK: _lock_fields,
    CommandType.RENAME: _rename_fields,
    CommandType.RESET_PASSCODE: _reset_passcode_fields,
}


class DeviceActionForm(forms.Form):
    """The inputs of one action. The fields only collect text; the command class's ``clean`` validates
    it, so the console, the API and automation give the same answer. ``params`` holds what it accepted."""

    def __init__(self, *args, action: DeviceAction, **kwargs):
        super().__init__(*args, **kwargs)
        self.action = action
        self.params: dict = {}
        make_fields = ACTION_FIELDS.get(action.type)
        if make_fields is not None:
            self.fields.update(make_fields())

    def clean(self):
        data = super().clean()
        if self._errors:
            return data
        typed = {name: value for name, value in data.items() if value not in ("", None)}
        try:
            self.params = self.action.clean(typed)
        except ValidationError as exc:
            # Stand each error next to its input: the action checks each input alone first.
            placed = False
            for name, value in typed.items():
                try:
                    self.action.clean({name: value})
                except ValidationError as field_exc:
                    self.add_error(name, field_exc.messages)
                    placed = True
            if not placed and len(self.fields) == 1:
                self.add_error(next(iter(self.fields)), exc.messages)  # a missing input (rename's name)
            elif not placed:
                raise forms.ValidationError(exc.messages) from exc
        return data


@dataclass
class BulkPreview:
    """What a bulk request would do: counted in SQL, never device by device."""

    selected: int
    permitted: int
    eligible: int
    skipped: list[tuple[str, int]] = field(default_factory=list)

    @property
    def not_permitted(self) -> int:
        return self.selected - self.permitted

    @property
    def skipped_count(self) -> int:
        return sum(count for _, count in self.skipped)


def bulk_preview(action: DeviceAction, selected: QuerySet[Device], permitted: QuerySet[Device]) -> BulkPreview:
    """Count the selection, the devices the person may act on, and which of those are eligible. Two queries."""
    selected_count = selected.order_by().count()
    eligible = 0
    reasons: dict[str, int] = {}
    rows = permitted.order_by().values(*ELIGIBILITY_FIELDS).annotate(devices=Count("pk"))
    permitted_count = 0
    for row in rows:
        count = row.pop("devices")
        permitted_count += count
        verdict = action.eligibility(Device(name="The device", **row))
        if verdict.allowed:
            eligible += count
        else:
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + count
    skipped = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return BulkPreview(selected=selected_count, permitted=permitted_count, eligible=eligible, skipped=skipped)
