"""Writes for the app catalog, app assignments and per-device installs. Each service audits itself and takes an actor.

``catalog``: apps, versions and packages, assignments, deletion. ``delivery``: the rule that
decides each device's state, and the fan-out. ``installs``: results, inventory reconciliation,
Company Portal requests, retries. ``packages``: reading and storing line-of-business packages.
``mam``: managed app instances, their check-ins and selective wipes of app data.
"""

from .catalog import app_assignments_set, app_delete, app_save, app_version_add
from .delivery import app_fanout, device_apps_sync
from .installs import (
    app_install_request,
    app_installs_retry_failed,
    app_uninstall_request,
    device_apps_reconcile,
    install_result_record,
)
from .mam import (
    app_data_wipe_cancel,
    app_data_wipe_request,
    app_data_wipe_user,
    app_instance_checkin,
    app_instance_register,
    app_wipe_confirm,
)

__all__ = [
    "app_assignments_set",
    "app_data_wipe_cancel",
    "app_data_wipe_request",
    "app_data_wipe_user",
    "app_delete",
    "app_fanout",
    "app_install_request",
    "app_installs_retry_failed",
    "app_instance_checkin",
    "app_instance_register",
    "app_save",
    "app_uninstall_request",
    "app_version_add",
    "app_wipe_confirm",
    "device_apps_reconcile",
    "device_apps_sync",
    "install_result_record",
]
