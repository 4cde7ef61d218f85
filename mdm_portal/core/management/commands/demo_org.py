"""``manage.py demo_org``: a realistic demo organisation, written through the services.

Three scopes, IT staff with scoped roles, ~30 employees in user groups, ~300 devices on every
platform in every lifecycle state, and static and rule-based device groups. The data comes from
``random.Random(2026)``, so every run builds the same organisation. A second run changes nothing and
prints the logins again.
"""

from __future__ import annotations

import os
import random
import string
import time
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from devices import lifecycle
from devices import services as device_services
from devices.choices import (
    ComplianceState,
    EnrollmentMethod,
    EnrollmentTransport,
    GroupMembershipType,
    GroupRuleField,
    LifecycleState,
    Ownership,
    Platform,
)
from devices.models import Device, DeviceGroup
from mdm_portal.core import authz
from mdm_portal.core import services as core_services
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import Role, Scope, User, UserGroup

ACTOR = Actor.system("demo_org")
SEED = 2026
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 (a published demo login)
ADMIN_PASSWORD = "admin"  # noqa: S105 (a published demo login)
EMAIL_DOMAIN = "example.com"

SCOPES = (
    ("EMEA", "emea", "Europe, the Middle East and Africa: London, Berlin and Stockholm."),
    ("Americas", "americas", "North and South America: New York, Toronto and São Paulo."),
    ("APAC", "apac", "Asia-Pacific: Sydney, Singapore and Tokyo."),
)
SITES = {"emea": ("LON", "BER", "STO"), "americas": ("NYC", "TOR", "SAO"), "apac": ("SYD", "SIN", "TYO")}

# username, first name, last name, home scope, department, site. "employee" is the portal login.
EMPLOYEES = (
    ("employee", "Emma", "Lindqvist", "emea", "Sales", "STO"),
    ("oliver.bennett", "Oliver", "Bennett", "emea", "Sales", "LON"),
    ("sofia.rossi", "Sofia", "Rossi", "emea", "Engineering", "BER"),
    ("lukas.schneider", "Lukas", "Schneider", "emea", "Engineering", "BER"),
    ("amira.haddad", "Amira", "Haddad", "emea", "Finance", "LON"),
    ("jonas.nielsen", "Jonas", "Nielsen", "emea", "Frontline", "STO"),
    ("chloe.martin", "Chloé", "Martin", "emea", "Marketing", "LON"),
    ("thabo.nkosi", "Thabo", "Nkosi", "emea", "Frontline", "LON"),
    ("henrik.johansson", "Henrik", "Johansson", "emea", "Executive", "STO"),
    ("aoife.murphy", "Aoife", "Murphy", "emea", "HR", "LON"),
    ("michael.carter", "Michael", "Carter", "americas", "Executive", "NYC"),
    ("jessica.nguyen", "Jessica", "Nguyen", "americas", "Sales", "NYC"),
    ("carlos.mendoza", "Carlos", "Mendoza", "americas", "Frontline", "SAO"),
    ("ashley.brooks", "Ashley", "Brooks", "americas", "Marketing", "NYC"),
    ("daniel.kim", "Daniel", "Kim", "americas", "Engineering", "TOR"),
    ("gabriela.souza", "Gabriela", "Souza", "americas", "Finance", "SAO"),
    ("marcus.johnson", "Marcus", "Johnson", "americas", "Frontline", "NYC"),
    ("emily.tremblay", "Emily", "Tremblay", "americas", "Sales", "TOR"),
    ("kevin.obrien", "Kevin", "O'Brien", "americas", "Engineering", "NYC"),
    ("valentina.cruz", "Valentina", "Cruz", "americas", "Frontline", "SAO"),
    ("hiroshi.tanaka", "Hiroshi", "Tanaka", "apac", "Engineering", "TYO"),
    ("meilin.chen", "Mei Lin", "Chen", "apac", "Finance", "SIN"),
    ("arjun.patel", "Arjun", "Patel", "apac", "Engineering", "SIN"),
    ("siti.rahman", "Siti", "Rahman", "apac", "Frontline", "SIN"),
    ("liam.walker", "Liam", "Walker", "apac", "Sales", "SYD"),
    ("yuki.sato", "Yuki", "Sato", "apac", "Marketing", "TYO"),
    ("priya.sharma", "Priya", "Sharma", "apac", "Executive", "SYD"),
    ("an.nguyen", "An", "Nguyen", "apac", "Frontline", "SYD"),
    ("grace.lee", "Grace", "Lee", "apac", "HR", "SYD"),
    ("tom.fischer", "Tom", "Fischer", "emea", "Engineering", "BER"),
)
LEAVER = "oliver.bennett"  # offboarded by demo_retirement

