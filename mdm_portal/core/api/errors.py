"""The not-found view: a URL no route matches is a JSON 404 under the API and agent prefixes.

An API client that sends a malformed id (``/api/v1/devices/a%2Fb/``) or a typo reaches no view at
all; Django's HTML page would break every client that parses the error. People get that page.
"""

from django.http import JsonResponse
from django.views.defaults import page_not_found as django_page_not_found

AGENT_PREFIXES = ("/agent/", "/mam/")  # the agent protocol's error shape
API_PREFIXES = ("/api/", "/access/")  # the REST API's (DRF's ``{"detail": ...}``)
NOT_FOUND = "Not found."


def page_not_found(request, exception, *args, **kwargs):
    if request.path.startswith(AGENT_PREFIXES):
        body = {"error": {"code": "not_found", "message": "No such endpoint or object.", "fields": {}}}
        return JsonResponse(body, status=404)
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": NOT_FOUND}, status=404)
    return django_page_not_found(request, exception, *args, **kwargs)
