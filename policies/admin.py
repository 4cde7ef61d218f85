"""Admin pages for configuration profiles, compliance policies, assignments and their evaluation, built
on ``core.admin_base.AuthzModelAdmin``.
"""
