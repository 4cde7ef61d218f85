"""Company Portal pages of the app stage (mounted under /portal/)."""

from django.urls import path

from .views.portal import (
    PortalAppsView,
    PortalDeviceAppInstallView,
    PortalDeviceAppsStatusView,
    PortalDeviceAppsView,
    PortalDeviceAppUninstallView,
)

urlpatterns = [
    path("apps/", PortalAppsView.as_view(), name="apps"),
    path("devices/<uuid:uuid>/apps/", PortalDeviceAppsView.as_view(), name="device_apps"),
    path("devices/<uuid:uuid>/apps/status/", PortalDeviceAppsStatusView.as_view(), name="device_apps_status"),
    # POST only: queue the install or the removal through the services.
    path(
        "devices/<uuid:uuid>/apps/<uuid:app>/install/", PortalDeviceAppInstallView.as_view(), name="device_app_install"
    ),
    path(
        "devices/<uuid:uuid>/apps/<uuid:app>/uninstall/",
        PortalDeviceAppUninstallView.as_view(),
        name="device_app_uninstall",
    ),
]
