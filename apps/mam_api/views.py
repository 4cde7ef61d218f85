"""The managed-app API's endpoints (in the OpenAPI schema under the tag ``mam``). Thin: parse, call
an ``apps.services.mam`` function, answer.

* ``POST /mam/v1/token``: the employee signs in (OAuth 2.0 password grant, form or JSON body) and
  gets a short-lived access token; errors follow OAuth (``{"error", "error_description"}``).
* ``POST /mam/v1/register`` (``Authorization: Bearer <access token>``): a new app instance and
  its secret, shown once, with the first check-in's reply.
* ``POST /mam/v1/checkin`` and ``POST /mam/v1/wipes/<id>/confirm``
  (``Authorization: Instance <instance secret>``).

Apart from the token endpoint, errors have the agent protocol's shape
``{"error": {"code", "message", "fields"}}`` and a 4xx status, and a refused request writes nothing.
"""

from __future__ import annotations

import hashlib
import uuid

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from devices.protocol.serializers import ErrorSerializer
from devices.protocol.views import AgentError, agent_exception_handler
from mdm_portal.core.audit import client_ip

from ..models import ManagedAppInstance
from ..services.mam import (
    ACCESS_TOKEN_LIFETIME_SECONDS,
    UNKNOWN_WIPE,
    MamError,
    app_access_token_issue,
    app_access_token_user,
    app_instance_authenticate,
    app_instance_checkin,
    app_instance_register,
    app_sign_in,
    app_wipe_confirm,
)
from . import serializers as s

MAX_BODY_BYTES = 64 * 1024


def _too_large(request) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES
    except ValueError:
        return False


def mam_exception_handler(exc, context):
    """The agent protocol's error shape; ``MamError`` carries its own status and code."""
    if isinstance(exc, MamError):
        exc = AgentError(exc.status, exc.code, exc.message, exc.fields)
    response = agent_exception_handler(exc, context)
    if response is None and isinstance(exc, exceptions.APIException):
        code = "not_found" if exc.status_code == 404 else "forbidden" if exc.status_code == 403 else "invalid_request"
        response = Response({"error": {"code": code, "message": str(exc.detail), "fields": {}}}, status=exc.status_code)
    if response is not None and response.status_code == 401:
        view = context.get("view")
        response["WWW-Authenticate"] = getattr(view, "www_authenticate", "Instance")
    return response


# Sign-in --------------------------------------------------------------------------------------------


class OAuthError(exceptions.APIException):
    def __init__(self, status_code: int, error: str, description: str):
        self.status_code, self.error, self.description = status_code, error, description
        super().__init__(description)


