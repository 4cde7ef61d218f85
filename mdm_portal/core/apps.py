from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "mdm_portal.core"
    label = "core"
    verbose_name = "Directory, roles and audit"

    def ready(self) -> None:
        from . import signals  # noqa: F401
