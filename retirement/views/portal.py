"""Company Portal pages of the retirement stage: "Remove this device", "Reset this device" and their progress.

Every page reaches the device through the ownership rule (``devices.selectors.portal_device_get``):
only its primary user sees it; anyone else, IT administrators included, gets the 404 of a device
that does not exist. Removing (retire: company apps, settings and data go, personal data stays) and
resetting (full wipe, only where the organisation allows it and on a corporate device, with the
device's name typed to confirm) go through ``retirement.services.retirement_request`` with the
employee as the audited actor and the ``portal`` source; its refusals become messages, never a 500.

The progress page follows the device's latest request by polling a small JSON status view until the
device is unenrolled (it then leaves My devices) or the request failed (the reason, "contact IT").
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from devices import selectors as device_selectors
from devices.choices import LifecycleState, Ownership
from devices.models import Device
from mdm_portal.core.audit import Actor
from mdm_portal.core.views.portal import PortalView
from policies.views.portal import DEVICE_WORDS

from ..choices import OPEN_STATUSES, RetirementAction, RetirementSource, RetirementStatus
from ..commands import ACTIONS_BY_RETIREMENT
from ..models import RetirementRequest, RetirementSettings
from ..services import retirement_request

Status = RetirementStatus
POLL_SECONDS = 4
POLL_MINUTES = 30
# The request is over: the page stops polling.
FINISHED = (Status.UNENROLLED, Status.FORCED, Status.FAILED, Status.CANCELLED)


def device_word(device: Device) -> str:
    return DEVICE_WORDS.get(device.platform, "device")


def reset_offered(device: Device) -> bool:
    """Whether to offer "Reset this device": the organisation allows it, on a corporate device that can be wiped."""
    return (
        device.lifecycle_state == LifecycleState.ENROLLED
        and device.ownership == Ownership.CORPORATE
        and RetirementSettings.load().allow_user_reset
        and ACTIONS_BY_RETIREMENT[RetirementAction.WIPE].eligibility(device).allowed
    )


def latest_request(device: Device) -> RetirementRequest | None:
    return RetirementRequest.objects.filter(device=device).order_by("-requested_at", "-pk").first()


def open_request(device: Device) -> RetirementRequest | None:
    return RetirementRequest.objects.filter(device=device, status__in=OPEN_STATUSES).first()


def progress_text(request: RetirementRequest, word: str) -> str:
    """Where the removal stands, in a sentence for the device's owner."""
    wipe = request.action == RetirementAction.WIPE
    status = request.status
    if status == Status.AWAITING_APPROVAL:
        return "Waiting for IT to approve the request. Nothing has changed on your device yet."
    if status == Status.COMMAND_SENT:
        return (
            f"Waiting for your {word} to check in. Keep it switched on and connected to the internet; "
            "it starts as soon as it is online."
        )
    if status == Status.ACKNOWLEDGED:
        if wipe:
            return f"Your {word} is resetting. This can take a while; keep it plugged in."
        return f"Your {word} is removing company apps, settings and data…"
    if status == Status.VERIFIED:
        return "Company apps, settings and data are gone. IT finishes removing the device from management shortly."
    if status in (Status.UNENROLLED, Status.FORCED):
        return f"{'Reset' if wipe else 'Removed'}. This device no longer appears in My devices."
    if status == Status.FAILED:
        reason = request.failure_reason.strip() or "the device did not confirm it"
        return f"The {'reset' if wipe else 'removal'} did not finish: {reason.rstrip('.')}. Contact IT for help."
    if status == Status.TIMED_OUT:
        return (
            f"Your {word} has not answered for a long time. Switch it on and connect it to the internet, or contact IT."
        )
    return f"The {'reset' if wipe else 'removal'} was cancelled. Your {word} is still managed."


def request_status(request: RetirementRequest, word: str) -> dict:
    return {
        "id": str(request.uuid),
        "action": request.action,
        "status": request.status,
        "done": request.status in (Status.UNENROLLED, Status.FORCED),
        "failed": request.status == Status.FAILED,
        "finished": request.status in FINISHED,
        "text": progress_text(request, word),
    }


def _progress_url(device: Device) -> str:
    return reverse("portal:device_removal", kwargs={"uuid": device.uuid})


class _RetirementStartView(PortalView):
    """A confirmation page (GET) and the request (POST) for one of my devices."""

    action = RetirementAction.RETIRE

    def offered(self, device: Device) -> bool:
        return device.lifecycle_state == LifecycleState.ENROLLED

    def get_device(self) -> Device:
        device = device_selectors.portal_device_get(user=self.request.user, uuid=self.kwargs["uuid"])
        if self.action == RetirementAction.WIPE and not reset_offered(device):
            # Hidden where it is not offered: the same 404 as a page that does not exist.
            raise Http404("No page here.")
        return device

    def get(self, request, *args, **kwargs):
        device = self.get_device()
        if open_request(device) is not None:
            return redirect(_progress_url(device))
        return self.render_to_response(self.get_context_data(device=device, **kwargs))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = kwargs.get("device") or self.get_device()
        context.update(
            device=device,
            device_word=device_word(device),
            can_act=self.offered(device),
            reset_offered=reset_offered(device),
            personal=device.ownership == Ownership.PERSONAL,
        )
        return context

    def check(self, request, device) -> str | None:
        """A sentence when the form is not filled in as asked."""
        return None

    def post(self, request, *args, **kwargs):
        device = self.get_device()
        problem = self.check(request, device)
        if problem:
            return self.render_to_response(self.get_context_data(device=device, error=problem), status=400)
        try:
            retirement_request(
                actor=Actor.from_request(request), device=device, action=self.action, source=RetirementSource.PORTAL
            )
        except (ValidationError, PermissionDenied) as error:
            text = " ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            messages.error(request, text)
            if open_request(device) is not None:
                return redirect(_progress_url(device))
            return redirect("portal:device_detail", uuid=device.uuid)
        return redirect(_progress_url(device))


class PortalDeviceRemoveView(_RetirementStartView):
    """Remove this device (retire): what goes and what stays, then one POST."""

    template_name = "portal/retirement/device_remove.html"
    action = RetirementAction.RETIRE


class PortalDeviceResetView(_RetirementStartView):
    """Reset this device (full wipe), where the organisation allows it: type the device's name to confirm."""

    template_name = "portal/retirement/device_reset.html"
    action = RetirementAction.WIPE

    def check(self, request, device) -> str | None:
        if request.POST.get("confirm_name", "").strip() != device.name:
            return f"Type the device's name exactly as shown ({device.name}) to confirm the reset."
        return None


class PortalDeviceRemovalView(PortalView):
    """The progress of my device's latest removal or reset, until it is unenrolled or failed."""

    template_name = "portal/retirement/device_removal.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = device_selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        request = latest_request(device)
        if request is None:
            raise Http404("This device has no removal in progress.")
        word = device_word(device)
        context.update(
            device=device,
            device_word=word,
            removal=request,
            progress=request_status(request, word),
            status_url=reverse("portal:device_removal_status", kwargs={"uuid": device.uuid}),
            poll_seconds=POLL_SECONDS,
            poll_minutes=POLL_MINUTES,
        )
        return context


class PortalDeviceRemovalStatusView(PortalView):
    """Where my device's latest removal stands (JSON, polled by the progress page).

    ``{"id", "action", "status", "done", "failed", "finished", "text"}``.
    """

    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        device = device_selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        removal = latest_request(device)
        if removal is None:
            raise Http404("This device has no removal in progress.")
        response = JsonResponse(request_status(removal, device_word(device)))
        response["Cache-Control"] = "no-store, private"
        return response
