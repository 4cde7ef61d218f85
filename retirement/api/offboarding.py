"""The offboarding API: offboard a person (deactivate, then handle every device and app instance), and
follow the records.

``POST /offboardings/`` runs ``retirement.services.offboarding_start`` (source ``api``), the same as the
console's offboarding page. Lists hold the records the caller may see; each item says what was done
and how far it got, derived from the retirement request or app data wipe it links to.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.response import Response

from mdm_portal.core import authz
from mdm_portal.core.api.viewsets import AuthzViewSetMixin
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import User

from ..choices import CorporateOffboarding, OffboardingSource, OffboardingState, OffboardingStep
from ..models import Offboarding, OffboardingItem
from ..selectors_offboarding import item_state, offboarding_state, offboardings_for
from ..services.offboarding import RUN_PERMISSION, offboarding_start
from .serializers import _choice_field

VIEW_PERMISSION = "retirement.view_offboarding"
STATE_SCHEMA = {"type": "string", "enum": list(OffboardingState.values)}
TAGS = ["retirement"]
OFFBOARDING_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The offboarding's id.")


@extend_schema_field(STATE_SCHEMA, component_name="OffboardingStateEnum")
class StateField(serializers.Field):
    """done, in_progress or attention, computed from the object by ``state_of``."""

    def __init__(self, state_of, **kwargs):
        self.state_of = state_of
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value):
        return str(self.state_of(value))


class OffboardingItemSerializer(serializers.ModelSerializer):
    step = _choice_field("OffboardingStepEnum", OffboardingStep)()
    device = serializers.UUIDField(source="device.uuid", read_only=True, allow_null=True, default=None)
    retirement_request = serializers.UUIDField(
        source="retirement_request.uuid", read_only=True, allow_null=True, default=None
    )
    app_data_wipe = serializers.UUIDField(source="app_data_wipe.uuid", read_only=True, allow_null=True, default=None)
    state = StateField(
        lambda item: item_state(item).state, help_text="done, in_progress or attention (IT should look)."
    )
    state_text = serializers.SerializerMethodField(help_text="The linked request's or wipe's state, in words.")

    class Meta:
        model = OffboardingItem
        fields = ["step", "label", "device", "retirement_request", "app_data_wipe", "note", "state", "state_text"]

    def get_state_text(self, obj) -> str:
        return item_state(obj).text


class OffboardingSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    user = serializers.CharField(source="username", read_only=True, help_text="The person's username.")
    scope = serializers.CharField(source="scope.slug", read_only=True)
    source = _choice_field("OffboardingSourceEnum", OffboardingSource)()
    corporate_action = _choice_field("CorporateOffboardingEnum", CorporateOffboarding)()
    state = StateField(offboarding_state, help_text="done, in_progress or attention (some item needs IT).")
    items = OffboardingItemSerializer(many=True, read_only=True)

    class Meta:
        model = Offboarding
        fields = [
            "id",
            "user",
            "user_label",
            "scope",
            "source",
            "corporate_action",
            "reason",
            "started_by_label",
            "started_at",
            "state",
            "items",
        ]


class OffboardingStartSerializer(serializers.Serializer):
    user = serializers.CharField(max_length=150, help_text="The username of the person to offboard.")
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, default="", help_text="Kept on every request."
    )


@extend_schema_view(
    list=extend_schema(summary="List the offboardings you may see", description="Newest first.", tags=TAGS),
    retrieve=extend_schema(summary="One offboarding with its items", parameters=[OFFBOARDING_ID], tags=TAGS),
    create=extend_schema(
        summary="Offboard a person",
        description="Deactivates the account (sign-in, sessions and API tokens stop working), then retires personal "
        "devices, wipes or reassigns corporate devices per the retirement settings, and wipes the company data from "
        "every app instance. An already deactivated account is offboarded again (devices enrolled since).",
        request=OffboardingStartSerializer,
        responses={
            201: OffboardingSerializer,
            400: OpenApiResponse(description="Unknown person, or the service refused: the sentence says why."),
            403: OpenApiResponse(description="You may not offboard this person."),
        },
        tags=TAGS,
    ),
)
class OffboardingViewSet(
    AuthzViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = OffboardingSerializer
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[0-9a-fA-F-]{36}"
    filter_backends: list = []
    action_permissions = {"list": VIEW_PERMISSION, "retrieve": VIEW_PERMISSION, "create": RUN_PERMISSION}

    def get_queryset(self):
        items = OffboardingItem.objects.select_related("device", "retirement_request", "app_data_wipe")
        return (
            offboardings_for(self.request.user)
            .select_related("scope")
            .prefetch_related(Prefetch("items", queryset=items))
            .order_by("-started_at", "-pk")
        )

    def get_serializer_class(self):
        return OffboardingStartSerializer if self.action == "create" else OffboardingSerializer

    def create(self, request, *args, **kwargs):
        body = OffboardingStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        people = authz.restrict(User.objects.all(), request.user, RUN_PERMISSION)
        person = people.filter(username=body.validated_data["user"]).first()
        if person is None:
            raise exceptions.ValidationError(
                {"user": [f"No person with the username {body.validated_data['user']!r} among those you may offboard."]}
            )
        try:
            offboarding = offboarding_start(
                actor=Actor.from_request(request),
                user=person,
                source=OffboardingSource.API,
                reason=body.validated_data["reason"],
            )
        except DjangoPermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc) or None) from exc
        except DjangoValidationError as exc:
            raise exceptions.ValidationError({"detail": exc.messages}) from exc
        data = OffboardingSerializer(self.get_queryset().get(pk=offboarding.pk)).data
        return Response(data, status=status.HTTP_201_CREATED)
