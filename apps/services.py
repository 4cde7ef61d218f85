"""Writes for the app catalog, app assignments, per-device installs and app protection (MAM). Each
service audits itself and takes an actor.
"""
