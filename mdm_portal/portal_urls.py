"""The Company Portal (/portal/): every stage app contributes its pages under one namespace."""

from django.urls import include, path
from django.views.generic import RedirectView

from mdm_portal.core.views.portal import PortalLoginView, PortalLogoutView

app_name = "portal"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:device_list", permanent=False), name="home"),
    path("login/", PortalLoginView.as_view(), name="login"),
    path("logout/", PortalLogoutView.as_view(), name="logout"),
    path("", include("devices.urls")),
    path("", include("policies.urls")),
    path("", include("apps.urls")),
    path("", include("retirement.urls")),
]
