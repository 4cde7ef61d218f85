"""Serializers of the apps API: the catalog with its assignments and versions, installs, app protection
policies, managed app instances and their wipes.

Serializers only parse and present; the services (``app_save``, ``app_version_add``,
``protection_policy_save``, ``app_data_wipe_request``) write and validate again. Assignments are
the profiles' and policies' (target, mode, filters; groups named) plus an ``intent``.
"""

from __future__ import annotations

import copy
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.choices import Platform
from mdm_portal.core.api.fields import SlugRelatedField
from mdm_portal.core.models import Scope, UserGroup
from policies.api.serializers import AssignmentSerializer, NamedChoiceField, ScopedWriteMixin, assignments_resolve

from ..choices import AppIntent, AppKind, ClipboardLevel, InstallState, PackageFormat, SharingLevel, WipeStatus
from ..models import (
    App,
    AppDataWipe,
    AppInstall,
    AppProtectionPolicy,
    AppVersion,
    ManagedAppInstance,
)

VIEW_APP = "apps.view_app"


def _user(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


# Apps ---------------------------------------------------------------------------------------------------


class AppAssignmentSerializer(AssignmentSerializer):
    """Who receives the app and how: a target, included or excluded, narrowed by filters, with an intent."""

    intent = NamedChoiceField(
        enum_name="AppIntentEnum",
        choices=AppIntent.choices,
        required=False,
        help_text="required, available, uninstall or blocked; an exclude applies to every intent (leave it out).",
    )

    def to_representation(self, instance) -> dict[str, Any]:
        return {**super().to_representation(instance), "intent": instance.intent}


class InstallCountsSerializer(serializers.Serializer):
    installed = serializers.IntegerField()
    pending = serializers.IntegerField()
    failed = serializers.IntegerField()
    conflict = serializers.IntegerField()
    not_installed = serializers.IntegerField()
    not_applicable = serializers.IntegerField()


def counts_of(counts: dict[str, int] | None) -> dict[str, int]:
    counts = counts or {}
    return {state: counts.get(state, 0) for state in InstallState.values}


class AppSerializer(ScopedWriteMixin, serializers.ModelSerializer):
    """A catalog app: a store app, a line-of-business package or a web link, for one platform."""

    add_permission = "apps.add_app"
    change_permission = "apps.change_app"
    kind_label = "apps"

    id = serializers.UUIDField(source="uuid", read_only=True)
    scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.none(),
        required=False,
        allow_null=True,
        help_text="The scope's slug; null for the whole organisation (global administrators only).",
    )
    kind = serializers.ChoiceField(choices=AppKind.choices, help_text="Cannot change once created.")
    platform = NamedChoiceField(
        enum_name="PlatformEnum", choices=Platform.choices, help_text="Cannot change once created."
    )
    icon = serializers.SerializerMethodField(help_text="The icon's address, if one was uploaded in the admin.")
    current_version = serializers.SerializerMethodField(help_text="The version devices receive.")
    assignments = AppAssignmentSerializer(
        many=True, required=False, help_text="The whole list; it replaces the current one. Omitted: unchanged."
    )
    installs = serializers.SerializerMethodField(help_text="Devices per install state (among those you may see).")

    class Meta:
        model = App
        fields = [
            "id",
            "name",
            "publisher",
            "description",
            "scope",
            "kind",
            "platform",
            "identifier",
            "store_id",
            "url",
            "icon",
            "current_version",
            "assignments",
            "installs",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # a clash of identifiers is refused by the service with a sentence

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "request" in self.context:
            self._setup_scope()

    def get_icon(self, obj) -> str | None:
        if not obj.icon:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(obj.icon.url) if request is not None else obj.icon.url

    def get_current_version(self, obj) -> str | None:
        return obj.current_version.version if obj.current_version_id else None

    @extend_schema_field(InstallCountsSerializer)
    def get_installs(self, obj) -> dict[str, int]:
        return counts_of(self.context.get("install_counts", {}).get(obj.pk))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        for field in ("kind", "platform"):
            if instance is not None and field in attrs and attrs[field] != getattr(instance, field):
                raise serializers.ValidationError({field: f"An app's {field} cannot change; add a new app instead."})
        if "assignments" in attrs:
            proposed = copy.copy(instance) if instance is not None else App()
            proposed.scope = self.scope_for_validation(attrs)
            proposed.platform = attrs.get("platform", getattr(instance, "platform", ""))
            attrs["assignments"] = assignments_resolve(attrs["assignments"], obj=proposed, user=_user(self))
        elif instance is None:
            self.scope_for_validation(attrs)
        return attrs


class AppVersionSerializer(serializers.ModelSerializer):
    """A version of an app; the newest is the current one (devices with an older one are updated)."""

    current = serializers.SerializerMethodField(help_text="Devices receive this version.")
    # Read-only model fields lose ``blank``: a store app's version has no package format ("").
    package_format = serializers.ChoiceField(choices=PackageFormat.choices, allow_blank=True, read_only=True)

    class Meta:
        model = AppVersion
        fields = [
            "version",
            "package_format",
            "size_bytes",
            "sha256",
            "min_os_version",
            "notes",
            "current",
            "created_at",
        ]
        read_only_fields = fields

    def get_current(self, obj) -> bool:
        return obj.app.current_version_id == obj.pk


class AppVersionCreateSerializer(serializers.Serializer):
    """A new version: a line-of-business app uploads its package (multipart), a store app names the version."""

    version = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Read from the package where its format allows (.ipa, .deb, most .apk); otherwise required.",
    )
    package = serializers.FileField(
        required=False,
        allow_empty_file=False,
        help_text="Line-of-business apps: the .ipa, .apk, .msi, .pkg or .deb file (multipart/form-data).",
    )
    min_os_version = serializers.CharField(required=False, allow_blank=True, max_length=32, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class AppInstallSerializer(serializers.ModelSerializer):
    """Where the app stands on one device."""

    device = serializers.UUIDField(source="device.uuid", read_only=True, help_text="The device's id.")
    device_name = serializers.CharField(source="device.name", read_only=True)
    primary_user = SlugRelatedField(
        source="device.primary_user", slug_field="username", read_only=True, allow_null=True
    )
    # "" when no assignment asks for the app: the device reported it installed.
    intent = serializers.ChoiceField(choices=AppIntent.choices, allow_blank=True, read_only=True)

    class Meta:
        model = AppInstall
        fields = [
            "device",
            "device_name",
            "primary_user",
            "intent",
            "state",
            "desired_version",
            "installed_version",
            "reason",
            "requested_by_user",
            "updated_at",
        ]
        read_only_fields = fields


class RetryResultSerializer(serializers.Serializer):
    retried = serializers.IntegerField(help_text="Failed installs queued again.")


class InstallStatusSerializer(serializers.Serializer):
    app = serializers.UUIDField(help_text="The app's id.")
    name = serializers.CharField()
    current_version = serializers.CharField(allow_null=True)
    total = serializers.IntegerField(help_text="Devices with an install row that you may see.")
    counts = InstallCountsSerializer(help_text="Devices per install state.")


# App protection -------------------------------------------------------------------------------------------


class ProtectionAssignmentSerializer(serializers.Serializer):
    """A user group whose members the policy applies to (include) or never applies to (exclude)."""

    user_group = SlugRelatedField(
        slug_field="name", queryset=UserGroup.objects.all(), help_text="The user group's name."
    )
    exclude = serializers.BooleanField(default=False)

    def to_representation(self, instance) -> dict[str, Any]:
        return {"user_group": instance.user_group.name, "exclude": instance.exclude}


class ProtectionPolicySerializer(ScopedWriteMixin, serializers.ModelSerializer):
    """An app protection (MAM) policy: how org data is protected inside the managed apps it lists."""

    add_permission = "apps.add_appprotectionpolicy"
    change_permission = "apps.change_appprotectionpolicy"
    kind_label = "app protection policies"

    id = serializers.UUIDField(source="uuid", read_only=True)
    scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.none(),
        required=False,
        allow_null=True,
        help_text="Only people whose home scope it is receive it; null for the whole organisation.",
    )
    platform = NamedChoiceField(enum_name="PlatformEnum", choices=Platform.choices)
    clipboard = NamedChoiceField(enum_name="ClipboardLevelEnum", choices=ClipboardLevel.choices, required=False)
    sharing = NamedChoiceField(enum_name="SharingLevelEnum", choices=SharingLevel.choices, required=False)
    apps = SlugRelatedField(
        slug_field="uuid",
        many=True,
        queryset=App.objects.none(),
        required=False,
        help_text="Ids of the managed apps it protects (apps of its platform). Omitted on update: unchanged.",
    )
    allowed_urls = serializers.ListField(child=serializers.CharField(max_length=2048), required=False)
    blocked_urls = serializers.ListField(child=serializers.CharField(max_length=2048), required=False)
    assignments = ProtectionAssignmentSerializer(
        many=True, required=False, help_text="The whole list; it replaces the current one. Omitted: unchanged."
    )

    class Meta:
        model = AppProtectionPolicy
        fields = [
            "id",
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
            "assignments",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        extra_kwargs = {"name": {"validators": []}}  # the service says "already exists" as a sentence

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "request" in self.context:
            self._setup_scope()
            from mdm_portal.core import authz

            self.fields["apps"].child_relation.queryset = authz.restrict(App.objects.all(), _user(self), VIEW_APP)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is None:
            self.scope_for_validation(attrs)
        return attrs


# Managed app instances ----------------------------------------------------------------------------------


class AppDataWipeSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    status = NamedChoiceField(enum_name="WipeStatusEnum", choices=WipeStatus.choices, read_only=True)
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)

    class Meta:
        model = AppDataWipe
        fields = ["id", "status", "reason", "requested_by", "requested_at", "sent_at", "confirmed_at"]
        read_only_fields = fields


class ManagedAppInstanceSerializer(serializers.ModelSerializer):
    """One managed app on one device (enrolled or not), signed in by one person. Never its secret."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    user = SlugRelatedField(slug_field="username", read_only=True)
    app = SlugRelatedField(slug_field="uuid", read_only=True, allow_null=True, help_text="The catalog app.")
    device = SlugRelatedField(
        slug_field="uuid", read_only=True, allow_null=True, help_text="The enrolled device it runs on, if any."
    )
    policy = SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    wipes = serializers.SerializerMethodField(help_text="Its selective wipes, newest first (pending ones included).")

    class Meta:
        model = ManagedAppInstance
        fields = [
            "id",
            "user",
            "app",
            "app_identifier",
            "platform",
            "device_name",
            "device",
            "os_version",
            "app_version",
            "policy",
            "policy_version",
            "state",
            "registered_at",
            "last_checkin_at",
            "revoked_at",
            "wipes",
        ]
        read_only_fields = fields

    @extend_schema_field(AppDataWipeSerializer(many=True))
    def get_wipes(self, obj) -> list[dict[str, Any]]:
        return AppDataWipeSerializer(obj.wipes.all(), many=True).data


class WipeRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=255, default="", help_text="Why (kept in the audit log)."
    )
