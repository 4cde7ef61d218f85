"""The retirement API: retire or wipe a device, and the retirement records with their actions and evidence.

``POST /devices/{id}/retire/`` and ``/wipe/`` ask through ``retirement.services.retirement_request``
(source ``api``), so eligibility, second-person approval and the evidence snapshot are the same as in
the console. Lists hold what the caller may see (``authz.restrict``); a device or record outside
their scopes is a 404. The services' refusals are a 400 (cannot be done now) or a 403 (not yours to
do), each with the service's sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import django_filters
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.api.viewsets import AuthzViewSetMixin
from mdm_portal.core.audit import Actor
from policies.api.renderers import CSVOrJSONErrorsMixin, CSVRenderer
from policies.reports_csv import Table, csv_response

from .. import selectors
from ..choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from ..models import RetirementRequest, RetirementSettings
from ..services import (
    retirement_approve,
    retirement_cancel,
    retirement_force,
    retirement_request,
    retirement_unenroll,
)
from ..services.requests import APPROVE_PERMISSION, FORCE_PERMISSION, device_permission
from .serializers import (
    CancelBodySerializer,
    EvidenceSerializer,
    ForceBodySerializer,
    RetireBodySerializer,
    RetirementRequestSerializer,
    RetirementSummarySerializer,
    WipeBodySerializer,
)

VIEW_REQUEST = "retirement.view_retirementrequest"
UUID_REGEX = "[0-9a-fA-F-]{36}"
TAGS = ["retirement"]
DEVICE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The device's id.")
REQUEST_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The request's id.")
FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="csv: the evidence as a CSV file (also with 'Accept: text/csv').",
)
REFUSALS = {
    400: OpenApiResponse(description="The service refused: the sentence says why and what to do."),
    403: OpenApiResponse(description="You may not do this to this device or request."),
    404: OpenApiResponse(description="No such device or request among those you may see."),
}


def _refused_as_403(call, **kwargs):
    """A service's PermissionDenied keeps its sentence (DRF would replace it with a generic one)."""
    try:
        return call(**kwargs)
    except DjangoPermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc) or None) from exc


# Retire or wipe a device ----------------------------------------------------------------------------------


