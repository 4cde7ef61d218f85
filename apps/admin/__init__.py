"""Admin pages for the app catalog, app assignments, per-device installs and app protection (MAM), built
on ``core.admin_base.AuthzModelAdmin`` and the policies editor; one module per area, each registers
its ModelAdmins."""

from . import catalog, installs, protection  # noqa: F401
