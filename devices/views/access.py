"""``/access/check``: the answer a resource gate asks for (nginx ``auth_request`` style).

The gate authenticates with an API token of an account holding ``devices.check_device_access``
everywhere, and names the device in ``X-MDM-Device-Id`` (its id, which the gate takes from the
device's client certificate, never from a header the client controls) or ``X-MDM-Device-Serial``.

* 200: enrolled and compliant (or in grace) — let the request through.
* 401 with ``X-MDM-Redirect`` to the Company Portal's enrolment page: unknown or unenrolled device.
* 403 with ``X-MDM-Redirect`` to the device's page in the Company Portal: noncompliant.
* 401 or 403 without ``X-MDM-Redirect``: the gate itself is not authorised (check its token).
"""

from __future__ import annotations

import uuid

from django.http import JsonResponse
from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from mdm_portal.core.api.authentication import APITokenAuthentication
from mdm_portal.core.api.permissions import AuthzPermission
from mdm_portal.core.api.schema import APIErrorSerializer
from mdm_portal.core.throttling import AccessCheckThrottle, ThrottleMessageMixin

from ..access import access_decision
from ..choices import LifecycleState
from ..models import Device


def _enrol_url(request) -> str:
    try:
        return request.build_absolute_uri(reverse("portal:enroll"))
    except NoReverseMatch:
        return request.build_absolute_uri(reverse("portal:home"))


def _device_from_headers(request) -> Device | None:
    live = Device.objects.exclude(lifecycle_state=LifecycleState.RETIRED)
    device_id = request.headers.get("X-MDM-Device-Id", "").strip()
    if device_id:
        try:
            return live.filter(uuid=uuid.UUID(device_id)).first()
        except ValueError:
            return None
    serial = request.headers.get("X-MDM-Device-Serial", "").strip().upper()
    if serial:
        return live.filter(serial_number=serial).first()
    return None


class AccessDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["allow", "enrol", "remediate"])
    reason = serializers.CharField()
    device_id = serializers.UUIDField(required=False)


# A refusal is about the device (a decision) or about the gate itself (DRF's ``{"detail": ...}``).
REFUSAL = PolymorphicProxySerializer(
    component_name="AccessRefusal",
    serializers=[AccessDecisionSerializer, APIErrorSerializer],
    resource_type_field_name=None,
)

DEVICE_HEADERS = [
    OpenApiParameter(
        "X-MDM-Device-Id", str, OpenApiParameter.HEADER, description="The device id (from its certificate)."
    ),
    OpenApiParameter("X-MDM-Device-Serial", str, OpenApiParameter.HEADER, description="Or its serial number."),
]


class AccessCheckView(ThrottleMessageMixin, APIView):
    authentication_classes = [APITokenAuthentication, SessionAuthentication]
    permission_classes = [AuthzPermission]
    throttle_classes = [AccessCheckThrottle]
    what_to_do = (
        "This gate asks more often than MDM_ACCESS_CHECK_RATE allows: cache allow answers briefly, or raise it."
    )
    action_permissions = {"get": "devices.check_device_access", "head": "devices.check_device_access"}

    @extend_schema(
        tags=["access"],
        summary="May this device reach company resources? (for nginx auth_request, VPN and RADIUS hooks)",
        parameters=DEVICE_HEADERS,
        responses={
            200: AccessDecisionSerializer,
            401: OpenApiResponse(REFUSAL, description="Unknown or unenrolled device, or the gate's token is invalid."),
            403: OpenApiResponse(REFUSAL, description="Noncompliant device, or the gate lacks the permission."),
            429: OpenApiResponse(APIErrorSerializer, description="The gate asks too often; retry after Retry-After."),
        },
    )
    def get(self, request):
        # check_device_access is not a scoped permission: only a gate trusted for the whole fleet gets here.
        decision = access_decision(_device_from_headers(request))
        body = {"decision": decision.outcome, "reason": decision.reason}
        if decision.device is not None:
            body["device_id"] = str(decision.device.uuid)
        if decision.allowed:
            return JsonResponse(body, status=200)
        if decision.outcome == "enrol":
            response = JsonResponse(body, status=401)
            response["X-MDM-Redirect"] = _enrol_url(request)
        else:
            response = JsonResponse(body, status=403)
            response["X-MDM-Redirect"] = request.build_absolute_uri(
                reverse("portal:device_detail", args=[decision.device.uuid])
            )
        response["X-MDM-Decision"] = decision.outcome
        return response

    @extend_schema(exclude=True)
    def head(self, request):
        return self.get(request)
