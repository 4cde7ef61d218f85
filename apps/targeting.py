"""Which devices an app reaches with which intent, and the rule for two intents on one device.

Each intent's includes (``policies.targeting.assignments_q``) minus the app's excludes (an exclude
applies to every intent), within the app's scope and platform, enrolled devices only.

**Conflict rule.** When several intents of one app reach one device, they are combined by
``resolve``: *available* is implied by *required*; *uninstall* and *blocked* agree (both want it
gone: blocked wins, it also fails compliance); *available* and *uninstall* give uninstall;
*required* together with *uninstall* or *blocked* is a **conflict**: nothing is installed or
removed, the install shows "conflict" with the assignments involved, until someone fixes them.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from devices.choices import LifecycleState
from devices.models import Device
from policies.choices import AssignmentMode
from policies.targeting import NOTHING, assignment_q

from .choices import AppIntent
from .models import App, AppAssignment

GONE = {AppIntent.UNINSTALL, AppIntent.BLOCKED}


def resolve(intents: set[str]) -> tuple[str | None, bool]:
    """The effective intent of a set reaching one device, and whether they conflict."""
    if not intents:
        return None, False
    if AppIntent.REQUIRED in intents and intents & GONE:
        return None, True
    if AppIntent.BLOCKED in intents:
        return AppIntent.BLOCKED, False
    if AppIntent.UNINSTALL in intents:
        return AppIntent.UNINSTALL, False
    if AppIntent.REQUIRED in intents:
        return AppIntent.REQUIRED, False
    return AppIntent.AVAILABLE, False


def _base(app: App) -> QuerySet[Device]:
    devices = Device.objects.filter(lifecycle_state=LifecycleState.ENROLLED, platform=app.platform)
    return devices.filter(scope_id=app.scope_id) if app.scope_id is not None else devices


def intent_qs(app: App, assignments: list[AppAssignment] | None = None) -> dict[str, Q]:
    """``{intent: Q over Device}`` for every intent the app is assigned with (excludes applied)."""
    rows = list(app.assignments.select_related("user_group", "device_group")) if assignments is None else assignments
    exclude = None
    includes: dict[str, Q] = {}
    for row in rows:
        q = assignment_q(row)
        if row.mode == AssignmentMode.EXCLUDE:
            exclude = q if exclude is None else exclude | q
        else:
            includes[row.intent] = includes[row.intent] | q if row.intent in includes else q
    if exclude is not None:
        includes = {intent: q & ~exclude for intent, q in includes.items()}
    return includes


def intent_devices(app: App, intent: str, assignments: list[AppAssignment] | None = None) -> QuerySet[Device]:
    """The devices ``app`` reaches with ``intent`` (before resolving against its other intents)."""
    return _base(app).filter(intent_qs(app, assignments).get(intent, NOTHING))


def targeted_devices(app: App, assignments: list[AppAssignment] | None = None) -> QuerySet[Device]:
    """Every device the app reaches with any intent."""
    combined = NOTHING
    for q in intent_qs(app, assignments).values():
        combined = q if combined is NOTHING else combined | q
    return _base(app).filter(combined)


def effective_intent_q(includes: dict[str, Q]) -> dict[str, Q]:
    """``resolve`` in SQL: ``{effective intent or "conflict": Q}`` from ``{intent: Q}`` (``intent_qs``)."""
    required, available = includes.get(AppIntent.REQUIRED, NOTHING), includes.get(AppIntent.AVAILABLE, NOTHING)
    uninstall, blocked = includes.get(AppIntent.UNINSTALL, NOTHING), includes.get(AppIntent.BLOCKED, NOTHING)
    gone = uninstall | blocked
    return {
        AppIntent.REQUIRED: required & ~gone,
        AppIntent.AVAILABLE: available & ~required & ~gone,
        AppIntent.UNINSTALL: uninstall & ~blocked & ~required,
        AppIntent.BLOCKED: blocked & ~required,
        "conflict": required & gone,
    }
