"""Serializer fields the API shares."""

from rest_framework import serializers


class SlugRelatedField(serializers.SlugRelatedField):
    """DRF's field, refusing a NUL character before the lookup: PostgreSQL cannot compare a string holding one."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            raise serializers.ValidationError("Null characters are not allowed.")
        return super().to_internal_value(data)
