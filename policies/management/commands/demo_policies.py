"""``manage.py demo_policies``: the demo organisation's configuration profiles and compliance policies.

Written through the services (``profile_save``, ``policy_save``), as IT would in the admin:

* profiles: a passcode profile and an encryption profile for every employee's devices, the office
  Wi-Fi (its password stored as a secret), restrictions for corporate devices, and a VPN for Sales
  and the executives;
* a compliance policy per platform (iOS, Android, Windows, macOS) for every employee, each with
  the same schedule: mark noncompliant after 1 day of grace, email the user at once and after
  3 days, lock after 7 days, propose retirement to IT after 30 days.

The demo's devices were registered without an agent, so they have never reported an inventory.
Each enrolled one gets a plausible inventory that matches the compliance state ``demo_org`` drew for
it (a device drawn noncompliant has encryption off or too short a passcode, ...), and the check-in
times ``demo_org`` chose are kept. Then the profiles are fanned out and the fleet is swept twice:
once as of two days ago with the noncompliant devices' inventories in place (so their grace period
is over), and once now. The console has numbers, the noncompliant devices have something in the
schedule, and the employee login has a device in its grace period.

Deterministic (``random.Random``), and idempotent: a second run changes nothing.
"""

from __future__ import annotations

import random
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from devices.choices import ComplianceState, LifecycleState, Ownership, Platform
from devices.models import Device, DeviceGroup, DeviceInventory
from devices.services import device_checkin_touch
from devices.services.checkin import device_inventory_store, inventory_digest
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import UserGroup
from policies.choices import AssignmentTarget, DeliveryState
from policies.models import CompliancePolicy, ComplianceSnapshot, ConfigurationProfile
from policies.services.compliance import compliance_sweep
from policies.services.policies import policy_save
from policies.services.profiles import profile_fanout, profile_save

ACTOR = Actor.system("demo_policies")
SEED = 2026
EVERYONE = "All employees"
WIFI_PASSWORD = "demo-wifi-2026"  # noqa: S105 (a published demo value, stored encrypted like any secret)
# How long ago the noncompliant devices' failures began: past the 1-day grace, before the 3-day email.
NONCOMPLIANT_FOR = timedelta(days=2)
HISTORY = timedelta(days=60)  # the dashboard's trend window

MOBILE = [Platform.IOS, Platform.IPADOS, Platform.ANDROID]
DESKTOP = [Platform.WINDOWS, Platform.MACOS]
SCHEDULE = [
    {"action": "mark_noncompliant", "days_after": 1},
    {"action": "email", "days_after": 0},
    {"action": "email", "days_after": 3},
    {"action": "lock", "days_after": 7},
    {"action": "retire", "days_after": 30},
]

# name, kind, platforms, settings (secrets included: the service stores them apart), description, assignments
PROFILES = (
    ("Passcode: 6 characters or more", "passcode", [*MOBILE, *DESKTOP],
     {"require_passcode": True, "min_length": 6, "complexity": "numeric", "max_failed_attempts": 10,
      "auto_lock_minutes": 5},
     "A screen lock on every employee's device.", [{"target": AssignmentTarget.USER_GROUP, "user_group": EVERYONE}]),
    ("Encryption: FileVault and BitLocker", "encryption", [Platform.ANDROID, *DESKTOP],
     {"require_encryption": True, "escrow_recovery_key": True},
     "Storage encryption, with the recovery key kept in the portal.",
     [{"target": AssignmentTarget.USER_GROUP, "user_group": EVERYONE}]),
    ("Office Wi-Fi", "wifi", [],
     {"ssid": "Example-Corp", "security": "wpa2", "password": WIFI_PASSWORD, "auto_join": True, "hidden": False},
     "The offices' staff network.", [{"target": AssignmentTarget.USER_GROUP, "user_group": EVERYONE}]),
    ("Corporate device restrictions", "restrictions", [*MOBILE, *DESKTOP],
     {"allow_usb_file_transfer": False, "allow_account_changes": False, "allow_screen_capture": True,
      "allow_camera": True, "allow_app_store": True},
     "Company-owned devices: no USB file transfer, no changing accounts.",
     [{"target": AssignmentTarget.ALL_DEVICES, "filter_ownership": Ownership.CORPORATE}]),
    ("Company VPN", "vpn", [*MOBILE, *DESKTOP],
     {"connection_name": "Example Corp VPN", "server": "vpn.example.com", "vpn_type": "ikev2", "on_demand": True},
     "Remote access for the people who travel most.",
     [{"target": AssignmentTarget.USER_GROUP, "user_group": "Sales"},
      {"target": AssignmentTarget.USER_GROUP, "user_group": "Executives"}]),
)  # fmt: skip

