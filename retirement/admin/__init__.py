"""Admin pages of the retirement stage: requests with their evidence, and the settings."""

from . import (  # noqa: F401
    bulk,
    cleanup,
    offboarding,
    reports,
    requests,
    settings,
)
