"""Reads for configuration profiles, compliance policies, assignments and their evaluation, restricted
by ``core.authz``.
"""
