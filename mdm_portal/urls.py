from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView


def healthz(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:home", permanent=False)),
    path("admin/", admin.site.urls),
    path("portal/", include("mdm_portal.portal_urls")),
    path("api/v1/", include("mdm_portal.api_urls")),
    path("agent/v1/", include("devices.protocol.urls")),
    path("mam/v1/", include("apps.mam_api.urls")),
    path("access/", include("devices.access_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its script as a file: the Content Security Policy allows no inline script;
    # our template gives the page's style block the response's nonce (no inline style without it).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api/swagger_ui.html"),
        name="api-docs",
    ),
    path("healthz", healthz, name="healthz"),
]

# A database outage is a 503 with a sentence (and Retry-After), other errors Django's 500 page.
handler500 = "mdm_portal.core.views.errors.server_error"
# A URL no route matches is a JSON 404 for API and agent clients, the usual page for people.
handler404 = "mdm_portal.core.api.errors.page_not_found"
handler400 = "mdm_portal.core.api.errors.bad_request"
