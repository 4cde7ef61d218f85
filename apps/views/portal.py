"""Company Portal views for the app catalog, app assignments, per-device installs and app protection (MAM)."""
