"""Company Portal pages for the app catalog, app assignments, per-device installs and app protection (MAM)."""

urlpatterns: list = []
