"""Company Portal pages of the devices app: My devices, self-enrolment, own-device actions.

Every page reads through the ownership rule (``authz.owned``): a person reaches only their own
devices and enrolment codes, and anything else is a 404, whatever IT role they hold.
"""

from __future__ import annotations

import secrets

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache

from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.views.portal import PortalView

from .. import selectors
from ..choices import APPLE_PLATFORMS, CommandType, LifecycleState, Ownership, Platform
from ..models import EnrollmentCode
from ..platforms import apple_enrollment, enrollment_uri
from ..selectors_enrollment import enrollment_failures_for_person
from ..services import device_command_queue
from ..services.enrollment import code_hash, enrollment_code_create, normalise_code

# What each platform's radio button says, so nobody has to know that an iPad runs "iPadOS".
PLATFORM_HINTS = {
    Platform.IOS: "iPhone",
    Platform.IPADOS: "iPad",
    Platform.ANDROID: "Android phone or tablet",
    Platform.WINDOWS: "Windows PC or laptop",
    Platform.MACOS: "Mac",
    Platform.LINUX: "Linux computer",
}
OWNERSHIP_HINTS = {
    Ownership.PERSONAL: "Your own device. IT manages only work apps and data on it.",
    Ownership.CORPORATE: "A device the company gave you.",
}
# The session remembers the enrolment forms it handed out (see PortalEnrollView), at most this many.
NONCE_SESSION_KEY = "portal_enroll_nonces"
MAX_NONCES = 10
# How often the "waiting for your device" element asks whether the device has enrolled.
POLL_SECONDS = 3
RECENT_COMMANDS = 10


def _server_url(request) -> str:
    """The portal's address as this person reaches it: what the agent is told to talk to."""
    return request.build_absolute_uri("/").rstrip("/")


def _no_store(response: HttpResponse) -> HttpResponse:
    """Keep a response that carries an enrolment code out of every cache and the back/forward cache."""
    response["Cache-Control"] = "no-store, private"
    response["Pragma"] = "no-cache"
    return response


def _display_code(raw: str) -> str:
    """``k7qmp 2xdab`` → ``K7QMP-2XDAB``: the form ``enrollment_code_create`` shows."""
    plain = normalise_code(raw)
    return f"{plain[:5]}-{plain[5:]}"


# My devices ------------------------------------------------------------------------------------------


class PortalDeviceListView(PortalView):
    """My devices: the employee's own devices with their state and last check-in."""

    template_name = "portal/devices/device_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["devices"] = selectors.portal_device_list(user=self.request.user)
        return context


class PortalDeviceDetailView(PortalView):
    """One of the employee's devices: its state, the actions they may take, and recent commands."""

    template_name = "portal/devices/device_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        context["device"] = device
        context["can_act"] = device.lifecycle_state == LifecycleState.ENROLLED
        # The device was fetched through the ownership rule, so its commands are the person's too.
        context["commands"] = list(device.commands.order_by("-created_at")[:RECENT_COMMANDS])
        return context


# Self-enrolment ----------------------------------------------------------------------------------------


class EnrollmentForm(forms.Form):
    platform = forms.ChoiceField(
        label="What are you enrolling?",
        choices=Platform.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose the kind of device you are enrolling.",
            "invalid_choice": "Choose one of the listed kinds of device.",
        },
    )
    ownership = forms.ChoiceField(
        label="Who owns it?",
        choices=Ownership.choices,
        widget=forms.RadioSelect,
        initial=Ownership.PERSONAL,
        error_messages={
            "required": "Choose whether the device is yours or the company's.",
            "invalid_choice": "Choose whether the device is yours or the company's.",
        },
    )
    nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def platform_options(self):
        """(value, label, hint, checked) for the template's radio list."""
        chosen = self["platform"].value()
        return [(value, label, PLATFORM_HINTS[value], value == chosen) for value, label in Platform.choices]

    def ownership_options(self):
        chosen = self["ownership"].value()
        return [(value, label, OWNERSHIP_HINTS[value], value == chosen) for value, label in Ownership.choices]


