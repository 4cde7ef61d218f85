"""The REST API (/api/v1/): every stage app contributes its routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("devices.api.urls")),
    path("", include("policies.api.urls")),
    path("", include("apps.api.urls")),
    path("", include("retirement.api.urls")),
]
