"""Reads for the app catalog, app assignments, per-device installs and app protection (MAM), restricted
by ``core.authz``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count

from mdm_portal.core import authz

from .choices import InstallState
from .models import AppInstall

VIEW_INSTALL = "apps.view_appinstall"
# The order states are listed and charted in.
STATE_ORDER = [
    InstallState.INSTALLED,
    InstallState.PENDING,
    InstallState.FAILED,
    InstallState.CONFLICT,
    InstallState.NOT_INSTALLED,
    InstallState.NOT_APPLICABLE,
]


def install_counts(app_ids: Iterable[int], user) -> dict[int, dict[str, int]]:
    """Installs per state of each app, among the devices the person may see: one GROUP BY for the page."""
    app_ids = list(app_ids)
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if not app_ids:
        return counts
    installs = authz.restrict(AppInstall.objects.filter(app_id__in=app_ids), user, VIEW_INSTALL)
    for row in installs.order_by().values("app_id", "state").annotate(n=Count("pk")):
        counts[row["app_id"]][row["state"]] = row["n"]
    return counts
