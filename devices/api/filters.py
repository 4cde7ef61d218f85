import django_filters

from ..choices import ComplianceState, LifecycleState, Ownership, Platform
from ..models import Device


class DeviceFilter(django_filters.FilterSet):
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    ownership = django_filters.ChoiceFilter(choices=Ownership.choices)
    lifecycle_state = django_filters.MultipleChoiceFilter(choices=LifecycleState.choices)
    compliance_state = django_filters.MultipleChoiceFilter(choices=ComplianceState.choices)
    scope = django_filters.CharFilter(field_name="scope__slug")
    primary_user = django_filters.CharFilter(field_name="primary_user__username")
    last_checkin_before = django_filters.IsoDateTimeFilter(field_name="last_checkin_at", lookup_expr="lt")
    last_checkin_after = django_filters.IsoDateTimeFilter(field_name="last_checkin_at", lookup_expr="gte")

    class Meta:
        model = Device
        fields = ["platform", "ownership", "lifecycle_state", "compliance_state", "scope", "primary_user"]
