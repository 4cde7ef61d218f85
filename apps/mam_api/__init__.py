"""The managed-app API (``/mam/v1/``): app protection for apps on devices that are not enrolled."""
