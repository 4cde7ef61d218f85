from axes.apps import AppConfig as AxesConfig
from django.contrib.admin.apps import AdminConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TotpConfig


class MDMAdminConfig(AdminConfig):
    """Django's admin app with our site, on which every ModelAdmin goes through ``core.authz``."""

    default_site = "mdm_portal.core.admin_base.MDMAdminSite"


class SignInSecurityConfig(AxesConfig):
    """django-axes, named for the people who unlock sign-ins in the console ("Axes" says nothing to them)."""

    verbose_name = "Sign-in security"


class TwoFactorConfig(TotpConfig):
    """django-otp's TOTP devices, under the name the console's top bar uses."""

    verbose_name = "Two-factor sign-in"
