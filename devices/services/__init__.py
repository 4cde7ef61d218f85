"""Writes to devices: records, enrolment, check-in and commands. Every change is audited."""

from .commands import (
    desired_state_commands_cancel,
    desired_state_commands_cancel_all,
    desired_state_commands_queue,
    device_command_cancel,
    device_command_queue,
    device_command_queue_bulk,
    device_command_results_record,
    device_commands_deliver,
    device_commands_expire,
)
from .records import (
    DEVICE_EDITABLE_FIELDS,
    device_apply_reported,
    device_checkin_touch,
    device_compliance_set,
    device_enroll,
    device_group_delete,
    device_group_rules_set,
    device_group_save,
    device_register,
    device_update,
)

__all__ = [
    "DEVICE_EDITABLE_FIELDS",
    "desired_state_commands_cancel",
    "desired_state_commands_cancel_all",
    "desired_state_commands_queue",
    "device_apply_reported",
    "device_checkin_touch",
    "device_command_cancel",
    "device_command_queue",
    "device_command_queue_bulk",
    "device_command_results_record",
    "device_commands_deliver",
    "device_commands_expire",
    "device_compliance_set",
    "device_enroll",
    "device_group_delete",
    "device_group_rules_set",
    "device_group_save",
    "device_register",
    "device_update",
]
