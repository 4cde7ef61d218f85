"""Prepare the demo's simulated fleet (``make demo`` runs the fleet simulator against the portal)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devices import lifecycle
from devices.choices import LifecycleState, Ownership
from devices.models import Device, EnrollmentProfile
from devices.services.enrollment import enrollment_profile_create, enrollment_profile_revoke
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Scope, User

PROFILE_NAME = "Demo fleet simulator"
ACTOR = Actor.system("demo_fleet")


class Command(BaseCommand):
    help = (
        "Retire the devices the previous demo run's simulator enrolled (their secrets died with it), revoke "
        "its enrolment token, and print a new token for this run's simulator."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        manager = User.objects.filter(username="itadmin").first()
        scope = Scope.objects.filter(slug="apac").first()
        if manager is None or scope is None:
            raise CommandError("The demo organisation is missing: run `manage.py demo_org` first.")
        previous = authz.unrestricted(EnrollmentProfile.objects, actor=ACTOR).filter(name=PROFILE_NAME)
        stale = authz.unrestricted(Device.objects, actor=ACTOR).filter(
            enrollment_profile__in=previous, lifecycle_state__in=[LifecycleState.ENROLLED, LifecycleState.RETIRING]
        )
        retired = 0
        for device in stale:
            if device.lifecycle_state == LifecycleState.ENROLLED:
                lifecycle.start_retirement(device, actor=ACTOR, reason="The previous demo run's simulator stopped.")
            lifecycle.finish_retirement(device, actor=ACTOR, reason="The previous demo run's simulator stopped.")
            retired += 1
        for profile in previous.filter(revoked_at__isnull=True):
            enrollment_profile_revoke(actor=ACTOR, profile=profile)
        _, token = enrollment_profile_create(
            actor=ACTOR, name=PROFILE_NAME, enrollment_manager=manager, scope=scope, ownership=Ownership.CORPORATE,
            capacity=1000, description="Simulated devices that keep the demo's console alive.",
        )  # fmt: skip
        self.stderr.write(f"Simulated fleet: retired {retired} device(s) of the previous run; new token issued.")
        self.stdout.write(token)
