"""The profile editor's form, built from the kind's settings, and the native payloads it shows (secrets masked)."""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import ImproperlyConfigured

from devices.choices import Platform

from ..models import ConfigurationProfile
from ..platforms import ProfileSpec, render
from ..profile_settings import BOOL, CHOICE, INT, PEM, SETTINGS, Setting, settings_clean
from ..secrets import secrets_decrypt

MASK = "••••••"
SETTING_PREFIX = "setting_"
SECRET_INPUTS = tuple(f"{SETTING_PREFIX}{s.name}" for specs in SETTINGS.values() for s in specs if s.secret)


# The form built from the kind's settings -------------------------------------------------------------

TRI_STATE = [("", "Not configured"), ("true", "Yes"), ("false", "No")]


def setting_field(spec: Setting, *, stored_secret: bool) -> forms.Field:
    """One input for one platform-neutral setting; empty means "not configured" unless required."""
    help_text = spec.help
    if spec.type == BOOL:
        field = forms.ChoiceField(choices=TRI_STATE, required=False)
    elif spec.type == INT:
        field = forms.IntegerField(
            required=spec.required,
            min_value=spec.minimum,
            max_value=spec.maximum,
            widget=forms.NumberInput(attrs={"class": "setting-number"}),  # width: static/console/policies.css
        )
    elif spec.type == CHOICE:
        choices = list(spec.choices) if spec.required else [("", "Not configured"), *spec.choices]
        field = forms.ChoiceField(choices=choices, required=spec.required)
    elif spec.type == PEM:
        field = forms.CharField(
            required=spec.required,
            max_length=spec.max_length,
            widget=forms.Textarea(attrs={"rows": 8, "cols": 70, "spellcheck": "false", "class": "monospace"}),
        )
    elif spec.secret:
        field = forms.CharField(
            required=False,
            strip=False,
            max_length=spec.max_length,
            # Never rendered back into the page, not even after an error.
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        )
        if stored_secret:
            help_text = " ".join(filter(None, [help_text, "A value is stored; leave blank to keep it."]))
    else:
        field = forms.CharField(required=spec.required, max_length=spec.max_length)
    field.label = spec.label
    field.help_text = help_text
    return field


def _initial_value(spec: Setting, value):
    if spec.type == BOOL:
        return "" if value is None else ("true" if value else "false")
    return value


class ProfileForm(forms.ModelForm):
    platforms = forms.MultipleChoiceField(
        choices=Platform.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked for every platform that can express it.",
    )

    class Meta:
        model = ConfigurationProfile
        fields = ["name", "description", "scope", "platforms"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args, kind: str, user, scopes, scope_required: bool, stored_secrets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["scope"].queryset = scopes
        self.fields["scope"].required = scope_required
        self.fields["scope"].empty_label = "Organisation-wide (every scope)"
        self.specs = SETTINGS[kind]
        stored = self.instance.settings or {}
        for spec in self.specs:
            name = f"{SETTING_PREFIX}{spec.name}"
            self.fields[name] = setting_field(spec, stored_secret=spec.name in stored_secrets)
            if spec.secret:
                continue
            if self.instance.pk is not None:
                self.initial[name] = _initial_value(spec, stored.get(spec.name))
            elif spec.default is not None:
                self.initial[name] = _initial_value(spec, spec.default)

    def setting_values(self) -> dict:
        """What was entered, by setting name; a blank secret is left out (the stored one stays)."""
        values = {}
        for spec in self.specs:
            value = self.cleaned_data.get(f"{SETTING_PREFIX}{spec.name}")
            if value is None or value == "":
                continue
            values[spec.name] = value
        return values

    def clean(self):
        data = super().clean()
        if any(f"{SETTING_PREFIX}{s.name}" in self.errors for s in self.specs):
            return data
        try:
            settings_clean(self.kind, self.setting_values())
        except forms.ValidationError as exc:
            for name, sentences in exc.message_dict.items():
                field = f"{SETTING_PREFIX}{name}"
                self.add_error(field if field in self.fields else None, sentences)
        return data


# Native payloads on the change page -----------------------------------------------------------------


def masked_spec(profile: ConfigurationProfile) -> ProfileSpec:
    """The profile as renderers see it, with every secret replaced by a mask."""
    try:
        secret_names = secrets_decrypt(profile.secret_settings)
    except ImproperlyConfigured:
        secret_names = {s.name: "" for s in SETTINGS[profile.kind] if s.secret}
    return ProfileSpec(
        uuid=str(profile.uuid),
        name=profile.name,
        kind=profile.kind,
        version=profile.version,
        settings=dict(profile.settings),
        secrets={name: MASK for name in secret_names},
    )


def native_payloads(profile: ConfigurationProfile) -> list[dict]:
    """Per platform the profile is for: the rendered output (secrets masked) and what is not applicable."""
    spec = masked_spec(profile)
    labels = {s.name: s.label for s in SETTINGS[profile.kind]}
    out = []
    wanted = set(profile.platforms or Platform.values)
    for platform in [p for p in Platform.values if p in wanted]:
        try:
            rendered = render(spec, platform)
        except Exception as exc:  # a renderer bug must not take the page down
            out.append({"platform": Platform(platform).label, "error": f"Could not render: {exc}"})
            continue
        content = rendered.content
        if not isinstance(content, str):
            content = json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False)
        out.append(
            {
                "platform": Platform(platform).label,
                "format": rendered.format,
                "content": content,
                "applicable": rendered.applicable,
                "not_applicable": [(labels.get(n.setting, n.setting), n.reason) for n in rendered.not_applicable],
            }
        )
    return out
