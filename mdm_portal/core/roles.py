"""The built-in IT roles, defined once here.

A role is a set of Django permissions, given here as patterns over ``app_label.codename``.
The data migration seeds them and ``post_migrate`` re-applies them, so a permission added by a
later migration reaches the built-in roles it belongs to. Built-in roles cannot be edited in the
admin; copy one into a custom role to change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

# Sensitive permissions that a pattern never grants by accident: only listed by name.
SENSITIVE = frozenset(
    {
        "devices.wipe_device",
        "devices.retire_device",
        "devices.delete_device",
        "devices.view_device_secret",
        "retirement.approve_retirementrequest",
        "retirement.force_retirementrequest",
        "retirement.run_offboarding",
        # Sign-in security records: lockouts (django-axes) and staff authenticator apps (django-otp);
        # the task outbox: global operational data whose rows name every scope's pending work.
        *(
            f"{app}.{verb}_{model}"
            for app, model in (
                ("axes", "accessattempt"),
                ("axes", "accesslog"),
                ("axes", "accessfailurelog"),
                ("otp_totp", "totpdevice"),
                ("core", "outboxmessage"),
            )
            for verb in ("add", "change", "delete", "view")
        ),
    }
)
# Django's own bookkeeping tables are not part of any role.
NEVER = ("auth.*", "contenttypes.*", "sessions.*", "admin.*", "guardian.*", "core.*__*", "core.*objectpermission")


@dataclass(frozen=True)
class RoleDefinition:
    name: str
    description: str
    patterns: tuple[str, ...]

    def grants(self, permission: str) -> bool:
        if any(fnmatchcase(permission, p) for p in NEVER):
            return False
        if permission in SENSITIVE:
            return permission in self.patterns or "*" in self.patterns
        return any(fnmatchcase(permission, p) for p in self.patterns)


VIEW_DIRECTORY = ("core.view_scope", "core.view_usergroup", "core.view_user")

BUILTIN_ROLES: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "Global administrator",
        "Everything, everywhere, including wipe, retire, delete and reading recovery secrets.",
        ("*",),
    ),
    RoleDefinition(
        "Policy and profile manager",
        "Creates and assigns configuration profiles and compliance policies; views devices and groups.",
        ("policies.*", "devices.view_device", "devices.view_devicegroup", "devices.sync_device", *VIEW_DIRECTORY),
    ),
    RoleDefinition(
        "Application manager",
        "Manages the app catalog, app assignments and app protection; views devices and groups.",
        ("apps.*", "devices.view_device", "devices.view_devicegroup", "devices.sync_device", *VIEW_DIRECTORY),
    ),
    RoleDefinition(
        "Helpdesk operator",
        "Views devices and people in scope; syncs, locks and resets passcodes. No wipe, no retire.",
        (
            "devices.view_device",
            "devices.view_devicegroup",
            "devices.view_corporateidentifier",
            "devices.sync_device",
            "devices.lock_device",
            "devices.reset_passcode_device",
            "devices.view_enrollmentfailure",
            "core.view_user",
            "core.view_usergroup",
            "core.view_auditevent",
        ),
    ),
    RoleDefinition(
        "Read-only operator",
        "Views everything in scope; changes nothing and reads no secrets.",
        ("*.view_*",),
    ),
    RoleDefinition(
        "Role administrator",
        "Manages custom roles and role assignments.",
        (
            "core.add_role",
            "core.change_role",
            "core.delete_role",
            "core.view_role",
            "core.add_roleassignment",
            "core.change_roleassignment",
            "core.delete_roleassignment",
            "core.view_roleassignment",
            *VIEW_DIRECTORY,
        ),
    ),
)


def apply_builtin_roles(role_model, permission_model) -> None:
    """Create or update the built-in roles. Takes model classes so a migration can call it."""
    permissions = list(permission_model.objects.select_related("content_type"))
    for definition in BUILTIN_ROLES:
        role, _ = role_model.objects.update_or_create(
            name=definition.name, defaults={"description": definition.description, "is_builtin": True}
        )
        role.permissions.set([p for p in permissions if definition.grants(f"{p.content_type.app_label}.{p.codename}")])
