import uuid
from typing import Any

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from mdm_portal.core import authz
from mdm_portal.core.api.viewsets import AuthzReadOnlyViewSet
from mdm_portal.core.audit import Actor

from .. import selectors, services
from ..choices import CommandStatus, CommandType
from ..commands import ACTIONS
from ..models import DeviceCommand
from ..tasks_commands import BACKGROUND_THRESHOLD, enqueue_bulk_queue
from .filters import DeviceFilter
from .serializers import (
    DeviceActionParamsSerializer,
    DeviceBulkActionResultSerializer,
    DeviceBulkActionSerializer,
    DeviceBulkFilterSerializer,
    DeviceCommandSerializer,
    DeviceSerializer,
    device_bulk_filter,
)

VIEW_DEVICE = "devices.view_device"
UUID_REGEX = "[0-9a-fA-F-]{36}"
# Only the actions that exist have a route: any other type is a 404, never an unmapped request.
ACTION_TYPES = "|".join(sorted(ACTIONS))
COMMAND_TYPE = OpenApiParameter(
    "command_type",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    enum=sorted(ACTIONS),
    description="The remote action. Each needs its own permission (for example devices.lock_device).",
)


def action_params(data: Any) -> dict[str, Any]:
    """The action's inputs from a request body; the command class validates them."""
    if data is None or data == "":
        return {}
    if not isinstance(data, dict):
        raise ValidationError({"detail": "Send the action's inputs as a JSON object, for example {}."})
    return dict(data.items())


@extend_schema_view(
    list=extend_schema(summary="List the devices you may see", tags=["devices"]),
    retrieve=extend_schema(summary="One device by its id", tags=["devices"]),
)
class DeviceViewSet(AuthzReadOnlyViewSet):
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["name", "serial_number", "imei", "primary_user__username"]
    ordering_fields = ["name", "last_checkin_at", "enrolled_at", "os_version_key"]
    ordering = ["name", "id"]

    @property
    def action_permissions(self) -> dict[str, str]:
        """Each remote action needs its own permission: somewhere to be asked, on the device to be queued."""
        permissions = {"list": VIEW_DEVICE, "retrieve": VIEW_DEVICE, "commands": VIEW_DEVICE}
        remote_action = ACTIONS.get(self.kwargs.get("command_type", ""))
        if remote_action is not None:
            permissions["queue_action"] = permissions["queue_bulk_action"] = remote_action.permission
        return permissions

    def get_queryset(self):
        return selectors.device_list(user=self.request.user)

    @extend_schema(
        operation_id="api_v1_devices_actions_create",
        summary="Queue a remote action on one device",
        description=(
            "The body holds the action's inputs: lock takes message and phone_number, rename takes name, "
            "reset_passcode takes an optional new_passcode, sync and restart take none. Answers 202 with the "
            "queued command; the device receives it at its next check-in. A device that cannot take the "
            "action (platform, ownership, not enrolled) is a 400 that says why."
        ),
        tags=["remote actions"],
        parameters=[COMMAND_TYPE],
        request=DeviceActionParamsSerializer,
        responses={202: DeviceCommandSerializer},
    )
    @action(detail=True, methods=["post"], url_path=rf"actions/(?P<command_type>{ACTION_TYPES})", url_name="action")
    def queue_action(self, request, id=None, command_type=None):
        device = self.get_object()  # 404 out of scope; 403 without this action's permission on the device
        command = services.device_command_queue(
            actor=Actor.from_request(request),
            device=device,
            command_type=command_type,
            params=action_params(request.data),
        )
        return Response(DeviceCommandSerializer(command).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="api_v1_devices_actions_bulk_create",
        summary="Queue a remote action on every device matching a filter",
        description=(
            "The filter takes the device list's filters and a list of device ids; an empty filter means "
            "every device you may see. Only devices in the scopes where you hold the action's permission "
            "get a command, and devices that cannot take it are skipped. Up to "
            f"{BACKGROUND_THRESHOLD} commands are queued at once and counted in the answer; a larger "
            "request is queued in the background (queued and skipped are null). Follow either with "
            "GET /api/v1/commands/?batch=<batch>."
        ),
        tags=["remote actions"],
        parameters=[COMMAND_TYPE],
        request=DeviceBulkActionSerializer,
        responses={202: DeviceBulkActionResultSerializer},
    )
    @action(
        detail=False, methods=["post"], url_path=rf"actions/(?P<command_type>{ACTION_TYPES})", url_name="bulk-action"
    )
    def queue_bulk_action(self, request, command_type=None):
        remote_action = ACTIONS[command_type]
        body = request.data
        if not isinstance(body, dict) or not isinstance(body.get("filter"), dict):
            raise ValidationError(
                {"detail": 'Send {"filter": {...}, "params": {...}}; an empty filter means every device you may see.'}
            )
        filter_input = DeviceBulkFilterSerializer(data=body["filter"])
        filter_input.is_valid(raise_exception=True)
        device_filter = filter_input.validated_data
        params = remote_action.clean(action_params(body.get("params")))  # a 400 before anything is counted
        matched = device_bulk_filter(self.get_queryset(), device_filter)
        permitted = authz.restrict(matched, request.user, remote_action.permission)
        matched_count, permitted_count = matched.order_by().count(), permitted.order_by().count()
        answer = {"matched": matched_count, "not_permitted": matched_count - permitted_count}
        actor = Actor.from_request(request)
        if permitted_count > BACKGROUND_THRESHOLD:
            batch = uuid.uuid4()
            selection = {"api_filter": filter_input.data}
            enqueue_bulk_queue(
                user=request.user,
                source_ip=actor.source_ip,
                command_type=command_type,
                params=params,
                batch=batch,
                selection=selection,
            )
            answer |= {"queued": None, "skipped": None, "batch": batch, "background": True}
        else:
            outcome = services.device_command_queue_bulk(
                actor=actor, devices=permitted, command_type=command_type, params=params
            )
            answer |= {**outcome, "background": False}
        return Response(DeviceBulkActionResultSerializer(answer).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="api_v1_devices_commands_list",
        summary="The commands queued for one device, newest first",
        tags=["remote actions"],
        responses=DeviceCommandSerializer(many=True),
    )
    @action(detail=True, methods=["get"], url_path="commands", url_name="commands", filter_backends=[])
    def commands(self, request, id=None):
        device = self.get_object()
        commands = DeviceCommand.objects.filter(device=device).order_by("-created_at", "-id")
        page = self.paginate_queryset(commands)
        for command in page:
            command.device = device  # the serializer shows the device's id; it is this one
        return self.get_paginated_response(DeviceCommandSerializer(page, many=True).data)


class DeviceCommandFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CommandStatus.choices)
    command_type = django_filters.MultipleChoiceFilter(choices=CommandType.choices)
    batch = django_filters.UUIDFilter(help_text="The batch id a bulk request answered with.")
    device = django_filters.UUIDFilter(field_name="device__uuid", help_text="A device id.")

    class Meta:
        model = DeviceCommand
        fields = ["status", "command_type", "batch", "device"]


@extend_schema_view(
    list=extend_schema(summary="List the commands of the devices you may see", tags=["remote actions"]),
    retrieve=extend_schema(summary="One command by its id", tags=["remote actions"]),
)
class DeviceCommandViewSet(AuthzReadOnlyViewSet):
    """Commands follow their device: whoever may see the device may see its commands."""

    serializer_class = DeviceCommandSerializer
    filterset_class = DeviceCommandFilter
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    lookup_value_regex = UUID_REGEX
    search_fields = ["device__name"]
    ordering_fields = ["created_at", "completed_at", "priority"]
    ordering = ["-created_at", "-id"]
    action_permissions = {"list": VIEW_DEVICE, "retrieve": VIEW_DEVICE, "cancel": VIEW_DEVICE}

    def get_queryset(self):
        return authz.restrict(DeviceCommand.objects.select_related("device"), self.request.user, VIEW_DEVICE)

    @extend_schema(
        operation_id="api_v1_commands_cancel_create",
        summary="Cancel a command the device has not received yet",
        description="Only a queued (or not now) command can be cancelled; it needs the action's own permission.",
        tags=["remote actions"],
        request=None,
        responses={200: DeviceCommandSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, id=None):
        command = self.get_object()
        remote_action = ACTIONS.get(command.command_type)
        if remote_action is None or not authz.can(request.user, remote_action.permission, command.device):
            label = remote_action.label.lower() if remote_action else "this command"
            raise PermissionDenied(f"Your role does not allow {label} on this device, so you cannot cancel it.")
        command = services.device_command_cancel(actor=Actor.from_request(request), command=command)
        return Response(DeviceCommandSerializer(command).data)
