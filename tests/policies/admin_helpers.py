"""What the policies admin tests share: a scoped policy manager, profiles and policies made through the
services, and the POST bodies of the editor pages."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from devices import services as device_services
from policies.choices import AssignmentTarget, DeliveryState, ProfileKind
from policies.models import ProfileDelivery
from policies.services.policies import policy_save
from policies.services.profiles import profile_fanout, profile_save
from tests.factories import SYSTEM, StaffFactory, grant

ALL = {"mode": "include", "target": AssignmentTarget.ALL_DEVICES}


def policy_manager(scope, username="policy-manager-a"):
    manager = StaffFactory(username=username)
    grant(manager, "Policy and profile manager", [scope])
    return manager


def make_profile(name, *, scope=None, kind=ProfileKind.PASSCODE, settings=None, rows=(ALL,), platforms=()):
    return profile_save(
        actor=SYSTEM,
        data={"name": name, "description": "", "scope": scope, "kind": kind, "platforms": list(platforms)},
        settings=settings if settings is not None else {"require_passcode": True, "min_length": 6},
        assignments=list(rows),
    )


def make_policy(name, *, scope=None, platform="ios", rows=(ALL,), **rules):
    return policy_save(
        actor=SYSTEM,
        data={"name": name, "description": "", "scope": scope, "platform": platform, **rules},
        actions=None,
        assignments=list(rows),
    )


def device_group(name, scope, members):
    return device_services.device_group_save(actor=SYSTEM, name=name, scope=scope, static_members=list(members))


def delivered(profile, *, error_on=()):
    """Run the fan-out now (tests do not commit, so its on-commit task never runs), then fail some."""
    profile_fanout(profile.pk)
    for device in error_on:
        ProfileDelivery.objects.filter(profile=profile, device=device).update(
            state=DeliveryState.ERROR, reason="The device said: payload rejected."
        )


def formset(prefix: str, rows: list[dict[str, Any]], *, initial: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def assignment_row(target=AssignmentTarget.ALL_DEVICES, mode="include", **extra) -> dict[str, Any]:
    row = {
        "mode": mode,
        "target": target,
        "user_group": "",
        "device_group": "",
        "filter_ownership": "",
        "filter_os_min": "",
        "filter_os_max": "",
    }
    row.update(extra)
    return row


def passcode_form(name="Passcode for everyone", *, scope="", rows=None, initial=0, **settings) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "passcode",
        "name": name,
        "description": "",
        "scope": scope,
        "setting_require_passcode": "true",
        "setting_min_length": "8",
        "setting_complexity": "alphanumeric",
        "setting_max_age_days": "",
        "setting_history": "",
        "setting_max_failed_attempts": "10",
        "setting_auto_lock_minutes": "5",
    }
    data.update({f"setting_{k}": v for k, v in settings.items()})
    data.update(formset("assignments", rows if rows is not None else [assignment_row()], initial=initial))
    return data


def wifi_form(name, *, password="", scope="", rows=None, initial=0) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "wifi",
        "name": name,
        "description": "",
        "scope": scope,
        "setting_ssid": "Corp-WiFi",
        "setting_security": "wpa2",
        "setting_password": password,
        "setting_auto_join": "true",
        "setting_hidden": "",
    }
    data.update(formset("assignments", rows if rows is not None else [assignment_row()], initial=initial))
    return data


def add_url(kind: str | None = None) -> str:
    url = reverse("admin:policies_configurationprofile_add")
    return f"{url}?kind={kind}" if kind else url


def change_url(obj) -> str:
    return reverse(f"admin:policies_{obj._meta.model_name}_change", args=[obj.pk])
