from django.apps import AppConfig


class RetirementConfig(AppConfig):
    name = "retirement"
    verbose_name = "Retirement"

    def ready(self):
        from . import commands, receivers  # noqa: F401

        commands.register()
