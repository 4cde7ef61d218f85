"""Company Portal pages of the compliance stage: why one of my devices is (not) compliant, and "Check again".

Every page reaches the device through the ownership rule (``devices.selectors.portal_device_get``):
only its primary user sees it, and anyone else (another employee, an IT administrator) gets the
404 of a device that does not exist. IT reads compliance in the admin, not here.

"Check again" is an owner's action, not an IT permission: an employee holds no
``devices.sync_device``, so owning the device is what allows it. The sync is queued through
``devices.services.device_command_queue`` with the employee as the audited actor, and at most one
is open per device: while the device has not picked up the last request, another one is refused
with a message (it would change nothing, and it keeps a person from flooding the queue).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from devices import selectors as device_selectors
from devices.choices import CommandStatus, CommandType, ComplianceState, LifecycleState, Platform
from devices.models import OPEN_STATUSES, Device, DeviceCommand
from devices.services import device_command_queue
from mdm_portal.core.audit import Actor
from mdm_portal.core.templatetags.portal_time import ago
from mdm_portal.core.views.portal import PortalView
from mdm_portal.schedules import SCHEDULES

from ..choices import ComplianceRule, NoncomplianceActionType
from ..selectors.compliance import device_compliance_detail

# How often the page asks whether the device has checked in, and for how long (then it says so).
POLL_SECONDS = 5
POLL_MINUTES = 15
# The beat job that runs due noncompliance actions (mdm_portal/schedules.py): how soon "now" is.
ACTIONS_TASK = "policies.tasks.compliance_actions_task"
ASKED = "Your device was asked to check in; this page updates when it has."

# What a person calls their device in a sentence ("on your iPhone").
DEVICE_WORDS = {
    Platform.IOS: "iPhone",
    Platform.IPADOS: "iPad",
    Platform.ANDROID: "Android device",
    Platform.WINDOWS: "Windows PC",
    Platform.MACOS: "Mac",
    Platform.LINUX: "Linux computer",
}
SUMMARY = {
    ComplianceState.COMPLIANT: "This device meets every company requirement. Nothing to do.",
    ComplianceState.IN_GRACE: (
        "This device does not meet every company requirement yet. Fix what is listed below before the deadline "
        "to keep access to company email, files and apps."
    ),
    ComplianceState.NONCOMPLIANT: (
        "This device does not meet company requirements, so it cannot reach company email, files and apps. "
        "Fix what is listed below, then check again."
    ),
    ComplianceState.NOT_EVALUATED: "This device has not been checked yet. It is checked the next time it checks in.",
    ComplianceState.ERROR: (
        "This device could not be checked, because it did not report everything the requirements need. "
        "Check again; if this stays, contact IT."
    ),
}


# What each scheduled noncompliance action means for the person, in their words.
NEXT_ACTION_TEXT = {
    NoncomplianceActionType.MARK_NONCOMPLIANT: (
        "this device is marked noncompliant and loses access to company email, files and apps"
    ),
    NoncomplianceActionType.EMAIL: "you get an email with the steps on this page",
    NoncomplianceActionType.PUSH: "a reminder appears on this device",
    NoncomplianceActionType.LOCK: "this device is locked remotely; contact IT to unlock it",
    NoncomplianceActionType.RETIRE: (
        "IT is asked to remove this device from management, which removes company data and apps from it"
    ),
}
# Fix what others depend on first: an iPhone encrypts once it has a passcode.
FIRST_RULES = (
    ComplianceRule.PASSCODE_REQUIRED,
    ComplianceRule.PASSCODE_MIN_LENGTH,
    ComplianceRule.PASSCODE_MIN_QUALITY,
    ComplianceRule.ENCRYPTION_REQUIRED,
    ComplianceRule.OS_MIN,
)
RULE_ORDER = {rule: index for index, rule in enumerate(FIRST_RULES)}


def actions_every_minutes() -> int:
    """How often beat runs the noncompliance actions: an action that is due happens within this many minutes."""
    every = next((s.every_seconds for s in SCHEDULES if s.task == ACTIONS_TASK), 5 * 60)
    return max(1, every // 60)


def next_steps(actions, now) -> list[dict]:
    """The scheduled actions as ``{"when": "Within 5 minutes" | "Fri 27 Nov", "at": datetime, "text": sentence}``.

    An action that is due runs at the next run of the actions job, so "now" is said as the time that takes.
    """
    steps = []
    soon = f"Within {actions_every_minutes()} minutes"
    for action in actions:
        text = NEXT_ACTION_TEXT.get(action.action)
        if text is None:
            continue
        local = timezone.localtime(action.due_at)
        when = soon if action.due_at <= now else f"{local:%a} {local.day} {local:%b}"
        steps.append({"when": when, "at": action.due_at, "text": text})
    return steps


def latest_sync(device: Device) -> DeviceCommand | None:
    """The device's latest sync request, by anyone (the device came through the ownership rule)."""
    return DeviceCommand.objects.filter(device=device, command_type=CommandType.SYNC).order_by("-created_at").first()


