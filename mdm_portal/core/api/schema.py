"""The OpenAPI generator of the REST API: every operation documents the errors it can answer with."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class APIErrorSerializer(serializers.Serializer):
    """DRF's error body: one sentence."""

    detail = serializers.CharField()


NOT_AUTHENTICATED = OpenApiResponse(APIErrorSerializer, description="No valid API token or session.")
FORBIDDEN = OpenApiResponse(APIErrorSerializer, description="You lack the permission this needs.")
NOT_FOUND = OpenApiResponse(
    APIErrorSerializer,
    description="No such object among those you may see, no such page of the list, or an unknown `format`.",
)
INVALID = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: each field (or `detail`, `non_field_errors`) maps to sentences saying what to fix.",
)
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(APIErrorSerializer, description="Send the body as JSON.")


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus the error responses DRF gives on every ``/api/`` operation.

    A view that documents a status code itself keeps its own description; the defaults only fill gaps.
    """

    def _error_responses(self) -> dict[str, OpenApiResponse]:
        # 404 everywhere: an id or page no one may see, and DRF's answer to an unknown ``?format=``.
        # 400 everywhere too: besides invalid input, any address with a NUL character is refused
        # (core.middleware) and so is a request Django will not read (core.api.errors.bad_request).
        errors = {"400": INVALID, "401": NOT_AUTHENTICATED, "403": FORBIDDEN, "404": NOT_FOUND}
        is_write = self.method in ("POST", "PUT", "PATCH")
        if is_write:
            errors["415"] = UNSUPPORTED_MEDIA_TYPE
        return errors

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if not self.path.startswith("/api/") or direction != "response":
            return responses
        for code, response in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return responses
