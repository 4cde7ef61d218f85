"""The organisation every fuzzed request runs against: the same objects in two scopes.

Scope A is where the scoped operators work. Every identifying string of scope B (names, serial
numbers, IMEIs, user names, emails, app identifiers) carries ``OUTSIDE_MARKER``, and every uuid of a
scope-B object is collected in ``World.outside``: a scoped operator's response that contains any of
them shows an object outside the caller's scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import Permission

from apps.choices import InstallState
from apps.models import AppInstall
from apps.services import app_save, app_version_add
from apps.services.mam import app_access_token_issue, app_data_wipe_request, app_instance_register
from apps.services.protection import protection_policy_save
from devices import services as device_services
from devices.choices import ComplianceState, IdentifierImportStatus
from devices.models import CorporateIdentifier, IdentifierImport
from devices.services import device_command_queue
from devices.services.enrollment import device_enroll, enrollment_profile_create
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Scope
from policies.choices import ComplianceRule, DeliveryState
from policies.models import ComplianceFailure, ProfileDelivery
from policies.services.policies import policy_save
from policies.services.profiles import profile_save
from retirement.choices import OffboardingSource, RetirementAction, RetirementSource
from retirement.services import retirement_request
from retirement.services.offboarding import offboarding_run
from tests.factories import SYSTEM, DeviceFactory, ScopeFactory, StaffFactory, UserFactory, grant

OUTSIDE_MARKER = "OUTSIDE-SCOPE"
SCOPED_ROLE = "Scope-A administrator (fuzz)"


@dataclass
class World:
    tokens: dict[str, str] = field(default_factory=dict)  # persona -> API token
    device_secret: str = ""
    mam_access_token: str = ""
    mam_instance_secret: str = ""
    # (path template prefix, path parameter) -> {"a": value in scope A, "b": value in scope B}
    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    outside: set[str] = field(default_factory=set)  # strings that only a scope-B object has


def _side(key: str, scope: Scope, admin) -> dict[str, object]:
    """One scope's objects. ``key`` is "a" or "b"; B's strings carry the marker."""
    tag = f"{OUTSIDE_MARKER}-B" if key == "b" else "INSIDE-A"
    slug = tag.lower()
    actor = Actor.for_user(admin)
    person = UserFactory(
        username=f"{slug}-person", email=f"{slug}-person@example.com", first_name=tag, last_name=tag, scope=scope
    )
    device = DeviceFactory(name=f"{tag}-PHONE", serial_number=f"{tag}-SN-1", imei="", scope=scope, primary_user=person)
    retiring = DeviceFactory(name=f"{tag}-RETIRING", serial_number=f"{tag}-SN-2", scope=scope, primary_user=person)
    leaver = UserFactory(username=f"{slug}-leaver", email=f"{slug}-leaver@example.com", scope=scope)
    leaver_device = DeviceFactory(name=f"{tag}-LEAVER", serial_number=f"{tag}-SN-3", scope=scope, primary_user=leaver)
    group = core_services.user_group_save(actor=SYSTEM, name=f"{tag} people", members=[person, leaver])
    app = app_save(
        actor=SYSTEM,
        data={"name": f"{tag} Notes", "kind": "store", "platform": "ios", "identifier": f"com.{slug}.notes",
              "scope": scope},
        assignments=[{"target": "all_devices", "intent": "required"}],
    )  # fmt: skip
    version = app_version_add(actor=SYSTEM, app=app, version="1.0")
    install = AppInstall.objects.create(device=device, app=app, state=InstallState.FAILED, reason=f"{tag} no space")
    protection = protection_policy_save(
        actor=SYSTEM,
        data={"name": f"{tag} Protect", "platform": "ios", "scope": scope},
        apps=[app],
        assignments=[{"user_group": group}],
    )
    profile = profile_save(
        actor=SYSTEM,
        data={"name": f"{tag} Passcode", "kind": "passcode", "scope": scope},
        settings={"min_length": 6},
        assignments=[{"target": "all_devices"}],
    )
    policy = policy_save(
        actor=SYSTEM,
        data={"name": f"{tag} Policy", "platform": "ios", "scope": scope, "encryption_required": True},
        assignments=[{"target": "all_devices"}],
    )
    device_services.device_compliance_set(actor=SYSTEM, device=device, state=ComplianceState.NONCOMPLIANT)
    ComplianceFailure.objects.create(
        device=device, policy=policy, rule=ComplianceRule.ENCRYPTION_REQUIRED, expected="on", actual="off",
        since=device.enrolled_at,
    )  # fmt: skip
    ProfileDelivery.objects.create(profile=profile, device=device, state=DeliveryState.ERROR)
    command = device_command_queue(actor=actor, device=device, command_type="sync")
    identifier = CorporateIdentifier.objects.create(
        serial_number=f"{tag}-CORP-1", description=f"{tag} spare", scope=scope, user=person
    )
    identifier_import = IdentifierImport.objects.create(
        created_by=admin, original_name=f"{slug}-identifiers.csv", default_scope=scope,
        status=IdentifierImportStatus.FAILED, errors=[{"line": 2, "reason": f"{tag} bad row"}],
    )  # fmt: skip
    request = retirement_request(
        actor=actor, device=retiring, action=RetirementAction.RETIRE, source=RetirementSource.API
    )
    offboarding = offboarding_run(actor=actor, user=leaver, source=OffboardingSource.API, reason=f"{tag} left")
    instance, instance_secret = app_instance_register(
        user=person, app_identifier=app.identifier, platform="ios", device_name=f"{tag} iPhone"
    )
    wiped_instance, _ = app_instance_register(
        user=person, app_identifier=app.identifier, platform="ios", device_name=f"{tag} old iPhone"
    )
    wipe = app_data_wipe_request(actor=actor, instance=wiped_instance, reason=f"{tag} lost")
    enrolment_profile, enrolment_token = enrollment_profile_create(
        actor=SYSTEM, name=f"{tag} scanners", enrollment_manager=admin, scope=scope, capacity=10
    )
    agent_device, agent_secret = device_enroll(
        identity={"platform": "android", "name": f"{tag}-SCANNER", "serial_number": f"{tag}-SN-4",
                  "model": "Galaxy XCover7", "manufacturer": "Samsung", "os_version": "14"},
        token=enrolment_token,
    )  # fmt: skip
    objects = {
        "scope": scope, "person": person, "leaver": leaver, "device": device, "retiring": retiring,
        "leaver_device": leaver_device, "group": group, "app": app, "version": version, "install": install,
        "protection": protection, "profile": profile, "policy": policy, "command": command,
        "identifier": identifier, "identifier_import": identifier_import, "request": request,
        "offboarding": offboarding, "instance": instance, "wiped_instance": wiped_instance, "wipe": wipe,
        "enrolment_profile": enrolment_profile, "agent_device": agent_device,
    }  # fmt: skip
    return {
        "objects": objects,
        "agent_secret": agent_secret,
        "instance_secret": instance_secret,
        "person": person,
    }


def build_world() -> World:
    world = World()
    admin = StaffFactory(username="fuzz-global-admin")
    grant(admin, "Global administrator")
    scope_a = ScopeFactory(name="Scope INSIDE-A", slug="inside-a")
    scope_b = ScopeFactory(name=f"Scope {OUTSIDE_MARKER}-B", slug="outside-scope-b")
    scoped_admin = StaffFactory(username="fuzz-scope-a-admin")
    core_services.role_save(actor=SYSTEM, name=SCOPED_ROLE, permissions=list(Permission.objects.all()))
    grant(scoped_admin, SCOPED_ROLE, [scope_a])
    helpdesk = StaffFactory(username="fuzz-helpdesk-a")
    grant(helpdesk, "Helpdesk operator", [scope_a])
    for persona, user in (("admin", admin), ("scoped_admin", scoped_admin), ("helpdesk", helpdesk)):
        world.tokens[persona] = core_services.api_token_create(actor=SYSTEM, user=user, name="fuzz")[1]

    sides = {"a": _side("a", scope_a, admin), "b": _side("b", scope_b, admin)}
    world.device_secret = sides["a"]["agent_secret"]
    world.mam_instance_secret = sides["a"]["instance_secret"]
    world.mam_access_token = app_access_token_issue(user=sides["a"]["person"])

    def pair(name: str, by: str = "uuid") -> dict[str, str]:
        return {key: str(getattr(side["objects"][name], by)) for key, side in sides.items()}

    world.ids = {
        "/api/v1/app-instances/": pair("instance"),
        "/api/v1/app-protection-policies/": pair("protection"),
        "/api/v1/apps/": pair("app"),
        "/api/v1/commands/": pair("command"),
        "/api/v1/compliance-policies/": pair("policy"),
        "/api/v1/corporate-identifiers/imports/": pair("identifier_import", by="pk"),
        "/api/v1/corporate-identifiers/": pair("identifier", by="pk"),
        "/api/v1/devices/": pair("device"),
        "/api/v1/offboardings/": pair("offboarding"),
        "/api/v1/profiles/": pair("profile"),
        "/api/v1/retirement-requests/": pair("request"),
        "/agent/v1/apps/": pair("app"),
        "/mam/v1/wipes/": pair("wipe"),
    }
    b = sides["b"]["objects"]
    for obj in b.values():
        uuid = getattr(obj, "uuid", None)
        if uuid is not None:
            world.outside.add(str(uuid))
    return world


def outside_state() -> tuple:
    """What a refused write to scope B would change: B's devices, commands, requests, apps, policies."""
    from apps.models import App, AppDataWipe, AppProtectionPolicy, ManagedAppInstance
    from devices.models import Device, DeviceCommand
    from policies.models import CompliancePolicy, ConfigurationProfile
    from retirement.models import RetirementRequest

    scope = Scope.objects.get(slug="outside-scope-b")
    return (
        list(
            Device.objects.filter(scope=scope)
            .order_by("pk")
            .values_list("pk", "name", "lifecycle_state", "agent_secret_hash")
        ),
        list(DeviceCommand.objects.filter(device__scope=scope).order_by("pk").values_list("pk", "status")),
        list(RetirementRequest.objects.filter(device__scope=scope).order_by("pk").values_list("pk", "status")),
        list(App.objects.filter(scope=scope).order_by("pk").values_list("pk", "name", "updated_at")),
        list(AppProtectionPolicy.objects.filter(scope=scope).order_by("pk").values_list("pk", "name")),
        list(ConfigurationProfile.objects.filter(scope=scope).order_by("pk").values_list("pk", "name", "version")),
        list(CompliancePolicy.objects.filter(scope=scope).order_by("pk").values_list("pk", "name")),
        list(CorporateIdentifier.objects.filter(scope=scope).order_by("pk").values_list("pk", "serial_number")),
        list(ManagedAppInstance.objects.filter(user__scope=scope).order_by("pk").values_list("pk", "revoked_at")),
        list(AppDataWipe.objects.filter(instance__user__scope=scope).order_by("pk").values_list("pk", "status")),
    )
