from drf_spectacular.utils import extend_schema, extend_schema_view

from mdm_portal.core.api.viewsets import AuthzReadOnlyViewSet

from .. import selectors
from .filters import DeviceFilter
from .serializers import DeviceSerializer


@extend_schema_view(
    list=extend_schema(summary="List the devices you may see", tags=["devices"]),
    retrieve=extend_schema(summary="One device by its id", tags=["devices"]),
)
class DeviceViewSet(AuthzReadOnlyViewSet):
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    search_fields = ["name", "serial_number", "imei", "primary_user__username"]
    ordering_fields = ["name", "last_checkin_at", "enrolled_at", "os_version_key"]
    ordering = ["name", "id"]
    action_permissions = {"list": "devices.view_device", "retrieve": "devices.view_device"}

    def get_queryset(self):
        return selectors.device_list(user=self.request.user)
