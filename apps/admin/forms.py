"""Forms of the apps console: an app per kind, a new version, an app protection policy and its rows."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from devices.choices import Platform
from mdm_portal.core import authz
from mdm_portal.core.models import UserGroup
from mdm_portal.core.selectors import assignable_user_groups

from ..choices import AppKind
from ..models import App, AppProtectionPolicy

PACKAGE_HELP = (
    "The package: .ipa (iOS, iPadOS), .apk (Android), .msi (Windows), .pkg (macOS) or .deb (Linux). "
    "Its version and checksum are read from it. After an error, choose the file again."
)
COMMON_FIELDS = ["name", "publisher", "description", "scope", "platform"]
KIND_FIELDS = {
    AppKind.STORE: ["identifier", "store_id"],
    AppKind.LOB: ["identifier"],
    AppKind.WEB: ["url"],
}
KIND_HELP = {
    AppKind.STORE: "An app from the App Store, Google Play or the Microsoft Store, by its store identifier.",
    AppKind.LOB: "Your own package (.ipa, .apk, .msi, .pkg, .deb), uploaded here; new versions supersede old ones.",
    AppKind.WEB: "A link to a web app, placed on the device's home screen and offered in the Company Portal.",
}


class HttpsURLField(forms.URLField):
    """A web link typed without a scheme is an https one."""

    def __init__(self, **kwargs):
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class AppForm(forms.ModelForm):
    """The fields of one kind of app; a line-of-business app is added with its first package."""

    package = forms.FileField(required=False, help_text=PACKAGE_HELP)
    version = forms.CharField(
        required=False,
        max_length=64,
        help_text="Leave empty to read it from the package; needed where the format does not say (.apk, .msi, .pkg).",
    )
    min_os_version = forms.CharField(label="Minimum OS version", required=False, max_length=32)

    class Meta:
        model = App
        fields = [*COMMON_FIELDS, "identifier", "store_id", "url"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "name": forms.TextInput(attrs={"size": 40}),
            "identifier": forms.TextInput(attrs={"size": 45}),
            "url": forms.URLInput(attrs={"size": 60}),
        }
        field_classes = {"url": HttpsURLField}

    def __init__(self, *args, kind: str, scopes, scope_required: bool, adding: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        keep = {*COMMON_FIELDS, *KIND_FIELDS[kind]}
        if kind == AppKind.LOB and adding:
            keep |= {"package", "version", "min_os_version"}
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]
        self.fields["scope"].queryset = scopes
        self.fields["scope"].required = scope_required
        self.fields["scope"].empty_label = "Organisation-wide (every scope)"
        if not adding:
            # Versions, installs and inventory matching all depend on it: add the app again for another platform.
            self.fields["platform"].disabled = True
            self.fields["platform"].help_text = "Fixed once the app exists; add it again for another platform."
        if kind == AppKind.STORE:
            self.fields["identifier"].required = True
            self.fields["identifier"].label = "Store identifier"
        elif kind == AppKind.LOB:
            self.fields[
                "identifier"
            ].help_text = "Bundle id or package name the device reports. Leave empty to read it from the package."
        elif kind == AppKind.WEB:
            self.fields["url"].required = True
        if "package" in self.fields:
            self.fields["package"].required = True

    def app_data(self) -> dict[str, Any]:
        """What ``app_save`` takes."""
        data = {
            name: self.cleaned_data.get(name)
            for name in self.fields
            if name in {*COMMON_FIELDS, *KIND_FIELDS[self.kind]}
        }
        data["kind"] = self.kind
        for name in ("identifier", "store_id", "url", "publisher", "description"):
            if name in data and data[name] is None:
                data[name] = ""
        return data


class VersionForm(forms.Form):
    """A new version of an app: a package (line-of-business) or a version number (store)."""

    package = forms.FileField(required=False, help_text=PACKAGE_HELP)
    version = forms.CharField(required=False, max_length=64)
    min_os_version = forms.CharField(label="Minimum OS version", required=False, max_length=32)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}))

    def __init__(self, *args, app: App, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app
        if app.kind == AppKind.LOB:
            self.fields["package"].required = True
            self.fields[
                "version"
            ].help_text = (
                "Leave empty to read it from the package; needed where the format does not say (.apk, .msi, .pkg)."
            )
        else:
            del self.fields["package"]
            self.fields["version"].required = True
            self.fields["version"].help_text = "The version the store publishes, for example 5.2.1."


# App protection ----------------------------------------------------------------------------------------------


class LinesField(forms.CharField):
    """One entry per line (URLs): stored as a list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60, "spellcheck": "false"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class AppChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.scope})" if obj.scope_id else f"{obj.name} (organisation-wide)"


