"""Writes of the configuration and compliance stage. Each service takes an actor and audits itself."""

from .compliance import (
    compliance_evaluate_devices,
    compliance_settings_save,
    compliance_sweep,
    device_compliance_evaluate,
    device_compliance_on_checkin,
    policy_reevaluate,
)
from .compliance_actions import compliance_actions_run, retire_approval_decide
from .policies import policy_delete, policy_save
from .profiles import (
    device_profiles_sync,
    profile_assignments_set,
    profile_delete,
    profile_fanout,
    profile_resend_failed,
    profile_save,
)

__all__ = [
    "compliance_actions_run",
    "compliance_evaluate_devices",
    "compliance_settings_save",
    "compliance_sweep",
    "device_compliance_evaluate",
    "device_compliance_on_checkin",
    "device_profiles_sync",
    "policy_delete",
    "policy_reevaluate",
    "policy_save",
    "profile_assignments_set",
    "profile_delete",
    "profile_fanout",
    "profile_resend_failed",
    "profile_save",
    "retire_approval_decide",
]
