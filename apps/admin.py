"""Admin pages for the app catalog, app assignments, per-device installs and app protection (MAM),
built on ``core.admin_base.AuthzModelAdmin``.
"""
