"""Serializers of the policies API: profiles, compliance policies, their assignments, and the reports.

Serializers only parse and present; the services (``profile_save``, ``policy_save``) write and
validate again. Secret profile settings are accepted on write and never returned: a profile says
which of them are set (``secret_settings_set``), never their values.
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent, build_choice_description_list
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.choices import ComplianceState, Ownership, Platform
from devices.models import DeviceGroup
from mdm_portal.core import authz
from mdm_portal.core.api.fields import SlugRelatedField
from mdm_portal.core.models import Scope, UserGroup

from ..choices import AssignmentMode, AssignmentTarget, NoncomplianceActionType, ProfileKind
from ..models import CompliancePolicy, ConfigurationProfile, NoncomplianceAction, ProfileDelivery
from ..profile_settings import settings_clean
from ..secrets import secrets_decrypt
from ..selectors import reports
from ..services.assignments import assignment_clean

VIEW_DEVICE_GROUP = "devices.view_devicegroup"


def _user(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


def _messages(exc: DjangoValidationError) -> dict[str, list[str]] | list[str]:
    return exc.message_dict if hasattr(exc, "error_dict") else exc.messages


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose choices are the OpenAPI component ``enum_name``.

    The same choices appear under another field name elsewhere (``filter_platforms`` holds
    platforms), and another field named like this one has other choices (a corporate-identifier
    import's ``mode``): naming the component here keeps one name per choice set.
    """

    def __init__(self, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldExtension(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        component = ResolvedComponent(
            name=field.enum_name,
            type=ResolvedComponent.SCHEMA,
            object=field.enum_name,
            schema={
                "enum": list(field.choices),
                "type": "string",
                "description": build_choice_description_list(field.choices.items()),
            },
        )
        auto_schema.registry.register_on_missing(component)
        if field.allow_blank:
            return {"oneOf": [component.ref, {"type": "string", "enum": [""]}]}
        return component.ref


# Assignments ------------------------------------------------------------------------------------------


class AssignmentSerializer(serializers.Serializer):
    """Who receives it: a target, included or excluded, narrowed by filters. Groups are named."""

    mode = NamedChoiceField(
        enum_name="AssignmentModeEnum", choices=AssignmentMode.choices, default=AssignmentMode.INCLUDE
    )
    target = serializers.ChoiceField(choices=AssignmentTarget.choices)
    user_group = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="The user group's name (target user_group)."
    )
    device_group = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, help_text="The device group's name (target device_group)."
    )
    filter_platforms = serializers.ListField(
        child=NamedChoiceField(enum_name="PlatformEnum", choices=Platform.choices),
        required=False,
        help_text="Only these platforms.",
    )
    filter_ownership = NamedChoiceField(
        enum_name="OwnershipEnum",
        choices=Ownership.choices,
        required=False,
        allow_blank=True,
        help_text="Only this ownership.",
    )
    filter_os_min = serializers.CharField(required=False, allow_blank=True, max_length=32)
    filter_os_max = serializers.CharField(required=False, allow_blank=True, max_length=32)

    def to_representation(self, instance) -> dict[str, Any]:
        return {
            "mode": instance.mode,
            "target": instance.target,
            "user_group": instance.user_group.name if instance.user_group_id else None,
            "device_group": instance.device_group.name if instance.device_group_id else None,
            "filter_platforms": list(instance.filter_platforms or []),
            "filter_ownership": instance.filter_ownership,
            "filter_os_min": instance.filter_os_min,
            "filter_os_max": instance.filter_os_max,
        }


def assignments_resolve(rows: list[dict[str, Any]], *, obj, user) -> list[dict[str, Any]]:
    """Groups named in ``rows`` as objects, each row checked as the service will check it.

    Errors are by row index and field, like DRF's own for a nested list; one wrong row and nothing
    is saved. A device group the caller cannot see is refused as if it did not exist. ``obj`` is
    the profile or policy as it will be saved (unsaved for a new one), for the scope rule.
    """
    groups = authz.restrict(DeviceGroup.objects.all(), user, VIEW_DEVICE_GROUP)
    resolved: list[dict[str, Any]] = []
    errors: dict[str, dict[str, list[str]]] = {}
    for index, row in enumerate(rows):
        row = dict(row)
        problems: dict[str, list[str]] = {}
        for key, queryset, missing in (
            ("user_group", UserGroup.objects.all(), "No user group named '{}'."),
            ("device_group", groups, "No device group named '{}' that you can see."),
        ):
            name = row.get(key)
            row[key] = queryset.filter(name=name).first() if name else None
            if name and row[key] is None:
                problems[key] = [missing.format(name)]
        if not problems:
            try:
                assignment_clean(obj, row, user=user)
            except DjangoValidationError as exc:
                problems = {key: list(messages) for key, messages in exc.message_dict.items()}
        if problems:
            errors[str(index)] = problems
        resolved.append(row)
    if errors:
        raise serializers.ValidationError({"assignments": errors})
    return resolved


