"""Enrolment in the IT console: bulk enrolment profiles (tokens), restrictions, failures, self-service codes."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from mdm_portal.core import authz
from mdm_portal.core.admin_base import AuthzModelAdmin, ReadOnlyAdminMixin, ScopedRelatedListFilter

from ..choices import Platform
from ..models import EnrollmentCode, EnrollmentFailure, EnrollmentProfile, EnrollmentRestriction
from ..services.enrollment import enrollment_profile_create, enrollment_profile_revoke
from ..services.restrictions import (
    enrollment_restriction_delete,
    enrollment_restriction_save,
    enrollment_restriction_validate,
)


def _platform_labels(platforms) -> str:
    return ", ".join(Platform(p).label for p in platforms if p in Platform.values)


def _platform_checkboxes(label: str, help_text: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=Platform.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=label,
        help_text=help_text,
    )


# Enrolment profiles (bulk tokens) ------------------------------------------------------------------


class EnrollmentProfileForm(forms.ModelForm):
    platforms = _platform_checkboxes("Platforms", "Leave all unticked to allow every platform.")

    class Meta:
        model = EnrollmentProfile
        fields = [
            "name",
            "description",
            "enrollment_manager",
            "scope",
            "ownership",
            "device_group",
            "primary_user",
            "platforms",
            "capacity",
            "expires_at",
            "provisioning_minutes",
            "provisioning_action",
        ]

    def clean(self):
        # The same rules as enrollment_profile_create, checked here so they show as form errors.
        data = super().clean()
        expires_at = data.get("expires_at")
        if expires_at is not None and expires_at <= timezone.now():
            self.add_error("expires_at", "The expiry is in the past. Choose a future date or leave it empty.")
        group, scope = data.get("device_group"), data.get("scope")
        if group is not None and scope is not None and group.scope_id not in (None, scope.pk):
            self.add_error("device_group", "The device group belongs to another scope than the profile.")
        return data


@admin.register(EnrollmentProfile)
class EnrollmentProfileAdmin(AuthzModelAdmin):
    """Profiles are issued (the token shown once), used and revoked; they are never edited or deleted."""

    form = EnrollmentProfileForm
    list_display = ["name", "scope", "enrollment_manager", "usage", "expires_at", "status"]
    list_filter = ["ownership", ("scope", ScopedRelatedListFilter)]
    list_select_related = ["scope", "enrollment_manager"]
    search_fields = ["name", "token_prefix", "enrollment_manager__username"]
    autocomplete_fields = ["enrollment_manager", "primary_user"]
    actions = ["revoke"]
    show_facets = admin.ShowFacets.NEVER
    readonly_after_creation = [
        "name",
        "description",
        "enrollment_manager",
        "scope",
        "ownership",
        "device_group",
        "primary_user",
        "platform_list",
        "capacity",
        "use_count",
        "expires_at",
        "provisioning_minutes",
        "provisioning_action",
        "token_prefix",
        "revoked_at",
        "created_at",
    ]

    def get_fields(self, request, obj=None):
        return self.readonly_after_creation if obj is not None else super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_after_creation if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # The changelist asks without an object (for the revoke action); a profile itself is never edited.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        # Devices and failure records point at the profile; revoke it instead.
        return False

    @admin.display(description="Used")
    def usage(self, obj):
        return f"{obj.use_count} / {obj.capacity}"

    @admin.display(description="Status")
    def status(self, obj):
        if obj.revoked_at is not None:
            return "Revoked"
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return "Expired"
        if obj.use_count >= obj.capacity:
            return "Full"
        return "Active"

    @admin.display(description="Platforms")
    def platform_list(self, obj):
        return _platform_labels(obj.platforms) or "Every platform"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        profile, token = enrollment_profile_create(
            actor=self.actor(request),
            name=data["name"],
            description=data["description"],
            enrollment_manager=data["enrollment_manager"],
            scope=data["scope"],
            ownership=data["ownership"],
            capacity=data["capacity"],
            expires_at=data["expires_at"],
            device_group=data["device_group"],
            primary_user=data["primary_user"],
            platforms=list(data["platforms"]),
            provisioning_minutes=data["provisioning_minutes"],
            provisioning_action=data["provisioning_action"],
        )
        obj.pk, obj.token_prefix, obj.created_at = profile.pk, profile.token_prefix, profile.created_at
        server = request.build_absolute_uri("/").rstrip("/")
        self.message_user(
            request,
            format_html(
                "Copy this enrolment token now; it will not be shown again: "
                "<code id='new-enrollment-token'>{}</code>. A Linux host enrols with "
                "<code>python -m agent enroll --server {} --token {}</code>.",
                token,
                server,
                token,
            ),
            messages.WARNING,
        )

    def save_related(self, request, form, formsets, change):
        """The service saved everything; the profile has no relations the form could add."""

    @admin.action(description="Revoke the selected enrolment tokens", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for profile in queryset:
            # The list also holds profiles the person may only view.
            if authz.can(request.user, "devices.change_enrollmentprofile", profile) and profile.revoked_at is None:
                enrollment_profile_revoke(actor=self.actor(request), profile=profile)
                revoked += 1
        self.message_user(
            request,
            f"Revoked {revoked} enrolment token(s). Devices already enrolled with them stay enrolled.",
            messages.SUCCESS,
        )


# Enrolment restrictions ------------------------------------------------------------------------------


def _version_field(platform: str, label: str, bound: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=32,
        label=f"{label} {'minimum' if bound == 'min' else 'maximum'}",
        widget=forms.TextInput(attrs={"size": 10, "placeholder": "any"}),
    )


def version_field_name(platform: str, bound: str) -> str:
    return f"os_{platform}_{bound}"


class _EnrollmentRestrictionFormBase(forms.ModelForm):
    allowed_platforms = _platform_checkboxes("Allowed platforms", "Leave all unticked to allow every platform.")
    block_personal = _platform_checkboxes(
        "Block personally owned devices on", "Personal (BYOD) devices of the ticked platforms may not enrol."
    )

    class Meta:
        model = EnrollmentRestriction
        fields = [
            "name",
            "description",
            "priority",
            "user_groups",
            "device_limit",
            "notify_on_refusal",
            "remediation_instructions",
            "notify_repeat_minutes",
            "allowed_platforms",
            "block_personal",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for platform, bounds in (self.instance.os_versions or {}).items():
            for bound in ("min", "max"):
                name = version_field_name(platform, bound)
                if name in self.fields:
                    self.initial.setdefault(name, (bounds or {}).get(bound, ""))

    def os_versions(self) -> dict[str, dict[str, str]]:
        data = self.cleaned_data
        return {
            platform: {bound: data.get(version_field_name(platform, bound)) or "" for bound in ("min", "max")}
            for platform in Platform.values
        }

    def _field_for(self, key: str) -> str | None:
        if key.startswith("os_versions."):
            _, platform, bound = key.split(".")
            key = version_field_name(platform, bound)
        return key if key in self.fields else None

    def clean(self):
        data = super().clean()
        try:
            enrollment_restriction_validate(
                restriction=self.instance if self.instance.pk else None,
                name=data.get("name", ""),
                priority=data.get("priority"),
                device_limit=data.get("device_limit"),
                allowed_platforms=data.get("allowed_platforms") or [],
                os_versions=self.os_versions(),
                block_personal=data.get("block_personal") or [],
                user_groups=data.get("user_groups") or [],
            )
        except ValidationError as exc:
            for key, sentences in exc.message_dict.items():
                field = self._field_for(key)
                if field is not None and field in self.errors:
                    continue  # the field's own validation already said what is wrong
                for sentence in sentences:
                    self.add_error(field, sentence)
        return data

    def validate_unique(self):
        """enrollment_restriction_validate checked names and priorities, with sentences of its own."""


# One minimum and one maximum field per platform, declared so the admin's fieldsets can place them.
EnrollmentRestrictionForm = type(
    "EnrollmentRestrictionForm",
    (_EnrollmentRestrictionFormBase,),
    {
        version_field_name(platform, bound): _version_field(platform, label, bound)
        for platform, label in Platform.choices
        for bound in ("min", "max")
    },
)

VERSION_HELP = (
    "Leave empty for no bound. The minimum is inclusive; the maximum includes every release of that "
    "version (a maximum of 17 allows 17.4.1)."
)


@admin.register(EnrollmentRestriction)
class EnrollmentRestrictionAdmin(AuthzModelAdmin):
    form = EnrollmentRestrictionForm
    list_display = ["name", "priority_order", "targets", "device_limit", "platforms", "os_bounds", "personal"]
    list_display_links = ["name"]
    search_fields = ["name", "description"]
    filter_horizontal = ["user_groups"]
    readonly_fields = ["targets", "platforms", "os_bounds", "personal"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("user_groups")

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return (
                (None, {"fields": ("name", "description", "priority", "targets")}),
                ("Rules", {"fields": ("device_limit", "platforms", "os_bounds", "personal")}),
            )
        default = obj is not None and obj.is_default
        who = (
            ("Who it applies to", {"fields": ("targets",)})
            if default
            else (
                "Who it applies to",
                {
                    "fields": ("priority", "user_groups"),
                    "description": "The first restriction, by priority, targeted at one of a person's user groups "
                    "applies to them; the default restriction applies to everyone else.",
                },
            )
        )
        return (
            (None, {"fields": ("name", "description")}),
            who,
            (
                "Device limit",
                {
                    "fields": ("device_limit",),
                    "description": "Enrolled devices per person, 1 to 15. Devices enrolled with an enrolment "
                    "token (bulk enrolment by an enrolment manager) are not counted.",
                },
            ),
            ("Platforms", {"fields": ("allowed_platforms", "block_personal")}),
            (
                "OS versions",
                {
                    "fields": [(version_field_name(p, "min"), version_field_name(p, "max")) for p in Platform.values],
                    "description": VERSION_HELP,
                },
            ),
            (
                "When a device is refused",
                {
                    "fields": ("notify_on_refusal", "remediation_instructions", "notify_repeat_minutes"),
                    "description": "Every refusal is recorded under Enrolment failures; these settings decide "
                    "who is emailed and what the person is told to do.",
                },
            ),
        )

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="Priority", ordering="priority")
    def priority_order(self, obj):
        return "Default (last)" if obj.is_default else obj.priority

    @admin.display(description="Applies to")
    def targets(self, obj):
        if obj.is_default:
            return "Everyone no other restriction targets"
        names = [group.name for group in obj.user_groups.all()]
        return ", ".join(names) or "Nobody yet (no user groups)"

    @admin.display(description="Platforms")
    def platforms(self, obj):
        return _platform_labels(obj.allowed_platforms) or "All"

    @admin.display(description="OS versions")
    def os_bounds(self, obj):
        rows = [
            (Platform(p).label, bounds.get("min") or "any", bounds.get("max") or "any")
            for p, bounds in (obj.os_versions or {}).items()
            if p in Platform.values
        ]
        if not rows:
            return "Any"
        return format_html_join(mark_safe("<br>"), "{}: {} to {}", rows)

    @admin.display(description="Personal devices blocked on")
    def personal(self, obj):
        return _platform_labels(obj.block_personal) or "None"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = enrollment_restriction_save(
            actor=self.actor(request),
            restriction=obj if change else None,
            name=data["name"],
            description=data.get("description", ""),
            priority=data.get("priority"),
            user_groups=list(data.get("user_groups") or []),
            device_limit=data["device_limit"],
            allowed_platforms=data.get("allowed_platforms") or [],
            os_versions=form.os_versions(),
            block_personal=data.get("block_personal") or [],
            notify_on_refusal=data.get("notify_on_refusal", True),
            remediation_instructions=data.get("remediation_instructions", ""),
            notify_repeat_minutes=60 if data.get("notify_repeat_minutes") is None else data["notify_repeat_minutes"],
        )
        obj.pk = saved.pk

    def save_related(self, request, form, formsets, change):
        """The service set the user groups and audited them with the rest."""

    def delete_via_service(self, request, obj):
        enrollment_restriction_delete(actor=self.actor(request), restriction=obj)


# Enrolment failures ----------------------------------------------------------------------------------


class ReasonListFilter(admin.SimpleListFilter):
    """Fixed choices: no ``SELECT DISTINCT`` over a table anyone with a bad token can grow."""

    title = "reason"
    parameter_name = "reason_code"
    REASONS = (
        ("enrollment_refused", "Refused by a restriction or rule"),
        ("invalid_enrollment_token", "Token or code not valid"),
    )

    def lookups(self, request, model_admin):
        return self.REASONS

    def has_output(self):
        return True

    def queryset(self, request, queryset):
        return queryset.filter(reason_code=self.value()) if self.value() else queryset


class PlatformListFilter(admin.SimpleListFilter):
    title = "platform"
    parameter_name = "platform"

    def lookups(self, request, model_admin):
        return Platform.choices

    def queryset(self, request, queryset):
        return queryset.filter(platform=self.value()) if self.value() else queryset


@admin.register(EnrollmentFailure)
class EnrollmentFailureAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    list_display = ["when", "person", "device", "reason", "refused_by"]
    list_filter = [ReasonListFilter, PlatformListFilter, "created_at"]
    list_select_related = ["user", "restriction", "profile"]
    search_fields = ["user__username", "user__email", "device_name", "serial_number", "imei", "message"]
    show_facets = admin.ShowFacets.NEVER
    fields = [
        "created_at",
        "user",
        "platform_label",
        "os_version",
        "device_name",
        "serial_number",
        "imei",
        "reason_code",
        "message",
        "restriction",
        "profile",
        "source_ip",
        "notified_at",
    ]
    readonly_fields = fields

    @admin.display(description="When", ordering="created_at")
    def when(self, obj):
        return obj.created_at

    @admin.display(description="Person", ordering="user__username")
    def person(self, obj):
        return obj.user.get_username() if obj.user else "-"

    @admin.display(description="Device")
    def device(self, obj):
        name = obj.device_name or obj.serial_number or obj.imei or "-"
        return format_html("{}<br><small>{} {}</small>", name, self.platform_label(obj), obj.os_version)

    @admin.display(description="Platform", ordering="platform")
    def platform_label(self, obj):
        return Platform(obj.platform).label if obj.platform in Platform.values else obj.platform or "-"

    @admin.display(description="Reason (as the device was told)")
    def reason(self, obj):
        # Wide enough to read as a sentence instead of a column of single words.
        return format_html('<span class="enrollment-reason">{}</span>', obj.message)

    @admin.display(description="Refused by")
    def refused_by(self, obj):
        if obj.restriction is not None:
            return f"Restriction: {obj.restriction.name}"
        if obj.profile is not None:
            return f"Token: {obj.profile.name}"
        return dict(ReasonListFilter.REASONS).get(obj.reason_code, obj.reason_code)


# Self-service codes ----------------------------------------------------------------------------------


@admin.register(EnrollmentCode)
class EnrollmentCodeAdmin(ReadOnlyAdminMixin, AuthzModelAdmin):
    """Who asked for a code and what became of it; the code itself is never stored, only its hash."""

    list_display = ["user", "platform", "ownership", "created_at", "expires_at", "used_at", "device"]
    list_filter = ["platform", "ownership"]
    list_select_related = ["user", "device"]
    search_fields = ["user__username", "user__email"]
    show_facets = admin.ShowFacets.NEVER
    fields = ["user", "platform", "ownership", "created_at", "expires_at", "used_at", "device"]
    readonly_fields = fields
