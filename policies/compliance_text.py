# ruff: noqa: RUF001  (menu paths are written with the vendors' single right-pointing angle quotation mark)
"""What an employee reads about a failing compliance rule: a plain sentence and how to fix it.

One entry per rule: ``plain`` (may use ``{expected}`` and ``{actual}``, the stored values) and
``fix`` steps per platform family (iOS and iPadOS share one). Used by the Company Portal, the
admin's device page and the noncompliance email.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from devices.choices import Platform

from .choices import ComplianceRule as Rule

IOS, ANDROID, WINDOWS, MACOS, LINUX = "ios", "android", "windows", "macos", "linux"
FAMILIES = (IOS, ANDROID, WINDOWS, MACOS, LINUX)
FAMILY_LABELS = {IOS: "iOS and iPadOS", ANDROID: "Android", WINDOWS: "Windows", MACOS: "macOS", LINUX: "Linux"}
# The last step of most fixes: have the device report its new state. ``{agent}`` is the agent app's
# name (``MDM_AGENT_NAME``). iPhones and iPads run no agent app: the system checks in by itself, so
# their step points to the Company Portal's Check again instead (``rule_help`` swaps it in).
AGENT_SYNC = "Open {agent} and choose Sync now (or press Check again on this device in the Company Portal)."
APPLE_MOBILE_SYNC = (
    "Open this device's page in the Company Portal and tap Check again; keep the device unlocked and online "
    "until the page updates."
)


def platform_family(platform: str) -> str:
    return IOS if platform in (Platform.IOS, Platform.IPADOS) else platform


@dataclass(frozen=True)
class RuleText:
    plain: str
    fix: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _everywhere(*steps: str) -> dict[str, tuple[str, ...]]:
    return dict.fromkeys(FAMILIES, steps)


_UPDATE = {
    IOS: (
        "Connect to Wi-Fi and plug in the charger.",
        "Open Settings › General › Software Update.",
        "Tap Update Now (or Download and Install) and enter your passcode; the device restarts when done.",
        AGENT_SYNC,
    ),
    ANDROID: (
        "Connect to Wi-Fi and charge the battery above 50%.",
        "Open Settings › System › Software updates › Check for update "
        "(Samsung: Settings › Software update › Download and install; Pixel: Settings › System › System update).",
        "Install the update and let the phone restart.",
        "If no newer version is offered, your device no longer gets updates: ask IT about a replacement.",
        AGENT_SYNC,
    ),
    WINDOWS: (
        "Open Settings › Windows Update (Windows 10: Settings › Update & Security › Windows Update).",
        "Select Check for updates, then Download & install every update offered, including feature updates.",
        "Select Restart now when asked.",
        AGENT_SYNC,
    ),
    MACOS: (
        "Open the Apple menu › System Settings › General › Software Update "
        "(macOS 12 and earlier: System Preferences › Software Update).",
        "Click Update Now or Upgrade Now and enter your password; the Mac restarts when done.",
        AGENT_SYNC,
    ),
    LINUX: (
        "Install every pending update: on Ubuntu or Debian run `sudo apt update && sudo apt full-upgrade`; "
        "on Fedora or RHEL run `sudo dnf upgrade --refresh`.",
        "If a newer release is required, upgrade the release (Ubuntu: `sudo do-release-upgrade`; "
        "Fedora: `sudo dnf system-upgrade download --releasever=<version>`).",
        "Restart the computer.",
        AGENT_SYNC,
    ),
}

_PASSCODE_SET = {
    IOS: (
        "Open Settings › Face ID & Passcode (Touch ID & Passcode, or Passcode on devices without either).",
        "Tap Turn Passcode On and enter a new passcode twice.",
    ),
    ANDROID: (
        "Open Settings › Security (Security & privacy on newer phones) › Screen lock.",
        "Choose PIN or Password and enter it twice.",
    ),
    WINDOWS: (
        "Open Settings › Accounts › Sign-in options.",
        "Under PIN (Windows Hello) select Set up, or under Password select Add, and follow the steps.",
    ),
    MACOS: (
        "Open System Settings › Users & Groups, click the info button next to your account and set a password.",
        "Open System Settings › Lock Screen and set 'Require password after screen saver begins or display is "
        "turned off' to Immediately.",
    ),
    LINUX: (
        "Set a password for your account: run `passwd` in a terminal (GNOME: Settings › Users › Password).",
        "Turn on the automatic screen lock (GNOME: Settings › Privacy › Screen Lock).",
    ),
}

_PASSCODE_CHANGE = {
    IOS: (
        "Open Settings › Face ID & Passcode (or Touch ID & Passcode) and enter your current passcode.",
        "Tap Change Passcode, enter the old one, then tap Passcode Options.",
        "Choose Custom Alphanumeric Code (letters and digits) or Custom Numeric Code, and enter a passcode that "
        "meets the requirement.",
    ),
    ANDROID: (
        "Open Settings › Security (Security & privacy) › Screen lock and enter your current lock.",
        "Choose Password for letters and digits (a PIN holds digits only) and enter one that meets the requirement.",
    ),
    WINDOWS: (
        "Open Settings › Accounts › Sign-in options › PIN (Windows Hello) › Change PIN.",
        "Tick 'Include letters and symbols' if letters or symbols are required, and enter a PIN that meets the "
        "requirement. For an account password press Ctrl+Alt+Delete › Change a password.",
    ),
    MACOS: (
        "Open System Settings › Users & Groups, click the info button next to your account, then Change Password.",
        "Enter a new password that meets the requirement (mix letters, digits and symbols if asked).",
    ),
    LINUX: (
        "Run `passwd` in a terminal (GNOME: Settings › Users › Password).",
        "Enter a new password that meets the requirement.",
    ),
}

_ENCRYPT = {
    IOS: (
        "iPhone and iPad storage is encrypted as soon as a passcode is set: open Settings › Face ID & Passcode "
        "and tap Turn Passcode On.",
        "At the bottom of that screen, check that it says 'Data protection is enabled'.",
        AGENT_SYNC,
    ),
    ANDROID: (
        "On Android 10 and later the storage is encrypted once a screen lock is set: open Settings › Security › "
        "Screen lock and set a PIN or password.",
        "On older phones: charge the battery, plug it in, then open Settings › Security › Encryption & "
        "credentials › Encrypt phone and follow the steps (it takes an hour or more).",
        AGENT_SYNC,
    ),
    WINDOWS: (
        "Windows 11 Pro, Enterprise or Education: open Control Panel › System and Security › BitLocker Drive "
        "Encryption and select Turn on BitLocker for the system drive.",
        "Windows Home: open Settings › Privacy & security › Device encryption and turn it on.",
        "Save the recovery key to your work account when asked, keep the computer plugged in and restart.",
        AGENT_SYNC,
    ),
    MACOS: (
        "Open System Settings › Privacy & Security › FileVault and click Turn On.",
        "Choose to store the recovery key with your organisation or your iCloud account as IT asks, and keep the "
        "Mac plugged in while it encrypts.",
        AGENT_SYNC,
    ),
    LINUX: (
        "Linux disks are encrypted (LUKS) when the system is installed, so this needs a reinstall: back up your "
        "files first.",
        "Reinstall and choose full-disk encryption (Ubuntu: Advanced features › Use LVM and encryption; Fedora: "
        "Encrypt my data), or ask IT to do it for you.",
        AGENT_SYNC,
    ),
}

_UNJAILBREAK = {
    IOS: (
        "Back up the device to iCloud or your computer.",
        "Connect it to a computer, open Finder (Mac) or Apple Devices or iTunes (Windows), select the device and "
        "click Restore iPhone (or iPad).",
        "Set it up again from your backup and enrol it with the Company Portal.",
    ),
    ANDROID: (
        "Back up your data.",
        "Remove the root: uninstall the root manager (Magisk: open it › Uninstall › Complete uninstall) or "
        "flash the manufacturer's official firmware, and relock the bootloader if you unlocked it.",
        "If the warning stays, reset the phone (Settings › System › Reset options › Erase all data) and enrol "
        "it again.",
    ),
    WINDOWS: (
        "Turn Secure Boot back on in the computer's firmware (UEFI) settings.",
        "In an administrator terminal run `bcdedit /set testsigning off`, then restart.",
        "Contact IT if the device is still reported as modified.",
    ),
    MACOS: (
        "Restart into Recovery (Apple silicon: hold the power button; Intel: hold Command-R).",
        "Open Utilities › Terminal, run `csrutil enable` and restart.",
        "Contact IT if the Mac is still reported as modified.",
    ),
    LINUX: ("Contact IT: the system reports a modified or unsupported boot chain that needs to be reinstalled.",),
}

_REMOVE_APP = {
    IOS: ("Touch and hold the app's icon on the Home Screen, tap Remove App, then Delete App.",),
    ANDROID: ("Open Settings › Apps, tap the app and tap Uninstall.",),
    WINDOWS: ("Open Settings › Apps › Installed apps, select ⋯ next to the app and choose Uninstall.",),
    MACOS: ("Open Finder › Applications, drag the app to the Trash and empty the Trash.",),
    LINUX: (
        "Remove it with your package manager: `sudo apt remove <package>`, `sudo dnf remove <package>`, "
        "`flatpak uninstall <app id>` or `sudo snap remove <name>`.",
    ),
}

RULE_TEXT: dict[str, RuleText] = {
    Rule.OS_MIN: RuleText(
        "Your device runs version {actual}, older than your organisation allows ({expected}).",
        {
            family: (*steps[:-1], "Repeat until the device runs {expected}.", steps[-1])
            for family, steps in _UPDATE.items()
        },
    ),
    Rule.OS_MAX: RuleText(
        "Your device runs version {actual}, newer than your organisation has approved ({expected}).",
        _everywhere(
            "Do not install further updates until IT approves the new version.",
            "Contact IT: they can tell you when this version is approved or how to go back to an approved one.",
        ),
    ),
    Rule.PASSCODE_REQUIRED: RuleText("Your device has no passcode (screen lock).", _PASSCODE_SET),
    Rule.PASSCODE_MIN_LENGTH: RuleText(
        "Your passcode is too short: {actual}; it must have {expected}.", _PASSCODE_CHANGE
    ),
    Rule.PASSCODE_MIN_QUALITY: RuleText(
        "Your passcode is too simple ({actual}); it must be {expected}.", _PASSCODE_CHANGE
    ),
    Rule.ENCRYPTION_REQUIRED: RuleText("Your device's storage is not encrypted.", _ENCRYPT),
    Rule.JAILBREAK_BLOCKED: RuleText(
        "Your device is jailbroken or rooted, which removes the protections company data relies on.", _UNJAILBREAK
    ),
    Rule.CHECKIN_MAX_DAYS: RuleText(
        "Your device has not checked in with the company recently ({actual}); it must check in regularly.",
        _everywhere("Connect the device to the internet.", AGENT_SYNC),
    ),
    Rule.BLOCKED_APPS: RuleText(
        "An app your organisation does not allow is installed: {actual}.",
        {family: (*steps, "Then: " + AGENT_SYNC) for family, steps in _REMOVE_APP.items()},
    ),
    Rule.PROVISIONING_ON_TIME: RuleText(
        "Your device has not finished its company setup (settings and apps) in time.",
        _everywhere(
            "Connect the device to the internet and keep it switched on.",
            AGENT_SYNC,
            "Leave it connected until the setup finishes; contact IT if it still does not complete.",
        ),
    ),
    Rule.VALIDITY: RuleText(
        "Your device has not checked in for too long ({actual}), so it can no longer be trusted as compliant.",
        _everywhere("Connect the device to the internet.", AGENT_SYNC),
    ),
    Rule.NO_POLICY: RuleText(
        "No company compliance policy applies to your device, so it cannot be confirmed as safe.",
        _everywhere("Contact IT: your device needs to be assigned a compliance policy."),
    ),
}

ERROR_TEXT = RuleText(
    "Your device could not be checked for this setting: {actual}.",
    {
        **_everywhere(AGENT_SYNC, "Make sure {agent} is up to date; contact IT if this stays."),
        IOS: (
            APPLE_MOBILE_SYNC,
            "Make sure the device runs the latest iOS or iPadOS (Settings › General › Software Update); "
            "contact IT if this stays.",
        ),
    },
)


def rule_help(
    rule: str, platform: str, expected: str = "", actual: str = "", *, error: bool = False
) -> tuple[str, list[str]]:
    """The plain sentence and the fix steps for ``rule`` on ``platform``, with the values filled in."""
    text = ERROR_TEXT if error else RULE_TEXT.get(rule, ERROR_TEXT)
    family = platform_family(platform)
    values = {
        "expected": expected or "the required value",
        "actual": actual or "unknown",
        "agent": getattr(settings, "MDM_AGENT_NAME", "") or "the device management agent",
    }
    steps = text.fix.get(family) or text.fix.get(IOS, ())
    if family == IOS:
        steps = tuple(step.replace(AGENT_SYNC, APPLE_MOBILE_SYNC) for step in steps)
    return text.plain.format(**values), [step.format(**values) for step in steps]
