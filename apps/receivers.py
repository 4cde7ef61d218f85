"""What app delivery does when a device enrols or checks in, or a targeted group changes."""

from django.dispatch import receiver

from devices.signals import device_checked_in, device_enrolled, device_group_changed
from mdm_portal.core.signals import user_group_changed


@receiver(device_enrolled, dispatch_uid="apps.device_enrolled")
def on_device_enrolled(sender, device, **kwargs):
    from .services.delivery import device_apps_sync

    device_apps_sync(device)


@receiver(device_checked_in, dispatch_uid="apps.device_checked_in")
def on_device_checked_in(sender, device, inventory_changed, first, **kwargs):
    # Only a changed inventory can say something new about installed apps: an unchanged check-in is free.
    if inventory_changed:
        from .services.installs import device_apps_reconcile

        device_apps_reconcile(device)


def _retarget(**assigned) -> None:
    """Re-run the fan-out of every app assigned to a group whose membership changed."""
    from .models import AppAssignment
    from .services.delivery import fanout_schedule

    for app_id in set(AppAssignment.objects.filter(**assigned).values_list("app_id", flat=True)):
        fanout_schedule(app_id, reason="a targeted group changed")


@receiver(device_group_changed, dispatch_uid="apps.device_group_changed")
def on_device_group_changed(sender, group, **kwargs):
    _retarget(device_group=group)


@receiver(user_group_changed, dispatch_uid="apps.user_group_changed")
def on_user_group_changed(sender, group, **kwargs):
    _retarget(user_group=group)
