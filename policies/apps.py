from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Configuration and compliance"

    def ready(self):
        from . import commands, receivers  # noqa: F401

        commands.register()
