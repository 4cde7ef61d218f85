"""The agent protocol's app routes (under ``/agent/v1/apps/``): the package download.

A device downloads a line-of-business package with its device secret, like every agent request.
Only a device the app is assigned to for installation (its ``AppInstall`` row says required or
available) or that has an open ``install_app`` command for it gets the file; any other device,
an unknown app or version, or an app without a package is answered 404, so a device cannot
probe the catalog.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.http import FileResponse
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions

from devices.choices import CommandType
from devices.models import OPEN_STATUSES, Device, DeviceCommand
from devices.protocol.views import ERRORS, AgentError, AgentView, agent_exception_handler

from .choices import AppIntent
from .models import App, AppInstall, AppVersion
from .services.delivery import subject_of

NOT_FOUND = "There is no package of this app for this device. Check in again to receive the current install command."


def _handler(exc, context):
    if isinstance(exc, exceptions.MethodNotAllowed):
        exc = AgentError(405, "invalid_request", "Use GET for this endpoint.")
    return agent_exception_handler(exc, context)


def package_for_device(device: Device, app_uuid, version: str | None) -> AppVersion | None:
    """The package ``device`` may download, or None. At most three queries."""
    assigned = AppInstall.objects.filter(
        device=device, app_id=OuterRef("pk"), intent__in=(AppIntent.REQUIRED, AppIntent.AVAILABLE)
    )
    app = (
        App.objects.filter(uuid=app_uuid, platform=device.platform)
        .select_related("current_version")
        .annotate(assigned=Exists(assigned))
        .first()
    )
    if app is None:
        return None
    if not app.assigned:
        commanded = DeviceCommand.objects.filter(
            device=device, command_type=CommandType.INSTALL_APP, status__in=OPEN_STATUSES, subject=subject_of(app)
        )
        if not commanded.exists():
            return None
    row = AppVersion.objects.filter(app=app, version=version).first() if version else app.current_version
    if row is None or not row.package:
        return None
    row.app = app
    return row


class AppPackageView(AgentView):
    def get_exception_handler(self):
        return _handler

    @extend_schema(
        tags=["agent"],
        summary="Download a line-of-business app package",
        parameters=[OpenApiParameter("version", str, description="The version from the install_app payload.")],
        responses={
            200: OpenApiResponse(OpenApiTypes.BINARY, description="The package file; its SHA-256 in X-Content-SHA256."),
            404: ERRORS[400],
            **{code: response for code, response in ERRORS.items() if code in (401, 410)},
        },
    )
    def get(self, request, app_uuid):
        row = package_for_device(request.auth, app_uuid, request.query_params.get("version"))
        if row is None:
            raise AgentError(404, "not_found", NOT_FOUND)
        name = f"{row.app.identifier or row.app.uuid}-{row.version}.{row.package_format or 'bin'}"
        response = FileResponse(
            row.package.storage.open(row.package.name, "rb"),
            as_attachment=True,
            filename=name,
            content_type="application/octet-stream",
        )
        response["X-Content-SHA256"] = row.sha256
        response["ETag"] = f'"{row.sha256}"'
        response["Cache-Control"] = "private, no-cache"
        return response


urlpatterns = [
    path("<uuid:app_uuid>/package", AppPackageView.as_view(), name="app-package"),
]
