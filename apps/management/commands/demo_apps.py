"""``manage.py demo_apps``: the demo organisation's app catalog and app protection.

Written through the services (``app_save``, ``app_version_add``, ``protection_policy_save``), as
IT would in the admin:

* store apps on iOS, iPadOS, Android, Windows and macOS: Microsoft Teams and Outlook *required* for
  All employees; Zoom Workplace, Slack, Adobe Acrobat Reader and Miro *available* in the Company Portal;
  the qBittorrent torrent client *blocked* on corporate devices (Windows, macOS, Linux);
* a line-of-business ``.deb`` for Linux, built here (``build_deb``: a tiny valid Debian package),
  available to All employees; a web link (the expenses site) available on every platform;
* an app protection policy for Outlook and Teams on iOS and on Android, for All employees.

The demo's devices were registered without an agent, so the required apps' install commands are
answered here as their agents would: most devices that checked in since installed the app, a few
failed with the reason their platform gives, and the rest are still pending; the console's install
status has numbers and the "retry failed" button something to do. The employee's simulated laptop
(``make demo``) enrols later and installs them for real.

Deterministic (``random.Random``), and idempotent: a second run changes nothing.
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from devices.choices import CommandType, Ownership, Platform
from devices.models import OPEN_STATUSES, DeviceCommand
from devices.services.commands import device_command_results_record
from mdm_portal.core import authz
from mdm_portal.core.audit import Actor
from mdm_portal.core.models import UserGroup
from policies.choices import AssignmentTarget

from ...choices import AppIntent, AppKind, ClipboardLevel, InstallState, SharingLevel
from ...models import App, AppInstall, AppProtectionPolicy
from ...services import app_fanout, app_save, app_version_add
from ...services.delivery import subject_of
from ...services.protection import protection_policy_save

ACTOR = Actor.system("demo_apps")
SEED = 2026
EVERYONE = "All employees"
IOS, IPADOS, ANDROID, WINDOWS, MACOS, LINUX = (
    Platform.IOS, Platform.IPADOS, Platform.ANDROID, Platform.WINDOWS, Platform.MACOS, Platform.LINUX,
)  # fmt: skip
# Of the required apps' install commands on devices that checked in: installed, failed (the rest pending).
INSTALLED_SHARE, FAILED_SHARE = 0.78, 0.05
FAILURES = {
    IOS: "The App Store could not be reached (NSURLErrorDomain -1001: the request timed out).",
    IPADOS: "There is not enough storage to install the app. Free up space in Settings > General > Storage.",
    ANDROID: "Google Play could not download the app (error 927: the Play Store was updating itself).",
    WINDOWS: "The installer exited with code 1618: another installation is already in progress.",
    MACOS: "The Mac App Store could not be reached (the request timed out).",
}

EVERYONE_GETS = {"target": AssignmentTarget.USER_GROUP, "user_group": EVERYONE}
CORPORATE = {"target": AssignmentTarget.ALL_DEVICES, "filter_ownership": Ownership.CORPORATE}

# name, publisher, description, intent and who: the same app on each platform (identifier, App Store id, version).
STORE_APPS = (
    ("Microsoft Teams", "Microsoft Corporation", "Chat, meetings and calls with your colleagues.",
     (AppIntent.REQUIRED, EVERYONE_GETS), {
        IOS: ("com.microsoft.skype.teams", "1113153706", "7.20.0"),
        IPADOS: ("com.microsoft.skype.teams", "1113153706", "7.20.0"),
        ANDROID: ("com.microsoft.teams", "", "1.0.0.2025203101"),
        WINDOWS: ("Microsoft.Teams", "", "25290.205.4069.4894"),
        MACOS: ("com.microsoft.teams2", "", "25290.205.4069.4894"),
    }),
    ("Microsoft Outlook", "Microsoft Corporation", "Your work email, calendar and contacts, protected by the company.",
     (AppIntent.REQUIRED, EVERYONE_GETS), {
        IOS: ("com.microsoft.Office.Outlook", "951937596", "4.2544.1"),
        IPADOS: ("com.microsoft.Office.Outlook", "951937596", "4.2544.1"),
        ANDROID: ("com.microsoft.office.outlook", "", "4.2544.0"),
        WINDOWS: ("Microsoft.OutlookForWindows", "", "1.2025.1105.300"),
        MACOS: ("com.microsoft.Outlook", "", "16.103"),
    }),
    ("Zoom Workplace", "Zoom Video Communications", "Video meetings, webinars and team chat with customers and "
     "partners outside the company.", (AppIntent.AVAILABLE, EVERYONE_GETS), {
        IOS: ("us.zoom.videomeetings", "546505307", "6.6.10"),
        IPADOS: ("us.zoom.videomeetings", "546505307", "6.6.10"),
        ANDROID: ("us.zoom.videomeetings", "", "6.6.10.33370"),
        WINDOWS: ("Zoom.Zoom", "", "6.6.10.22508"),
        MACOS: ("us.zoom.xos", "", "6.6.10"),
    }),
    ("Slack", "Slack Technologies", "Channels shared with our partners' teams (most of the company uses Teams).",
     (AppIntent.AVAILABLE, EVERYONE_GETS), {
        IOS: ("com.tinyspeck.chatlyio", "618783545", "25.11.20"),
        ANDROID: ("com.Slack", "", "25.11.20.0"),
        WINDOWS: ("SlackTechnologies.Slack", "", "4.47.59"),
        MACOS: ("com.tinyspeck.slackmacgap", "", "4.47.59"),
    }),
    ("Adobe Acrobat Reader", "Adobe", "View, sign and comment on PDF documents.",
     (AppIntent.AVAILABLE, EVERYONE_GETS), {
        IOS: ("com.adobe.Adobe-Reader", "469337564", "25.11.0"),
        IPADOS: ("com.adobe.Adobe-Reader", "469337564", "25.11.0"),
        ANDROID: ("com.adobe.reader", "", "25.11.0.41234"),
        WINDOWS: ("Adobe.Acrobat.Reader.64-bit", "", "25.001.20844"),
        MACOS: ("com.adobe.Reader", "", "25.001.20844"),
    }),
    ("Miro", "Miro", "The online whiteboard for workshops and planning with your team.",
     (AppIntent.AVAILABLE, EVERYONE_GETS), {
        IOS: ("com.realtimeboard.app", "1180074773", "4.9.2"),
        IPADOS: ("com.realtimeboard.app", "1180074773", "4.9.2"),
        ANDROID: ("com.realtimeboard", "", "0.5.240"),
        WINDOWS: ("Miro.Miro", "", "0.10.81"),
        MACOS: ("com.electron.realtimeboard", "", "0.10.81"),
    }),
    ("qBittorrent", "The qBittorrent project", "A BitTorrent client. Not allowed on company devices: it shares "
     "files with strangers.", (AppIntent.BLOCKED, CORPORATE), {
        WINDOWS: ("qBittorrent.qBittorrent", "", "5.1.2"),
        MACOS: ("org.qbittorrent.qBittorrent", "", "5.1.2"),
        LINUX: ("qbittorrent", "", "4.6.4"),
    }),
)  # fmt: skip
DEB_APP = (
    "Example Corp VPN helper", "Example Corp IT", "Connects your Linux computer to the company VPN with one click.",
    "example-vpn-helper", "1.4.2",
)  # fmt: skip
WEB_APP = ("Expenses", "Example Corp", "Submit receipts and travel expenses.", "https://expenses.example.com/")
WEB_PLATFORMS = (IOS, ANDROID, WINDOWS, MACOS)
PROTECTED = ("Microsoft Outlook", "Microsoft Teams")
PROTECTION = {
    "description": "Company email and chat stay inside the company's apps, behind a PIN.",
    "data_isolation": True,
    "clipboard": ClipboardLevel.MANAGED_APPS_PASTE_IN,
    "block_backup": True,
    "block_save_as": True,
    "sharing": SharingLevel.MANAGED_APPS,
    "managed_browser_required": True,
    "blocked_urls": ["https://files.example.net"],
    "pin_required": True,
    "pin_length": 6,
    "pin_recheck_minutes": 30,
    "offline_block_minutes": 720,
    "offline_wipe_days": 90,
}
PROTECTION_POLICIES = (("Outlook and Teams protection (iOS)", IOS), ("Outlook and Teams protection (Android)", ANDROID))


# Every member of the demo package carries this time (1 January 2026), so the bytes never change.
PACKAGE_MTIME = 1767225600


def _tar_gz(files: dict[str, bytes], directories: tuple[str, ...]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name in directories:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uname, info.gname = (
                tarfile.DIRTYPE,
                0o755,
                PACKAGE_MTIME,
                "root",
                "root",
            )
            archive.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.uname, info.gname = len(data), 0o644, PACKAGE_MTIME, "root", "root"
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    parts = [b"!<arch>\n"]
    for name, data in members:
        parts.append(f"{name:<16}{PACKAGE_MTIME:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode("ascii"))
        parts.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(parts)


def build_deb(*, package: str, version: str, summary: str, description: str, maintainer: str = "") -> bytes:
    """A tiny valid Debian package (``dpkg -i`` installs it): a README under ``/usr/share/doc/<package>/``.

    Deterministic: the same arguments give the same bytes (fixed times, owners and gzip header).
    """
    maintainer = maintainer or "Example Corp IT <it@example.com>"
    control = (
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: {maintainer}\n"
        f"Installed-Size: 1\nSection: misc\nPriority: optional\nDescription: {summary}\n {description}\n"
    ).encode()
    doc = f"./usr/share/doc/{package}/"
    readme = f"{summary}\n\n{description}\n".encode()
    return _ar(
        [
            ("debian-binary", b"2.0\n"),
            ("control.tar.gz", _tar_gz({"./control": control}, ("./",))),
            (
                "data.tar.gz",
                _tar_gz({f"{doc}README": readme}, ("./", "./usr/", "./usr/share/", "./usr/share/doc/", doc)),
            ),
        ]
    )


def demo_deb() -> tuple[str, bytes]:
    """The demo's Linux package: its file name and bytes."""
    _name, publisher, description, package, version = DEB_APP
    maintainer = f"{publisher} <it@example.com>"
    data = build_deb(
        package=package, version=version, summary=DEB_APP[0], description=description, maintainer=maintainer
    )
    return f"{package}_{version}_all.deb", data


