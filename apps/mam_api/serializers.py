"""Request and response shapes of the managed-app API: validation, and the OpenAPI schema."""

from rest_framework import serializers

from devices.choices import Platform
from devices.protocol.serializers import StrictSerializer

from ..choices import ClipboardLevel, SharingLevel


class StrictTypesSerializer(StrictSerializer):
    """Unknown fields refused, and booleans and integers only as JSON booleans and integers."""

    def to_internal_value(self, data):
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


# Sign-in -------------------------------------------------------------------------------------------


class MamTokenRequestSerializer(serializers.Serializer):
    """OAuth 2.0 resource owner password credentials (RFC 6749 §4.3); other parameters are ignored."""

    grant_type = serializers.CharField(max_length=50, help_text="Always `password`.")
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})
    scope = serializers.CharField(max_length=200, required=False, allow_blank=True, help_text="Ignored.")


class MamTokenResponseSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField(help_text="Always `Bearer`.")
    expires_in = serializers.IntegerField(help_text="Seconds until the token expires.")


class OAuthErrorSerializer(serializers.Serializer):
    error = serializers.CharField(
        help_text="`invalid_request`, `invalid_grant` (wrong credentials), `unsupported_grant_type` or `rate_limited`."
    )
    error_description = serializers.CharField()


# Registration and check-in ------------------------------------------------------------------------------


class MamRegisterSerializer(StrictTypesSerializer):
    app_identifier = serializers.CharField(
        max_length=255, help_text="Bundle id (Apple), package name (Android), package family name (Windows)."
    )
    platform = serializers.ChoiceField(choices=Platform.choices)
    device_name = serializers.CharField(max_length=255, allow_blank=True, required=False, default="")
    os_version = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")
    app_version = serializers.CharField(max_length=64, allow_blank=True, required=False, default="")


class MamAppStateSerializer(StrictTypesSerializer):
    pin_set = serializers.BooleanField(required=False, help_text="The app PIN is set up.")
    org_data_present = serializers.BooleanField(required=False, help_text="The app holds org data now.")


class MamCheckinSerializer(StrictTypesSerializer):
    app_version = serializers.CharField(max_length=64, allow_blank=True, required=False)
    os_version = serializers.CharField(max_length=64, allow_blank=True, required=False)
    device_name = serializers.CharField(max_length=255, allow_blank=True, required=False)
    policy_version = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="The policy version the app holds (0: none)."
    )
    state = MamAppStateSerializer(required=False)


class MamPolicyRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.IntegerField()


class MamWebSerializer(serializers.Serializer):
    managed_browser_required = serializers.BooleanField()
    allowed_urls = serializers.ListField(
        child=serializers.CharField(),
        allow_null=True,
        help_text="null: any URL that is not blocked; otherwise only these ([]: none).",
    )
    blocked_urls = serializers.ListField(child=serializers.CharField())


class MamPinSerializer(serializers.Serializer):
    required = serializers.BooleanField()
    length = serializers.IntegerField(allow_null=True)
    recheck_minutes = serializers.IntegerField(allow_null=True)


class MamOfflineSerializer(serializers.Serializer):
    block_after_minutes = serializers.IntegerField()
    wipe_after_days = serializers.IntegerField()


class MamPolicySerializer(serializers.Serializer):
    """The effective protection policy: the most restrictive value of every applicable policy."""

    version = serializers.IntegerField()
    policies = MamPolicyRefSerializer(many=True)
    data_isolation = serializers.BooleanField()
    clipboard = serializers.ChoiceField(choices=ClipboardLevel.choices)
    block_backup = serializers.BooleanField()
    block_save_as = serializers.BooleanField()
    sharing = serializers.ChoiceField(choices=SharingLevel.choices)
    web = MamWebSerializer()
    pin = MamPinSerializer()
    offline = MamOfflineSerializer()
    min_app_version = serializers.CharField(allow_blank=True)
    min_os_version = serializers.CharField(allow_blank=True)


class MamWipeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reason = serializers.CharField(allow_blank=True)
    requested_at = serializers.DateTimeField()


class MamAccessSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    code = serializers.CharField(
        help_text="The first rule that blocks: `account_disabled`, `wipe_pending`, `app_version_too_old`, "
        "`os_version_too_old`; `ok` when none does."
    )
    reason = serializers.CharField(allow_blank=True)


class MamCheckinReplySerializer(serializers.Serializer):
    checkin_interval_seconds = serializers.IntegerField()
    policy_status = serializers.CharField(
        help_text="`changed` (the policy is in `policy`), `unchanged` (keep the one you hold) or `none` (no policy "
        "applies to you in this app)."
    )
    policy_version = serializers.IntegerField()
    policy = MamPolicySerializer(allow_null=True, help_text="Only when policy_status is `changed`.")
    wipe = MamWipeSerializer(allow_null=True, help_text="An open wipe: remove the org data, then confirm it.")
    access = MamAccessSerializer()


class MamRegisterReplySerializer(MamCheckinReplySerializer):
    instance_id = serializers.UUIDField()
    instance_secret = serializers.CharField(help_text="Shown only here: send it as `Authorization: Instance ...`.")


class MamWipeConfirmSerializer(StrictSerializer):
    pass


class MamWipeConfirmReplySerializer(serializers.Serializer):
    wipe_id = serializers.UUIDField()
    status = serializers.CharField(help_text="Always `confirmed`.")
    confirmed_at = serializers.DateTimeField()
    message = serializers.CharField()
