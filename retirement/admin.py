"""Admin pages for retire and wipe requests, verification evidence, cleanup rules and offboarding,
built on ``core.admin_base.AuthzModelAdmin``.
"""