# name, platform, rules, extra assignments (each policy also applies to every employee)
POLICIES = (
    ("iOS baseline", Platform.IOS,
     {"os_min": "18.0", "passcode_required": True, "passcode_min_length": 6, "encryption_required": True,
      "jailbreak_blocked": True, "checkin_max_days": 14}, []),
    ("Android baseline", Platform.ANDROID,
     {"os_min": "14", "passcode_required": True, "passcode_min_length": 6, "passcode_min_quality": "numeric",
      "encryption_required": True, "jailbreak_blocked": True, "checkin_max_days": 14}, []),
    ("Windows baseline", Platform.WINDOWS,
     {"os_min": "10.0.22631", "passcode_required": True, "encryption_required": True, "checkin_max_days": 14},
     [{"target": AssignmentTarget.DEVICE_GROUP, "device_group": "All corporate Windows laptops"}]),
    ("macOS baseline", Platform.MACOS,
     {"os_min": "15.0", "passcode_required": True, "passcode_min_length": 8, "encryption_required": True,
      "checkin_max_days": 14}, []),
)  # fmt: skip


def _good_inventory(platform: str) -> dict:
    """What a device that meets the demo's policies reports."""
    if platform in MOBILE:
        return {"encrypted": True, "passcode_set": True, "passcode_quality": "numeric", "passcode_length": 6,
                "jailbroken": False}  # fmt: skip
    if platform in DESKTOP:
        return {"encrypted": True, "passcode_set": True, "passcode_quality": "alphanumeric", "passcode_length": 12}
    return {"encrypted": True}


def demo_inventory(platform: str, state: str, rng: random.Random) -> dict | None:
    """An inventory matching ``state`` (None: the device never reported one)."""
    if state == ComplianceState.NOT_EVALUATED:
        return None
    inventory = _good_inventory(platform)
    if state == ComplianceState.ERROR:
        inventory.pop("encrypted")  # the device did not say: the rule cannot be evaluated
    elif state in (ComplianceState.IN_GRACE, ComplianceState.NONCOMPLIANT):
        if platform in (Platform.IOS, Platform.IPADOS):
            fault = rng.choice(("passcode_removed", "passcode_removed", "jailbroken"))
        elif platform == Platform.ANDROID:
            fault = rng.choice(("short_passcode", "encryption_off", "jailbroken"))
        elif platform == Platform.LINUX:
            fault = "encryption_off"
        else:
            fault = rng.choice(("encryption_off", "encryption_off", "passcode_removed"))
        if fault == "passcode_removed":
            inventory.update(passcode_set=False, passcode_quality="none", passcode_length=0)
            if platform in (Platform.IOS, Platform.IPADOS):
                inventory["encrypted"] = False  # Data Protection follows the passcode
        elif fault == "short_passcode":
            inventory["passcode_length"] = 4
        elif fault == "jailbroken":
            inventory["jailbroken"] = True
        else:
            inventory["encrypted"] = False
    return inventory


