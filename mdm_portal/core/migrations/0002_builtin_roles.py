"""Seed the built-in IT roles (definitions in core.roles)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def seed_roles(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the roles can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    from mdm_portal.core.roles import apply_builtin_roles

    apply_builtin_roles(apps.get_model("core", "Role"), apps.get_model("auth", "Permission"))


def unseed_roles(apps, schema_editor):
    apps.get_model("core", "Role").objects.filter(is_builtin=True, assignments__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("devices", "0001_initial"),
        ("django_celery_beat", "__latest__"),
        ("contenttypes", "__latest__"),
        ("auth", "__latest__"),
    ]

    operations = [migrations.RunPython(seed_roles, unseed_roles)]
