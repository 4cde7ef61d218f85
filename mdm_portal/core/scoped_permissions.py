"""The permissions that a role assignment can grant over a set of scopes.

Every permission listed here is a real model permission (``app_label.codename``). Django-guardian
ties an object permission to the object's own model, so a scoped grant of, say,
``devices.lock_device`` is stored as a guardian permission on the ``Scope`` object under a twin
codename on the ``Scope`` model (``devices__lock_device``). Only ``core.rbac`` writes those rows and
only ``core.authz`` reads them; everything else speaks in the real permission names.

A permission that is not listed here (managing roles, editing scopes, schedules) is only granted by
an assignment that covers all scopes.
"""

SCOPED_PERMISSIONS: tuple[str, ...] = (
    # Devices
    "devices.view_device",
    "devices.change_device",
    "devices.delete_device",
    "devices.sync_device",
    "devices.lock_device",
    "devices.reset_passcode_device",
    "devices.restart_device",
    "devices.locate_device",
    "devices.wipe_device",
    "devices.retire_device",
    "devices.view_device_secret",
    # Device groups
    "devices.view_devicegroup",
    "devices.add_devicegroup",
    "devices.change_devicegroup",
    "devices.delete_devicegroup",
    # Enrolment: bulk enrolment profiles (tokens) of the scope, and the failures of its people
    "devices.view_enrollmentprofile",
    "devices.add_enrollmentprofile",
    "devices.change_enrollmentprofile",
    "devices.view_enrollmentfailure",
    # Corporate identifiers (serial numbers, IMEIs) that place devices in the scope
    "devices.view_corporateidentifier",
    "devices.add_corporateidentifier",
    "devices.delete_corporateidentifier",
    # Configuration profiles and compliance policies of the scope, and their outcomes on its devices
    "policies.view_configurationprofile",
    "policies.add_configurationprofile",
    "policies.change_configurationprofile",
    "policies.delete_configurationprofile",
    "policies.resend_configurationprofile",
    "policies.view_compliancepolicy",
    "policies.add_compliancepolicy",
    "policies.change_compliancepolicy",
    "policies.delete_compliancepolicy",
    "policies.view_profiledelivery",
    "policies.view_compliancefailure",
    "policies.view_retireapproval",
    "policies.change_retireapproval",
    # Apps of the scope, their installs on its devices, and app protection of its people
    "apps.view_app",
    "apps.add_app",
    "apps.change_app",
    "apps.delete_app",
    "apps.retry_app",
    "apps.view_appinstall",
    "apps.view_appprotectionpolicy",
    "apps.add_appprotectionpolicy",
    "apps.change_appprotectionpolicy",
    "apps.delete_appprotectionpolicy",
    "apps.view_managedappinstance",
    "apps.wipe_managedappinstance",
    "apps.view_appdatawipe",
    # Retire and wipe requests for the scope's devices
    "retirement.view_retirementrequest",
    "retirement.approve_retirementrequest",
    "retirement.force_retirementrequest",
    "retirement.view_offboarding",
    "retirement.run_offboarding",
    # People whose home scope it is
    "core.view_user",
    "core.change_user",
    # The audit trail of objects in the scope
    "core.view_auditevent",
)


def twin_codename(permission: str) -> str:
    """The codename on ``core.Scope`` that stands for ``permission`` granted over a scope."""
    app_label, codename = permission.split(".", 1)
    return f"{app_label}__{codename}"


def scope_model_permissions() -> list[tuple[str, str]]:
    """``Scope.Meta.permissions``: one twin per scoped permission."""
    return [(twin_codename(p), f"Scoped: {p}") for p in SCOPED_PERMISSIONS]