class DeviceRetirementViewSet(AuthzViewSetMixin, viewsets.GenericViewSet):
    """``POST /devices/{id}/retire/`` and ``/wipe/``: a retirement request for one device."""

    serializer_class = RetirementRequestSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    filter_backends: list = []
    action_permissions = {"retire": "devices.retire_device", "wipe": "devices.wipe_device"}

    def get_queryset(self):
        # Devices the caller may act on: scoped callers without the permission over a device do not see it.
        required = self.action_permissions.get(self.action or "", "devices.view_device")
        return authz.restrict(Device.objects.select_related("scope"), self.request.user, required)

    def _request(self, action_name: str, body: dict[str, Any]) -> Response:
        device = self.get_object()
        created = _refused_as_403(
            retirement_request,
            actor=Actor.from_request(self.request),
            device=device,
            action=action_name,
            source=RetirementSource.API,
            reason=body.get("reason", ""),
            keep_enrollment=body.get("keep_enrollment", False),
        )
        return Response(RetirementRequestSerializer(created).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="api_v1_devices_retire",
        summary="Retire a device (selective wipe)",
        description="Removes what the portal installed (apps, profiles, certificates) and corporate data; personal "
        "data stays. The device carries it out at its next check-in and reports; the request is then verified and "
        "the device unenrolled. Waits for a second administrator when approval is required.",
        parameters=[DEVICE_ID],
        request=RetireBodySerializer,
        responses={202: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="retire", url_name="retire")
    def retire(self, request, id=None):
        body = RetireBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._request(RetirementAction.RETIRE, body.validated_data)

    @extend_schema(
        operation_id="api_v1_devices_wipe",
        summary="Wipe a device (factory reset)",
        description="Erases everything on the device. Corporate devices; personal ones only where the retirement "
        "settings allow it. Send the device's name in confirm_name. keep_enrollment: the device re-enrols by itself.",
        parameters=[DEVICE_ID],
        request=WipeBodySerializer,
        responses={202: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="wipe", url_name="wipe")
    def wipe(self, request, id=None):
        body = WipeBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        device = self.get_object()
        if body.validated_data["confirm_name"].strip() != device.name:
            raise exceptions.ValidationError(
                {"confirm_name": [f"Type the device's name exactly ({device.name}) to confirm the full wipe."]}
            )
        return self._request(RetirementAction.WIPE, body.validated_data)


# Retirement records ---------------------------------------------------------------------------------------


class RetirementRequestFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=RetirementStatus.choices)
    action = django_filters.MultipleChoiceFilter(choices=RetirementAction.choices)
    source = django_filters.MultipleChoiceFilter(choices=RetirementSource.choices)
    device = django_filters.UUIDFilter(field_name="device__uuid", help_text="The device's id.")

    class Meta:
        model = RetirementRequest
        fields = ["status", "action", "source", "device"]


def _when(value) -> str:
    return value.isoformat() if value else ""


def evidence_rows(request: RetirementRequest) -> Iterator[list[Any]]:
    """The proof of removal as one table: the record's facts, then the before, after and leftover items."""
    yield ["section", "kind", "identifier", "name", "detail"]
    facts = [
        ("request", str(request.uuid)),
        ("device", request.device_name),
        ("serial number", request.device_serial),
        ("platform", request.get_device_platform_display()),
        ("ownership", request.get_device_ownership_display()),
        ("action", request.get_action_display()),
        ("source", request.get_source_display()),
        ("status", request.get_status_display()),
        ("reason", request.reason),
        ("requested by", request.requested_by_label),
        ("requested at", _when(request.requested_at)),
        ("approved by", request.approved_by.get_username() if request.approved_by else ""),
        ("approved at", _when(request.approved_at)),
        ("command sent at", _when(request.sent_at)),
        ("acknowledged at", _when(request.acknowledged_at)),
        ("verified at", _when(request.verified_at)),
        ("unenrolled at", _when(request.unenrolled_at)),
        ("forced by", request.forced_by.get_username() if request.forced_by else ""),
        ("forced reason", request.forced_reason),
        ("failure reason", request.failure_reason),
    ]
    for key, value in facts:
        yield ["record", key, "", "", value]
    for section, inventory in (("before", request.before_inventory or {}), ("after", request.after_inventory or {})):
        for item in inventory.get("managed_apps") or []:
            yield [section, "managed app", item.get("identifier", ""), item.get("name", ""), item.get("state", "")]
        for item in inventory.get("managed_profiles") or []:
            yield [section, "managed profile", item.get("identifier", ""), item.get("name", ""), item.get("state", "")]
        for item in inventory.get("installed_apps") or []:
            yield [section, "installed app", item.get("identifier", ""), item.get("name", ""), item.get("version", "")]
        for item in inventory.get("profiles") or []:
            yield [section, "profile", item.get("identifier", ""), item.get("name", ""), item.get("version", "")]
        corporate = inventory.get("corporate_data") or {}
        if corporate:
            details = "; ".join(str(detail) for detail in corporate.get("details") or [])
            yield [section, "corporate data", "", "present" if corporate.get("present") else "absent", details]
        yield [section, "reported at", "", "", inventory.get("reported_at") or inventory.get("taken_at") or ""]
    for item in request.leftovers or []:
        yield ["leftover", item.get("kind", ""), item.get("identifier", ""), item.get("name", ""), ""]


@extend_schema_view(
    list=extend_schema(
        summary="List the retirement requests you may see",
        description="Newest first. Filter by status, action, source (each repeatable) or device.",
        tags=TAGS,
    ),
    retrieve=extend_schema(summary="One retirement request", parameters=[REQUEST_ID], tags=TAGS),
)
class RetirementRequestViewSet(
    CSVOrJSONErrorsMixin,
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = RetirementRequestSerializer
    filterset_class = RetirementRequestFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["device_name", "device_serial", "requested_by_label"]
    ordering_fields = ["requested_at", "status", "device_name"]
    ordering = ["-requested_at", "-id"]
    action_permissions = {
        "list": VIEW_REQUEST,
        "retrieve": VIEW_REQUEST,
        "evidence": VIEW_REQUEST,
        "approve": APPROVE_PERMISSION,
        "force": FORCE_PERMISSION,
        # Then the action's device permission on the record (retire, wipe or delete), checked below and by the service.
        "cancel": VIEW_REQUEST,
        "unenroll": VIEW_REQUEST,
    }

    def get_queryset(self):
        requests = RetirementRequest.objects.select_related("device", "scope", "approved_by", "forced_by")
        return authz.restrict(requests, self.request.user, VIEW_REQUEST)

    def _answer(self, request: RetirementRequest) -> Response:
        return Response(RetirementRequestSerializer(self.get_queryset().get(pk=request.pk)).data)

    @extend_schema(
        operation_id="api_v1_retirement_requests_approve",
        summary="Approve a waiting request (second administrator)",
        description="A different administrator than the requester, with the approval permission and the action's "
        "device permission. The command is then sent.",
        parameters=[REQUEST_ID],
        request=None,
        responses={200: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="approve", url_name="approve")
    def approve(self, request, id=None):
        record = self.get_object()
        return self._answer(_refused_as_403(retirement_approve, actor=Actor.from_request(request), request=record))

    @extend_schema(
        operation_id="api_v1_retirement_requests_cancel",
        summary="Cancel a request the device has not acted on",
        description="Needs the action's device permission. The device returns to enrolled.",
        parameters=[REQUEST_ID],
        request=CancelBodySerializer,
        responses={200: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="cancel", url_name="cancel")
    def cancel(self, request, id=None):
        record = self.get_object()
        if not authz.can(request.user, device_permission(record.action), record):
            raise exceptions.PermissionDenied(
                f"You do not have the permission to cancel this request for {record.device_name}. Ask IT."
            )
        body = CancelBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        cancelled = _refused_as_403(
            retirement_cancel, actor=Actor.from_request(request), request=record, reason=body.validated_data["reason"]
        )
        return self._answer(cancelled)

    @extend_schema(
        operation_id="api_v1_retirement_requests_force",
        summary="Force the unenrolment of a device that does not answer",
        description="Recorded as unverified, with your name and the reason. The device's secret stops working.",
        parameters=[REQUEST_ID],
        request=ForceBodySerializer,
        responses={200: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="force", url_name="force")
    def force(self, request, id=None):
        record = self.get_object()
        body = ForceBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        forced = _refused_as_403(
            retirement_force, actor=Actor.from_request(request), request=record, reason=body.validated_data["reason"]
        )
        return self._answer(forced)

    @extend_schema(
        operation_id="api_v1_retirement_requests_unenroll",
        summary="Unenrol a verified device",
        description="When automatic unenrolment is off, a verified device waits for this.",
        parameters=[REQUEST_ID],
        request=None,
        responses={200: RetirementRequestSerializer, **REFUSALS},
        tags=TAGS,
    )
    @action(detail=True, methods=["post"], url_path="unenroll", url_name="unenroll")
    def unenroll(self, request, id=None):
        record = self.get_object()
        return self._answer(_refused_as_403(retirement_unenroll, actor=Actor.from_request(request), request=record))

    @extend_schema(
        operation_id="api_v1_retirement_requests_evidence",
        summary="The proof of removal",
        description="The record with the inventory before the command, the device's report after it, and what was "
        "left over. CSV: one table (the record's facts, then the before, after and leftover items).",
        parameters=[REQUEST_ID, FORMAT],
        responses={
            (200, "application/json"): EvidenceSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same evidence as CSV."),
            404: REFUSALS[404],
        },
        tags=TAGS,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="evidence",
        url_name="evidence",
        renderer_classes=[*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer],
    )
    def evidence(self, request, id=None):
        record = self.get_object()
        if self.wants_csv(request):
            return csv_response(Table(f"retirement-evidence-{record.uuid}", evidence_rows(record)))
        return Response(EvidenceSerializer(record).data)


# The retirement summary -----------------------------------------------------------------------------------


class RetirementSummaryView(APIView):
    """``GET /retirement/summary/``: the retirement report's numbers (``retirement.selectors``), counted in SQL."""

    permission_classes = AuthzViewSetMixin.permission_classes
    action_permissions = {"get": VIEW_REQUEST}

    @extend_schema(
        operation_id="api_v1_retirement_summary",
        summary="Retirement summary",
        description="Requests by state and by source (last 30 and 90 days, all time), how many are open and how "
        "many overdue (open longer than the offline timeout), and the enrolled devices without a check-in for 30, "
        "60, 90 and 180 days or more per platform. Counts only what you may see.",
        responses={200: RetirementSummarySerializer, 403: REFUSALS[403]},
        tags=TAGS,
    )
    def get(self, request):
        user = request.user
        by_state = selectors.retirement_counts_by(user=user, by="status")
        stale = None
        if authz.has_any(user, selectors.VIEW_DEVICE):
            stale = selectors.stale_device_buckets(user=user)[1]
        summary = {
            "by_state": [asdict(row) for row in by_state],
            "by_source": [asdict(row) for row in selectors.retirement_counts_by(user=user, by="source")],
            "pending": sum(row.all_time for row in by_state if row.value in OPEN_STATUSES),
            "overdue": selectors.retirement_overdue_list(user=user).count(),
            "offline_timeout_days": RetirementSettings.load().offline_timeout_days,
            "stale_devices": stale,
        }
        return Response(RetirementSummarySerializer(summary).data)
