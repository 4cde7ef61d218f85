"""Company Portal pages of the retirement stage (mounted under /portal/)."""

from django.urls import path

from .views.portal import (
    PortalDeviceRemovalStatusView,
    PortalDeviceRemovalView,
    PortalDeviceRemoveView,
    PortalDeviceResetView,
)

urlpatterns = [
    # GET: what is removed and what is kept; POST: the request, through the service.
    path("devices/<uuid:uuid>/remove/", PortalDeviceRemoveView.as_view(), name="device_remove"),
    path("devices/<uuid:uuid>/reset/", PortalDeviceResetView.as_view(), name="device_reset"),
    path("devices/<uuid:uuid>/removal/", PortalDeviceRemovalView.as_view(), name="device_removal"),
    path("devices/<uuid:uuid>/removal/status/", PortalDeviceRemovalStatusView.as_view(), name="device_removal_status"),
]