def oauth_exception_handler(exc, context):
    """RFC 6749 §5.2 errors: ``{"error": "invalid_grant", "error_description": "..."}``."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if isinstance(exc, OAuthError):
        status_code, error, description = exc.status_code, exc.error, exc.description
    elif isinstance(exc, exceptions.Throttled):
        wait = int(exc.wait or 60)
        status_code, error = 429, "rate_limited"
        description = f"Too many sign-in attempts. Try again in {wait} seconds."
        headers["Retry-After"] = str(wait)
    elif isinstance(exc, exceptions.ParseError):
        status_code, error, description = 400, "invalid_request", "The body is not valid JSON or form data."
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        status_code, error = 415, "invalid_request"
        description = "Send the body as application/x-www-form-urlencoded or application/json."
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status_code, error, description = 405, "invalid_request", "Use POST for this endpoint."
    else:
        return None
    return Response({"error": error, "error_description": description}, status=status_code, headers=headers)


def _username(request) -> str:
    try:
        data = request.data
    except exceptions.APIException:
        return ""
    value = data.get("username") if hasattr(data, "get") else None
    return value.strip().lower()[:150] if isinstance(value, str) else ""


class SignInUserThrottle(SimpleRateThrottle):
    """Ten sign-in attempts a minute per username, wherever they come from."""

    scope = "mam_sign_in_user"
    rate = "10/min"

    def get_cache_key(self, request, view):
        username = _username(request)
        if not username:
            return None
        # Hashed: a username may hold spaces or control characters no cache key may (memcached refuses them).
        ident = hashlib.sha256(username.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignInAddressThrottle(SimpleRateThrottle):
    """A hundred sign-in attempts a minute per client address (an office behind one address)."""

    scope = "mam_sign_in_address"
    rate = "100/min"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": client_ip(request) or "unknown"}


class TokenView(APIView):
    parser_classes = [FormParser, JSONParser]
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SignInAddressThrottle, SignInUserThrottle]

    def get_exception_handler(self):
        return oauth_exception_handler

    def initial(self, request, *args, **kwargs):
        if _too_large(request):
            raise OAuthError(413, "invalid_request", "The request is larger than 64 KiB.")
        super().initial(request, *args, **kwargs)

    @extend_schema(
        tags=["mam"],
        summary="Sign in: get a short-lived access token (OAuth 2.0 password grant)",
        description="Send `application/x-www-form-urlencoded` (as OAuth says) or JSON. Wrong credentials, "
        "an unknown or a disabled account all answer `400 invalid_grant`. The token lasts 10 minutes.",
        request={
            "application/x-www-form-urlencoded": s.MamTokenRequestSerializer,
            "application/json": s.MamTokenRequestSerializer,
        },
        responses={
            200: s.MamTokenResponseSerializer,
            **{code: OpenApiResponse(s.OAuthErrorSerializer) for code in (400, 413, 415, 429)},
        },
        auth=[],
    )
    def post(self, request):
        data = request.data
        if not hasattr(data, "get"):
            raise OAuthError(400, "invalid_request", "The body must be a JSON object or form fields.")
        if hasattr(data, "getlist"):
            repeated = sorted(name for name in data if len(data.getlist(name)) > 1)
            if repeated:
                raise OAuthError(400, "invalid_request", f"Send each parameter once: {', '.join(repeated)}.")
        serializer = s.MamTokenRequestSerializer(data={key: data.get(key) for key in data})
        if not serializer.is_valid():
            problems = "; ".join(f"{name}: {' '.join(map(str, errors))}" for name, errors in serializer.errors.items())
            raise OAuthError(400, "invalid_request", f"The request has invalid parameters: {problems}")
        values = serializer.validated_data
        if values["grant_type"] != "password":
            raise OAuthError(400, "unsupported_grant_type", "Only grant_type=password is supported.")
        user = app_sign_in(username=values["username"], password=values["password"], request=request)
        if user is None:
            raise OAuthError(
                400,
                "invalid_grant",
                "The username or password is wrong, or this account cannot sign in. Check them and try again.",
            )
        return Response(
            {
                "access_token": app_access_token_issue(user=user),
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )


# Registration and check-in ------------------------------------------------------------------------------


class AccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>`` from ``POST /mam/v1/token``: acts as that person."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            raise exceptions.NotAuthenticated(
                "Sign in first (POST /mam/v1/token) and send the access token as 'Authorization: Bearer ...'."
            )
        if len(header) != 2:
            raise AgentError(401, "invalid_token", "The access token is not valid. Sign in again to get a new one.")
        try:
            user = app_access_token_user(header[1].decode(errors="replace"))
        except MamError as exc:
            raise AgentError(exc.status, exc.code, exc.message) from exc
        return user, None

    def authenticate_header(self, request):
        return "Bearer"


class InstanceSecretAuthentication(BaseAuthentication):
    """``Authorization: Instance mai_...``: the request acts as that app instance."""

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != b"instance":
            raise exceptions.NotAuthenticated(
                "Send the app instance secret from the registration reply as 'Authorization: Instance mai_...'."
            )
        instance = app_instance_authenticate(header[1].decode(errors="replace")) if len(header) == 2 else None
        if instance is None:
            raise exceptions.AuthenticationFailed(
                "This app instance secret is not valid. Sign in again to register the app."
            )
        return AnonymousUser(), instance

    def authenticate_header(self, request):
        return "Instance"


class IsRegisteredInstance(BasePermission):
    def has_permission(self, request, view):
        instance = request.auth
        if not isinstance(instance, ManagedAppInstance):
            return False
        if instance.revoked_at is not None and not getattr(view, "allow_revoked", False):
            raise AgentError(410, "instance_revoked", "This app instance was wiped. Sign in again to register it.")
        return True


class IsSignedIn(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)


class MamView(APIView):
    parser_classes = [JSONParser]
    authentication_classes = [InstanceSecretAuthentication]
    permission_classes = [IsRegisteredInstance]
    throttle_classes: list = []
    www_authenticate = "Instance"

    def initial(self, request, *args, **kwargs):
        if _too_large(request):
            raise AgentError(413, "request_too_large", "The request is larger than 64 KiB. Send less.")
        super().initial(request, *args, **kwargs)

    def get_exception_handler(self):
        return mam_exception_handler

    def body(self, request) -> dict:
        if not isinstance(request.data, dict):
            raise AgentError(400, "invalid_request", "The body must be a JSON object.")
        return request.data


ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404, 409, 410, 413, 415)}


class RegisterView(MamView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsSignedIn]
    www_authenticate = "Bearer"

    @extend_schema(
        tags=["mam"],
        summary="Register a managed app instance",
        description="Signed in with the access token. Returns the instance secret (shown only here) and the "
        "first check-in's reply. `403 app_not_managed` when the app is not in the catalog for the platform.",
        request=s.MamRegisterSerializer,
        responses={201: s.MamRegisterReplySerializer, **ERRORS},
    )
    def post(self, request):
        serializer = s.MamRegisterSerializer(data=self.body(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ip = client_ip(request)
        instance, secret = app_instance_register(user=request.user, source_ip=ip, **data)
        reply = app_instance_checkin(instance=instance, report={}, source_ip=ip)
        return Response(
            {"instance_id": str(instance.uuid), "instance_secret": secret, **reply}, status=status.HTTP_201_CREATED
        )


class CheckinView(MamView):
    @extend_schema(
        tags=["mam"],
        summary="Check in: report state, receive the protection policy, wipes and the access decision",
        request=s.MamCheckinSerializer,
        responses={200: s.MamCheckinReplySerializer, **ERRORS},
    )
    def post(self, request):
        serializer = s.MamCheckinSerializer(data=self.body(request))
        serializer.is_valid(raise_exception=True)
        report = serializer.validated_data
        return Response(app_instance_checkin(instance=request.auth, report=report, source_ip=client_ip(request)))


class WipeConfirmView(MamView):
    allow_revoked = True  # a retried confirmation of a confirmed wipe is answered again

    @extend_schema(
        tags=["mam"],
        summary="Confirm that the app removed its org data (revokes the instance)",
        parameters=[OpenApiParameter("wipe_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        request=s.MamWipeConfirmSerializer,
        responses={200: s.MamWipeConfirmReplySerializer, **ERRORS},
    )
    def post(self, request, wipe_id: str):
        s.MamWipeConfirmSerializer(data=self.body(request)).is_valid(raise_exception=True)
        try:
            wipe_uuid = uuid.UUID(wipe_id)
        except ValueError as exc:
            raise AgentError(404, "unknown_wipe", UNKNOWN_WIPE) from exc
        wipe = app_wipe_confirm(instance=request.auth, wipe_uuid=wipe_uuid, source_ip=client_ip(request))
        return Response(
            {
                "wipe_id": str(wipe.uuid),
                "status": wipe.status,
                "confirmed_at": wipe.confirmed_at,
                "message": "The removal of your organisation's data is recorded. "
                "Sign in again to use the app with your work account.",
            }
        )


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.mam_api.views.AccessTokenAuthentication"
    name = "mamAccessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The access token from `POST /mam/v1/token`."}


class InstanceSecretScheme(OpenApiAuthenticationExtension):
    target_class = "apps.mam_api.views.InstanceSecretAuthentication"
    name = "mamInstanceSecret"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Instance mai_...`: the secret from the registration reply.",
        }
