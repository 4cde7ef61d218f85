"""The default enrolment restriction: everyone, 5 devices, every platform, personal devices allowed."""

from django.db import migrations

DEFAULT_PRIORITY = 1_000_000


def create_default(apps, schema_editor):
    Restriction = apps.get_model("devices", "EnrollmentRestriction")
    Restriction.objects.get_or_create(
        is_default=True,
        defaults={
            "name": "Default restriction",
            "description": "Applies to everyone no other restriction targets.",
            "priority": DEFAULT_PRIORITY,
            "device_limit": 5,
        },
    )


def remove_default(apps, schema_editor):
    apps.get_model("devices", "EnrollmentRestriction").objects.filter(is_default=True).delete()


class Migration(migrations.Migration):
    dependencies = [("devices", "0005_restrictions_failures_identifiers")]

    operations = [migrations.RunPython(create_default, remove_default)]
