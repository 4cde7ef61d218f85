"""What retirement does when a device checks in: nothing, unless the device is being retired."""

from django.dispatch import receiver

from devices.choices import LifecycleState
from devices.signals import device_checked_in


@receiver(device_checked_in, dispatch_uid="retirement.device_checked_in")
def on_device_checked_in(sender, device, inventory_changed, first, **kwargs):
    # Every check-in passes here: only a device in retirement costs a query.
    if device.lifecycle_state == LifecycleState.RETIRING:
        from .services import retirement_checkin

        retirement_checkin(device=device)
