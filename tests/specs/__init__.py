"""Validators of platform payloads against the vendors' own specifications (``../shared/specs``)."""