# username, first name, last name, home scope, department, role, scope slugs (None: all scopes), what it shows
STAFF = (
    ("itadmin", "Alex", "Morgan", "emea", "IT", "Global administrator", None,
     "Global administrator over all scopes (through the 'IT department' user group)"),
    ("helpdesk-emea", "Hannah", "Weber", "emea", "IT", "Helpdesk operator", ["emea"],
     "Helpdesk operator for EMEA: sees only EMEA devices and people; sync and lock, no wipe"),
    ("helpdesk-americas", "Diego", "Alvarez", "americas", "IT", "Helpdesk operator", ["americas"],
     "Helpdesk operator for Americas: sees only Americas devices and people"),
    ("readonly", "Riya", "Kapoor", "apac", "Internal audit", "Read-only operator", None,
     "Read-only operator: sees every scope, changes nothing, reads no secrets"),
)  # fmt: skip

USER_GROUPS = (
    ("Sales", "Account executives and sales engineers.", {"Sales"}),
    ("Engineering", "Software and hardware engineering.", {"Engineering"}),
    ("Finance", "Finance and accounting; stricter compliance.", {"Finance"}),
    ("Frontline workers", "Store and warehouse staff on shared handhelds and their own phones.", {"Frontline"}),
    ("Executives", "The leadership team; VIP support.", {"Executive"}),
)


@dataclass(frozen=True)
class Hardware:
    platform: str
    manufacturer: str
    model: str
    os_versions: tuple[str, ...]
    serial: str  # a key of SERIAL_FORMATS
    short: str = ""  # what its owner calls it: "Emma's iPhone"
    cellular: bool = False  # has an IMEI
    outdated: bool = False  # its OS is past support, so it is never compliant


IOS = ("27.1", "27.0.1", "26.7.2", "26.6", "18.7.1")
IPADOS = ("27.1", "26.7.2", "26.6", "18.7.1")
ANDROID = ("16", "16", "15", "14")
RUGGED_ANDROID = ("14", "13", "13", "11")
WINDOWS = ("10.0.26200.7171", "10.0.26100.7171", "10.0.26100.6899", "10.0.22631.6199")
MACOS = ("27.1", "26.7.2", "26.6", "15.7.3")
LINUX = ("Ubuntu 24.04.3 LTS", "Ubuntu 26.04.1 LTS", "Ubuntu 22.04.5 LTS", "Debian 13.2", "Fedora 43")
LINUX_SERVER = ("Ubuntu 24.04.3 LTS", "Red Hat Enterprise Linux 9.7", "Red Hat Enterprise Linux 10.1", "Debian 12.12")

