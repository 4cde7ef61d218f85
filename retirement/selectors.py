"""Reads for retire and wipe requests, verification evidence, cleanup rules and offboarding, restricted
by ``core.authz``.
"""