def open_sync(device: Device) -> DeviceCommand | None:
    """The sync request the device has not answered yet, if any."""
    latest = latest_sync(device)
    return latest if latest is not None and latest.status in OPEN_STATUSES else None


def step_parts(step: str) -> list[tuple[str, bool]]:
    """A fix step as ``(text, is_code)`` parts: text between backticks is a command to type."""
    return [(part, index % 2 == 1) for index, part in enumerate(step.split("`")) if part]


def asked_ago(command: DeviceCommand) -> str:
    """ "just now" or "5 minutes ago": when the person asked."""
    return ago(command.created_at)


def _status(device: Device, pending: DeviceCommand | None) -> dict:
    return {
        "checking": pending is not None,
        "asked_at": pending.created_at.isoformat() if pending else None,
        "state": device.compliance_state,
        "state_label": device.get_compliance_state_display(),
        "last_checkin_at": device.last_checkin_at.isoformat() if device.last_checkin_at else None,
    }


class PortalDeviceComplianceView(PortalView):
    """One of my devices: its compliance state, every failing setting with the steps to fix it, Check again."""

    template_name = "portal/policies/device_compliance.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = device_selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        detail = device_compliance_detail(device)
        latest = latest_sync(device)
        pending = latest if latest is not None and latest.status in OPEN_STATUSES else None
        answered = None
        # The page reloads itself with ?checked=1 once the device has answered "Check again".
        if pending is None and latest is not None and self.request.GET.get("checked") == "1":
            answered = latest
        context.update(
            device=device,
            detail=detail,
            failing=[
                {"setting": item, "steps": [step_parts(step) for step in item.fix_steps]}
                for item in sorted(detail.failing, key=lambda item: RULE_ORDER.get(item.rule, len(RULE_ORDER)))
            ],
            next_steps=next_steps(detail.next_actions, timezone.now()),
            summary=SUMMARY.get(detail.state, ""),
            device_word=DEVICE_WORDS.get(device.platform, "device"),
            can_check=device.lifecycle_state == LifecycleState.ENROLLED,
            pending=pending,
            asked=asked_ago(pending) if pending else "",
            answered=answered,
            answered_ok=answered is not None and answered.status == CommandStatus.ACKNOWLEDGED,
            status_url=reverse("portal:device_compliance_status", kwargs={"uuid": device.uuid}),
            poll_seconds=POLL_SECONDS,
            poll_minutes=POLL_MINUTES,
            helpdesk=settings.MDM_HELPDESK_CONTACT,
        )
        return context


class PortalDeviceComplianceCheckView(PortalView):
    """Check again (POST): ask my device to check in now, so its compliance is evaluated afresh."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        device = device_selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        with transaction.atomic():
            # One request at a time per device: a second "Check again" waits for this row lock and
            # then sees the first one's sync, so two quick taps queue one sync.
            Device.objects.select_for_update().filter(pk=device.pk).first()
            pending = open_sync(device)
            if pending is not None:
                messages.info(
                    request,
                    f"{device.name} was already asked to check in ({asked_ago(pending)}) and has not yet; it does "
                    "as soon as it is switched on and online. This page updates when it has.",
                )
                return redirect("portal:device_compliance", uuid=device.uuid)
            try:
                device_command_queue(actor=Actor.from_request(request), device=device, command_type=CommandType.SYNC)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
                return redirect("portal:device_compliance", uuid=device.uuid)
        messages.success(request, ASKED)
        return redirect("portal:device_compliance", uuid=device.uuid)


class PortalDeviceComplianceStatusView(PortalView):
    """Whether my device has answered the last Check again, and its state (JSON, polled by the page).

    ``{"checking": bool, "asked_at", "state", "state_label", "last_checkin_at"}``.
    """

    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        device = device_selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        response = JsonResponse(_status(device, open_sync(device)))
        response["Cache-Control"] = "no-store, private"
        return response
