"""The not-found and bad-request views: JSON under the API and agent prefixes, a page for people.

An API client that sends a malformed id (``/api/v1/devices/a%2Fb/``) or a typo reaches no view at
all (404); one that sends more than ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` form fields or an oversized
body is refused by Django before any view (400). Django's HTML pages would break every client
that parses the error. People get the pages (templates/404.html, templates/400.html).
"""

from django.http import JsonResponse
from django.views.defaults import bad_request as django_bad_request
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


BAD_REQUEST = (
    "The request was refused before it was read: too many fields, too large a body or a malformed header. "
    "Send JSON with the fields the operation documents."
)


def bad_request(request, exception, *args, **kwargs):
    if request.path.startswith(AGENT_PREFIXES):
        return JsonResponse({"error": {"code": "invalid", "message": BAD_REQUEST, "fields": {}}}, status=400)
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"detail": BAD_REQUEST}, status=400)
    return django_bad_request(request, exception, *args, **kwargs)
