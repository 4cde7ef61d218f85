from django.db.models.signals import post_migrate
from django.dispatch import Signal, receiver

# A user group's members may have changed (sent before a deletion too). Arguments: ``group``.
user_group_changed = Signal()
# An account was deactivated (sent inside the transaction). Arguments: ``user``, ``actor``, ``source``
# ("admin", "api", "directory"), ``reason``. The retirement stage offboards the person.
user_deactivated = Signal()


@receiver(post_migrate)
def reapply_builtin_roles(sender, app_config, using, **kwargs):
    """After every migrate, built-in roles pick up permissions that later migrations added."""
    if app_config.label != "core":
        return
    from django.apps import apps
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Permission

    # Apps after "core" in INSTALLED_APPS get their permissions only after this handler; create
    # them all now (idempotent) so the built-in roles see every permission.
    for config in apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using)

    from . import rbac
    from .models import Role, RoleAssignment
    from .roles import apply_builtin_roles

    apply_builtin_roles(Role, Permission)
    rbac.sync_assignments(RoleAssignment.objects.filter(role__is_builtin=True))
