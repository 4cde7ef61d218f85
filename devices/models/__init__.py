from .commands import OPEN_STATUSES, DeviceCommand
from .device import Device, DeviceInventory
from .enrollment import MAX_PROFILE_CAPACITY, EnrollmentCode, EnrollmentProfile
from .groups import DeviceGroup, DeviceGroupRule

__all__ = [
    "MAX_PROFILE_CAPACITY",
    "OPEN_STATUSES",
    "Device",
    "DeviceCommand",
    "DeviceGroup",
    "DeviceGroupRule",
    "DeviceInventory",
    "EnrollmentCode",
    "EnrollmentProfile",
]