IPH, IPD, AND, WIN, MAC, LNX = (
    Platform.IOS,
    Platform.IPADOS,
    Platform.ANDROID,
    Platform.WINDOWS,
    Platform.MACOS,
    Platform.LINUX,
)
CATALOGUE: dict[str, tuple[Hardware, ...]] = {
    "iphone": (
        Hardware(IPH, "Apple", "iPhone 17 Pro", IOS[:3], "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone 17", IOS[:3], "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone 16", IOS, "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone 16e", IOS, "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone 15", IOS, "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone 14", IOS[2:], "apple", "iPhone", cellular=True),
        Hardware(IPH, "Apple", "iPhone SE (3rd generation)", IOS[2:], "apple", "iPhone", cellular=True),
    ),
    "iphone_old": (
        Hardware(IPH, "Apple", "iPhone X", ("16.7.12",), "apple", "iPhone", cellular=True, outdated=True),
        Hardware(IPH, "Apple", "iPhone 8", ("16.7.11",), "apple", "iPhone", cellular=True, outdated=True),
        Hardware(IPH, "Apple", "iPhone 7", ("15.8.5",), "apple", "iPhone", cellular=True, outdated=True),
    ),
    "android_phone": (
        Hardware(AND, "Samsung", "Galaxy S25 (SM-S931B)", ANDROID, "samsung", "Galaxy S25", cellular=True),
        Hardware(AND, "Samsung", "Galaxy S24 (SM-S921B)", ANDROID, "samsung", "Galaxy S24", cellular=True),
        Hardware(AND, "Samsung", "Galaxy A56 5G (SM-A566B)", ANDROID, "samsung", "Galaxy A56", cellular=True),
        Hardware(AND, "Google", "Pixel 10", ("17", "16"), "google", "Pixel 10", cellular=True),
        Hardware(AND, "Google", "Pixel 9", ("17", "16", "16"), "google", "Pixel 9", cellular=True),
        Hardware(AND, "Google", "Pixel 8a", ANDROID, "google", "Pixel 8a", cellular=True),
        Hardware(AND, "Motorola", "moto g85 5G", ("15", "14"), "motorola", "moto g85", cellular=True),
    ),
    "ipad": (
        Hardware(IPD, "Apple", "iPad Pro 13-inch (M4)", IPADOS, "apple", "iPad"),
        Hardware(IPD, "Apple", "iPad Air 11-inch (M3)", IPADOS, "apple", "iPad"),
        Hardware(IPD, "Apple", "iPad (A16)", IPADOS, "apple", "iPad"),
        Hardware(IPD, "Apple", "iPad mini (A17 Pro)", IPADOS, "apple", "iPad mini"),
    ),
    "ipad_old": (
        Hardware(IPD, "Apple", "iPad (5th generation)", ("16.7.12",), "apple", "iPad", outdated=True),
        Hardware(IPD, "Apple", "iPad Pro 12.9-inch (2nd generation)", ("16.7.10",), "apple", "iPad", outdated=True),
    ),
    "android_tablet": (
        Hardware(AND, "Samsung", "Galaxy Tab S10 FE (SM-X520)", ANDROID, "samsung", "Galaxy Tab"),
        Hardware(AND, "Lenovo", "Tab M11 (TB330FU)", ("15", "14"), "lenovo_tab", "Lenovo Tab"),
    ),
    "rugged": (
        Hardware(AND, "Zebra Technologies", "TC58", RUGGED_ANDROID, "zebra", cellular=True),
        Hardware(AND, "Zebra Technologies", "TC53", RUGGED_ANDROID, "zebra"),
        Hardware(AND, "Zebra Technologies", "TC52", ("11", "11", "13"), "zebra"),
        Hardware(AND, "Samsung", "Galaxy XCover7 (SM-G556B)", ("15", "14"), "samsung", cellular=True),
    ),
    "kiosk_tablet": (
        Hardware(AND, "Samsung", "Galaxy Tab Active5 (SM-X300)", ("15", "14"), "samsung"),
        Hardware(IPD, "Apple", "iPad (A16)", IPADOS, "apple"),
    ),
    "windows_laptop": (
        Hardware(WIN, "Dell Inc.", "Latitude 7450", WINDOWS, "dell", "Latitude"),
        Hardware(WIN, "Dell Inc.", "Latitude 5550", WINDOWS, "dell", "Latitude"),
        Hardware(WIN, "LENOVO", "ThinkPad T14 Gen 5", WINDOWS, "lenovo", "ThinkPad"),
        Hardware(WIN, "LENOVO", "ThinkPad X1 Carbon Gen 13", WINDOWS, "lenovo", "ThinkPad"),
        Hardware(WIN, "HP", "EliteBook 840 G11", WINDOWS, "hp", "EliteBook"),
        Hardware(WIN, "Microsoft Corporation", "Surface Laptop 7", WINDOWS[:3], "surface", "Surface"),
    ),
    "windows_old": (
        Hardware(WIN, "Dell Inc.", "Latitude 5490", ("10.0.19045.6456",), "dell", "Latitude", outdated=True),
        Hardware(WIN, "LENOVO", "ThinkPad T480", ("10.0.19045.6332",), "lenovo", "ThinkPad", outdated=True),
    ),
    "windows_desktop": (
        Hardware(WIN, "Dell Inc.", "OptiPlex 7020 Micro", WINDOWS, "dell"),
        Hardware(WIN, "HP", "Elite Mini 800 G9", WINDOWS, "hp"),
    ),
    "mac": (
        Hardware(MAC, "Apple", "MacBook Air 13-inch (M4)", MACOS, "apple", "MacBook Air"),
        Hardware(MAC, "Apple", "MacBook Air 15-inch (M3)", MACOS, "apple", "MacBook Air"),
        Hardware(MAC, "Apple", "MacBook Pro 14-inch (M4 Pro)", MACOS, "apple", "MacBook Pro"),
        Hardware(MAC, "Apple", "MacBook Pro 16-inch (M3 Max)", MACOS, "apple", "MacBook Pro"),
    ),
    "mac_desktop": (Hardware(MAC, "Apple", "Mac mini (M4)", MACOS, "apple"),),
    "linux_laptop": (
        Hardware(LNX, "LENOVO", "ThinkPad P16s Gen 3", LINUX, "lenovo"),
        Hardware(LNX, "Dell Inc.", "XPS 13 9350", LINUX, "dell"),
        Hardware(LNX, "Framework", "Laptop 13 (AMD Ryzen AI 300)", LINUX, "framework"),
    ),
    "linux_workstation": (Hardware(LNX, "Dell Inc.", "Precision 3680 Tower", LINUX, "dell"),),
    "linux_server": (
        Hardware(LNX, "Dell Inc.", "PowerEdge R660", LINUX_SERVER, "dell"),
        Hardware(LNX, "HPE", "ProLiant DL360 Gen11", LINUX_SERVER, "hpe"),
    ),
}
ALNUM = string.ascii_uppercase + string.digits
# prefix, alphabet, length of the random part
SERIAL_FORMATS = {
    "apple": ("", "BCDFGHJKLMNPQRTVWXYZ0123456789", 10),
    "dell": ("", "BCDFGHJKLMNPQRSTVWXYZ0123456789", 7),
    "lenovo": ("PF", ALNUM, 6),
    "lenovo_tab": ("HA", ALNUM, 6),
    "hp": ("5CG", ALNUM, 7),
    "surface": ("0F", string.digits, 10),
    "samsung": ("R5C", ALNUM, 8),
    "google": ("4B", ALNUM, 10),
    "motorola": ("ZY", ALNUM, 8),
    "zebra": ("2", string.digits, 13),
    "framework": ("FRANDWCP", ALNUM, 8),
    "hpe": ("CZJ", ALNUM, 7),
}
TAC = {"Apple": ("35391110", "35672011", "35441216"), "Samsung": ("35078211", "35292812"),
       "Google": ("35869213", "35189920"), "Motorola": ("35938714",), "Zebra Technologies": ("35317811",)}  # fmt: skip


