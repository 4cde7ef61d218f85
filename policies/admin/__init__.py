"""Admin pages for configuration profiles, compliance policies, assignments and their evaluation, built
on ``core.admin_base.AuthzModelAdmin``; one module per area, each registers its ModelAdmins. Importing
``policies.admin_dashboard`` mounts the compliance dashboard's pages on the admin site."""

from .. import admin_dashboard  # noqa: F401
from . import approvals, compliance, deliveries, effective, profiles  # noqa: F401
