from django.apps import AppConfig


class AppsConfig(AppConfig):
    name = "apps"
    verbose_name = "Apps"

    def ready(self):
        from policies.compliance_sources import BlockedAppsSource, register_blocked_apps_source

        from . import commands, receivers  # noqa: F401
        from .services.delivery import blocked_apps_flag, blocked_apps_identifiers

        commands.register()
        register_blocked_apps_source(
            BlockedAppsSource(name="apps", flag=blocked_apps_flag, identifiers=blocked_apps_identifiers)
        )