class ScopedWriteMixin:
    """The ``scope`` field offers only the scopes where the caller may add (or, on update, change) this
    kind of object; organisation-wide (null) only to people who hold that permission everywhere."""

    add_permission = ""
    change_permission = ""
    kind_label = ""

    def _write_permission(self) -> str:
        return self.change_permission if self.instance is not None else self.add_permission

    def _setup_scope(self) -> None:
        field = self.fields["scope"]
        field.queryset = authz.scopes_for(_user(self), self._write_permission())
        field.error_messages["does_not_exist"] = f"No scope '{{value}}' where you may manage {self.kind_label}."

    def validate_scope(self, scope: Scope | None) -> Scope | None:
        if scope is None and not authz.has_global(_user(self), self._write_permission()):
            raise serializers.ValidationError(
                f"Only someone who manages {self.kind_label} in every scope can make one for the whole "
                "organisation; choose one of your scopes."
            )
        return scope

    def scope_for_validation(self, attrs: dict[str, Any]) -> Scope | None:
        if "scope" in attrs:
            return attrs["scope"]
        if self.instance is not None:
            return self.instance.scope
        # A new object without a scope is organisation-wide: allowed only to global holders.
        try:
            return self.validate_scope(None)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"scope": exc.detail}) from None


# Profiles -----------------------------------------------------------------------------------------------


class DeliveryCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    error = serializers.IntegerField()
    conflict = serializers.IntegerField()
    not_applicable = serializers.IntegerField()


class ProfileSerializer(ScopedWriteMixin, serializers.ModelSerializer):
    """A configuration profile: settings of one kind, who receives it, where its deliveries stand."""

    add_permission = "policies.add_configurationprofile"
    change_permission = "policies.change_configurationprofile"
    kind_label = "configuration profiles"

    id = serializers.UUIDField(source="uuid", read_only=True)
    scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.none(),
        required=False,
        allow_null=True,
        help_text="The scope's slug; null for the whole organisation (global administrators only).",
    )
    kind = serializers.ChoiceField(choices=ProfileKind.choices, help_text="Cannot change once created.")
    platforms = serializers.ListField(
        child=NamedChoiceField(enum_name="PlatformEnum", choices=Platform.choices),
        required=False,
        help_text="Platforms that receive it; empty: every platform that can express it.",
    )
    settings = serializers.DictField(
        required=False,
        help_text=(
            "The kind's settings by name. On write, the whole set (secret ones included, such as a Wi-Fi "
            "password); a secret left out or empty keeps the stored one. Omitted on update: unchanged. "
            "Secret values are never returned."
        ),
    )
    secret_settings_set = serializers.SerializerMethodField(help_text="Names of the secret settings that hold a value.")
    assignments = AssignmentSerializer(
        many=True, required=False, help_text="The whole list; it replaces the current one. Omitted: unchanged."
    )
    deliveries = serializers.SerializerMethodField(help_text="Devices per delivery state.")

    class Meta:
        model = ConfigurationProfile
        fields = [
            "id",
            "name",
            "description",
            "scope",
            "kind",
            "platforms",
            "settings",
            "secret_settings_set",
            "version",
            "assignments",
            "deliveries",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "request" in self.context:
            self._setup_scope()

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_secret_settings_set(self, obj) -> list[str]:
        return sorted(secrets_decrypt(obj.secret_settings))

    @extend_schema_field(DeliveryCountsSerializer)
    def get_deliveries(self, obj) -> dict[str, int]:
        counts = getattr(obj, "delivery_counts", None)
        if counts is None:
            counts = reports.delivery_counts_by_profile([obj.pk])[obj.pk]
        return counts

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        kind = attrs.get("kind", instance.kind if instance else None)
        if instance is not None and kind != instance.kind:
            raise serializers.ValidationError({"kind": "A profile's kind cannot change; create a new profile instead."})
        if "settings" in attrs or instance is None:
            try:
                settings_clean(kind, attrs.get("settings") or {})
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"settings": _messages(exc)}) from None
        if "assignments" in attrs:
            proposed = copy.copy(instance) if instance is not None else ConfigurationProfile(kind=kind)
            proposed.scope = self.scope_for_validation(attrs)
            attrs["assignments"] = assignments_resolve(attrs["assignments"], obj=proposed, user=_user(self))
        elif instance is None:
            self.scope_for_validation(attrs)
        return attrs


class ProfileDeliverySerializer(serializers.ModelSerializer):
    device = serializers.UUIDField(source="device.uuid", read_only=True, help_text="The device's id.")
    device_name = serializers.CharField(source="device.name", read_only=True)
    platform = serializers.CharField(source="device.platform", read_only=True)
    current = serializers.SerializerMethodField(help_text="The device has (or is receiving) the current version.")

    class Meta:
        model = ProfileDelivery
        fields = [
            "device",
            "device_name",
            "platform",
            "state",
            "version",
            "current",
            "reason",
            "not_applicable",
            "updated_at",
        ]
        read_only_fields = fields

    def get_current(self, obj) -> bool:
        return obj.version == obj.profile.version


class ResendResultSerializer(serializers.Serializer):
    resent = serializers.IntegerField(help_text="Deliveries in error queued again.")


