"""CSV for the report routes: ``?format=csv`` or ``Accept: text/csv``.

A report view answers CSV by streaming ``policies.reports_csv`` itself; this renderer makes the
format negotiable. Errors are always JSON (``CSVOrJSONErrorsMixin``), so a refusal is never a file.
"""

from __future__ import annotations

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from ..reports_csv import csv_lines


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> str:
        """A fallback for data a view did not stream: a list of flat objects, or one, as a table."""
        rows = data if isinstance(data, list) else [data]
        rows = [row for row in rows if isinstance(row, dict)]
        if not rows:
            return ""
        header = list(rows[0])
        return "".join(csv_lines([header, *([row.get(key) for key in header] for row in rows)]))


class CSVOrJSONErrorsMixin:
    """Answer errors (401, 403, 404, 400) in JSON even when CSV was asked for."""

    def finalize_response(self, request, response, *args, **kwargs):
        renderer = getattr(request, "accepted_renderer", None)
        if isinstance(response, Response) and response.status_code >= 400 and isinstance(renderer, CSVRenderer):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def wants_csv(self, request) -> bool:
        return isinstance(getattr(request, "accepted_renderer", None), CSVRenderer)
