"""Admin pages of the retirement stage: requests with their evidence, and the settings."""

from . import requests, settings  # noqa: F401
