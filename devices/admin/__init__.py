"""The devices app's admin pages, one module per area; each registers its ModelAdmins."""

from . import devices  # noqa: F401
