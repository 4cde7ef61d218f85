"""What this stage does when a device enrols or checks in (signals from ``devices.signals``)."""

from django.dispatch import receiver

from devices.signals import device_checked_in, device_enrolled


@receiver(device_enrolled, dispatch_uid="policies.device_enrolled")
def on_device_enrolled(sender, device, **kwargs):
    from .services.profiles import device_profiles_sync

    device_profiles_sync(device)


@receiver(device_checked_in, dispatch_uid="policies.device_checked_in")
def on_device_checked_in(sender, device, inventory_changed, first, **kwargs):
    from .services.compliance import device_compliance_on_checkin

    device_compliance_on_checkin(device=device, inventory_changed=inventory_changed, first=first)