# Compliance policies ----------------------------------------------------------------------------------------


class NoncomplianceActionSerializer(serializers.ModelSerializer):
    action = serializers.ChoiceField(choices=NoncomplianceActionType.choices)
    days_after = serializers.IntegerField(min_value=0, max_value=365, default=0)
    message = serializers.CharField(required=False, allow_blank=True, default="")

    class Meta:
        model = NoncomplianceAction
        fields = ["action", "days_after", "message"]
        validators: list = []  # duplicates are refused by the service with a sentence


class CompliancePolicySerializer(ScopedWriteMixin, serializers.ModelSerializer):
    """A compliance policy: its rules (an empty rule is not checked), schedule and assignments."""

    add_permission = "policies.add_compliancepolicy"
    change_permission = "policies.change_compliancepolicy"
    kind_label = "compliance policies"

    id = serializers.UUIDField(source="uuid", read_only=True)
    scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.none(),
        required=False,
        allow_null=True,
        help_text="The scope's slug; null for the whole organisation (global administrators only).",
    )
    blocked_apps = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        help_text="App identifiers (bundle id or package name) that must not be installed.",
    )
    actions = NoncomplianceActionSerializer(
        many=True,
        required=False,
        help_text="The noncompliance schedule, the whole list; it replaces the current one. Omitted: unchanged "
        "(a new policy gets 'mark noncompliant after 0 days').",
    )
    assignments = AssignmentSerializer(
        many=True, required=False, help_text="The whole list; it replaces the current one. Omitted: unchanged."
    )

    class Meta:
        model = CompliancePolicy
        fields = [
            "id",
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
            "version",
            "actions",
            "assignments",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "request" in self.context:
            self._setup_scope()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        instance = self.instance
        if "assignments" in attrs:
            proposed = copy.copy(instance) if instance is not None else CompliancePolicy()
            proposed.scope = self.scope_for_validation(attrs)
            proposed.platform = attrs.get("platform", getattr(instance, "platform", ""))
            attrs["assignments"] = assignments_resolve(attrs["assignments"], obj=proposed, user=_user(self))
        elif instance is None:
            self.scope_for_validation(attrs)
        return attrs


# Reports ---------------------------------------------------------------------------------------------------


class StateCountsSerializer(serializers.Serializer):
    noncompliant = serializers.IntegerField()
    in_grace = serializers.IntegerField()
    error = serializers.IntegerField()
    not_evaluated = serializers.IntegerField()
    compliant = serializers.IntegerField()


class PlatformCountsSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    label = serializers.CharField()
    total = serializers.IntegerField()
    counts = StateCountsSerializer()


class ComplianceSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Enrolled devices you may see.")
    counts = StateCountsSerializer(help_text="Devices per compliance state.")
    platforms = PlatformCountsSerializer(many=True, help_text="The same, per platform.")


class TrendDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    counts = StateCountsSerializer(allow_null=True, help_text="Null: no snapshot that day (a gap, not zeros).")
    total = serializers.IntegerField(allow_null=True)


class ComplianceTrendSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    days = TrendDaySerializer(many=True, help_text="Oldest first, one entry per day.")


class FailingSettingSerializer(serializers.Serializer):
    rule = serializers.CharField()
    label = serializers.CharField()
    devices = serializers.IntegerField(help_text="Devices failing this setting.")
    noncompliant = serializers.IntegerField(help_text="Of those, devices noncompliant now.")
    cannot_evaluate = serializers.IntegerField(help_text="Devices where it could not be checked.")


# Device compliance --------------------------------------------------------------------------------------------


class FailingDetailSerializer(serializers.Serializer):
    rule = serializers.CharField()
    label = serializers.CharField()
    policy_name = serializers.CharField(help_text="The policy whose value of the rule the device fails.")
    expected = serializers.CharField(allow_blank=True)
    actual = serializers.CharField(
        allow_blank=True, help_text="What the device reported (or why it could not be read)."
    )
    since = serializers.DateTimeField()
    error = serializers.BooleanField(
        help_text="The rule could not be checked: the device did not report what it needs."
    )
    plain = serializers.CharField(help_text="What is wrong, in plain words.")
    fix_steps = serializers.ListField(child=serializers.CharField(), help_text="How to fix it on this device.")


class NextActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=NoncomplianceActionType.choices)
    label = serializers.CharField()
    policy_name = serializers.CharField()
    due_at = serializers.DateTimeField()
    text = serializers.CharField()


class DeviceComplianceSerializer(serializers.Serializer):
    device = serializers.UUIDField(help_text="The device's id.")
    compliance_state = serializers.ChoiceField(choices=ComplianceState.choices)
    compliance_state_label = serializers.CharField()
    policies = serializers.ListField(child=serializers.CharField(), help_text="Names of the policies that apply.")
    failing = FailingDetailSerializer(many=True, help_text="Every failing (or uncheckable) setting.")
    grace_ends_at = serializers.DateTimeField(
        allow_null=True, help_text="When an in-grace device becomes noncompliant."
    )
    next_actions = NextActionSerializer(many=True, help_text="The noncompliance actions still to come, soonest first.")
