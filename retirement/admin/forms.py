"""Forms of the retirement admin: asking for a retirement, and confirming a step of one."""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AdminRadioSelect

from ..choices import RetirementAction

# How the "choose an action" error names each option, in the order of the form.
ACTION_WORDS = {
    RetirementAction.RETIRE: "retire (remove company data)",
    RetirementAction.WIPE: "full wipe (erase everything)",
    RetirementAction.DELETE: "delete the record",
}


class RetirementRequestForm(forms.Form):
    """Retire, wipe or delete one device. A full wipe needs the device's name typed exactly."""

    # Django admin's radio list: each option on one line across the page, not in the 160px label column.
    action = forms.ChoiceField(widget=AdminRadioSelect(attrs={"class": "radiolist"}))
    keep_enrollment = forms.BooleanField(
        label="Keep the enrolment (full wipe only)",
        required=False,
        help_text="The device re-enrols by itself after the reset.",
    )
    confirm_name = forms.CharField(
        label="Type the device's name to confirm a full wipe",
        required=False,
        help_text="A full wipe erases everything on the device, personal data included.",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, device, actions: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.device = device
        self.fields["action"].choices = [(a, RetirementAction(a).label) for a in actions]
        words = [ACTION_WORDS[RetirementAction(a)] for a in actions]
        either = " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)
        self.fields["action"].error_messages["required"] = f"Choose what should happen to the device: {either}."
        self.fields[
            "confirm_name"
        ].help_text = (
            f"Type {device.name} exactly. A full wipe erases everything on the device, personal data included."
        )

    def clean(self):
        data = super().clean()
        if data.get("action") == RetirementAction.WIPE:
            if (data.get("confirm_name") or "").strip() != self.device.name:
                self.add_error(
                    "confirm_name", f"Type the device's name, {self.device.name}, exactly to confirm the full wipe."
                )
        elif data.get("keep_enrollment"):
            self.add_error("keep_enrollment", "Keeping the enrolment is an option of a full wipe only.")
        return data


class RetirementStepForm(forms.Form):
    """Confirm approve, cancel, unenrol or force; ``reason_required`` for a forced unenrolment."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def __init__(self, *args, reason_required: bool = False, with_reason: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not with_reason:
            del self.fields["reason"]
        elif reason_required:
            self.fields["reason"].required = True
            self.fields["reason"].help_text = "Recorded with your name: the unenrolment is not verified."
            self.fields["reason"].error_messages["required"] = (
                "Say why you force the unenrolment: it is recorded as unverified."
            )
