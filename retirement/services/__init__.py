"""Writes for retire, wipe and delete requests and their verification. Each service audits itself."""

from .evidence import before_inventory_snapshot
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
    "retirement_approve",
    "retirement_cancel",
    "retirement_checkin",
    "retirement_force",
    "retirement_request",
    "retirement_result_record",
    "retirement_timeouts_flag",
    "retirement_unenroll",
]
