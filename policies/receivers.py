"""What this stage does when a device enrols or checks in (signals from ``devices.signals``)."""

from django.dispatch import receiver

from devices.signals import device_checked_in, device_enrolled, device_group_changed
from mdm_portal.core.signals import user_group_changed


@receiver(device_enrolled, dispatch_uid="policies.device_enrolled")
def on_device_enrolled(sender, device, **kwargs):
    from .services.profiles import device_profiles_sync

    device_profiles_sync(device)


@receiver(device_checked_in, dispatch_uid="policies.device_checked_in")
def on_device_checked_in(sender, device, inventory_changed, first, **kwargs):
    from .services.compliance import device_compliance_on_checkin

    device_compliance_on_checkin(device=device, inventory_changed=inventory_changed, first=first)


def _retarget(**assigned) -> None:
    """Re-run the fan-out of every profile assigned to a group whose membership changed."""
    from .models import ProfileAssignment
    from .services.profiles import fanout_schedule

    for profile_id in set(ProfileAssignment.objects.filter(**assigned).values_list("profile_id", flat=True)):
        fanout_schedule(profile_id, reason="a targeted group changed")


@receiver(device_group_changed, dispatch_uid="policies.device_group_changed")
def on_device_group_changed(sender, group, **kwargs):
    _retarget(device_group=group)


@receiver(user_group_changed, dispatch_uid="policies.user_group_changed")
def on_user_group_changed(sender, group, **kwargs):
    _retarget(user_group=group)