@dataclass
class DeviceSpec:
    name: str
    hardware: Hardware
    ownership: str
    scope: str
    method: str
    user: User | None = None
    transport: str = EnrollmentTransport.OVER_THE_AIR
    state: str = LifecycleState.ENROLLED
    reason: str = ""
    compliance: str = ""  # drawn at random unless set


class DemoBuilder:
    """Draws the whole organisation from one seeded generator, in a fixed order."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.now = timezone.now()
        self.serials: set[str] = set()
        self.imeis: set[str] = set()
        self.asset_numbers: dict[str, int] = {}
        self.specs: list[DeviceSpec] = []

    # Identifiers ------------------------------------------------------------------------------

    def serial(self, kind: str) -> str:
        prefix, alphabet, length = SERIAL_FORMATS[kind]
        while True:
            serial = prefix + "".join(self.rng.choice(alphabet) for _ in range(length))
            if serial not in self.serials:
                self.serials.add(serial)
                return serial

    def imei(self, manufacturer: str) -> str:
        while True:
            body = self.rng.choice(TAC[manufacturer]) + "".join(self.rng.choice(string.digits) for _ in range(6))
            digits = [int(d) for d in body]
            for i in range(1, len(digits), 2):  # Luhn: double every second digit
                digits[i] = digits[i] * 2 - 9 if digits[i] > 4 else digits[i] * 2
            imei = body + str((10 - sum(digits) % 10) % 10)
            if imei not in self.imeis:
                self.imeis.add(imei)
                return imei

    def asset_name(self, site: str, kind: str) -> str:
        key = f"{site}-{kind}"
        self.asset_numbers[key] = self.asset_numbers.get(key, 0) + 1
        width = 2 if kind in ("KIOSK", "MR", "HH", "IPAD") or site == "LAB" else 4
        start = 0 if width == 2 else 1000
        return f"{key}-{start + self.asset_numbers[key]:0{width}d}"

    # Choices ----------------------------------------------------------------------------------

    def pick(self, *weighted: tuple[str, float]) -> str:
        values, weights = zip(*weighted, strict=True)
        return self.rng.choices(values, weights=weights)[0]

    def hardware(self, kind: str) -> Hardware:
        return self.rng.choice(CATALOGUE[kind])

    def checkin_age(self) -> timedelta:
        """Most devices checked in within hours; a tail goes quiet for up to 60 days."""
        bucket = self.pick(("hours", 65), ("days", 20), ("weeks", 10), ("stale", 5))
        low, high = {"hours": (0.01, 1), "days": (1, 7), "weeks": (7, 30), "stale": (30, 60)}[bucket]
        return timedelta(days=self.rng.uniform(low, high))

    def compliance(self, hardware: Hardware, age: timedelta) -> str:
        if hardware.outdated or age > timedelta(days=30):
            return ComplianceState.NONCOMPLIANT
        return self.pick(
            (ComplianceState.COMPLIANT, 78),
            (ComplianceState.IN_GRACE, 8),
            (ComplianceState.NONCOMPLIANT, 7),
            (ComplianceState.NOT_EVALUATED, 4),
            (ComplianceState.ERROR, 3),
        )

    # The plan ---------------------------------------------------------------------------------

    def add(self, name: str, kind: str, ownership: str, scope: str, method: str, **kwargs) -> DeviceSpec:
        spec = DeviceSpec(name=name, hardware=self.hardware(kind), ownership=ownership, scope=scope, method=method)
        for key, value in kwargs.items():
            setattr(spec, key, value)
        self.specs.append(spec)
        return spec

    def personal_name(self, user: User, hardware: Hardware) -> str:
        if hardware.platform == Platform.WINDOWS:
            return "DESKTOP-" + "".join(self.rng.choice(ALNUM) for _ in range(7))
        return f"{user.first_name}'s {hardware.short}"

    def plan_employee(self, user: User, department: str, site: str) -> None:
        """A computer (frontline staff have none), a phone, sometimes a tablet or their own laptop."""
        scope, corporate, personal = user.scope.slug, Ownership.CORPORATE, Ownership.PERSONAL
        byod = EnrollmentMethod.USER_SELF_SERVICE
        if department != "Frontline":
            if department == "Engineering":
                kind = self.pick(("mac", 45), ("linux_laptop", 30), ("windows_laptop", 25))
            elif department == "Executive":
                kind = self.pick(("mac", 70), ("windows_laptop", 30))
            else:
                kind = self.pick(("windows_laptop", 65), ("mac", 30), ("windows_old", 5))
            if kind == "mac":
                method = self.pick((EnrollmentMethod.ADMIN_BULK, 70), (EnrollmentMethod.CORPORATE_IDENTIFIER, 30))
            elif kind == "linux_laptop":
                method = EnrollmentMethod.AGENT_PUSH
            else:
                method = self.pick((EnrollmentMethod.AGENT_PUSH, 50), (EnrollmentMethod.ADMIN_BULK, 35), (byod, 15))
            self.add(self.asset_name(site, "MAC" if kind == "mac" else "LT"), kind, corporate, scope, method, user=user)
        phone_kind = self.pick(("iphone", 58), ("android_phone", 35), ("iphone_old", 7))
        if department == "Frontline" or self.rng.random() < 0.4:
            method = self.pick((byod, 80), (EnrollmentMethod.RESOURCE_GATE, 20))
            spec = self.add("", phone_kind, personal, scope, method, user=user)
            spec.name = self.personal_name(user, spec.hardware)
        else:
            method = self.pick((EnrollmentMethod.ADMIN_BULK, 60), (byod, 40))
            self.add(self.asset_name(site, "PH"), phone_kind, corporate, scope, method, user=user)
        if department == "Executive" or self.rng.random() < 0.25:
            tablet_kind = self.pick(("ipad", 75), ("android_tablet", 15), ("ipad_old", 10))
            self.add(
                self.asset_name(site, "TAB"), tablet_kind, corporate, scope, EnrollmentMethod.ADMIN_BULK, user=user
            )
        if self.rng.random() < 0.35:
            kind = self.pick(("mac", 25), ("windows_laptop", 20), ("ipad", 30), ("android_tablet", 25))
            spec = self.add("", kind, personal, scope, byod, user=user)
            spec.name = self.personal_name(user, spec.hardware)

    def plan_employee_login(self, user: User) -> None:
        """The portal login's devices are fixed, so the walkthrough is the same every time."""
        self.add("STO-PH-1001", "iphone", Ownership.CORPORATE, "emea", EnrollmentMethod.ADMIN_BULK, user=user)
        self.add("STO-LT-1001", "windows_laptop", Ownership.CORPORATE, "emea", EnrollmentMethod.AGENT_PUSH, user=user)
        spec = self.add("", "android_phone", Ownership.PERSONAL, "emea", EnrollmentMethod.USER_SELF_SERVICE, user=user)
        spec.name = self.personal_name(user, spec.hardware)
        spec.compliance = ComplianceState.IN_GRACE  # so the portal has something to fix
        self.asset_numbers.update({"STO-PH": 1, "STO-LT": 1})

    def plan_shared(self) -> None:
        corporate, bulk = Ownership.CORPORATE, EnrollmentMethod.ADMIN_BULK
        connected = EnrollmentTransport.CONNECTED
        for scope, sites in SITES.items():
            for _ in range(28):  # store and warehouse handhelds, staged in a cradle or zero-touch
                site = self.rng.choice(sites)
                transport = self.pick((connected, 30), (EnrollmentTransport.OVER_THE_AIR, 70))
                method = self.pick((bulk, 70), (EnrollmentMethod.CORPORATE_IDENTIFIER, 30))
                self.add(self.asset_name(site, "HH"), "rugged", corporate, scope, method, transport=transport)
            for site in sites:
                for _ in range(2):
                    self.add(
                        self.asset_name(site, "KIOSK"), "kiosk_tablet", corporate, scope, bulk, transport=connected
                    )
                for _ in range(2):
                    name = self.asset_name(site, "MR")
                    self.add(name, "windows_desktop", corporate, scope, EnrollmentMethod.AGENT_PUSH)
            for number in range(1, 5):
                server = self.rng.choice(sites).lower()
                method = self.pick((EnrollmentMethod.AGENT_PUSH, 60), (EnrollmentMethod.MANUAL, 40))
                self.add(f"{server}-build-{number:02d}", "linux_server", corporate, scope, method)
        for site, scope, count in (("TOR", "americas", 34), ("BER", "emea", 16)):  # call-centre desks
            for _ in range(count):
                self.add(self.asset_name(site, "CC"), "windows_desktop", corporate, scope, EnrollmentMethod.AGENT_PUSH)
        for _ in range(4):
            self.add(self.asset_name("LON-BOARDROOM", "IPAD"), "ipad", corporate, "emea", bulk, transport=connected)
        for kind, label, count in (
            ("linux_workstation", "LNX", 6),
            ("windows_desktop", "WIN", 4),
            ("mac_desktop", "MAC", 2),
        ):
            for _ in range(count):
                name = self.asset_name("LAB", label)
                method = EnrollmentMethod.MANUAL if kind == "linux_workstation" else EnrollmentMethod.AGENT_PUSH
                self.add(name, kind, corporate, "americas", method)
        for site, scope, count in (("nyc", "americas", 4), ("sin", "apac", 2)):  # iOS build agents
            for number in range(1, count + 1):
                name = f"{site}-macbuild-{number:02d}"
                self.add(name, "mac_desktop", corporate, scope, EnrollmentMethod.CORPORATE_IDENTIFIER)

    def plan_lifecycle_tail(self, users: dict[str, User]) -> None:
        """Pre-registered stock, and replaced devices retired."""
        sites = {row[0]: row[5] for row in EMPLOYEES}
        # Replacement laptops and phones waiting for their owners, and unassigned stock.
        waiting = [u for u in users.values() if u.department == "Engineering"][:3]
        for index in range(16):
            kind = self.pick(("windows_laptop", 40), ("mac", 25), ("iphone", 20), ("android_phone", 15))
            user = waiting[index] if index < len(waiting) else None
            scope = user.scope.slug if user else SCOPES[index % 3][1]
            spec = self.add("", kind, Ownership.CORPORATE, scope, EnrollmentMethod.CORPORATE_IDENTIFIER, user=user)
            spec.state = LifecycleState.PENDING
        # The leaver's offboarding and the handhelds sent for repair are retirement requests: demo_retirement.
        people = [u for u in users.values() if u.username not in ("employee", LEAVER)]
        for user in self.rng.sample(people, 12):
            kind = self.pick(("windows_old", 40), ("iphone_old", 40), ("ipad_old", 20))
            label = {"windows_old": "LT", "iphone_old": "PH", "ipad_old": "TAB"}[kind]
            method = EnrollmentMethod.AGENT_PUSH if kind == "windows_old" else EnrollmentMethod.ADMIN_BULK
            spec = self.add(
                self.asset_name(sites[user.username], label), kind, Ownership.CORPORATE, user.scope.slug, method
            )
            spec.user, spec.state, spec.reason = user, LifecycleState.RETIRED, "Replaced; wiped and recycled."

    # Writing ----------------------------------------------------------------------------------

    def create(self, spec: DeviceSpec, scopes: dict[str, Scope]) -> Device:
        hardware = spec.hardware
        serial = self.serial(hardware.serial)
        os_version = self.rng.choice(hardware.os_versions)
        if spec.state == LifecycleState.PENDING:
            os_version = ""  # known from the purchase order: serial and model, not what it will run
        device = device_services.device_register(
            actor=ACTOR,
            name=spec.name or serial,
            platform=hardware.platform,
            ownership=spec.ownership,
            scope=scopes[spec.scope],
            enrollment_method=spec.method,
            enrollment_transport=spec.transport,
            primary_user=spec.user,
            os_version=os_version,
            model=hardware.model,
            manufacturer=hardware.manufacturer,
            serial_number=serial,
            imei=self.imei(hardware.manufacturer) if hardware.cellular else "",
        )
        if spec.state == LifecycleState.PENDING:
            return device
        age = self.checkin_age()
        if spec.state == LifecycleState.RETIRED:
            age += timedelta(days=self.rng.uniform(20, 40))
        # Enrolled some months before its last check-in, as a real fleet would be.
        lifecycle.enroll(device, actor=ACTOR, at=self.now - age - timedelta(days=self.rng.uniform(14, 540)))
        device_services.device_compliance_set(
            actor=ACTOR, device=device, state=spec.compliance or self.compliance(hardware, age)
        )
        device_services.device_checkin_touch(device=device, at=self.now - age)
        if spec.state in (LifecycleState.RETIRING, LifecycleState.RETIRED):
            lifecycle.start_retirement(device, actor=ACTOR, reason=spec.reason)
        if spec.state == LifecycleState.RETIRED:
            lifecycle.finish_retirement(device, actor=ACTOR, reason=spec.reason, at=self.now - age)
        return device


