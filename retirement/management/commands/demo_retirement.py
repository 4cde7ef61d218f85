"""``manage.py demo_retirement``: the demo organisation's retirements, an offboarding and cleanup rules.

Written through the services, as IT (or the directory) would:

* the leaver (``oliver.bennett``) is deactivated by a directory sync, which offboards him: his
  personal phone is retired, his corporate devices are reassigned to IT (the default setting);
* four APAC store handhelds with cracked screens are retired by the IT administrator, one request
  over a filter, like the device list's bulk action;
* cleanup rules: Android devices silent for 30 days are retired (enabled), Windows devices silent
  for 180 days are removed (disabled: its preview shows what it would take).

The demo's devices have no agent, so their retire commands wait (and time out after the offline
timeout); the employee's simulated laptop (``make demo``) is the one that carries a retirement out.
Deterministic, and idempotent: a second run changes nothing.
"""

from __future__ import annotations

import random

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devices.choices import LifecycleState, Platform
from devices.models import Device
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import User
from mdm_portal.core.services import user_deactivate

from ...choices import CleanupAction, OffboardingSource, RetirementAction
from ...models import CleanupRule, Offboarding
from ...services import retirement_request_bulk
from ...services.cleanup import cleanup_rule_save

ACTOR = Actor.system("demo_retirement")
LEAVER = "oliver.bennett"
IT_ADMIN = "itadmin"
SEED = 2026


class Command(BaseCommand):
    help = "Add the demo organisation's offboarding, retirements and cleanup rules (after demo_org)."

    def handle(self, *args, **options):
        leaver = User.objects.filter(username=LEAVER).first()
        admin = User.objects.filter(username=IT_ADMIN).first()
        if leaver is None or admin is None:
            raise CommandError("The demo organisation is missing: run `manage.py demo_org` first.")
        if Offboarding.objects.filter(user=leaver).exists():
            self.stdout.write("The demo retirements already exist; nothing was changed.")
            return
        with transaction.atomic():
            summary = self.build(leaver, admin)
        self.stdout.write(self.style.SUCCESS(f"Demo retirements: {summary}."))

    def build(self, leaver: User, admin: User) -> str:
        user_deactivate(
            actor=ACTOR,
            user=leaver,
            source=OffboardingSource.DIRECTORY,
            reason="Leaver: last working day 30 November 2026.",
        )
        offboarding = Offboarding.objects.get(user=leaver)
        handhelds = (
            authz.unrestricted(Device.objects, actor=ACTOR)
            .filter(name__contains="-HH-", lifecycle_state=LifecycleState.ENROLLED)
            .order_by("pk")
        )
        chosen = random.Random(SEED).sample(list(handhelds.values_list("pk", flat=True)), 4)  # noqa: S311 (demo data)
        bulk = retirement_request_bulk(
            actor=Actor.for_user(admin),
            devices=handhelds.filter(pk__in=chosen),
            action=RetirementAction.RETIRE,
            reason="Cracked screen; returned to the vendor for repair.",
        )
        for platform, days, action, enabled in (
            (Platform.ANDROID, 30, CleanupAction.RETIRE, True),
            (Platform.WINDOWS, 180, CleanupAction.DELETE, False),
        ):
            cleanup_rule_save(
                actor=ACTOR,
                rule=CleanupRule(platform=platform, days=days, action=action, enabled=enabled),
            )
        return (
            f"offboarding of {LEAVER} ({offboarding.items.count()} devices and app instances), "
            f"{bulk['requested']} handhelds being retired, {CleanupRule.objects.count()} cleanup rules"
        )
