"""Second factor for the IT console (django-otp, TOTP authenticator apps).

* A staff member sets up an authenticator app on ``/admin/two-factor/`` (QR code and the secret
  as text), confirming it with a first code.
* From then on the console's sign-in asks for a code as well as the password, and a session
  started without one (a Company Portal sign-in) does not open the console.
* ``MDM_REQUIRE_STAFF_OTP`` sends staff without an authenticator app to the set-up page before
  any other console page.

The Company Portal's sign-in stays password-only.
"""

from __future__ import annotations

import base64

import segno
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import Actor, audit_record

DEVICE_NAME = "Authenticator app"


def _token_field():
    return forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 10}),
    )


def has_authenticator(user) -> bool:
    """True when ``user`` has a confirmed authenticator app (cached on the user for the request)."""
    if user is None or not user.is_authenticated:
        return False
    cached = user.__dict__.get("_mdm_has_otp")
    if cached is None:
        cached = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        user.__dict__["_mdm_has_otp"] = cached
    return cached


def is_verified(user) -> bool:
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def must_set_up(user) -> bool:
    """``MDM_REQUIRE_STAFF_OTP`` and a signed-in staff member without an authenticator app."""
    return bool(
        settings.MDM_REQUIRE_STAFF_OTP
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not has_authenticator(user)
    )


def _clean_token(value: str | None) -> str:
    return "".join((value or "").split())


class ConsoleLoginForm(AdminAuthenticationForm):
    """The console's sign-in: password, then the authenticator code when the person has an app."""

    otp_token = _token_field()

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": "Enter the 6-digit code from your authenticator app as well as your password.",
        "otp_invalid": "That authenticator code is wrong or has expired. Enter the code your app shows now.",
    }

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and has_authenticator(user):
            token = _clean_token(cleaned.get("otp_token"))
            if not token:
                raise ValidationError(self.error_messages["otp_required"], code="otp_required")
            device = match_token(user, token)
            if device is None:
                # Counts towards the sign-in lockout like a wrong password.
                user_login_failed.send(
                    sender=__name__, credentials={"username": user.get_username()}, request=self.request
                )
                raise ValidationError(self.error_messages["otp_invalid"], code="otp_invalid")
            user.otp_device = device  # django_otp marks the session verified on login
        return cleaned


class TokenForm(forms.Form):
    otp_token = _token_field()

    def clean_otp_token(self):
        token = _clean_token(self.cleaned_data.get("otp_token"))
        if not token.isdigit():
            raise ValidationError("Enter the 6-digit code your authenticator app shows.")
        return token


def _pending_device(user) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def _secret_text(device: TOTPDevice) -> str:
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def setup_view(site, request):
    """Set up, or remove, the signed-in staff member's authenticator app."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["otp_token"]
        actor = Actor.from_request(request)
        if confirmed is None:
            device = _pending_device(user)
            if device.verify_token(token):
                with transaction.atomic():
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    audit_record(actor=actor, verb="user.otp_enable", target=user, changes={"device": device.name})
                user.__dict__["_mdm_has_otp"] = True
                otp_login(request, device)
                messages.success(request, "Two-factor sign-in is on: the console will ask for a code when you sign in.")
                return redirect("admin:index")
            form.add_error("otp_token", "That code does not match. Check the time on your phone and try the new code.")
        elif settings.MDM_REQUIRE_STAFF_OTP:
            form.add_error(None, "Two-factor sign-in is required for staff here; it cannot be turned off.")
        elif confirmed.verify_token(token):
            with transaction.atomic():
                audit_record(actor=actor, verb="user.otp_disable", target=user, changes={"device": confirmed.name})
                TOTPDevice.objects.filter(user=user).delete()
            messages.success(request, "Two-factor sign-in is off.")
            return redirect("admin:otp_setup")
        else:
            form.add_error("otp_token", "That code does not match the code your authenticator app shows.")

    context = {**site.each_context(request), "title": "Two-factor sign-in", "form": form, "confirmed": confirmed}
    if confirmed is None:
        device = _pending_device(user)
        context["qr_svg"] = mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4, light="#fff"))  # noqa: S308
        context["secret"] = _secret_text(device)
        context["required"] = must_set_up(user)
    return TemplateResponse(request, "admin/otp_setup.html", context)
