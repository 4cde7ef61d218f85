"""Device groups: static and rule-based."""

from django.db import models

from mdm_portal.core.models import Scope

from ..choices import GroupMembershipType, GroupRuleField
from .device import Device


class DeviceGroup(models.Model):
    """A set of devices: chosen by hand (static) or matched by rules (dynamic).

    A group in a scope holds only that scope's devices, so an operator of the scope can target it
    without reaching anyone else's devices; a group without a scope is organisation-wide and only
    global administrators see it. Rule-based membership is never stored:
    ``devices.selectors.device_group_devices`` turns the rules into one SQL filter, so it is always
    current and costs no per-device work.
    """

    scope_field = "scope"

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    scope = models.ForeignKey(
        Scope,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="device_groups",
        help_text="Only this scope's devices can be members. Leave empty for an organisation-wide group.",
    )
    membership_type = models.CharField(
        max_length=20, choices=GroupMembershipType.choices, default=GroupMembershipType.STATIC
    )
    match_all = models.BooleanField(
        default=True, help_text="Rule-based groups: a device must match every rule (otherwise any one rule)."
    )
    static_members = models.ManyToManyField(Device, blank=True, related_name="static_groups")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DeviceGroupRule(models.Model):
    """One condition of a rule-based device group."""

    scope_field = "group__scope"

    group = models.ForeignKey(DeviceGroup, on_delete=models.CASCADE, related_name="rules")
    field = models.CharField(max_length=32, choices=GroupRuleField.choices)
    value = models.CharField(max_length=255)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_field_display()} {self.value}"
