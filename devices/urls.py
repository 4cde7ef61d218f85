"""Company Portal pages of the devices app (mounted under /portal/)."""

from django.urls import path

from .views.portal import PortalDeviceDetailView, PortalDeviceListView

urlpatterns = [
    path("devices/", PortalDeviceListView.as_view(), name="device_list"),
    path("devices/<uuid:uuid>/", PortalDeviceDetailView.as_view(), name="device_detail"),
]
