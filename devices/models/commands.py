"""The command queue: what the portal asked a device to do, and what became of it."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ..choices import CommandStatus, CommandType
from .device import Device

OPEN_STATUSES = (CommandStatus.QUEUED, CommandStatus.SENT, CommandStatus.NOT_NOW)


class DeviceCommand(models.Model):
    """One command for one device: queued → sent → acknowledged / error / not now → expired / cancelled.

    Delivered at check-in in priority order (lower first), acknowledged by ``uuid``; reporting a
    result twice changes nothing. ``payload`` may hold secrets (a new passcode); they are never
    written to the audit trail and are cleared once the command is closed.
    """

    scope_field = "device__scope"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="commands")
    command_type = models.CharField(max_length=32, choices=CommandType.choices)
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=CommandStatus.choices, default=CommandStatus.QUEUED)
    priority = models.PositiveSmallIntegerField(default=50)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255)
    # Commands queued by one bulk request share a batch id, so its progress can be followed.
    batch = models.UUIDField(null=True, blank=True, db_index=True, editable=False)
    # What a desired-state command is about ("profile:<uuid>"), so a newer one can replace it.
    subject = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)
    deadline_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The check-in's "what is pending for me" lookup, over open commands only.
            models.Index(
                fields=["device", "priority", "created_at"],
                condition=Q(status__in=["queued", "sent", "not_now"]),
                name="command_open_idx",
            ),
            models.Index(fields=["status", "deadline_at"], name="command_deadline_idx"),
            models.Index(
                fields=["subject", "device"],
                condition=Q(status__in=["queued", "sent", "not_now"]) & ~Q(subject=""),
                name="command_open_subject_idx",
            ),
        ]

    def __str__(self) -> str:
        # The device's name when it is loaded (the console selects it); never a query of its own.
        device = self.device.name if DeviceCommand.device.is_cached(self) else f"device {self.device_id}"
        return f"{self.get_command_type_display()} for {device} ({self.get_status_display().lower()})"
