"""Company Portal pages of the devices app (mounted under /portal/)."""

from django.urls import path

from .views.portal import (
    PortalDeviceDetailView,
    PortalDeviceListView,
    PortalDeviceLockView,
    PortalDeviceSyncView,
    PortalEnrollProfileView,
    PortalEnrollStatusView,
    PortalEnrollView,
)

urlpatterns = [
    path("devices/", PortalDeviceListView.as_view(), name="device_list"),
    path("devices/<uuid:uuid>/", PortalDeviceDetailView.as_view(), name="device_detail"),
    path("devices/<uuid:uuid>/sync/", PortalDeviceSyncView.as_view(), name="device_sync"),
    path("devices/<uuid:uuid>/lock/", PortalDeviceLockView.as_view(), name="device_lock"),
    path("enroll/", PortalEnrollView.as_view(), name="enroll"),
    # POST only: the code travels in the request body, never in a URL.
    path("enroll/profile/", PortalEnrollProfileView.as_view(), name="enroll_profile"),
    path("enroll/<int:pk>/status/", PortalEnrollStatusView.as_view(), name="enroll_status"),
]
