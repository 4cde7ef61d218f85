"""Push-based enrolment through a resource gate: may this device reach email, VPN or Wi-Fi?

A gate (nginx ``auth_request``, a VPN or RADIUS hook) asks ``/access/check`` about a device. An
enrolled device in good standing gets through; an unknown or unenrolled one is sent to enrol; a
noncompliant one is sent to the page that tells its owner how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from .choices import ComplianceState, LifecycleState
from .models import Device


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    outcome: str  # "allow", "enrol", "remediate"
    reason: str
    device: Device | None = None


def access_decision(device: Device | None) -> AccessDecision:
    if device is None:
        return AccessDecision(False, "enrol", "This device is not managed. Enrol it in the Company Portal.")
    if device.lifecycle_state not in (LifecycleState.ENROLLED, LifecycleState.RETIRING):
        return AccessDecision(
            False,
            "enrol",
            f"This device is {device.get_lifecycle_state_display().lower()}. Enrol it in the Company Portal.",
            device,
        )
    allowed_states = {ComplianceState.COMPLIANT, ComplianceState.IN_GRACE}
    if settings.MDM_ACCESS_ALLOW_NOT_EVALUATED:
        allowed_states.add(ComplianceState.NOT_EVALUATED)
    if device.compliance_state in allowed_states:
        return AccessDecision(True, "allow", "Enrolled and compliant.", device)
    return AccessDecision(
        False,
        "remediate",
        f"This device is {device.get_compliance_state_display().lower()}. "
        "Open the Company Portal to see how to fix it.",
        device,
    )
