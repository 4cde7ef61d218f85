"""Reads of devices and device groups for a person, restricted by ``core.authz``."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from mdm_portal.core import authz

from .choices import GroupMembershipType, LifecycleState
from .models import Device, DeviceGroup
from .rules import rules_q


def device_list(*, user, action: str = "devices.view_device") -> QuerySet[Device]:
    """Devices ``user`` may perform ``action`` on, with what list pages show joined in."""
    return authz.restrict(Device.objects.select_related("scope", "primary_user"), user, action)


def device_get(*, user, uuid, action: str = "devices.view_device") -> Device:
    return authz.get_or_404(Device.objects.select_related("scope", "primary_user"), user, action, uuid=uuid)


def portal_device_list(*, user) -> QuerySet[Device]:
    """The employee's own devices that are still under management, for the Company Portal."""
    return authz.owned(Device.objects.select_related("scope"), user).exclude(lifecycle_state=LifecycleState.RETIRED)


def portal_device_get(*, user, uuid) -> Device:
    return authz.get_owned_or_404(Device.objects.select_related("scope"), user, uuid=uuid)


def device_group_list(*, user, action: str = "devices.view_devicegroup") -> QuerySet[DeviceGroup]:
    return authz.restrict(DeviceGroup.objects.select_related("scope"), user, action)


def device_group_q(group: DeviceGroup) -> Q:
    """Membership of ``group`` as one filter on ``Device``: evaluated by the database, never per device."""
    if group.membership_type == GroupMembershipType.STATIC:
        membership = Q(static_groups=group)
    else:
        membership = rules_q(list(group.rules.values_list("field", "value")), match_all=group.match_all)
    return membership & Q(scope_id=group.scope_id) if group.scope_id is not None else membership


def device_group_devices(group: DeviceGroup) -> QuerySet[Device]:
    """Every device in ``group``, whoever asks; callers narrow it with ``authz.restrict``."""
    return Device.objects.filter(device_group_q(group))
