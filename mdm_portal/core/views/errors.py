"""The server-error view: a database outage is a 503 with a sentence, never a 500 trace.

Django calls ``handler500`` inside the ``except`` block of whatever raised, in any view or
middleware; when that is the database being unreachable (PostgreSQL restarting, a failover), the
answer is ``503 Service Unavailable`` with ``Retry-After``, JSON for the agent and API clients (they
retry) and a short page for people. Django opens a new connection on the next request
(``CONN_HEALTH_CHECKS``), so the process recovers by itself once the database is back.
"""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.views.defaults import server_error as django_server_error

RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "The database cannot be reached at the moment; try again in a few seconds."
AGENT_PREFIXES = ("/agent/", "/mam/")  # the agent protocol's error shape
API_PREFIXES = ("/api/", "/access/")  # the REST API's


def database_unavailable() -> bool:
    error = sys.exc_info()[1]
    while error is not None:
        if isinstance(error, OperationalError | InterfaceError):
            return True
        error = error.__cause__ or error.__context__
    return False


def server_error(request, *args, **kwargs):
    if not database_unavailable():
        return django_server_error(request, *args, **kwargs)
    if request.path.startswith(AGENT_PREFIXES):
        body = {"error": {"code": "unavailable", "message": UNAVAILABLE, "fields": {}}}
        response = JsonResponse(body, status=503)
    elif request.path.startswith(API_PREFIXES):
        response = JsonResponse({"detail": UNAVAILABLE}, status=503)
    else:
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Service unavailable</title>"
            f"</head><body><h1>Service unavailable</h1><p>{UNAVAILABLE}</p></body></html>"
        )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
