"""The effective app protection (MAM) policy for one person and one app, and the access decision.

**Which policies apply.** A protection policy applies to a person in an app on a platform when it is
for that platform, lists the app, belongs to the person's home scope or to the whole organisation
(no scope), one of its include assignments targets a user group the person is a member of, and none
of its exclude assignments does (an exclude wins over every include).

**Several policies: the most restrictive value of each setting.**

* ``data_isolation``, ``block_backup``, ``block_save_as``, ``managed_browser_required``,
  ``pin.required``: on when any policy turns it on.
* ``clipboard``: the lowest level (blocked < managed apps < managed apps with paste in < any app);
  ``sharing`` likewise (none < managed apps < any app).
* ``pin.length``: the longest, ``pin.recheck_minutes``: the shortest, among the policies requiring a PIN
  (both ``null`` when none does).
* ``offline.block_after_minutes`` and ``offline.wipe_after_days``: the shortest.
* ``min_app_version`` and ``min_os_version``: the highest (empty: no minimum).
* ``web.blocked_urls``: every policy's blocked URLs. ``web.allowed_urls``: ``null`` when no policy
  has an allow list (any URL that is not blocked), otherwise only the URLs on every allow list
  (``[]``: none is allowed). A URL on both lists is blocked.

The result is a JSON-able dict (what the managed-app check-in sends) whose ``version`` is a
fingerprint of everything else in it: any change to a policy, to who it targets or to which policies
apply gives a new version, and nothing else does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from django.db.models import Exists, OuterRef, Q

from devices.versions import version_key

from .choices import ClipboardLevel, SharingLevel
from .models import App, AppProtectionAssignment, AppProtectionPolicy

# Most restrictive first.
CLIPBOARD_ORDER = (
    ClipboardLevel.BLOCKED,
    ClipboardLevel.MANAGED_APPS,
    ClipboardLevel.MANAGED_APPS_PASTE_IN,
    ClipboardLevel.ANY_APP,
)
SHARING_ORDER = (SharingLevel.NONE, SharingLevel.MANAGED_APPS, SharingLevel.ANY_APP)
# The fingerprint fits a PositiveIntegerField on every database (0 means "no policy").
_VERSION_MASK = 0x7FFFFFFF


def applicable_policies(*, user: Any, app: App | None, platform: str) -> list[AppProtectionPolicy]:
    """The protection policies that apply to ``user`` in ``app`` on ``platform``, by name. One query."""
    if app is None or app.platform != platform or user is None or user.pk is None:
        return []
    member_of = Q(policy=OuterRef("pk"), user_group__members=user)
    included = AppProtectionAssignment.objects.filter(member_of, exclude=False)
    excluded = AppProtectionAssignment.objects.filter(member_of, exclude=True)
    in_scope = (Q(scope__isnull=True) | Q(scope_id=user.scope_id)) if user.scope_id else Q(scope__isnull=True)
    return list(
        AppProtectionPolicy.objects.filter(in_scope, platform=platform, apps=app)
        .filter(Exists(included))
        .exclude(Exists(excluded))
        .order_by("name", "pk")
    )


def _strictest(values: Sequence[str], order: Sequence[str]) -> str:
    return min(values, key=lambda value: order.index(value) if value in order else len(order))


def _highest_version(values: Sequence[str]) -> str:
    versions = [value.strip() for value in values if value and value.strip()]
    return max(versions, key=version_key) if versions else ""


def _urls(value: Any) -> list[str]:
    return [str(url).strip() for url in value or [] if str(url).strip()]


def merge(policies: Sequence[AppProtectionPolicy]) -> dict[str, Any] | None:
    """The effective settings of ``policies`` (the module docstring's rule), or None for none."""
    if not policies:
        return None
    with_pin = [policy for policy in policies if policy.pin_required]
    allow_lists = [set(_urls(policy.allowed_urls)) for policy in policies if _urls(policy.allowed_urls)]
    allowed = sorted(set.intersection(*allow_lists)) if allow_lists else None
    settings = {
        "policies": [{"id": str(policy.uuid), "name": policy.name, "version": policy.version} for policy in policies],
        "data_isolation": any(policy.data_isolation for policy in policies),
        "clipboard": _strictest([policy.clipboard for policy in policies], CLIPBOARD_ORDER),
        "block_backup": any(policy.block_backup for policy in policies),
        "block_save_as": any(policy.block_save_as for policy in policies),
        "sharing": _strictest([policy.sharing for policy in policies], SHARING_ORDER),
        "web": {
            "managed_browser_required": any(policy.managed_browser_required for policy in policies),
            "allowed_urls": allowed,
            "blocked_urls": sorted({url for policy in policies for url in _urls(policy.blocked_urls)}),
        },
        "pin": {
            "required": bool(with_pin),
            "length": max(policy.pin_length for policy in with_pin) if with_pin else None,
            "recheck_minutes": min(policy.pin_recheck_minutes for policy in with_pin) if with_pin else None,
        },
        "offline": {
            "block_after_minutes": min(policy.offline_block_minutes for policy in policies),
            "wipe_after_days": min(policy.offline_wipe_days for policy in policies),
        },
        "min_app_version": _highest_version([policy.min_app_version for policy in policies]),
        "min_os_version": _highest_version([policy.min_os_version for policy in policies]),
    }
    return {"version": fingerprint(settings), **settings}


def fingerprint(settings: dict[str, Any]) -> int:
    """A number from 1 to 2**31 - 1 that changes whenever ``settings`` (without ``version``) does."""
    content = {key: value for key, value in settings.items() if key != "version"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).digest()
    return (int.from_bytes(digest[:4], "big") & _VERSION_MASK) or 1


def effective_policy(*, user: Any, app: App | None, platform: str) -> dict[str, Any] | None:
    """The effective protection policy of ``user`` in ``app`` on ``platform``; None when none applies."""
    return merge(applicable_policies(user=user, app=app, platform=platform))


def _too_old(reported: str, minimum: str) -> bool:
    return bool(minimum) and version_key(reported or "") < version_key(minimum)


def access_decision(
    policy: dict[str, Any] | None,
    *,
    app_version: str,
    os_version: str,
    user_active: bool = True,
    wipe_pending: bool = False,
) -> dict[str, Any]:
    """Whether the app may open org data now: ``{"allowed", "code", "reason"}``.

    ``code`` names the first rule that blocks (``ok`` when none does); ``reason`` has a sentence per
    blocking rule, each saying what to do next.
    """
    blocks: list[tuple[str, str]] = []
    if not user_active:
        blocks.append(("account_disabled", "Your account is disabled. Ask IT if you think this is a mistake."))
    if wipe_pending:
        blocks.append(
            (
                "wipe_pending",
                "IT removed your organisation's data from this app. Sign in again to use it with your work account.",
            )
        )
    minimum_app = (policy or {}).get("min_app_version") or ""
    if _too_old(app_version, minimum_app):
        shown = f"version {app_version}" if app_version else "an unknown version"
        blocks.append(
            (
                "app_version_too_old",
                f"This app is {shown}; your organisation requires {minimum_app} or later. "
                "Update the app from the store, then open it again.",
            )
        )
    minimum_os = (policy or {}).get("min_os_version") or ""
    if _too_old(os_version, minimum_os):
        shown = os_version or "an unknown version"
        blocks.append(
            (
                "os_version_too_old",
                f"This device runs OS {shown}; your organisation requires {minimum_os} or later. "
                "Update the operating system, then open the app again.",
            )
        )
    if not blocks:
        return {"allowed": True, "code": "ok", "reason": ""}
    return {"allowed": False, "code": blocks[0][0], "reason": " ".join(sentence for _, sentence in blocks)}
