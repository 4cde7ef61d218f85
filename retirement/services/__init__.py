"""Writes for retire, wipe and delete requests and their verification. Each service audits itself."""

from .bulk import retirement_request_bulk
from .cleanup import (
    cleanup_candidates,
    cleanup_rule_delete,
    cleanup_rule_run,
    cleanup_rule_save,
    cleanup_rules_run_all,
)
from .evidence import before_inventory_snapshot
from .offboarding import offboarding_run, offboarding_start
from .requests import (
    retirement_approve,
    retirement_cancel,
    retirement_force,
    retirement_request,
    retirement_timeouts_flag,
    retirement_unenroll,
)
from .results import retirement_checkin, retirement_result_record

__all__ = [
    "before_inventory_snapshot",
    "cleanup_candidates",
    "cleanup_rule_delete",
    "cleanup_rule_run",
    "cleanup_rule_save",
    "cleanup_rules_run_all",
    "offboarding_run",
    "offboarding_start",
    "retirement_approve",
    "retirement_cancel",
    "retirement_checkin",
    "retirement_force",
    "retirement_request",
    "retirement_request_bulk",
    "retirement_result_record",
    "retirement_timeouts_flag",
    "retirement_unenroll",
]