def demo_usernames() -> list[str]:
    return [row[0] for row in STAFF] + [row[0] for row in EMPLOYEES]


class Command(BaseCommand):
    help = "Create a demo organisation (scopes, people, roles, ~300 devices, device groups) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("PORT") or 8000), help="Port shown in the printed URLs."
        )
        parser.add_argument("--logins", action="store_true", help="Only print the URLs and logins; change nothing.")

    def handle(self, *args, port: int, logins: bool = False, **options):
        if logins:
            self.print_logins(port)
            return
        scopes_there = set(Scope.objects.filter(slug__in=[s[1] for s in SCOPES]).values_list("slug", flat=True))
        users_there = set(User.objects.filter(username__in=demo_usernames()).values_list("username", flat=True))
        if len(scopes_there) == len(SCOPES) and len(users_there) == len(demo_usernames()):
            self.stdout.write("The demo organisation already exists; nothing was changed.")
            self.print_logins(port)
            return
        if scopes_there or users_there:
            raise CommandError(
                "Part of the demo organisation exists already "
                f"(scopes: {', '.join(sorted(scopes_there)) or 'none'}; "
                f"people: {', '.join(sorted(users_there)) or 'none'}), so it cannot be added without clashing. "
                "Start from an empty database: `make clean-demo` removes the demo's var/ directory."
            )
        started = time.monotonic()
        with transaction.atomic():
            summary = self.build()
        self.stdout.write(
            self.style.SUCCESS(f"Demo organisation created in {time.monotonic() - started:.1f} s: {summary}.")
        )
        self.print_logins(port)

    def build(self) -> str:
        scopes = {
            slug: core_services.scope_create(actor=ACTOR, name=name, slug=slug, description=description)
            for name, slug, description in SCOPES
        }
        # One hash for every demo login: hashing is deliberately slow, and the password is shared anyway.
        demo_hash = make_password(DEMO_PASSWORD)
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", f"admin@{EMAIL_DOMAIN}", ADMIN_PASSWORD)

        staff: dict[str, User] = {}
        for username, first, last, scope, department, *_ in STAFF:
            staff[username] = self.create_user(username, first, last, scopes[scope], department, is_staff=True)
            staff[username].password = demo_hash
            staff[username].save(update_fields=["password"])
        employees: dict[str, User] = {}
        for username, first, last, scope, department, _site in EMPLOYEES:
            employees[username] = self.create_user(username, first, last, scopes[scope], department)
        employees["employee"].password = demo_hash
        employees["employee"].save(update_fields=["password"])

        everyone = [*staff.values(), *employees.values()]
        core_services.user_group_save(
            actor=ACTOR, name="All employees", description="Everyone in the directory.", members=everyone
        )
        for name, description, departments in USER_GROUPS:
            members = [u for u in employees.values() if u.department in departments]
            core_services.user_group_save(actor=ACTOR, name=name, description=description, members=members)
        it_group = core_services.user_group_save(
            actor=ACTOR, name="IT department", description="IT administrators.", members=[staff["itadmin"]]
        )
        roles = {role.name: role for role in Role.objects.filter(is_builtin=True)}
        for username, _first, _last, _scope, _dept, role, scope_slugs, _shows in STAFF:
            via_group = username == "itadmin"
            core_services.role_assignment_save(
                actor=ACTOR,
                name=f"{role}: {'IT department' if via_group else username}",
                role=roles[role],
                users=[] if via_group else [staff[username]],
                user_groups=[it_group] if via_group else [],
                all_scopes=scope_slugs is None,
                scopes=[scopes[s] for s in scope_slugs or []],
            )

        builder = DemoBuilder()
        builder.plan_employee_login(employees["employee"])
        for username, _first, _last, _scope, department, site in EMPLOYEES[1:]:
            builder.plan_employee(employees[username], department, site)
        builder.plan_shared()
        builder.plan_lifecycle_tail(employees)
        devices = [builder.create(spec, scopes) for spec in builder.specs]

        board_room = [d for d in devices if d.name.startswith("LON-BOARDROOM-")]
        device_groups = (
            ("Board room iPads", "emea", "Shared iPads in the London board room.", board_room, []),
            ("All corporate Windows laptops", None, "Corporate Windows devices: the Windows baseline.", None,
             [(GroupRuleField.PLATFORM, "windows"), (GroupRuleField.OWNERSHIP, "corporate")]),
            ("Old iOS", None, "iPhones and iPads on iOS/iPadOS 16 or older: replace them.", None,
             [(GroupRuleField.PLATFORM, "ios,ipados"), (GroupRuleField.OS_VERSION_MAX, "16")]),
            ("Lab machines", "americas", "Engineering lab in New York, named LAB-*.", None,
             [(GroupRuleField.NAME_PATTERN, "LAB-*")]),
            ("APAC store handhelds", "apac", "Shared rugged handhelds in APAC stores.", None,
             [(GroupRuleField.SCOPE, "apac"), (GroupRuleField.NAME_PATTERN, "*-HH-*")]),
        )  # fmt: skip
        for name, scope, description, members, rules in device_groups:
            group = device_services.device_group_save(
                actor=ACTOR,
                name=name,
                scope=scopes[scope] if scope else None,
                description=description,
                membership_type=GroupMembershipType.STATIC if members is not None else GroupMembershipType.DYNAMIC,
                static_members=members,
            )
            device_services.device_group_rules_set(actor=ACTOR, group=group, rules=rules)
        call_command("demo_policies", stdout=self.stdout)  # profiles, compliance policies, a compliance sweep
        call_command("demo_apps", stdout=self.stdout)  # the app catalog, its installs, app protection
        call_command("demo_retirement", stdout=self.stdout)  # an offboarding, retirements, cleanup rules

        device_count = authz.unrestricted(Device.objects, actor=ACTOR).count()
        return (
            f"{len(scopes)} scopes, {len(everyone) + 1} people, {UserGroup.objects.count()} user groups, "
            f"{device_count} devices, {DeviceGroup.objects.count()} device groups"
        )

    def create_user(self, username: str, first: str, last: str, scope: Scope, department: str, **extra) -> User:
        local_part = (username if "." in username else f"{first}.{last}").lower().replace(" ", "").replace("'", "")
        return User.objects.create_user(
            username, f"{local_part}@{EMAIL_DOMAIN}", None,
            first_name=first, last_name=last, scope=scope, department=department, **extra,
        )  # fmt: skip

    def print_logins(self, port: int) -> None:
        base = f"http://127.0.0.1:{port}"
        employee = next(row for row in EMPLOYEES if row[0] == "employee")
        admin = User.objects.filter(username="admin").first()
        if admin is None or admin.check_password(ADMIN_PASSWORD):
            admin_row = ("admin", ADMIN_PASSWORD, "Superuser: everything, including the Django internals")
        else:
            admin_row = ("admin", "(yours)", "Superuser that existed before the demo; its password was left alone")
        rows = [
            admin_row,
            *((username, DEMO_PASSWORD, shows) for username, *_, shows in STAFF),
            (
                "employee",
                DEMO_PASSWORD,
                f"{employee[1]} {employee[2]} (EMEA, Sales): the Company Portal, 3 devices and a simulated laptop",
            ),
        ]
        lines = [
            "",
            "=" * 100,
            f"  IT console       {base}/admin/",
            f"  Company Portal   {base}/portal/",
            f"  API docs         {base}/api/docs/",
            "",
            f"  {'login':<19} {'password':<16} what it shows",
            *(f"  {login:<19} {password:<16} {shows}" for login, password, shows in rows),
            "",
            "  Demo logins with published passwords: never expose this server beyond your own machine.",
            "=" * 100,
        ]
        self.stdout.write("\n".join(lines))
