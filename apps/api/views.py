"""The apps API: the catalog (apps, assignments, versions), installs and their status, retries, app
protection policies, managed app instances and selective wipes.

Lists hold what the caller may see (``authz.restrict``); one object outside their scopes is a 404.
Writes go through the services; any refusal of theirs is a 400 with a sentence per field.
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings

from devices.choices import Platform
from mdm_portal.core import authz
from mdm_portal.core.api.viewsets import AuthzViewSetMixin
from mdm_portal.core.audit import Actor
from policies.api.renderers import CSVOrJSONErrorsMixin, CSVRenderer
from policies.reports_csv import Table, csv_response

from ..choices import AppKind, InstallState
from ..models import App, AppDataWipe, AppInstall, AppProtectionPolicy, AppVersion, ManagedAppInstance
from ..selectors import STATE_ORDER, install_counts
from ..services import app_delete, app_installs_retry_failed, app_save, app_version_add
from ..services.mam import app_data_wipe_request
from ..services.protection import protection_policy_delete, protection_policy_save
from .serializers import (
    AppDataWipeSerializer,
    AppInstallSerializer,
    AppSerializer,
    AppVersionCreateSerializer,
    AppVersionSerializer,
    InstallStatusSerializer,
    ManagedAppInstanceSerializer,
    ProtectionPolicySerializer,
    RetryResultSerializer,
    WipeRequestSerializer,
    counts_of,
)

VIEW_APP = "apps.view_app"
CHANGE_APP = "apps.change_app"
VIEW_INSTALL = "apps.view_appinstall"
RETRY = "apps.retry_app"
VIEW_PROTECTION = "apps.view_appprotectionpolicy"
VIEW_INSTANCE = "apps.view_managedappinstance"
WIPE = "apps.wipe_managedappinstance"
UUID_REGEX = "[0-9a-fA-F-]{36}"
APP_FIELDS = ("name", "publisher", "description", "scope", "kind", "platform", "identifier", "store_id", "url")
ASSIGNMENT_FIELDS = ("mode", "target", "user_group", "device_group", "intent")
ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The app's id.")
FORMAT = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="csv: the counts as a CSV file (also with 'Accept: text/csv').",
)


def app_assignment_rows(rows: list[dict] | None) -> list[dict] | None:
    """Validated assignment rows as ``app_save`` takes them (groups already resolved to objects)."""
    if rows is None:
        return None
    return [
        {
            **{key: row.get(key) for key in ASSIGNMENT_FIELDS if row.get(key) is not None},
            "filter_platforms": row.get("filter_platforms") or [],
            "filter_ownership": row.get("filter_ownership") or "",
            "filter_os_min": row.get("filter_os_min") or "",
            "filter_os_max": row.get("filter_os_max") or "",
        }
        for row in rows
    ]


# Apps -----------------------------------------------------------------------------------------------------


class AppFilter(django_filters.FilterSet):
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    kind = django_filters.MultipleChoiceFilter(choices=AppKind.choices)
    scope = django_filters.CharFilter(field_name="scope__slug", help_text="A scope's slug.")
    organisation_wide = django_filters.BooleanFilter(field_name="scope", lookup_expr="isnull")

    class Meta:
        model = App
        fields = ["platform", "kind", "scope", "organisation_wide"]


class InstallFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=InstallState.choices)
    requested_by_user = django_filters.BooleanFilter(help_text="Installed from the Company Portal.")

    class Meta:
        model = AppInstall
        fields = ["state", "requested_by_user"]


@extend_schema_view(
    list=extend_schema(summary="List the apps you may see", tags=["apps"]),
    retrieve=extend_schema(summary="One app", tags=["apps"]),
    create=extend_schema(
        summary="Add an app to the catalog",
        description="A store app (its identifier, the store id), a line-of-business app (then upload its package "
        "with POST /apps/{id}/versions/) or a web link, with its assignments. Assignments are checked all together: "
        "one wrong row and nothing is saved. Devices it is required on receive it at their next check-in.",
        tags=["apps"],
    ),
    update=extend_schema(summary="Change an app", tags=["apps"]),
    partial_update=extend_schema(summary="Change some fields of an app", tags=["apps"]),
    destroy=extend_schema(
        summary="Delete an app",
        description="Devices where it is installed because it was required are told to remove it.",
        tags=["apps"],
    ),
)
class AppViewSet(
    CSVOrJSONErrorsMixin,
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = AppSerializer
    filterset_class = AppFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["name", "publisher", "identifier"]
    ordering_fields = ["name", "platform", "updated_at", "created_at"]
    ordering = ["name", "platform", "id"]
    action_permissions = {
        "list": VIEW_APP,
        "retrieve": VIEW_APP,
        "create": "apps.add_app",
        "update": CHANGE_APP,
        "partial_update": CHANGE_APP,
        "destroy": "apps.delete_app",
        "versions": VIEW_APP,
        "versions_add": CHANGE_APP,
        "installs": VIEW_APP,
        "retry_failed": RETRY,
        "install_status": VIEW_APP,
    }

    def get_queryset(self):
        apps = App.objects.select_related("scope", "current_version").prefetch_related(
            "assignments__user_group", "assignments__device_group"
        )
        return authz.restrict(apps, self.request.user, VIEW_APP)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context.setdefault("install_counts", {})
        return context

    def _serialize(self, apps, **kwargs):
        counts = install_counts([app.pk for app in apps], self.request.user)
        return AppSerializer(apps, context={**self.get_serializer_context(), "install_counts": counts}, **kwargs)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self._serialize(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        return Response(self._serialize([self.get_object()], many=True).data[0])

    def _save(self, serializer, app=None):
        data = serializer.validated_data
        saved = app_save(
            actor=Actor.from_request(self.request),
            app=app,
            data={key: data[key] for key in APP_FIELDS if key in data},
            assignments=app_assignment_rows(data.get("assignments")),
            user=self.request.user,
        )
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        app_delete(actor=Actor.from_request(self.request), app=instance)

    def _done(self, response):
        # Answer a write with the counts too, as list and retrieve do.
        if isinstance(response.data, dict) and "id" in response.data:
            app = self.get_queryset().get(uuid=response.data["id"])
            response.data = self._serialize([app], many=True).data[0]
        return response

    def create(self, request, *args, **kwargs):
        return self._done(super().create(request, *args, **kwargs))

    def update(self, request, *args, **kwargs):
        return self._done(super().update(request, *args, **kwargs))

    # Versions ------------------------------------------------------------------------------------------------

    @extend_schema(
        operation_id="api_v1_apps_versions_list",
        summary="The app's versions, newest first",
        tags=["apps"],
        parameters=[ID],
        responses=AppVersionSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="versions",
        url_name="versions",
        filter_backends=[],
        parser_classes=[MultiPartParser, FormParser, JSONParser],
    )
    def versions(self, request, id=None):
        app = self.get_object()
        versions = AppVersion.objects.filter(app=app).order_by("-version_key", "-id")
        page = self.paginate_queryset(versions)
        for version in page:
            version.app = app
        return self.get_paginated_response(AppVersionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="api_v1_apps_versions_create",
        summary="Add a version (upload a line-of-business package as multipart/form-data)",
        description="It becomes the current version: devices with an older one are updated (supersedence). The "
        "package's format must be the one the app's platform installs; its version and identifier are read from it "
        "where the format allows, and must agree with what you enter. Size limit: MDM_APP_PACKAGE_MAX_BYTES.",
        tags=["apps"],
        parameters=[ID],
        request={"multipart/form-data": AppVersionCreateSerializer, "application/json": AppVersionCreateSerializer},
        responses={201: AppVersionSerializer},
    )
    @versions.mapping.post
    def versions_add(self, request, id=None):
        app = self.get_object()
        serializer = AppVersionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        row = app_version_add(
            actor=Actor.from_request(request),
            app=app,
            version=data.get("version") or None,
            package=data.get("package"),
            min_os_version=data.get("min_os_version") or "",
            notes=data.get("notes") or "",
        )
        row.app = App.objects.get(pk=app.pk)
        return Response(AppVersionSerializer(row).data, status=status.HTTP_201_CREATED)

    # Installs ------------------------------------------------------------------------------------------------

    def _installs(self, app: App, action_name: str = VIEW_INSTALL):
        return authz.restrict(AppInstall.objects.filter(app=app), self.request.user, action_name)

    @extend_schema(
        operation_id="api_v1_apps_installs_list",
        summary="Where the app stands on each device that has an install row",
        tags=["apps"],
        parameters=[
            ID,
            OpenApiParameter("state", OpenApiTypes.STR, many=True, enum=InstallState.values, description="States."),
            OpenApiParameter("requested_by_user", OpenApiTypes.BOOL, description="Installed from the Company Portal."),
        ],
        responses=AppInstallSerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path="installs", url_name="installs", filter_backends=[])
    def installs(self, request, id=None):
        app = self.get_object()
        installs = self._installs(app).select_related("device__primary_user").order_by("device__name", "device_id")
        filterset = InstallFilter(request.query_params, queryset=installs)
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(AppInstallSerializer(page, many=True).data)

    @extend_schema(
        operation_id="api_v1_apps_retry_failed_create",
        summary="Queue the app again on every device where its install (or removal) failed",
        description="Only the devices you may retry on; devices that are no longer enrolled are skipped.",
        tags=["apps"],
        parameters=[ID],
        request=None,
        responses={200: RetryResultSerializer},
    )
    @action(detail=True, methods=["post"], url_path="retry-failed", url_name="retry-failed")
    def retry_failed(self, request, id=None):
        app = self.get_object()
        retried = app_installs_retry_failed(actor=Actor.from_request(request), installs=self._installs(app, RETRY))
        return Response(RetryResultSerializer({"retried": retried}).data)

    @extend_schema(
        operation_id="api_v1_apps_install_status_retrieve",
        summary="Devices per install state of the app",
        description="Among the devices you may see. CSV: one line per state, then the total.",
        tags=["apps"],
        parameters=[ID, FORMAT],
        responses={
            (200, "application/json"): InstallStatusSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The same counts as CSV."),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="install-status",
        url_name="install-status",
        filter_backends=[],
        pagination_class=None,
        renderer_classes=[*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer],
    )
    def install_status(self, request, id=None):
        app = self.get_object()
        counts = counts_of(install_counts([app.pk], request.user).get(app.pk))
        total = sum(counts.values())
        if self.wants_csv(request):
            labels = dict(InstallState.choices)
            rows = [["state", "label", "devices"], *([s, labels[s], counts[s]] for s in STATE_ORDER)]
            rows.append(["total", "All devices", total])
            return csv_response(Table(f"app-install-status-{app.uuid}", rows))
        data = {
            "app": app.uuid,
            "name": app.name,
            "current_version": app.current_version.version if app.current_version_id else None,
            "total": total,
            "counts": counts,
        }
        return Response(InstallStatusSerializer(data).data)


# App protection policies -------------------------------------------------------------------------------


class ProtectionPolicyFilter(django_filters.FilterSet):
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    scope = django_filters.CharFilter(field_name="scope__slug", help_text="A scope's slug.")
    organisation_wide = django_filters.BooleanFilter(field_name="scope", lookup_expr="isnull")

    class Meta:
        model = AppProtectionPolicy
        fields = ["platform", "scope", "organisation_wide"]


PROTECTION_FIELDS = (
    "name",
    "description",
    "scope",
    "platform",
    "data_isolation",
    "clipboard",
    "block_backup",
    "block_save_as",
    "sharing",
    "managed_browser_required",
    "allowed_urls",
    "blocked_urls",
    "pin_required",
    "pin_length",
    "pin_recheck_minutes",
    "offline_block_minutes",
    "offline_wipe_days",
    "min_app_version",
    "min_os_version",
)


@extend_schema_view(
    list=extend_schema(summary="List the app protection policies you may see", tags=["app protection"]),
    retrieve=extend_schema(summary="One app protection policy", tags=["app protection"]),
    create=extend_schema(
        summary="Create an app protection policy",
        description="Settings, the apps it protects and the user groups it applies to, in one request; nothing is "
        "saved if anything is wrong. App instances receive it at their next check-in.",
        tags=["app protection"],
    ),
    update=extend_schema(summary="Change an app protection policy", tags=["app protection"]),
    partial_update=extend_schema(summary="Change some fields of an app protection policy", tags=["app protection"]),
    destroy=extend_schema(summary="Delete an app protection policy", tags=["app protection"]),
)
class ProtectionPolicyViewSet(
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProtectionPolicySerializer
    filterset_class = ProtectionPolicyFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["name", "description"]
    ordering_fields = ["name", "updated_at", "created_at"]
    ordering = ["name", "id"]
    action_permissions = {
        "list": VIEW_PROTECTION,
        "retrieve": VIEW_PROTECTION,
        "create": "apps.add_appprotectionpolicy",
        "update": "apps.change_appprotectionpolicy",
        "partial_update": "apps.change_appprotectionpolicy",
        "destroy": "apps.delete_appprotectionpolicy",
    }

    def get_queryset(self):
        policies = AppProtectionPolicy.objects.select_related("scope").prefetch_related(
            "apps", "assignments__user_group"
        )
        return authz.restrict(policies, self.request.user, VIEW_PROTECTION)

    def _save(self, serializer, policy=None):
        data = serializer.validated_data
        if policy is not None:
            apps = data["apps"] if "apps" in data else list(policy.apps.all())
            rows = (
                data["assignments"]
                if "assignments" in data
                else [{"user_group": a.user_group, "exclude": a.exclude} for a in policy.assignments.all()]
            )
        else:
            apps, rows = data.get("apps") or [], data.get("assignments") or []
        saved = protection_policy_save(
            actor=Actor.from_request(self.request),
            policy=policy,
            data={key: data[key] for key in PROTECTION_FIELDS if key in data},
            apps=list(apps),
            assignments=[dict(row) for row in rows],
            user=self.request.user,
        )
        serializer.instance = self.get_queryset().get(pk=saved.pk)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        protection_policy_delete(actor=Actor.from_request(self.request), policy=instance)


# Managed app instances -------------------------------------------------------------------------------------


class ManagedAppInstanceFilter(django_filters.FilterSet):
    user = django_filters.CharFilter(field_name="user__username", help_text="The person's username.")
    app_identifier = django_filters.CharFilter(help_text="Bundle id or package name.")
    platform = django_filters.MultipleChoiceFilter(choices=Platform.choices)
    wiped = django_filters.BooleanFilter(
        field_name="revoked_at", lookup_expr="isnull", exclude=True, help_text="Its org data was wiped."
    )

    class Meta:
        model = ManagedAppInstance
        fields = ["user", "app_identifier", "platform", "wiped"]


@extend_schema_view(
    list=extend_schema(summary="List the managed app instances you may see", tags=["app protection"]),
    retrieve=extend_schema(summary="One managed app instance, with its wipes", tags=["app protection"]),
)
class ManagedAppInstanceViewSet(AuthzViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Apps signed in with a person's identity on a device that need not be enrolled (MAM)."""

    serializer_class = ManagedAppInstanceSerializer
    filterset_class = ManagedAppInstanceFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["app_identifier", "device_name", "user__username"]
    ordering_fields = ["last_checkin_at", "registered_at"]
    ordering = ["-last_checkin_at", "id"]
    action_permissions = {"list": VIEW_INSTANCE, "retrieve": VIEW_INSTANCE, "wipe": WIPE}

    def get_queryset(self):
        instances = ManagedAppInstance.objects.select_related("user", "app", "device", "policy").prefetch_related(
            Prefetch("wipes", queryset=AppDataWipe.objects.order_by("-requested_at", "-id"))
        )
        return authz.restrict(instances, self.request.user, VIEW_INSTANCE)

    @extend_schema(
        operation_id="api_v1_app_instances_wipe_create",
        summary="Wipe the org data from this app instance",
        description="The app receives the wipe at its next check-in and confirms it; until then the wipe is pending "
        "and visible here. Asking again while one is open returns that one.",
        tags=["app protection"],
        request=WipeRequestSerializer,
        responses={202: AppDataWipeSerializer},
    )
    @action(detail=True, methods=["post"], url_path="wipe", url_name="wipe")
    def wipe(self, request, id=None):
        instance = self.get_object()
        serializer = WipeRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wipe = app_data_wipe_request(
            actor=Actor.from_request(request), instance=instance, reason=serializer.validated_data["reason"]
        )
        return Response(AppDataWipeSerializer(wipe).data, status=status.HTTP_202_ACCEPTED)