PROTECTION_FIELDS = [
    "name",
    "description",
    "scope",
    "platform",
    "apps",
    "data_isolation",
    "clipboard",
    "block_backup",
    "block_save_as",
    "sharing",
    "managed_browser_required",
    "allowed_urls",
    "blocked_urls",
    "pin_required",
    "pin_length",
    "pin_recheck_minutes",
    "offline_block_minutes",
    "offline_wipe_days",
    "min_app_version",
    "min_os_version",
]


class ProtectionPolicyForm(forms.ModelForm):
    """Every setting of a protection policy; the apps are the platform's apps the person may see."""

    allowed_urls = LinesField(required=False, label="Allowed URLs", help_text="One per line; empty allows any.")
    blocked_urls = LinesField(required=False, label="Blocked URLs", help_text="One per line.")

    class Meta:
        model = AppProtectionPolicy
        fields = PROTECTION_FIELDS
        widgets = {
            "name": forms.TextInput(attrs={"size": 50}),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
            "apps": forms.CheckboxSelectMultiple,
        }
        field_classes = {"apps": AppChoiceField}
        labels = {"pin_length": "App PIN length"}

    def __init__(self, *args, user, platform: str, scopes, scope_required: bool, stored_apps=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.platform = platform
        self.fields["scope"].queryset = scopes
        self.fields["scope"].required = scope_required
        self.fields["scope"].empty_label = "Organisation-wide (every scope)"
        self.fields["platform"].disabled = True
        self.fields["platform"].initial = platform
        self.fields["platform"].help_text = "The policy protects apps of this platform; fixed once chosen."
        visible = authz.restrict(App.objects.filter(platform=platform), user, "apps.view_app")
        # An app someone else chose that this person cannot list stays on the policy.
        stored = App.objects.filter(pk__in=list(stored_apps), platform=platform)
        self.fields["apps"].queryset = (visible | stored).select_related("scope").order_by("name", "pk").distinct()
        self.fields["apps"].help_text = f"The {Platform(platform).label} apps it protects."

    def clean_platform(self):
        return self.platform

    def clean(self):
        data = super().clean()
        scope = data.get("scope")
        apps = data.get("apps") or []
        if scope is not None:
            outside = [a.name for a in apps if a.scope_id not in (None, scope.pk)]
            if outside:
                self.add_error(
                    "apps",
                    f"{', '.join(outside)} belong{'s' if len(outside) == 1 else ''} to another scope; a policy "
                    f"of {scope} protects that scope's apps or organisation-wide ones.",
                )
        return data


class ProtectionRowForm(forms.Form):
    """One user group, included or excluded."""

    mode = forms.ChoiceField(choices=[("include", "Include"), ("exclude", "Exclude")], initial="include")
    user_group = forms.ModelChoiceField(queryset=UserGroup.objects.none(), required=False)

    def __init__(self, *args, user=None, assigned_user_groups=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user_group"].queryset = assignable_user_groups(user=user) | UserGroup.objects.filter(
            pk__in=list(assigned_user_groups)
        )

    def is_blank(self) -> bool:
        return self.empty_permitted and not self.has_changed()

    def clean(self):
        data = super().clean()
        if not self.errors and not self.is_blank() and not data.get("DELETE") and not data.get("user_group"):
            self.add_error("user_group", "Choose the user group whose members it applies to.")
        return data

    def row(self) -> dict[str, Any]:
        return {"user_group": self.cleaned_data["user_group"], "exclude": self.cleaned_data["mode"] == "exclude"}


class BaseProtectionRowFormSet(forms.BaseFormSet):
    def kept_forms(self) -> list[ProtectionRowForm]:
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
            group = form.cleaned_data["user_group"]
            if group.pk in seen:
                form.add_error("user_group", "This group is already in another row; keep one row per group.")
            seen.add(group.pk)
        rows = self.rows() if not any(self.errors) else []
        if rows and not any(not r["exclude"] for r in rows):
            raise ValidationError("Only exclusions: nobody would receive it. Add an include row.")

    def rows(self) -> list[dict[str, Any]]:
        return [f.row() for f in self.kept_forms()]

    def proposed(self) -> list[dict[str, Any]]:
        return self.rows()


ProtectionRowFormSet = forms.formset_factory(
    ProtectionRowForm, formset=BaseProtectionRowFormSet, extra=1, can_delete=True
)


def protection_row_formset(request, *, data, obj, disabled: bool = False) -> BaseProtectionRowFormSet:
    initial = []
    if obj is not None and obj.pk is not None:
        initial = [
            {"mode": "exclude" if a.exclude else "include", "user_group": a.user_group_id}
            for a in obj.assignments.all()
        ]
    formset = ProtectionRowFormSet(
        data,
        prefix="assignments",
        initial=initial,
        form_kwargs={"user": request.user, "assigned_user_groups": {row["user_group"] for row in initial}},
    )
    if disabled:
        formset.extra = 0
        for form in formset.forms:
            for field in form.fields.values():
                field.disabled = True
    return formset