class Command(BaseCommand):
    help = (
        "Create the demo's configuration profiles and compliance policies (after demo_org), give the demo "
        "devices inventories, fan the profiles out and sweep compliance."
    )

    def handle(self, *args, **options):
        names = [row[0] for row in PROFILES] + [row[0] for row in POLICIES]
        there = set(ConfigurationProfile.objects.filter(name__in=names).values_list("name", flat=True))
        there |= set(CompliancePolicy.objects.filter(name__in=names).values_list("name", flat=True))
        if len(there) == len(names):
            self.stdout.write("The demo profiles and compliance policies already exist; nothing was changed.")
            return
        if there:
            raise CommandError(
                f"Some demo profiles or policies exist already ({', '.join(sorted(there))}), so the others cannot be "
                "added without clashing. Start from an empty database: `make clean-demo`."
            )
        groups = {group.name: group for group in UserGroup.objects.all()}
        if EVERYONE not in groups:
            raise CommandError("The demo organisation is missing: run `manage.py demo_org` first.")
        with transaction.atomic():
            summary = self.build(groups)
        self.stdout.write(self.style.SUCCESS(f"Demo profiles and compliance policies: {summary}."))

    def build(self, groups: dict[str, UserGroup]) -> str:
        device_groups = {group.name: group for group in DeviceGroup.objects.all()}

        def resolve(rows: list[dict]) -> list[dict]:
            resolved = []
            for row in rows:
                row = dict(row)
                if "user_group" in row:
                    row["user_group"] = groups[row["user_group"]]
                if "device_group" in row:
                    row["device_group"] = device_groups[row["device_group"]]
                resolved.append(row)
            return resolved

        profiles = [
            profile_save(
                actor=ACTOR,
                data={"name": name, "kind": kind, "platforms": platforms, "description": description, "scope": None},
                settings=settings,
                assignments=resolve(assignments),
            )
            for name, kind, platforms, settings, description, assignments in PROFILES
        ]
        for name, platform, rules, assignments in POLICIES:
            policy_save(
                actor=ACTOR,
                data={"name": name, "platform": platform, "scope": None, **rules},
                actions=SCHEDULE,
                assignments=resolve([{"target": AssignmentTarget.USER_GROUP, "user_group": EVERYONE}, *assignments]),
            )

        now = timezone.now()
        rng = random.Random(f"{SEED}:policies")  # noqa: S311 (demo data, not security)
        devices = list(
            authz.unrestricted(Device.objects, actor=ACTOR)
            .filter(lifecycle_state=LifecycleState.ENROLLED)
            .exclude(pk__in=DeviceInventory.objects.values("device_id"))
            .order_by("pk")
        )
        planned = [(device, demo_inventory(device.platform, device.compliance_state, rng)) for device in devices]
        # The noncompliant ones first, then a sweep as of two days ago: their failures date from then.
        first = [(d, inv) for d, inv in planned if inv is not None and d.compliance_state != ComplianceState.IN_GRACE]
        later = [(d, inv) for d, inv in planned if inv is not None and d.compliance_state == ComplianceState.IN_GRACE]
        self.report(first)
        compliance_sweep(now=now - NONCOMPLIANT_FOR)
        self.report(later)
        installs = sum(profile_fanout(profile.pk, reason="demo").get(DeliveryState.PENDING, 0) for profile in profiles)
        compliance_sweep(now=now)
        self.trend_history(now, rng)

        counts = {
            state: authz.unrestricted(Device.objects, actor=ACTOR)
            .filter(lifecycle_state=LifecycleState.ENROLLED, compliance_state=state)
            .count()
            for state in ComplianceState.values
        }
        states = ", ".join(f"{ComplianceState(state).label.lower()} {count}" for state, count in counts.items())
        return f"{len(PROFILES)} profiles ({installs} installs queued), {len(POLICIES)} policies; devices: {states}"

    def trend_history(self, now, rng: random.Random) -> None:
        """The days before the demo existed: a plausible 60-day trend, so the dashboard's chart has a shape.

        Made up from today's snapshot (the sweep above): per scope, the same number of devices, with
        more of them failing the further back the day (IT has been fixing things). The earlier sweep's
        snapshot (two days ago, half the fleet reported) is replaced too. Demo data only: a real
        installation's trend is written by the sweep.
        """
        today = timezone.localdate(now)
        baseline: dict[int, dict[str, int]] = {}
        for row in ComplianceSnapshot.objects.filter(day=today):
            baseline.setdefault(row.scope_id, {})[row.state] = row.count
        ComplianceSnapshot.objects.filter(day__lt=today).delete()
        rows = []
        for days_ago in range(1, HISTORY.days):
            day = today - timedelta(days=days_ago)
            worse = 1 + 0.9 * days_ago / HISTORY.days  # a third more failures two months ago than today
            for scope_id, counts in baseline.items():
                total = sum(counts.values())
                past = {
                    state: min(total, round(counts.get(state, 0) * worse * rng.uniform(0.9, 1.1)))
                    for state in (ComplianceState.NONCOMPLIANT, ComplianceState.IN_GRACE, ComplianceState.ERROR)
                }
                past[ComplianceState.NOT_EVALUATED] = counts.get(ComplianceState.NOT_EVALUATED, 0)
                past[ComplianceState.COMPLIANT] = max(0, total - sum(past.values()))
                rows += [
                    ComplianceSnapshot(day=day, scope_id=scope_id, state=state, count=count)
                    for state, count in past.items()
                ]
        ComplianceSnapshot.objects.bulk_create(rows, ignore_conflicts=True)

    def report(self, planned: list[tuple[Device, dict]]) -> None:
        """Store each device's inventory as a check-in would, keeping the check-in time demo_org gave it."""
        for device, inventory in planned:
            last_checkin_at = device.last_checkin_at
            device_inventory_store(device=device, inventory=inventory, digest=inventory_digest(inventory))
            device_checkin_touch(device=device, at=last_checkin_at)
