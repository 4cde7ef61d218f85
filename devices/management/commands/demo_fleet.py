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

ACTOR = Actor.system("demo_fleet")
# What each simulator of the demo enrols as: profile name, scope, owner, ownership, capacity, description.
SIMULATORS = {
    "fleet": ("Demo fleet simulator", "apac", None, Ownership.CORPORATE, 1000,
              "Simulated devices that keep the demo's console alive."),
    "laptop": ("Demo: Emma's simulated laptop", "emea", "employee", Ownership.CORPORATE, 5,
               "One simulated laptop of the demo employee, which drifts out of compliance."),
}  # fmt: skip
PROFILE_NAME = SIMULATORS["fleet"][0]


class Command(BaseCommand):
    help = (
        "Retire the devices the previous demo run's simulator enrolled (their secrets died with it), revoke "
        "its enrolment token, and print a new token for this run's simulator."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--simulator",
            choices=sorted(SIMULATORS),
            default="fleet",
            help="fleet: the anonymous corporate fleet; laptop: the demo employee's own laptop.",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        name, scope_slug, owner_name, ownership, capacity, description = SIMULATORS[options["simulator"]]
        manager = User.objects.filter(username="itadmin").first()
        scope = Scope.objects.filter(slug=scope_slug).first()
        owner = User.objects.filter(username=owner_name).first() if owner_name else None
        if manager is None or scope is None or (owner_name and owner is None):
            raise CommandError("The demo organisation is missing: run `manage.py demo_org` first.")
        previous = authz.unrestricted(EnrollmentProfile.objects, actor=ACTOR).filter(name=name)
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
            actor=ACTOR, name=name, enrollment_manager=manager, scope=scope, ownership=ownership,
            capacity=capacity, primary_user=owner, description=description,
        )  # fmt: skip
        self.stderr.write(f"Simulated fleet: retired {retired} device(s) of the previous run; new token issued.")
        self.stdout.write(token)
