"""Serializers of the retirement API: request bodies and the retirement record with its evidence."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from devices.choices import Ownership, Platform

from ..choices import RetirementAction, RetirementSource, RetirementStatus
from ..models import RetirementRequest


def _choice_field(name: str, choices: type) -> type[serializers.ChoiceField]:
    """A read-only choice field documented as its own named enum (names that other components use too)."""

    @extend_schema_field({"type": "string", "enum": list(choices.values)}, component_name=name)
    class Field(serializers.ChoiceField):
        def __init__(self, **kwargs):
            super().__init__(choices=choices.choices, read_only=True, **kwargs)

    Field.__name__ = name.removesuffix("Enum") + "Field"
    return Field


RetirementStatusField = _choice_field("RetirementStatusEnum", RetirementStatus)
RetirementActionField = _choice_field("RetirementActionEnum", RetirementAction)
RetirementSourceField = _choice_field("RetirementSourceEnum", RetirementSource)
RetiredPlatformField = _choice_field("RetiredDevicePlatformEnum", Platform)
RetiredOwnershipField = _choice_field("RetiredDeviceOwnershipEnum", Ownership)

REASON = {"required": False, "allow_blank": True, "max_length": 2000, "default": ""}


class RetireBodySerializer(serializers.Serializer):
    reason = serializers.CharField(**REASON, help_text="Why (kept on the record and in the audit log).")
    keep_enrollment = serializers.BooleanField(
        required=False, default=False, help_text="Full wipe only: the device re-enrols by itself after the reset."
    )


class WipeBodySerializer(RetireBodySerializer):
    confirm_name = serializers.CharField(
        max_length=255, help_text="The device's name, exactly: a full wipe erases everything on it."
    )


class ForceBodySerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, help_text="Why the device is unenrolled without verification (recorded with your name)."
    )


class CancelBodySerializer(serializers.Serializer):
    reason = serializers.CharField(**REASON, help_text="Why (kept in the audit log).")


class RetirementRequestSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    device = serializers.UUIDField(
        source="device.uuid", read_only=True, allow_null=True, help_text="Null once the device record is deleted."
    )
    scope = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    approved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    forced_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    device_platform = RetiredPlatformField()
    device_ownership = RetiredOwnershipField()
    action = RetirementActionField()
    source = RetirementSourceField()
    status = RetirementStatusField()

    class Meta:
        model = RetirementRequest
        fields = [
            "id",
            "device",
            "device_name",
            "device_serial",
            "device_platform",
            "device_ownership",
            "scope",
            "action",
            "keep_enrollment",
            "source",
            "status",
            "reason",
            "requested_by",
            "requested_at",
            "approved_by",
            "approved_at",
            "sent_at",
            "acknowledged_at",
            "verified_at",
            "unenrolled_at",
            "timed_out_at",
            "finished_at",
            "forced_by",
            "forced_reason",
            "failure_reason",
        ]
        read_only_fields = fields


class LeftoverSerializer(serializers.Serializer):
    kind = serializers.CharField()
    identifier = serializers.CharField()
    name = serializers.CharField(allow_blank=True)


class EvidenceSerializer(RetirementRequestSerializer):
    """The record with its proof: the inventory before the command, the device's report after, the leftovers."""

    before_inventory = serializers.JSONField(read_only=True)
    after_inventory = serializers.JSONField(read_only=True)
    leftovers = LeftoverSerializer(many=True, read_only=True)
    verified = serializers.SerializerMethodField(help_text="The device's report showed nothing managed left.")

    class Meta(RetirementRequestSerializer.Meta):
        fields = [
            *RetirementRequestSerializer.Meta.fields,
            "verified",
            "before_inventory",
            "after_inventory",
            "leftovers",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_verified(self, request: RetirementRequest) -> bool:
        return request.verified_at is not None and request.status != RetirementStatus.FORCED


# The retirement summary ---------------------------------------------------------------------------------


class SummaryCountSerializer(serializers.Serializer):
    value = serializers.CharField(help_text="The status or source.")
    label = serializers.CharField()
    last_30_days = serializers.IntegerField()
    last_90_days = serializers.IntegerField()
    all_time = serializers.IntegerField()


class StaleBucketSerializer(serializers.Serializer):
    platform = serializers.CharField(allow_blank=True, help_text="Empty in the row of all platforms.")
    label = serializers.CharField()
    days_30 = serializers.IntegerField(help_text="Enrolled devices without a check-in for 30 days or more.")
    days_60 = serializers.IntegerField(help_text="… for 60 days or more.")
    days_90 = serializers.IntegerField(help_text="… for 90 days or more.")
    days_180 = serializers.IntegerField(help_text="… for 180 days or more.")
    never = serializers.IntegerField(help_text="Enrolled devices that never checked in.")


class RetirementSummarySerializer(serializers.Serializer):
    """The retirement report's numbers, over the requests and devices the caller may see."""

    by_state = SummaryCountSerializer(many=True)
    by_source = SummaryCountSerializer(many=True)
    pending = serializers.IntegerField(help_text="Open requests (waiting, sent, acknowledged, verified, timed out).")
    overdue = serializers.IntegerField(help_text="Open requests older than the offline timeout of the settings.")
    offline_timeout_days = serializers.IntegerField()
    stale_devices = StaleBucketSerializer(
        many=True,
        allow_null=True,
        help_text="Per platform, then all platforms; null without the device view permission.",
    )
