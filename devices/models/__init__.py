from .commands import OPEN_STATUSES, DeviceCommand
from .device import Device, DeviceInventory
from .enrollment import MAX_PROFILE_CAPACITY, EnrollmentCode, EnrollmentProfile
from .groups import DeviceGroup, DeviceGroupRule
from .identifiers import CorporateIdentifier, IdentifierImport
from .restrictions import EnrollmentFailure, EnrollmentRestriction

__all__ = [
    "MAX_PROFILE_CAPACITY",
    "OPEN_STATUSES",
    "CorporateIdentifier",
    "Device",
    "DeviceCommand",
    "DeviceGroup",
    "DeviceGroupRule",
    "DeviceInventory",
    "EnrollmentCode",
    "EnrollmentFailure",
    "EnrollmentProfile",
    "EnrollmentRestriction",
    "IdentifierImport",
]
