"""What retirement does when a device checks in (nothing, unless it is being retired) or an account is deactivated."""

from django.dispatch import receiver

from devices.choices import LifecycleState
from devices.signals import device_checked_in
from mdm_portal.core.signals import user_deactivated


@receiver(device_checked_in, dispatch_uid="retirement.device_checked_in")
def on_device_checked_in(sender, device, inventory_changed, first, **kwargs):
    # Every check-in passes here: only a device in retirement costs a query.
    if device.lifecycle_state == LifecycleState.RETIRING:
        from .services import retirement_checkin

        retirement_checkin(device=device)


@receiver(user_deactivated, dispatch_uid="retirement.user_deactivated")
def on_user_deactivated(sender, user, actor, source, reason="", **kwargs):
    """A deactivated account is offboarded in the same transaction (a refusal undoes the deactivation)."""
    from .services.offboarding import offboarding_check_allowed, offboarding_run

    offboarding_check_allowed(actor=actor, user=user)
    offboarding_run(actor=actor, user=user, source=source, reason=reason)
