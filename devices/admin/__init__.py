"""The devices app's admin pages, one module per area; each registers its ModelAdmins."""

from . import commands, devices, enrollment, identifiers  # noqa: F401
