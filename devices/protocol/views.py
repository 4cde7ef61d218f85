"""The agent protocol's endpoints. Thin: parse, call a ``devices.services`` function, answer.

Errors always have the shape ``{"error": {"code", "message", "fields"}}`` and a 4xx status, and a
refused request writes nothing. Devices act as themselves (``Actor.for_device``), never as a person.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from mdm_portal.core.audit import client_ip
from mdm_portal.core.throttling import EnrollAddressThrottle, ThrottleMessageMixin

from ..choices import LifecycleState
from ..models import Device
from ..services import device_command_results_record
from ..services.checkin import device_checkin, inventory_digest
from ..services.enrollment import EnrollmentError, device_authenticate, device_enroll, device_secret_rotate
from . import serializers as s


class AgentError(exceptions.APIException):
    def __init__(self, status_code: int, code: str, message: str, fields: dict | None = None):
        self.status_code, self.code, self.message, self.fields = status_code, code, message, fields or {}
        super().__init__(message)


def _flatten(detail, prefix: str = "") -> dict[str, str]:
    """DRF's nested error detail as ``{"device.platform": "..."}``."""
    flat: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = prefix if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else str(key))
            flat.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            flat[prefix or "request"] = " ".join(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                flat.update(_flatten(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        flat[prefix or "request"] = str(detail)
    return flat


def agent_exception_handler(exc, context):
    if isinstance(exc, AgentError):
        code, message, fields, http_status = exc.code, exc.message, exc.fields, exc.status_code
    elif isinstance(exc, exceptions.ParseError):
        code, message, fields, http_status = "invalid_request", "The body is not valid JSON.", {}, 400
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "The request has invalid fields: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
        code, http_status = "invalid_request", 400
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        code, message, fields, http_status = "invalid_request", "Send the body as application/json.", {}, 415
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code, message, fields, http_status = "invalid_credentials", str(exc.detail), {}, 401
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code, message, fields, http_status = "invalid_request", "Use POST for this endpoint.", {}, 405
    elif isinstance(exc, exceptions.Throttled):
        code, http_status, fields = "rate_limited", 429, {}
        message = str(exc.detail) if exc.detail != exceptions.Throttled.default_detail else ""
        message = message or f"Too many requests; retry in {exc.wait or 60:.0f} seconds."
    else:
        return None
    response = Response({"error": {"code": code, "message": message, "fields": fields}}, status=http_status)
    if http_status == 401:
        response["WWW-Authenticate"] = "Device"
    if http_status == 429:
        response["Retry-After"] = str(int(exc.wait or 60))
    return response


class DeviceSecretAuthentication(BaseAuthentication):
    """``Authorization: Device dsk_...``: the request acts as that device."""

    keyword = "device"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            raise exceptions.NotAuthenticated("Send the device secret as 'Authorization: Device dsk_...'.")
        device = device_authenticate(header[1].decode(errors="replace")) if len(header) == 2 else None
        if device is None:
            raise exceptions.AuthenticationFailed("This device secret is not valid. Enrol the device again.")
        return AnonymousUser(), device

    def authenticate_header(self, request):
        return "Device"


class IsEnrolledDevice(BasePermission):
    def has_permission(self, request, view):
        device = request.auth
        if not isinstance(device, Device):
            return False
        if device.lifecycle_state == LifecycleState.RETIRED:
            raise AgentError(
                410, "device_retired", "This device was retired. Remove the management agent and its data."
            )
        return True


class AgentView(APIView):
    parser_classes = [JSONParser]
    authentication_classes = [DeviceSecretAuthentication]
    permission_classes = [IsEnrolledDevice]
    throttle_classes: list = []

    def initial(self, request, *args, **kwargs):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MDM_AGENT_MAX_BODY_BYTES:
            raise AgentError(413, "request_too_large", "The request is larger than 256 KiB. Send less inventory.")
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self):
        return agent_exception_handler

    def body(self, request) -> dict:
        if not isinstance(request.data, dict):
            raise AgentError(400, "invalid_request", "The body must be a JSON object.")
        return request.data


ERRORS = {code: OpenApiResponse(s.ErrorSerializer) for code in (400, 401, 403, 410, 413, 429)}


class EnrollView(ThrottleMessageMixin, AgentView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [EnrollAddressThrottle]
    what_to_do = "Enrolment attempts from this address are limited; check the enrolment code before retrying."

    @extend_schema(
        tags=["agent"],
        summary="Enrol a device",
        request=s.EnrollRequestSerializer,
        responses={201: s.EnrollResponseSerializer, **ERRORS},
        auth=[],
    )
    def post(self, request):
        serializer = s.EnrollRequestSerializer(data=self.body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            device, secret = device_enroll(
                identity=data["device"],
                token=data.get("enrollment_token"),
                code=data.get("enrollment_code"),
                transport=data["transport"],
                inventory=request.data.get("inventory"),
                source_ip=client_ip(request),
            )
        except EnrollmentError as exc:
            raise AgentError(403, exc.code, exc.message, exc.fields) from exc
        reply = device_checkin(device=device, inventory=None, digest=None, first=True)
        return Response(
            {"device_id": str(device.uuid), "device_secret": secret, **reply}, status=status.HTTP_201_CREATED
        )


class CheckinView(AgentView):
    @extend_schema(
        tags=["agent"],
        summary="Check in: report inventory, receive pending commands",
        request=s.CheckinRequestSerializer,
        responses={200: s.CheckinResponseSerializer, **ERRORS},
    )
    def post(self, request):
        device: Device = request.auth
        body = self.body(request)
        unknown = sorted(set(body) - {"inventory"})
        if unknown:
            raise AgentError(
                400,
                "invalid_request",
                "Unknown field(s): " + ", ".join(unknown),
                {k: "Unknown field." for k in unknown},
            )
        inventory = body.get("inventory")
        digest = None
        if inventory is not None:
            digest = inventory_digest(inventory) if isinstance(inventory, dict) else None
            if digest != device.inventory_hash:
                # Only a changed inventory is validated: an unchanged one was valid when it was stored.
                serializer = s.CheckinRequestSerializer(data=body)
                serializer.is_valid(raise_exception=True)
            else:
                inventory = None
        return Response(device_checkin(device=device, inventory=inventory, digest=digest))


class CommandResultsView(AgentView):
    @extend_schema(
        tags=["agent"],
        summary="Report command results (idempotent)",
        request=s.CommandResultsRequestSerializer,
        responses={200: s.CommandResultsResponseSerializer, **ERRORS},
    )
    def post(self, request):
        serializer = s.CommandResultsRequestSerializer(data=self.body(request))
        serializer.is_valid(raise_exception=True)
        return Response(
            device_command_results_record(device=request.auth, results=serializer.validated_data["results"])
        )


class SecretRotateView(AgentView):
    @extend_schema(
        tags=["agent"],
        summary="Replace the device secret",
        request=s.EmptySerializer,
        responses={200: s.SecretResponseSerializer, **ERRORS},
    )
    def post(self, request):
        s.EmptySerializer(data=self.body(request)).is_valid(raise_exception=True)
        return Response({"device_secret": device_secret_rotate(device=request.auth)})


class DeviceSecretScheme(OpenApiAuthenticationExtension):
    target_class = "devices.protocol.views.DeviceSecretAuthentication"
    name = "deviceSecret"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device dsk_...`: the secret from the enrolment reply.",
        }
