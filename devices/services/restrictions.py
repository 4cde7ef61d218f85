"""Enrolment restrictions (which devices a person may enrol) and the record of refused enrolments.

Restrictions are tried in priority order; the first one targeted at one of the person's user
groups applies, and the default restriction applies to everyone else (and to devices enrolled
without a person). A restriction allows or blocks platforms, bounds the OS version per platform,
blocks personally owned devices per platform and limits how many devices one person may have
enrolled. Bulk enrolments with an IT enrolment token are exempt from the device limit only; the
token's own capacity (up to 1,000) bounds them instead.

Every refusal is an ``EnrollmentError`` whose message names the restriction and says what to do;
``device_enroll`` records it with ``enrollment_failure_record``, which also enqueues the email to
the person and to IT (``enrollment_failure_notify``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from mdm_portal.core import authz, outbox
from mdm_portal.core.audit import Actor, audit_record, model_changes
from mdm_portal.core.models import User, UserGroup

from ..choices import LifecycleState, Ownership, Platform
from ..models import Device, EnrollmentFailure, EnrollmentRestriction
from ..models.restrictions import MAX_DEVICE_LIMIT, MIN_DEVICE_LIMIT
from ..versions import InvalidVersion, parse_version, version_key

logger = logging.getLogger(__name__)

REFUSED = "enrollment_refused"
DEFAULT_NAME = "Default restriction"
DEFAULT_PRIORITY = 1_000_000  # the data migration's value: after every priority a person can type
DEFAULT_DEVICE_LIMIT = 5
FAILURE_VIEW_PERMISSION = "devices.view_enrollmentfailure"
# A person who retries the same refused enrolment is emailed once in this window, not per attempt.
NOTIFY_REPEAT_WINDOW = timedelta(hours=1)
_VERSION_BOUNDS = ("min", "max")


# Choosing and applying a restriction ---------------------------------------------------------------


def enrollment_restriction_default() -> EnrollmentRestriction:
    """The default restriction, created as the data migration does if it is missing.

    It can only be missing when the table was emptied behind the services' back (a database
    flush); enrolment must not fail with a server error then.
    """
    restriction = EnrollmentRestriction.objects.filter(is_default=True).first()
    if restriction is None:
        restriction, _ = EnrollmentRestriction.objects.get_or_create(
            is_default=True,
            defaults={
                "name": DEFAULT_NAME,
                "description": "Applies to everyone no other restriction targets.",
                "priority": DEFAULT_PRIORITY,
                "device_limit": DEFAULT_DEVICE_LIMIT,
            },
        )
    return restriction


def enrollment_restriction_for(user: User | None) -> EnrollmentRestriction:
    """The restriction that applies to ``user``: the first by priority targeted at one of their groups."""
    if user is not None:
        targeted = (
            EnrollmentRestriction.objects.filter(is_default=False, user_groups__members=user)
            .order_by("priority")
            .first()
        )
        if targeted is not None:
            return targeted
    return enrollment_restriction_default()


def _max_key(value: str) -> str:
    """The largest key "at most ``value``" admits: "17" admits every 17.x release (as ``rules.py``)."""
    upper = version_key(value).split(".")
    given = len(re.findall(r"\d+", value))
    return ".".join(upper[:given] + ["999999"] * (len(upper) - given))


def _platform_label(platform: str) -> str:
    return Platform(platform).label if platform in Platform.values else platform


def _labels(platforms: Iterable[str]) -> str:
    return ", ".join(_platform_label(p) for p in platforms)


def enrollment_restrictions_check(
    *, user: User | None, platform: str, os_version: str, ownership: str, exempt: bool = False
) -> EnrollmentRestriction:
    """Return the restriction that lets the device enrol, or raise ``EnrollmentError``.

    The error's message names the restriction and the rule and says what to do; its
    ``restriction`` is the one that refused. Called inside the enrolment transaction: the person's
    row is locked before the device count, so two enrolments at once cannot both take the last
    place. ``exempt`` (bulk enrolment with an IT token) skips the device limit and nothing else.
    """
    from .enrollment import EnrollmentError

    restriction = enrollment_restriction_for(user)
    name = restriction.name
    label = _platform_label(platform)

    def refuse(message: str, fields: dict[str, str] | None = None):
        return EnrollmentError(REFUSED, message, fields, restriction=restriction)

    if restriction.allowed_platforms and platform not in restriction.allowed_platforms:
        raise refuse(
            f"{label} devices may not be enrolled: the enrolment restriction '{name}' allows only "
            f"{_labels(restriction.allowed_platforms)} devices. Enrol a device of one of those platforms, or ask IT.",
            {"device.platform": "not allowed by the enrolment restriction"},
        )

    bounds = (restriction.os_versions or {}).get(platform) or {}
    minimum, maximum = (bounds.get("min") or "").strip(), (bounds.get("max") or "").strip()
    if minimum or maximum:
        key = version_key(os_version)
        if not key:
            raise refuse(
                f"This device did not report a {label} version that can be checked, and the enrolment restriction "
                f"'{name}' requires {_range_words(minimum, maximum)}. Update the device management agent, "
                "then enrol again, or ask IT.",
                {"device.os_version": "missing or not a version number"},
            )
        if minimum and key < version_key(minimum):
            raise refuse(
                f"This device runs {label} {os_version}, but the enrolment restriction '{name}' requires "
                f"{label} {minimum} or later. Update the device to {label} {minimum} or later, then enrol it again.",
                {"device.os_version": f"below the minimum {minimum}"},
            )
        if maximum and key > _max_key(maximum):
            raise refuse(
                f"This device runs {label} {os_version}, but the enrolment restriction '{name}' allows at most "
                f"{label} {maximum}. Enrol a device with {label} {maximum} or earlier, or ask IT.",
                {"device.os_version": f"above the maximum {maximum}"},
            )

    if ownership == Ownership.PERSONAL and platform in (restriction.block_personal or []):
        raise refuse(
            f"Personally owned {label} devices may not be enrolled under the enrolment restriction '{name}'. "
            "Enrol a corporate device, or ask IT to register this device as corporate.",
        )

    if user is not None and not exempt:
        User.objects.select_for_update().filter(pk=user.pk).first()
        limit = restriction.device_limit
        enrolled = Device.objects.filter(
            primary_user=user, lifecycle_state__in=(LifecycleState.ENROLLED, LifecycleState.RETIRING)
        ).count()
        if enrolled >= limit:
            raise refuse(
                f"This account already has {enrolled} enrolled devices, the limit of the enrolment restriction "
                f"'{name}' is {limit}. Remove one in the Company Portal or ask IT."
            )
    return restriction


def _range_words(minimum: str, maximum: str) -> str:
    if minimum and maximum:
        return f"a version from {minimum} to {maximum}"
    return f"version {minimum} or later" if minimum else f"version {maximum} or earlier"


# Managing restrictions -------------------------------------------------------------------------------


def enrollment_restriction_validate(
    *,
    restriction: EnrollmentRestriction | None,
    name: str,
    priority: int | None,
    device_limit: int,
    allowed_platforms: Iterable[str] = (),
    os_versions: dict[str, dict[str, str]] | None = None,
    block_personal: Iterable[str] = (),
    user_groups: Iterable[UserGroup] = (),
) -> dict[str, Any]:
    """Check what an admin typed; return it normalised, or raise ``ValidationError`` with sentences.

    Error keys are field names; a version error's key is ``os_versions.<platform>.<min|max>``.
    Writes nothing, so forms can call it before the save.
    """
    is_default = restriction is not None and restriction.is_default
    user_groups = list(user_groups)
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Enter a name for the restriction."
    elif EnrollmentRestriction.objects.filter(name=name).exclude(pk=getattr(restriction, "pk", None)).exists():
        errors["name"] = f"There is already a restriction named '{name}'. Choose another name."

    if is_default:
        priority = DEFAULT_PRIORITY
        if user_groups:
            errors["user_groups"] = "The default restriction applies to everyone; it cannot target user groups."
    elif priority is None or not 1 <= priority < DEFAULT_PRIORITY:
        errors["priority"] = f"Priority must be a whole number from 1 to {DEFAULT_PRIORITY - 1:,} (1 is tried first)."
    elif EnrollmentRestriction.objects.filter(priority=priority).exclude(pk=getattr(restriction, "pk", None)).exists():
        taken = EnrollmentRestriction.objects.get(priority=priority)
        errors["priority"] = f"Restriction '{taken.name}' already has priority {priority}. Choose another number."

    if device_limit is None or not MIN_DEVICE_LIMIT <= device_limit <= MAX_DEVICE_LIMIT:
        errors["device_limit"] = (
            f"The device limit must be between {MIN_DEVICE_LIMIT} and {MAX_DEVICE_LIMIT} devices per person. "
            "Enrolment managers' bulk enrolments are not counted."
        )

    platforms: dict[str, list[str]] = {}
    for field, chosen in (("allowed_platforms", allowed_platforms), ("block_personal", block_personal)):
        chosen = list(chosen or [])
        unknown = sorted({str(p) for p in chosen} - set(Platform.values))
        if unknown:
            errors[field] = f"Unknown platform(s): {', '.join(unknown)}. Use: {', '.join(Platform.values)}."
        platforms[field] = sorted(set(chosen) & set(Platform.values), key=Platform.values.index)

    versions: dict[str, dict[str, str]] = {}
    raw_versions = os_versions or {}
    if not isinstance(raw_versions, dict):
        errors["os_versions"] = "OS versions must be given per platform."
        raw_versions = {}
    for platform, bounds in raw_versions.items():
        if platform not in Platform.values:
            errors["os_versions"] = f"Unknown platform '{platform}' in the OS versions."
            continue
        bounds = bounds if isinstance(bounds, dict) else {}
        typed = {bound: str(bounds.get(bound) or "").strip() for bound in _VERSION_BOUNDS}
        label = _platform_label(platform)
        valid = True
        for bound in _VERSION_BOUNDS:
            if typed[bound]:
                try:
                    parse_version(typed[bound])
                except InvalidVersion as exc:
                    errors[f"os_versions.{platform}.{bound}"] = f"{label} {bound}imum: {exc}"
                    valid = False
        if valid and typed["min"] and typed["max"] and version_key(typed["min"]) > _max_key(typed["max"]):
            errors[f"os_versions.{platform}.min"] = (
                f"The {label} minimum {typed['min']} is above the maximum {typed['max']}. "
                "Lower the minimum or raise the maximum."
            )
        if typed["min"] or typed["max"]:
            versions[platform] = typed
    if platforms["allowed_platforms"]:
        for field, data in (("block_personal", platforms["block_personal"]), ("os_versions", versions)):
            blocked = [p for p in data if p not in platforms["allowed_platforms"]]
            if blocked and field not in errors:
                what = "Personal devices are blocked" if field == "block_personal" else "OS versions are set"
                errors[field] = (
                    f"{what} for {_labels(blocked)}, which the restriction does not allow at all. "
                    "Allow the platform too, or clear that setting."
                )

    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "priority": priority,
        "device_limit": device_limit,
        "allowed_platforms": platforms["allowed_platforms"],
        "os_versions": {p: versions[p] for p in Platform.values if p in versions},
        "block_personal": platforms["block_personal"],
        "user_groups": [] if is_default else user_groups,
    }


@transaction.atomic
def enrollment_restriction_save(
    *,
    actor: Actor,
    restriction: EnrollmentRestriction | None = None,
    name: str,
    description: str = "",
    priority: int | None = None,
    user_groups: Iterable[UserGroup] = (),
    device_limit: int = DEFAULT_DEVICE_LIMIT,
    allowed_platforms: Iterable[str] = (),
    os_versions: dict[str, dict[str, str]] | None = None,
    block_personal: Iterable[str] = (),
    notify_on_refusal: bool = True,
    remediation_instructions: str = "",
    notify_repeat_minutes: int = 60,
) -> EnrollmentRestriction:
    """Create or update a restriction. The default one keeps its place (last) and targets everyone."""
    if restriction is not None and restriction.pk is not None:
        # Whatever a form copied onto the instance, decide from the stored record.
        restriction = EnrollmentRestriction.objects.select_for_update().get(pk=restriction.pk)
    else:
        restriction = EnrollmentRestriction()
    clean = enrollment_restriction_validate(
        restriction=restriction,
        name=name,
        priority=priority,
        device_limit=device_limit,
        allowed_platforms=allowed_platforms,
        os_versions=os_versions,
        block_personal=block_personal,
        user_groups=user_groups,
    )
    created = restriction.pk is None
    groups = clean.pop("user_groups")
    for field, value in clean.items():
        setattr(restriction, field, value)
    restriction.description = description or ""
    restriction.notify_on_refusal = bool(notify_on_refusal)
    restriction.remediation_instructions = (remediation_instructions or "").strip()
    restriction.notify_repeat_minutes = notify_repeat_minutes
    restriction.full_clean(validate_unique=False, validate_constraints=False)
    restriction.save()
    restriction.user_groups.set(groups)
    fields = (
        "name", "description", "priority", "device_limit", "allowed_platforms", "os_versions", "block_personal",
        "notify_on_refusal", "remediation_instructions", "notify_repeat_minutes",
    )  # fmt: skip
    audit_record(
        actor=actor,
        verb="enrollment_restriction.create" if created else "enrollment_restriction.update",
        target=restriction,
        changes=model_changes(restriction, (*fields, "user_groups")),
    )
    return restriction


@transaction.atomic
def enrollment_restriction_delete(*, actor: Actor, restriction: EnrollmentRestriction) -> None:
    """Delete a restriction; its failure records keep everything but the link. The default one stays."""
    if restriction.is_default:
        raise ValidationError(
            "The default restriction cannot be deleted: it applies to everyone no other restriction targets. "
            "Edit it instead."
        )
    audit_record(
        actor=actor,
        verb="enrollment_restriction.delete",
        target=restriction,
        changes=model_changes(restriction, ("name", "priority", "device_limit", "user_groups")),
    )
    restriction.delete()


# Failures ------------------------------------------------------------------------------------------


def enrollment_failure_record(*, identity: dict, error, source_ip: str | None = None) -> EnrollmentFailure:
    """Keep a refused enrolment on record, in its own transaction (the enrolment's was rolled back).

    When the failure can be traced to a person or an enrolment token, the notification emails are
    enqueued once the record is committed; anonymous guesses with bad tokens are only recorded, so
    nobody can make the portal email IT at will.
    """
    with transaction.atomic():
        failure = EnrollmentFailure.objects.create(
            user=error.user,
            platform=identity.get("platform", "")[:20],
            os_version=(identity.get("os_version") or "")[:64],
            serial_number=(identity.get("serial_number") or "")[:64],
            imei=(identity.get("imei") or "")[:17],
            device_name=(identity.get("name") or "")[:255],
            reason_code=error.code,
            message=error.message,
            restriction=error.restriction,
            profile=error.profile,
            source_ip=source_ip,
        )
        if failure.user_id is not None or failure.profile_id is not None:
            # Through the outbox: a broker that is down must not turn the device's 403 into a 500.
            _enqueue_notify(failure.pk)
    return failure


def _enqueue_notify(failure_id: int) -> None:
    from ..tasks_enrollment import enrollment_failure_notify_task

    outbox.enqueue(enrollment_failure_notify_task, failure_id)


def it_recipients() -> list[User]:
    """Active staff who may read every enrolment failure (the permission held in all scopes)."""
    app_label, codename = FAILURE_VIEW_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    holders = Q(is_superuser=True)
    if permission is not None:
        holders |= Q(groups__permissions=permission) | Q(user_permissions=permission)
    candidates = User.objects.filter(holders, is_active=True, is_staff=True).exclude(email="").distinct()
    return [user for user in candidates.order_by("pk") if authz.has_global(user, FAILURE_VIEW_PERMISSION)]


def _device_words(failure: EnrollmentFailure) -> str:
    label = _platform_label(failure.platform) if failure.platform else "device"
    name = failure.device_name or failure.serial_number or failure.imei
    return f"{label} device '{name}'" if name else f"{label} device"


def _repeat_of_notified(failure: EnrollmentFailure) -> bool:
    """The same refusal of the same person (or token) was already emailed within the window."""
    window = (
        timedelta(minutes=failure.restriction.notify_repeat_minutes) if failure.restriction else NOTIFY_REPEAT_WINDOW
    )
    same = EnrollmentFailure.objects.filter(
        reason_code=failure.reason_code,
        restriction_id=failure.restriction_id,
        notified_at__gte=timezone.now() - window,
    ).exclude(pk=failure.pk)
    if failure.user_id is not None:
        return same.filter(user_id=failure.user_id).exists()
    return same.filter(user__isnull=True, profile_id=failure.profile_id).exists()


@transaction.atomic
def enrollment_failure_notify(*, failure_id: int, actor: Actor | None = None) -> bool:
    """Email the person (what was refused and what to do) and IT; set ``notified_at``.

    Idempotent: a failure already notified, missing, or a repeat of one notified within the last
    hour sends nothing. Returns whether anything was sent.
    """
    actor = actor or Actor.system("enrollment_failure_notify")
    failure = (
        authz.unrestricted(EnrollmentFailure.objects, actor=actor)
        .select_for_update(of=("self",))
        .select_related("user", "restriction", "profile")
        .filter(pk=failure_id)
        .first()
    )
    if failure is None or failure.notified_at is not None:
        return False
    if failure.restriction is not None and not failure.restriction.notify_on_refusal:
        return False  # this restriction's remediation is "tell nobody"
    if _repeat_of_notified(failure):
        return False
    device = _device_words(failure)
    when = timezone.localtime(failure.created_at).strftime("%Y-%m-%d %H:%M %Z")
    rule = f"enrolment restriction '{failure.restriction.name}'" if failure.restriction else failure.reason_code
    person = failure.user
    extra = failure.restriction.remediation_instructions if failure.restriction else ""
    instructions = f"How to fix it:\n{extra}\n\n" if extra else ""
    sent = 0
    if person is not None and person.email:
        greeting = f"Hello {person.first_name}," if person.first_name else "Hello,"
        sent += send_mail(
            subject=f"Your {device} could not be enrolled",
            message=(
                f"{greeting}\n\nYour {device} could not be enrolled in device management on {when}.\n\n"
                f"{failure.message}\n\n{instructions}"
                "IT has been told as well. Reply to your IT helpdesk if you need help.\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[person.email],
        )
    it_staff = [user.email for user in it_recipients() if person is None or user.pk != person.pk]
    if it_staff:
        who = f"{person.get_full_name() or person.username} ({person.email or 'no email'})" if person else "no person"
        lines = [
            f"An enrolment was refused on {when}.",
            "",
            f"Person: {who}",
            f"Device: {device}, OS version {failure.os_version or 'not reported'}",
            f"Serial number: {failure.serial_number or '-'}   IMEI: {failure.imei or '-'}",
            f"Refused by: {rule}",
        ]
        if failure.profile is not None:
            lines.append(f"Enrolment token: {failure.profile.name}")
        lines += ["", "What the person was told:", failure.message, "", "The failure is listed in the IT console."]
        sent += send_mail(
            subject=f"Enrolment refused: {device}" + (f" of {person.username}" if person else ""),
            message="\n".join(lines) + "\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=it_staff,
        )
    if not sent:
        return False
    failure.notified_at = timezone.now()
    failure.save(update_fields=["notified_at"])
    audit_record(
        actor=actor,
        verb="enrollment_failure.notify",
        target=failure,
        changes={"person": person.pk if person else None, "it_recipients": len(it_staff)},
        scope_id=person.scope_id if person else (failure.profile.scope_id if failure.profile else None),
    )
    return True
