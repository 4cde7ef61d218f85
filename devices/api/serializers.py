from typing import Any

from django.db.models import QuerySet
from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mdm_portal.core.audit import REDACTED

from ..choices import ComplianceState, LifecycleState, Ownership, Platform
from ..commands import ACTIONS
from ..models import Device, DeviceCommand
from .filters import DeviceFilter

# A bulk request names at most this many devices by id; larger sets are chosen by filters.
BULK_IDS_MAX = 10000


class DeviceSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    scope = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    primary_user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Device
        fields = [
            "id",
            "name",
            "platform",
            "os_version",
            "model",
            "manufacturer",
            "serial_number",
            "imei",
            "ownership",
            "primary_user",
            "scope",
            "enrollment_method",
            "enrollment_transport",
            "lifecycle_state",
            "compliance_state",
            "enrolled_at",
            "last_checkin_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DeviceCommandSerializer(serializers.ModelSerializer):
    """A queued command and what became of it. Secret inputs (a new passcode) are never shown."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    device = serializers.UUIDField(source="device.uuid", read_only=True)
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    payload = serializers.SerializerMethodField(help_text="What the device receives; secret values are masked.")

    class Meta:
        model = DeviceCommand
        fields = [
            "id",
            "device",
            "command_type",
            "status",
            "priority",
            "payload",
            "requested_by",
            "batch",
            "created_at",
            "sent_at",
            "send_count",
            "deadline_at",
            "completed_at",
            "error",
            "result",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField())
    def get_payload(self, obj) -> dict:
        action = ACTIONS.get(obj.command_type)
        secret = action.secret_fields if action else ()
        return {key: (REDACTED if key in secret else value) for key, value in (obj.payload or {}).items()}


class DeviceActionParamsSerializer(serializers.Serializer):
    """The inputs of a remote action. Send only the ones the action takes; any other is refused."""

    message = serializers.CharField(required=False, allow_blank=True, help_text="lock: shown on the locked screen")
    phone_number = serializers.CharField(
        required=False, allow_blank=True, help_text="lock: a number to call, shown on the locked screen"
    )
    name = serializers.CharField(required=False, help_text="rename: the new device name (at most 63 characters)")
    new_passcode = serializers.CharField(
        required=False,
        write_only=True,
        help_text="reset_passcode: 4 to 16 digits for Android and Windows; omit it to clear the passcode",
    )


# A list that came out empty in the caller's script must not turn into "no restriction": it is refused.
EMPTY_LIST = {"empty": "An empty list matches no device. List at least one value, or leave this filter out."}


class DeviceBulkFilterSerializer(serializers.Serializer):
    """Which devices: the device list's filters. An empty object means every device you may act on;
    an empty list in a filter is refused (it would otherwise mean the same)."""

    platform = serializers.ListField(
        child=serializers.ChoiceField(choices=Platform.choices),
        required=False,
        allow_empty=False,
        error_messages=EMPTY_LIST,
    )
    ownership = serializers.ChoiceField(choices=Ownership.choices, required=False)
    scope = serializers.CharField(required=False, help_text="scope slug")
    compliance_state = serializers.ListField(
        child=serializers.ChoiceField(choices=ComplianceState.choices),
        required=False,
        allow_empty=False,
        error_messages=EMPTY_LIST,
    )
    lifecycle_state = serializers.ListField(
        child=serializers.ChoiceField(choices=LifecycleState.choices),
        required=False,
        allow_empty=False,
        error_messages=EMPTY_LIST,
    )
    primary_user = serializers.CharField(required=False, help_text="username of the primary user")
    ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        max_length=BULK_IDS_MAX,
        help_text="device ids",
        allow_empty=False,
        error_messages=EMPTY_LIST,
    )

    def to_internal_value(self, data):
        # A misspelt filter must not widen the request to every device.
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(
                {"detail": f"Unknown filter {', '.join(sorted(unknown))}. Use: {', '.join(sorted(self.fields))}."}
            )
        return super().to_internal_value(data)


class DeviceBulkActionSerializer(serializers.Serializer):
    filter = DeviceBulkFilterSerializer()
    params = DeviceActionParamsSerializer(required=False, help_text="The action's inputs, as for one device.")


class DeviceBulkActionResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField(help_text="Devices you may see that match the filter.")
    not_permitted = serializers.IntegerField(help_text="Of those, devices outside the scopes where you may do this.")
    queued = serializers.IntegerField(
        allow_null=True, help_text="Commands queued; null while a large request is queued in the background."
    )
    skipped = serializers.IntegerField(
        allow_null=True, help_text="Devices that cannot take this action (platform, ownership, state)."
    )
    batch = serializers.UUIDField(help_text="Follow the request with GET /api/v1/commands/?batch=<id>.")
    background = serializers.BooleanField()


def device_bulk_filter(devices: QuerySet[Device], data: dict[str, Any]) -> QuerySet[Device]:
    """``devices`` narrowed by a validated bulk filter: the device list's own ``DeviceFilter``, plus ids."""
    query = QueryDict(mutable=True)
    for key, value in data.items():
        if key == "ids":
            continue
        if isinstance(value, list):
            query.setlist(key, [str(v) for v in value])
        else:
            query[key] = str(value)
    filterset = DeviceFilter(data=query, queryset=devices)
    if not filterset.is_valid():
        raise serializers.ValidationError(filterset.errors)
    devices = filterset.qs
    if "ids" in data:
        devices = devices.filter(uuid__in=[str(v) for v in data["ids"]])
    return devices
