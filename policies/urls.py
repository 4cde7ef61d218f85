"""Company Portal pages of the compliance stage (mounted under /portal/)."""

from django.urls import path

from .views.portal import PortalDeviceComplianceCheckView, PortalDeviceComplianceStatusView, PortalDeviceComplianceView

urlpatterns = [
    path("devices/<uuid:uuid>/compliance/", PortalDeviceComplianceView.as_view(), name="device_compliance"),
    # POST only: asks the device to check in (at most one open request per device).
    path(
        "devices/<uuid:uuid>/compliance/check/",
        PortalDeviceComplianceCheckView.as_view(),
        name="device_compliance_check",
    ),
    path(
        "devices/<uuid:uuid>/compliance/status/",
        PortalDeviceComplianceStatusView.as_view(),
        name="device_compliance_status",
    ),
]