@method_decorator(never_cache, name="dispatch")
class PortalEnrollView(PortalView):
    """Enrol a device: choose the platform and ownership, get a one-time code, link and QR code.

    The code is shown in the reply to the POST and never again (only its hash is stored), so that
    reply is ``no-store``. Each form carries a nonce the session remembers: the first POST with it
    creates the code and spends the nonce; the same POST sent again (the browser's "resubmit the
    form?" on refresh or back) creates nothing and says that the code was shown once.
    """

    template_name = "portal/devices/enroll.html"

    def _issue_nonce(self, nonce: str | None = None) -> str:
        nonce = nonce or secrets.token_urlsafe(24)
        nonces = [*self.request.session.get(NONCE_SESSION_KEY, []), nonce][-MAX_NONCES:]
        self.request.session[NONCE_SESSION_KEY] = nonces
        return nonce

    def _spend_nonce(self, nonce: str) -> bool:
        nonces = self.request.session.get(NONCE_SESSION_KEY, [])
        if nonce not in nonces:
            return False
        self.request.session[NONCE_SESSION_KEY] = [n for n in nonces if n != nonce]
        return True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if "form" not in context:
            context["form"] = EnrollmentForm(initial={"nonce": self._issue_nonce(), "ownership": Ownership.PERSONAL})
        # Unused codes, so the person knows one is still open; never the codes themselves.
        open_codes = authz.owned(EnrollmentCode.objects.all(), self.request.user).filter(
            used_at__isnull=True, expires_at__gt=timezone.now()
        )
        context["open_codes"] = list(open_codes.order_by("-created_at")[:5])
        labels = dict(Platform.choices)
        context["failures"] = [
            {
                "device": failure.device_name or failure.serial_number or "A device",
                "platform": labels.get(failure.platform, failure.platform),
                "created_at": failure.created_at,
                "message": failure.message,
            }
            for failure in enrollment_failures_for_person(user=self.request.user, limit=5)
        ]
        return context

    def post(self, request, *args, **kwargs):
        form = EnrollmentForm(request.POST)
        if not form.is_valid():
            if "nonce" in form.errors:
                # A form the portal did not hand out (or a damaged one): show it again with a fresh nonce.
                data = request.POST.copy()
                data["nonce"] = self._issue_nonce()
                form = EnrollmentForm(data)
                form.is_valid()
            return self.render_to_response(self.get_context_data(form=form))
        nonce = form.cleaned_data["nonce"]
        if not self._spend_nonce(nonce):
            messages.warning(
                request,
                "This form was already sent, so no new code was created. An enrolment code is shown only "
                "once: if you did not note it, create a new one below.",
            )
            return redirect("portal:enroll")
        try:
            code_obj, code = enrollment_code_create(
                actor=Actor.from_request(request),
                user=request.user,
                platform=form.cleaned_data["platform"],
                ownership=form.cleaned_data["ownership"],
            )
        except ValidationError as error:
            # Nothing was created: the form may be sent again as it is.
            self._issue_nonce(nonce)
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
            return self.render_to_response(self.get_context_data(form=form))
        server_url = _server_url(request)
        link = enrollment_uri(server_url=server_url, code=code, platform=code_obj.platform)
        qr = segno.make(link, error="m")
        context = {
            "code": code,
            "code_obj": code_obj,
            "server_url": server_url,
            "enrollment_link": link,
            "qr_svg": mark_safe(  # noqa: S308 -- segno's own SVG of our own link; nothing the person typed
                qr.svg_inline(scale=1, border=4, dark="#0b2545", light="#ffffff", omitsize=True, svgclass="qr")
            ),
            "is_apple": code_obj.platform in APPLE_PLATFORMS,
            "device_word": PLATFORM_HINTS[code_obj.platform],
            "status_url": reverse("portal:enroll_status", kwargs={"pk": code_obj.pk}),
            "poll_seconds": POLL_SECONDS,
            "agent_name": settings.MDM_AGENT_NAME,
        }
        response = self.response_class(
            request=request, template="portal/devices/enroll_code.html", context=context, using=self.template_engine
        )
        return _no_store(response)


