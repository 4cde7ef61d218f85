"""API for corporate identifiers and their CSV imports.

``/api/v1/corporate-identifiers/``: list, list one, delete (scoped like devices).
``/api/v1/corporate-identifiers/imports/``: upload a CSV (multipart) and follow its import; imports
span scopes, so only people who hold the permission everywhere see or start them.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from mdm_portal.core import authz
from mdm_portal.core.api.fields import SlugRelatedField
from mdm_portal.core.api.viewsets import AuthzViewSetMixin
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Scope, User

from .. import selectors_identifiers as selectors
from ..choices import IdentifierImportMode
from ..models import CorporateIdentifier, DeviceGroup, IdentifierImport
from ..services import identifiers as services

VIEW = "devices.view_corporateidentifier"
ADD = "devices.add_corporateidentifier"
DELETE = "devices.delete_corporateidentifier"
VIEW_IMPORT = "devices.view_identifierimport"
ADD_IMPORT = "devices.add_identifierimport"


# Identifiers ---------------------------------------------------------------------------------------


class CorporateIdentifierSerializer(serializers.ModelSerializer):
    scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.none(),
        error_messages={"does_not_exist": "No scope '{value}' where you may add identifiers."},
    )
    user = SlugRelatedField(
        slug_field="username",
        queryset=User.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No person with the username '{value}'."},
    )
    device_group = SlugRelatedField(
        slug_field="name",
        queryset=DeviceGroup.objects.none(),
        required=False,
        allow_null=True,
        error_messages={"does_not_exist": "No device group named '{value}'."},
    )
    device = SlugRelatedField(
        slug_field="uuid", read_only=True, allow_null=True, help_text="The device it matched; null until one enrols."
    )

    class Meta:
        model = CorporateIdentifier
        fields = [
            "id",
            "serial_number",
            "imei",
            "description",
            "scope",
            "user",
            "device_group",
            "device",
            "source_import",
            "created_at",
        ]
        read_only_fields = ["id", "device", "source_import", "created_at"]
        # The service checks duplicates against identifiers and live devices, with sentences.
        validators: list = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        self.fields["scope"].queryset = authz.scopes_for(user, ADD)
        self.fields["user"].queryset = authz.restrict(User.objects.all(), user, "core.view_user")
        self.fields["device_group"].queryset = authz.restrict(
            DeviceGroup.objects.all(), user, "devices.view_devicegroup"
        )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if instance.device_id is not None and not authz.can(user, "devices.view_device", instance.device):
            data["device"] = None  # matched a device in a scope the caller cannot see
        return data


class CorporateIdentifierFilter(django_filters.FilterSet):
    scope = django_filters.CharFilter(field_name="scope__slug")
    matched = django_filters.BooleanFilter(
        field_name="device", lookup_expr="isnull", exclude=True, label="Matched to a device"
    )

    class Meta:
        model = CorporateIdentifier
        fields = ["scope", "matched", "source_import"]


@extend_schema_view(
    list=extend_schema(summary="List the corporate identifiers you may see", tags=["corporate identifiers"]),
    retrieve=extend_schema(summary="One corporate identifier", tags=["corporate identifiers"]),
    create=extend_schema(
        summary="List one serial number and/or IMEI as corporate",
        description="A device enrolling with it becomes corporate, in its scope, user and group. A live device "
        "that already has it is linked and made corporate at once. Duplicates are a 400 that says which.",
        tags=["corporate identifiers"],
    ),
    destroy=extend_schema(summary="Remove a corporate identifier", tags=["corporate identifiers"]),
)
class CorporateIdentifierViewSet(
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CorporateIdentifierSerializer
    filterset_class = CorporateIdentifierFilter
    lookup_value_regex = r"\d+"
    search_fields = ["serial_number", "imei"]
    ordering_fields = ["created_at", "serial_number", "imei"]
    ordering = ["-created_at", "-id"]
    action_permissions = {"list": VIEW, "retrieve": VIEW, "create": ADD, "destroy": DELETE}

    def get_queryset(self):
        return selectors.corporate_identifier_list(user=self.request.user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.corporate_identifier_create(
            actor=Actor.from_request(self.request),
            scope=data["scope"],
            serial_number=data.get("serial_number", ""),
            imei=data.get("imei", ""),
            user=data.get("user"),
            device_group=data.get("device_group"),
            description=data.get("description", ""),
        )

    def perform_destroy(self, instance):
        services.corporate_identifier_delete(actor=Actor.from_request(self.request), identifier=instance)


# Imports ---------------------------------------------------------------------------------------------


class IdentifierImportErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True, help_text="The line of the file; null for the whole file.")
    reason = serializers.CharField()


class IdentifierImportSerializer(serializers.ModelSerializer):
    created_by = SlugRelatedField(slug_field="username", read_only=True)
    default_scope = SlugRelatedField(slug_field="slug", read_only=True)
    url = serializers.SerializerMethodField(help_text="Poll this until status is done, rejected or failed.")

    class Meta:
        model = IdentifierImport
        fields = [
            "id",
            "url",
            "original_name",
            "mode",
            "default_scope",
            "status",
            "total_rows",
            "processed_rows",
            "imported_rows",
            "error_rows",
            "created_by",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return reverse("corporate-identifier-import-detail", args=[obj.pk], request=self.context.get("request"))


class IdentifierImportDetailSerializer(IdentifierImportSerializer):
    errors = IdentifierImportErrorSerializer(
        many=True, read_only=True, help_text="The bad rows, the first 1,000; error_rows counts them all."
    )

    class Meta(IdentifierImportSerializer.Meta):
        fields = [*IdentifierImportSerializer.Meta.fields, "errors"]
        read_only_fields = fields


class IdentifierImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="UTF-8 CSV: serial_number and/or imei, user, scope, device_group, description."
    )
    mode = serializers.ChoiceField(choices=IdentifierImportMode.choices, default=IdentifierImportMode.GOOD_ROWS)
    default_scope = SlugRelatedField(
        slug_field="slug",
        queryset=Scope.objects.all(),
        required=False,
        allow_null=True,
        help_text="The scope (slug) of rows that name none.",
        error_messages={"does_not_exist": "No scope '{value}'."},
    )


@extend_schema_view(
    list=extend_schema(summary="List CSV imports of corporate identifiers", tags=["corporate identifiers"]),
    retrieve=extend_schema(
        summary="One import: its progress and the bad rows",
        responses=IdentifierImportDetailSerializer,
        tags=["corporate identifiers"],
    ),
)
class IdentifierImportViewSet(
    AuthzViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = IdentifierImportSerializer
    parser_classes = [MultiPartParser, FormParser]
    lookup_value_regex = r"\d+"
    filterset_fields = ["status"]
    ordering = ["-created_at", "-id"]
    action_permissions = {"list": VIEW_IMPORT, "retrieve": VIEW_IMPORT, "create": ADD_IMPORT}

    def get_queryset(self):
        return selectors.identifier_import_list(user=self.request.user)

    def get_serializer_class(self):
        return IdentifierImportDetailSerializer if self.action == "retrieve" else IdentifierImportSerializer

    @extend_schema(
        summary="Upload a CSV file of corporate identifiers",
        description="Answers 202 at once with the import and the URL to poll; a worker checks every row and "
        "imports the good ones (mode good_rows) or, only if every row is good, all of them (all_or_nothing). "
        "A file that is not CSV with a serial_number or imei column is a 400 that says why.",
        request={"multipart/form-data": IdentifierImportUploadSerializer},
        responses={202: IdentifierImportDetailSerializer},
        tags=["corporate identifiers"],
    )
    def create(self, request):
        upload = IdentifierImportUploadSerializer(data=request.data, context=self.get_serializer_context())
        upload.is_valid(raise_exception=True)
        identifier_import = services.identifier_import_create(
            actor=Actor.from_request(request),
            uploaded_file=upload.validated_data["file"],
            mode=upload.validated_data["mode"],
            default_scope=upload.validated_data.get("default_scope"),
        )
        identifier_import.refresh_from_db()  # a task that runs eagerly has already moved it on
        body = IdentifierImportDetailSerializer(identifier_import, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
