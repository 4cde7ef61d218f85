"""Request and response shapes of the agent protocol: validation, and the OpenAPI schema."""

from rest_framework import serializers

from ..choices import EnrollmentTransport, Platform

PASSCODE_QUALITIES = ["none", "numeric", "alphanumeric", "complex", "biometric"]


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields, so a typo in an agent never passes silently."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: "Unknown field." for name in unknown})
        return super().to_internal_value(data)


class InstalledAppSerializer(StrictSerializer):
    identifier = serializers.CharField(max_length=255)
    name = serializers.CharField(max_length=255, allow_blank=True, required=False)
    version = serializers.CharField(max_length=64, allow_blank=True, required=False)


class InstalledProfileSerializer(StrictSerializer):
    identifier = serializers.CharField(max_length=255)
    version = serializers.IntegerField(min_value=0)

    def to_internal_value(self, data):
        if isinstance(data, dict) and (
            isinstance(data.get("version"), bool) or not isinstance(data.get("version"), int)
        ):
            raise serializers.ValidationError({"version": "Must be a whole number."})
        return super().to_internal_value(data)


class InventorySerializer(StrictSerializer):
    name = serializers.CharField(max_length=255, allow_blank=True, required=False)
    os_version = serializers.CharField(max_length=64, allow_blank=True, required=False)
    os_build = serializers.CharField(max_length=64, allow_blank=True, required=False)
    model = serializers.CharField(max_length=128, allow_blank=True, required=False)
    manufacturer = serializers.CharField(max_length=128, allow_blank=True, required=False)
    serial_number = serializers.CharField(max_length=64, allow_blank=True, required=False)
    imei = serializers.CharField(max_length=17, allow_blank=True, required=False)
    encrypted = serializers.BooleanField(required=False)
    passcode_set = serializers.BooleanField(required=False)
    passcode_quality = serializers.ChoiceField(choices=PASSCODE_QUALITIES, required=False)
    passcode_length = serializers.IntegerField(min_value=0, max_value=64, required=False)
    jailbroken = serializers.BooleanField(required=False)
    free_storage_mb = serializers.IntegerField(min_value=0, required=False)
    total_storage_mb = serializers.IntegerField(min_value=0, required=False)
    memory_mb = serializers.IntegerField(min_value=0, required=False)
    battery_percent = serializers.IntegerField(min_value=0, max_value=100, required=False)
    cpu = serializers.CharField(max_length=255, allow_blank=True, required=False)
    kernel = serializers.CharField(max_length=255, allow_blank=True, required=False)
    hostname = serializers.CharField(max_length=255, allow_blank=True, required=False)
    installed_apps = InstalledAppSerializer(many=True, required=False, max_length=2000)
    installed_package_count = serializers.IntegerField(min_value=0, required=False)
    screen_lock_enabled = serializers.BooleanField(required=False)
    # The configuration profiles installed on the device (stored with the other facts).
    profiles = InstalledProfileSerializer(many=True, required=False, max_length=500)

    def to_internal_value(self, data):
        # Booleans and integers must be JSON booleans and integers: "true" or "5" is an agent bug.
        if isinstance(data, dict):
            errors = {}
            for name, field in self.fields.items():
                value = data.get(name)
                if value is None:
                    continue
                if isinstance(field, serializers.BooleanField) and not isinstance(value, bool):
                    errors[name] = "Must be true or false."
                elif isinstance(field, serializers.IntegerField) and (
                    isinstance(value, bool) or not isinstance(value, int)
                ):
                    errors[name] = "Must be a whole number."
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class DeviceIdentitySerializer(StrictSerializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    name = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    serial_number = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")
    imei = serializers.RegexField(r"^\d{0,17}$", max_length=17, allow_blank=True, required=False, default="")
    model = serializers.CharField(max_length=128, allow_blank=True, required=False, default="")
    manufacturer = serializers.CharField(max_length=128, allow_blank=True, required=False, default="")
    os_version = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")


class EnrollRequestSerializer(StrictSerializer):
    enrollment_token = serializers.CharField(max_length=200, required=False)
    enrollment_code = serializers.CharField(max_length=40, required=False)
    device = DeviceIdentitySerializer()
    transport = serializers.ChoiceField(
        choices=EnrollmentTransport.choices, required=False, default=EnrollmentTransport.OVER_THE_AIR
    )
    inventory = InventorySerializer(required=False)

    def validate(self, attrs):
        if bool(attrs.get("enrollment_token")) == bool(attrs.get("enrollment_code")):
            raise serializers.ValidationError(
                {
                    "enrollment_token": "Send exactly one of enrollment_token (from IT) "
                    "or enrollment_code (from the Company Portal)."
                }
            )
        return attrs


class CommandSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.CharField()
    payload = serializers.DictField()


class EnrollResponseSerializer(serializers.Serializer):
    device_id = serializers.UUIDField()
    device_secret = serializers.CharField()
    checkin_interval_seconds = serializers.IntegerField()
    commands = CommandSerializer(many=True)


class CheckinRequestSerializer(StrictSerializer):
    inventory = InventorySerializer(required=False)


class CheckinResponseSerializer(serializers.Serializer):
    checkin_interval_seconds = serializers.IntegerField()
    commands = CommandSerializer(many=True)


class CommandResultSerializer(StrictSerializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["acknowledged", "error", "not_now"])
    error = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")
    data = serializers.DictField(required=False, default=dict)

    def validate(self, attrs):
        if attrs["status"] == "error" and not attrs.get("error"):
            raise serializers.ValidationError({"error": "Say what went wrong when the status is 'error'."})
        return attrs


class CommandResultsRequestSerializer(StrictSerializer):
    results = CommandResultSerializer(many=True, max_length=200, allow_empty=False)


class CommandResultsResponseSerializer(serializers.Serializer):
    accepted = serializers.ListField(child=serializers.UUIDField())
    unknown = serializers.ListField(child=serializers.UUIDField())


class SecretResponseSerializer(serializers.Serializer):
    device_secret = serializers.CharField()


class EmptySerializer(StrictSerializer):
    pass


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.CharField())


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