class PortalEnrollProfileView(PortalView):
    """The Apple enrolment profile (``.mobileconfig``) for a code the person has just been shown.

    How the download is secured: the code exists in clear only in the (``no-store``) page that
    showed it, so the "Download enrolment profile" button on that page is a form that POSTs the code
    back from a hidden field, with the CSRF token. The code never appears in a URL (no access log,
    browser history or Referer carries it). The view re-checks everything: the code must hash to
    an enrolment code *owned by the signed-in person* (someone else's code, or a made-up one, is the
    same 404), for an Apple platform, unused and unexpired. The profile is built in memory for the
    reply, never stored, and served ``no-store`` as ``application/x-apple-aspen-config``, the type
    Safari hands to the profile installer. Guessing gains nothing: only the person's own codes match,
    and they already hold them. A ``data:`` link in the page was rejected: Safari does not reliably
    hand a ``data:`` download to the profile installer, and the code would sit in the page twice.
    """

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        raw = request.POST.get("code", "")
        if not normalise_code(raw) or len(raw) > 32:
            raise Http404("No enrolment code matches the given query.")
        code_obj = authz.get_owned_or_404(EnrollmentCode.objects.all(), request.user, code_hash=code_hash(raw))
        problem = None
        if code_obj.platform not in APPLE_PLATFORMS:
            problem = "An enrolment profile exists only for iPhone, iPad and Mac."
        elif code_obj.used_at is not None:
            problem = "This enrolment code was already used. Create a new one to enrol another device."
        elif code_obj.expires_at <= timezone.now():
            problem = "This enrolment code has expired. Create a new one."
        if problem:
            messages.error(request, problem)
            return redirect("portal:enroll")
        body = apple_enrollment.enrollment_profile_bytes(
            server_url=_server_url(request),
            code=_display_code(raw),
            platform=code_obj.platform,
            expires_at=code_obj.expires_at,
            person=request.user.get_full_name() or request.user.get_username(),
        )
        response = HttpResponse(body, content_type=apple_enrollment.CONTENT_TYPE)
        response["Content-Disposition"] = f'attachment; filename="{apple_enrollment.FILENAME}"'
        return _no_store(response)


class PortalEnrollStatusView(PortalView):
    """Whether the device of one of the person's enrolment codes has enrolled yet (JSON, polled).

    ``{"state": "waiting" | "enrolled" | "expired", "expires_at": "...", "device": null | {...}}``;
    never the code itself.
    """

    http_method_names = ["get"]

    def get(self, request, *args, **kwargs):
        code_obj = authz.get_owned_or_404(
            EnrollmentCode.objects.select_related("device"), request.user, pk=kwargs["pk"]
        )
        device = code_obj.device if code_obj.used_at is not None else None
        if code_obj.used_at is not None:
            state = "enrolled"
        elif code_obj.expires_at <= timezone.now():
            state = "expired"
        else:
            state = "waiting"
        payload = {"state": state, "expires_at": code_obj.expires_at.isoformat(), "device": None}
        if device is not None:
            mine = device.primary_user_id == request.user.pk
            payload["device"] = {
                "name": device.name,
                "platform": device.get_platform_display(),
                "state": device.get_lifecycle_state_display(),
                # IT may have placed a pre-registered device with someone else; then there is no page to show.
                "url": reverse("portal:device_detail", kwargs={"uuid": device.uuid}) if mine else None,
            }
        return _no_store(JsonResponse(payload))


# Own-device actions ----------------------------------------------------------------------------------------


def _queue(request, device, command_type: str, params: dict, success: str) -> bool:
    """Queue a command on the person's own device; the service's refusal becomes a message, never a 500."""
    try:
        device_command_queue(actor=Actor.from_request(request), device=device, command_type=command_type, params=params)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return False
    messages.success(request, success)
    return True


class PortalDeviceSyncView(PortalView):
    """Ask the person's own device to check in now (POST)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        device = selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        _queue(
            request,
            device,
            CommandType.SYNC,
            {},
            f"Sync requested. {device.name} picks it up the next time it is online and checks in.",
        )
        return redirect("portal:device_detail", uuid=device.uuid)


class PortalDeviceLockView(PortalView):
    """Lock the person's own device, for when it is lost: GET asks for confirmation, POST locks."""

    template_name = "portal/devices/device_lock.html"
    http_method_names = ["get", "post"]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        device = selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        context["device"] = device
        context["can_act"] = device.lifecycle_state == LifecycleState.ENROLLED
        context.setdefault("message", "This device is locked. If you found it, please return it to its owner.")
        context.setdefault("phone_number", "")
        return context

    def post(self, request, *args, **kwargs):
        device = selectors.portal_device_get(user=request.user, uuid=kwargs["uuid"])
        params = {
            "message": request.POST.get("message", ""),
            "phone_number": request.POST.get("phone_number", ""),
        }
        success = f"Lock requested. {device.name} locks the next time it is online; unlock it with its passcode."
        if _queue(request, device, CommandType.LOCK, params, success):
            return redirect("portal:device_detail", uuid=device.uuid)
        return self.render_to_response(self.get_context_data(**kwargs, **params))
