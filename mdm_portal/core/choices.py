from django.db import models


class ActorType(models.TextChoices):
    USER = "user", "User"
    API_TOKEN = "api_token", "API token"
    DEVICE = "device", "Device"
    SYSTEM = "system", "System"


class UserGroupSource(models.TextChoices):
    MANUAL = "manual", "Managed in the portal"
    DIRECTORY = "directory", "Synchronised from the directory"
