from django.contrib.admin.apps import AdminConfig


class MDMAdminConfig(AdminConfig):
    """Django's admin app with our site, on which every ModelAdmin goes through ``core.authz``."""

    default_site = "mdm_portal.core.admin_base.MDMAdminSite"