class Command(BaseCommand):
    help = (
        "Create the demo's app catalog (store apps, a Linux package, a web link) with assignments, and app protection "
        "for Outlook and Teams (after demo_org). The required apps' installs are answered as the devices' agents would."
    )

    def handle(self, *args, **options):
        names = [name for name, _ in PROTECTION_POLICIES]
        there = set(AppProtectionPolicy.objects.filter(name__in=names).values_list("name", flat=True))
        expected = sum(len(platforms) for *_, platforms in STORE_APPS) + 1 + len(WEB_PLATFORMS)
        apps_there = authz.unrestricted(App.objects, actor=ACTOR).filter(scope__isnull=True).count()
        if len(there) == len(names) and apps_there >= expected:
            self.stdout.write("The demo apps and app protection policies already exist; nothing was changed.")
            return
        if there or apps_there:
            raise CommandError(
                "Some apps or app protection policies exist already, so the demo's cannot be added without clashing. "
                "Start from an empty database: `make clean-demo`."
            )
        groups = {group.name: group for group in UserGroup.objects.all()}
        if EVERYONE not in groups:
            raise CommandError("The demo organisation is missing: run `manage.py demo_org` first.")
        with transaction.atomic():
            summary = self.build(groups)
        self.stdout.write(self.style.SUCCESS(f"Demo apps: {summary}."))

    def build(self, groups: dict[str, UserGroup]) -> str:
        def rows(intent: str, who: dict) -> list[dict]:
            row = {**who, "intent": intent}
            if "user_group" in row:
                row["user_group"] = groups[row["user_group"]]
            return [row]

        apps: list[App] = []
        by_name: dict[tuple[str, str], App] = {}
        for name, publisher, description, (intent, who), platforms in STORE_APPS:
            for platform, (identifier, store_id, version) in platforms.items():
                app = app_save(
                    actor=ACTOR,
                    data={"name": name, "publisher": publisher, "description": description, "kind": AppKind.STORE,
                          "platform": platform, "identifier": identifier, "store_id": store_id, "scope": None},
                    assignments=rows(intent, who),
                )  # fmt: skip
                app_version_add(actor=ACTOR, app=app, version=version)
                apps.append(app)
                by_name[name, platform] = app

        name, publisher, description, _package, _version = DEB_APP
        filename, data = demo_deb()
        vpn = app_save(
            actor=ACTOR,
            data={"name": name, "publisher": publisher, "description": description, "kind": AppKind.LOB,
                  "platform": LINUX, "scope": None},
            assignments=rows(AppIntent.AVAILABLE, EVERYONE_GETS),
        )  # fmt: skip
        app_version_add(
            actor=ACTOR,
            app=vpn,
            package=SimpleUploadedFile(filename, data, content_type="application/vnd.debian.binary-package"),
            notes="Built by the demo: installs a README under /usr/share/doc/example-vpn-helper/.",
        )
        apps.append(vpn)
        name, publisher, description, url = WEB_APP
        for platform in WEB_PLATFORMS:
            web = app_save(
                actor=ACTOR,
                data={"name": name, "publisher": publisher, "description": description, "kind": AppKind.WEB,
                      "platform": platform, "url": url, "scope": None},
                assignments=rows(AppIntent.AVAILABLE, EVERYONE_GETS),
            )  # fmt: skip
            app_version_add(actor=ACTOR, app=web, version="1.0")
            apps.append(web)

        for policy_name, platform in PROTECTION_POLICIES:
            protection_policy_save(
                actor=ACTOR,
                data={"name": policy_name, "platform": platform, "scope": None, **PROTECTION},
                apps=[by_name[app_name, platform] for app_name in PROTECTED],
                assignments=[{"user_group": groups[EVERYONE]}],
            )

        # What the fan-out task queued on commit does, now, so the next steps see the installs.
        for app in apps:
            app_fanout(app.pk, reason="demo")
        installed, failed, removed = self.answer(apps)
        pending = authz.unrestricted(AppInstall.objects, actor=ACTOR).filter(state=InstallState.PENDING).count()
        return (
            f"{len(apps)} apps, {len(PROTECTION_POLICIES)} app protection policies; installs of the required apps: "
            f"{installed} done, {failed} failed; blocked apps checked on {removed} devices; {pending} still pending"
        )

    def answer(self, apps: list[App]) -> tuple[int, int, int]:
        """Answer the fan-out's commands as the agents of the devices that checked in would.

        Most install the required apps (a few fail with their platform's reason); the blocked app's
        removal finds nothing to remove. Returns (installed, failed, removals answered).
        """
        rng = random.Random(f"{SEED}:apps")  # noqa: S311 (demo data, not security)
        commands = (
            authz.unrestricted(DeviceCommand.objects, actor=ACTOR)
            .filter(
                command_type__in=(CommandType.INSTALL_APP, CommandType.REMOVE_APP),
                status__in=OPEN_STATUSES,
                subject__in=[subject_of(app) for app in apps],
                device__last_checkin_at__isnull=False,
            )
            .select_related("device")
            .order_by("pk")
        )
        versions = {
            str(uuid): version
            for uuid, version in App.objects.filter(pk__in=[app.pk for app in apps]).values_list(
                "uuid", "current_version__version"
            )
        }
        installed = failed = removed = 0
        for command in commands:
            roll = rng.random()
            result = {"id": str(command.uuid), "status": "acknowledged", "data": {}}
            if roll >= INSTALLED_SHARE + FAILED_SHARE:
                continue  # not answered yet: the device is off or offline
            if command.command_type == CommandType.REMOVE_APP:
                removed += 1
            elif roll < INSTALLED_SHARE:
                result["data"] = {"version": versions.get(str(command.payload.get("app")), "")}
                installed += 1
            else:
                reason = FAILURES.get(command.device.platform, "The installation failed.")
                result = {"id": str(command.uuid), "status": "error", "error": reason}
                failed += 1
            device_command_results_record(device=command.device, results=[result])
        return installed, failed, removed
