from django.apps import AppConfig


class RetirementConfig(AppConfig):
    name = "retirement"
    verbose_name = "Retirement"
