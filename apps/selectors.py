"""Reads for the app catalog, app assignments, per-device installs and app protection (MAM), restricted
by ``core.authz``.
"""
