from datetime import UTC

import django_filters
from rest_framework.exceptions import ValidationError

from ..choices import ComplianceState, LifecycleState, Ownership, Platform
from ..models import Device


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """Compares in UTC: ISO 8601 allows offsets PostgreSQL refuses (it stops at ±15:59)."""

    def filter(self, qs, value):
        if value is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError as exc:
                raise ValidationError({self.field_name: "Choose a date between the years 1 and 9999."}) from exc
        return super().filter(qs, value)


class DeviceFilter(django_filters.FilterSet):
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    ownership = django_filters.ChoiceFilter(choices=Ownership.choices)
    lifecycle_state = django_filters.MultipleChoiceFilter(choices=LifecycleState.choices)
    compliance_state = django_filters.MultipleChoiceFilter(choices=ComplianceState.choices)
    scope = django_filters.CharFilter(field_name="scope__slug")
    primary_user = django_filters.CharFilter(field_name="primary_user__username")
    last_checkin_before = UTCDateTimeFilter(field_name="last_checkin_at", lookup_expr="lt")
    last_checkin_after = UTCDateTimeFilter(field_name="last_checkin_at", lookup_expr="gte")

    class Meta:
        model = Device
        fields = ["platform", "ownership", "lifecycle_state", "compliance_state", "scope", "primary_user"]
