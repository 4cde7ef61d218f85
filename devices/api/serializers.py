from rest_framework import serializers

from ..models import Device


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
