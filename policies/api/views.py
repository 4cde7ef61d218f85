"""The policies API: configuration profiles, compliance policies, the compliance reports, one device's
compliance.

Lists hold what the caller may see (``authz.restrict``); one object outside their scopes is a 404.
Writes go through the services; any refusal of theirs is a 400 with a sentence per field.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from devices.api.serializers import DeviceSerializer
from devices.choices import Platform
from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.api.viewsets import AuthzViewSetMixin
from mdm_portal.core.audit import Actor

from .. import reports_csv
from ..choices import DeliveryState, ProfileKind
from ..models import CompliancePolicy, ConfigurationProfile, ProfileDelivery
from ..selectors import reports
from ..selectors.compliance import device_compliance_detail
from ..services.policies import policy_delete, policy_save
from ..services.profiles import profile_delete, profile_resend_failed, profile_save
from .renderers import CSVOrJSONErrorsMixin, CSVRenderer
from .serializers import (
    CompliancePolicySerializer,
    ComplianceSummarySerializer,
    ComplianceTrendSerializer,
    DeviceComplianceSerializer,
    FailingSettingSerializer,
    ProfileDeliverySerializer,
    ProfileSerializer,
    ResendResultSerializer,
)

VIEW_DEVICE = "devices.view_device"
VIEW_PROFILE = "policies.view_configurationprofile"
VIEW_DELIVERY = "policies.view_profiledelivery"
VIEW_POLICY = "policies.view_compliancepolicy"
UUID_REGEX = "[0-9a-fA-F-]{36}"
ASSIGNMENT_FIELDS = ("mode", "target", "user_group", "device_group")


def assignment_rows(rows: list[dict] | None) -> list[dict] | None:
    """Validated assignment rows as the service takes them (groups already resolved to objects)."""
    if rows is None:
        return None
    return [
        {
            **{key: row.get(key) for key in ASSIGNMENT_FIELDS},
            "filter_platforms": row.get("filter_platforms") or [],
            "filter_ownership": row.get("filter_ownership") or "",
            "filter_os_min": row.get("filter_os_min") or "",
            "filter_os_max": row.get("filter_os_max") or "",
        }
        for row in rows
    ]


# Configuration profiles -----------------------------------------------------------------------------------


class ProfileFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=ProfileKind.choices)
    scope = django_filters.CharFilter(field_name="scope__slug", help_text="A scope's slug.")
    organisation_wide = django_filters.BooleanFilter(field_name="scope", lookup_expr="isnull")

    class Meta:
        model = ConfigurationProfile
        fields = ["kind", "scope", "organisation_wide"]


class DeliveryFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=DeliveryState.choices)
    platform = django_filters.MultipleChoiceFilter(field_name="device__platform", choices=Platform.choices)

    class Meta:
        model = ProfileDelivery
        fields = ["state", "platform"]


def profile_write_data(validated: dict) -> dict:
    return {key: validated[key] for key in ("name", "description", "scope", "kind", "platforms") if key in validated}


@extend_schema_view(
    list=extend_schema(summary="List the configuration profiles you may see", tags=["configuration profiles"]),
    retrieve=extend_schema(summary="One configuration profile", tags=["configuration profiles"]),
    create=extend_schema(
        summary="Create a configuration profile",
        description="Settings are validated for the kind; secret ones (a Wi-Fi password) are stored encrypted and "
        "never returned. Assignments are checked all together: one wrong row and nothing is saved. The devices it "
        "targets receive it at their next check-in.",
        tags=["configuration profiles"],
    ),
    update=extend_schema(summary="Change a configuration profile", tags=["configuration profiles"]),
    partial_update=extend_schema(
        summary="Change some fields of a configuration profile", tags=["configuration profiles"]
    ),
    destroy=extend_schema(
        summary="Delete a configuration profile",
        description="Devices that may hold it are told to remove it.",
        tags=["configuration profiles"],
    ),
)
class ProfileViewSet(
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProfileSerializer
    filterset_class = ProfileFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "created_at"]
    ordering = ["name", "id"]
    action_permissions = {
        "list": VIEW_PROFILE,
        "retrieve": VIEW_PROFILE,
        "create": "policies.add_configurationprofile",
        "update": "policies.change_configurationprofile",
        "partial_update": "policies.change_configurationprofile",
        "destroy": "policies.delete_configurationprofile",
        "resend_failed": "policies.resend_configurationprofile",
        "deliveries": VIEW_PROFILE,
    }

    def get_queryset(self):
        profiles = ConfigurationProfile.objects.select_related("scope").prefetch_related(
            "assignments__user_group", "assignments__device_group"
        )
        return authz.restrict(profiles, self.request.user, VIEW_PROFILE)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        counts = reports.delivery_counts_by_profile([p.pk for p in page])
        for profile in page:
            profile.delivery_counts = counts[profile.pk]
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = profile_save(
            actor=Actor.from_request(self.request),
            data=profile_write_data(data),
            settings=data.get("settings") or {},
            assignments=assignment_rows(data.get("assignments")),
            user=self.request.user,
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        profile = serializer.instance
        serializer.instance = profile_save(
            actor=Actor.from_request(self.request),
            profile=profile,
            data=profile_write_data(data),
            settings=data["settings"] if "settings" in data else dict(profile.settings),
            assignments=assignment_rows(data.get("assignments")),
            user=self.request.user,
        )
        # The prefetched assignments are the old ones.
        serializer.instance = self.get_queryset().get(pk=profile.pk)

    def perform_destroy(self, instance):
        profile_delete(actor=Actor.from_request(self.request), profile=instance)

    @extend_schema(
        operation_id="api_v1_profiles_resend_failed_create",
        summary="Send the profile again to every device where its delivery failed",
        description="Queues the current version for each delivery in the error state, on the devices you may see.",
        tags=["configuration profiles"],
        request=None,
        responses={200: ResendResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="resend-failed", url_name="resend-failed")
    def resend_failed(self, request, id=None):
        profile = self.get_object()
        user = request.user
        devices = (
            None if authz.has_global(user, VIEW_DEVICE) else authz.restrict(Device.objects.all(), user, VIEW_DEVICE)
        )
        resent = profile_resend_failed(actor=Actor.from_request(request), profile=profile, devices=devices)
        return Response(ResendResultSerializer({"resent": resent}).data)

    @extend_schema(
        operation_id="api_v1_profiles_deliveries_list",
        summary="Where the profile stands on each device it targets",
        tags=["configuration profiles"],
        parameters=[
            OpenApiParameter(
                "state", OpenApiTypes.STR, many=True, enum=DeliveryState.values, description="Delivery states."
            ),
            OpenApiParameter(
                "platform", OpenApiTypes.STR, many=True, enum=Platform.values, description="Device platforms."
            ),
        ],
        responses=ProfileDeliverySerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path="deliveries", url_name="deliveries", filter_backends=[])
    def deliveries(self, request, id=None):
        profile = self.get_object()
        deliveries = authz.restrict(
            ProfileDelivery.objects.filter(profile=profile).select_related("device"), request.user, VIEW_DELIVERY
        ).order_by("device__name", "device_id")
        filterset = DeliveryFilter(request.query_params, queryset=deliveries)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        for delivery in page:
            delivery.profile = profile
        return self.get_paginated_response(ProfileDeliverySerializer(page, many=True).data)


# Compliance policies ---------------------------------------------------------------------------------------


class CompliancePolicyFilter(django_filters.FilterSet):
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    scope = django_filters.CharFilter(field_name="scope__slug", help_text="A scope's slug.")
    organisation_wide = django_filters.BooleanFilter(field_name="scope", lookup_expr="isnull")

    class Meta:
        model = CompliancePolicy
        fields = ["platform", "scope", "organisation_wide"]


POLICY_FIELDS = (
    "name",
    "description",
    "scope",
    "platform",
    "os_min",
    "os_max",
    "passcode_required",
    "passcode_min_length",
    "passcode_min_quality",
    "encryption_required",
    "jailbreak_blocked",
    "checkin_max_days",
    "blocked_apps",
    "provisioning_on_time",
)


@extend_schema_view(
    list=extend_schema(summary="List the compliance policies you may see", tags=["compliance policies"]),
    retrieve=extend_schema(summary="One compliance policy", tags=["compliance policies"]),
    create=extend_schema(
        summary="Create a compliance policy",
        description="Rules, the noncompliance schedule (actions) and assignments in one request; nothing is saved "
        "if anything is wrong. The devices it targets are evaluated again in the background.",
        tags=["compliance policies"],
    ),
    update=extend_schema(summary="Change a compliance policy", tags=["compliance policies"]),
    partial_update=extend_schema(summary="Change some fields of a compliance policy", tags=["compliance policies"]),
    destroy=extend_schema(
        summary="Delete a compliance policy",
        description="Its failures go with it; the devices it applied to are evaluated again.",
        tags=["compliance policies"],
    ),
)
class CompliancePolicyViewSet(
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CompliancePolicySerializer
    filterset_class = CompliancePolicyFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "created_at"]
    ordering = ["name", "id"]
    action_permissions = {
        "list": VIEW_POLICY,
        "retrieve": VIEW_POLICY,
        "create": "policies.add_compliancepolicy",
        "update": "policies.change_compliancepolicy",
        "partial_update": "policies.change_compliancepolicy",
        "destroy": "policies.delete_compliancepolicy",
    }

    def get_queryset(self):
        policies = CompliancePolicy.objects.select_related("scope").prefetch_related(
            "actions", "assignments__user_group", "assignments__device_group"
        )
        return authz.restrict(policies, self.request.user, VIEW_POLICY)

    def _save(self, serializer, policy=None):
        data = serializer.validated_data
        actions = data.get("actions")
        saved = policy_save(
            actor=Actor.from_request(self.request),
            policy=policy,
            data={key: data[key] for key in POLICY_FIELDS if key in data},
            actions=[dict(a) for a in actions] if actions is not None else None,
            assignments=assignment_rows(data.get("assignments")),
            user=self.request.user,
        )
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        policy_delete(actor=Actor.from_request(self.request), policy=instance)


# Reports -----------------------------------------------------------------------------------------------------

FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="csv: the report as a CSV file (also with 'Accept: text/csv').",
)


def _report_schema(summary: str, description: str, serializer) -> dict:
    return {
        "summary": summary,
        "description": description,
        "tags": ["compliance reports"],
        "parameters": [FORMAT],
        "responses": {
            (200, "application/json"): serializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same report as CSV."),
        },
    }


class ComplianceReportViewSet(CSVOrJSONErrorsMixin, AuthzViewSetMixin, viewsets.GenericViewSet):
    """The dashboard's reports. Every number counts only the enrolled devices the caller may see."""

    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]
    serializer_class = DeviceSerializer
    action_permissions = {
        "summary": VIEW_DEVICE,
        "trend": VIEW_DEVICE,
        "failing_settings": VIEW_DEVICE,
        "devices_without_policy": VIEW_DEVICE,
    }

    def get_queryset(self):
        return reports.devices_without_policy(user=self.request.user)

    @extend_schema(
        operation_id="api_v1_compliance_summary",
        **_report_schema(
            "Devices per compliance state, overall and per platform",
            "CSV: one line for all platforms, then one per platform.",
            ComplianceSummarySerializer,
        ),
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def summary(self, request):
        if self.wants_csv(request):
            return reports_csv.csv_response(reports_csv.summary_table(user=request.user))
        summary = reports.compliance_summary(user=request.user)
        data = {
            "total": summary.total,
            "counts": summary.counts,
            "platforms": [
                {"platform": p.platform, "label": p.label, "total": p.total, "counts": p.counts}
                for p in summary.platforms
            ],
        }
        return Response(ComplianceSummarySerializer(data).data)

    @extend_schema(
        operation_id="api_v1_compliance_trend",
        **_report_schema(
            "Devices per compliance state on each of the last 60 days",
            "From the daily snapshots of the compliance sweep. A day without a snapshot has null counts "
            "(empty cells in CSV), never zeros.",
            ComplianceTrendSerializer,
        ),
    )
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def trend(self, request):
        if self.wants_csv(request):
            return reports_csv.csv_response(reports_csv.trend_table(user=request.user))
        days = reports.compliance_trend(user=request.user)
        data = {
            "start": days[0].day,
            "end": days[-1].day,
            "days": [{"day": d.day, "counts": d.counts, "total": d.total} for d in days],
        }
        return Response(ComplianceTrendSerializer(data).data)

    @extend_schema(
        operation_id="api_v1_compliance_failing_settings",
        **_report_schema(
            "Devices per failing compliance setting, most failed first",
            "Distinct devices failing each rule, how many of them are noncompliant now, and how many could "
            "not be checked.",
            FailingSettingSerializer(many=True),
        ),
    )
    @action(detail=False, methods=["get"], url_path="failing-settings", filter_backends=[], pagination_class=None)
    def failing_settings(self, request):
        if self.wants_csv(request):
            return reports_csv.csv_response(reports_csv.failing_settings_table(user=request.user))
        rows = reports.failing_settings(user=request.user)
        return Response(FailingSettingSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="api_v1_compliance_devices_without_policy",
        **_report_schema(
            "Enrolled devices that no compliance policy targets",
            "Paginated in JSON; CSV holds every device.",
            DeviceSerializer(many=True),
        ),
    )
    @action(detail=False, methods=["get"], url_path="devices-without-policy", filter_backends=[])
    def devices_without_policy(self, request):
        if self.wants_csv(request):
            return reports_csv.csv_response(reports_csv.devices_without_policy_table(user=request.user))
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(DeviceSerializer(page, many=True).data)


# One device's compliance ------------------------------------------------------------------------------------------


class DeviceComplianceView(AuthzViewSetMixin, APIView):
    """``/api/v1/devices/{id}/compliance/``: its state, the policies that apply, what fails and how to fix it."""

    action_permissions = {"get": VIEW_DEVICE}

    @extend_schema(
        operation_id="api_v1_devices_compliance_retrieve",
        summary="One device's compliance: state, policies, failing settings with fixes, next actions",
        tags=["devices"],
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The device's id.")],
        responses={200: DeviceComplianceSerializer},
    )
    def get(self, request, id):
        device = authz.get_or_404(Device.objects.all(), request.user, VIEW_DEVICE, uuid=id)
        detail = device_compliance_detail(device)
        data = {
            "device": device.uuid,
            "compliance_state": detail.state,
            "compliance_state_label": detail.state_label,
            "policies": detail.policies,
            "failing": detail.failing,
            "grace_ends_at": detail.grace_ends_at,
            "next_actions": detail.next_actions,
        }
        return Response(DeviceComplianceSerializer(data).data)
