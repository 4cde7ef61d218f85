"""What the fleet simulator's devices are made of: hardware models, OS release tracks, apps.

Plain data, chosen to look like a real mixed fleet: current iPhones and iPads, Pixels and Galaxies,
Windows laptops, Macs and Linux laptops and servers, each with the OS releases it would run (oldest
first, so an "OS update" moves a device one step along its track) and typical installed apps.
"""

from __future__ import annotations

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class OsRelease:
    version: str
    build: str = ""
    kernel: str = ""  # Linux only


@dataclass(frozen=True)
class Hardware:
    platform: str
    manufacturer: str
    model: str
    short: str  # what its owner calls it: "Emma's iPhone"
    kind: str  # phone, tablet, laptop, desktop, server, vm
    track: tuple[OsRelease, ...]
    serial: str  # a key of SERIAL_FORMATS
    storage_gb: tuple[int, ...]
    memory_mb: tuple[int, ...]
    cpu: str
    cellular: float = 0.0  # share of units with a modem (an IMEI)
    weight: int = 10  # how common it is within its platform


def _r(version: str, build: str = "", kernel: str = "") -> OsRelease:
    return OsRelease(version, build, kernel)


IOS = (_r("18.7.1", "22H31"), _r("26.6", "23G80"), _r("26.7.2", "23H124"), _r("27.0.1", "24A350"), _r("27.1", "24B85"))
IOS_RECENT = IOS[1:]
IOS_LEGACY = (_r("16.7.11", "20H360"), _r("16.7.12", "20H364"))
IPADOS = IOS
ANDROID_PIXEL = (_r("15", "BP1A.250505.005"), _r("16", "BP2A.250805.005"), _r("16", "BP3A.251005.004"))
ANDROID_SAMSUNG = (_r("14", "UP1A.231005.007"), _r("15", "AP3A.240905.015"), _r("16", "BP2A.250605.031"))
ANDROID_RUGGED = (_r("13", "13-49-18.00-TG-U00-STD"), _r("14", "14-28-03.00-UG-U11-STD"))
WINDOWS = (
    _r("10.0.22631.6199", "22631.6199"),
    _r("10.0.26100.6899", "26100.6899"),
    _r("10.0.26100.7171", "26100.7171"),
    _r("10.0.26200.7171", "26200.7171"),
)
MACOS = (_r("15.7.3", "24G419"), _r("26.6", "25G72"), _r("26.7.2", "25H124"), _r("27.1", "26B75"))
UBUNTU_2204 = (
    _r("Ubuntu 22.04.4 LTS", kernel="5.15.0-153-generic"),
    _r("Ubuntu 22.04.5 LTS", kernel="5.15.0-160-generic"),
)
UBUNTU_2404 = (_r("Ubuntu 24.04.2 LTS", kernel="6.8.0-71-generic"), _r("Ubuntu 24.04.3 LTS", kernel="6.8.0-87-generic"))
DEBIAN_12 = (_r("Debian 12.11", kernel="6.1.0-37-amd64"), _r("Debian 12.12", kernel="6.1.0-40-amd64"))
DEBIAN_13 = (_r("Debian 13.1", kernel="6.12.48+deb13-amd64"), _r("Debian 13.2", kernel="6.12.57+deb13-amd64"))
RHEL_9 = (
    _r("Red Hat Enterprise Linux 9.6", kernel="5.14.0-570.58.1.el9_6.x86_64"),
    _r("Red Hat Enterprise Linux 9.7", kernel="5.14.0-611.5.1.el9_7.x86_64"),
)
FEDORA_43 = (_r("Fedora 43", kernel="6.17.7-300.fc43.x86_64"),)
LINUX_DESKTOP_TRACKS = (UBUNTU_2404, UBUNTU_2404, UBUNTU_2204, DEBIAN_13, FEDORA_43)
LINUX_SERVER_TRACKS = (UBUNTU_2404, UBUNTU_2404, UBUNTU_2204, DEBIAN_12, RHEL_9)

IPH, IPD, AND, WIN, MAC, LNX = "ios", "ipados", "android", "windows", "macos", "linux"
PHONE_GB, PRO_GB, LAPTOP_GB = (128, 256, 512), (256, 512, 1024), (256, 512, 1024)


def _iphone(model: str, cpu: str, memory: int, weight: int, track=IOS) -> Hardware:
    return Hardware(IPH, "Apple", model, "iPhone", "phone", track, "apple", PHONE_GB, (memory,), cpu, 1.0, weight)


def _ipad(model: str, short: str, cpu: str, memory: tuple, cellular: float, weight: int, storage=PRO_GB) -> Hardware:
    return Hardware(IPD, "Apple", model, short, "tablet", IPADOS, "apple", storage, memory, cpu, cellular, weight)


def _android(
    vendor, model, short, track, cpu, memory, weight, kind="phone", cellular=1.0, storage=PHONE_GB
) -> Hardware:
    serial = {"Google": "google", "Samsung": "samsung", "Motorola": "motorola"}.get(vendor, "zebra")
    return Hardware(AND, vendor, model, short, kind, track, serial, storage, memory, cpu, cellular, weight)


def _computer(platform, vendor, model, short, kind, track, serial, storage, memory, cpu, weight) -> Hardware:
    return Hardware(platform, vendor, model, short, kind, track, serial, storage, memory, cpu, 0.0, weight)


SAMSUNG_16 = ANDROID_SAMSUNG[1:]
# Linux hardware leaves ``track`` empty: a Linux device picks its distribution separately.
# fmt: off
HARDWARE: tuple[Hardware, ...] = (
    _iphone("iPhone 15", "Apple A16 Bionic", 6144, 25),
    _iphone("iPhone 15 Pro", "Apple A17 Pro", 8192, 12),
    _iphone("iPhone 16", "Apple A18", 8192, 22),
    _iphone("iPhone 16 Pro", "Apple A18 Pro", 8192, 10),
    _iphone("iPhone 17", "Apple A19", 8192, 10, IOS_RECENT),
    _iphone("iPhone 14", "Apple A15 Bionic", 6144, 8),
    _iphone("iPhone SE (3rd generation)", "Apple A15 Bionic", 4096, 8),
    _iphone("iPhone X", "Apple A11 Bionic", 3072, 2, IOS_LEGACY),
    _ipad("iPad Air 11-inch (M2)", "iPad", "Apple M2", (8192,), 0.3, 25),
    _ipad("iPad Air 13-inch (M3)", "iPad", "Apple M3", (8192,), 0.3, 10),
    _ipad("iPad Pro 13-inch (M4)", "iPad", "Apple M4", (8192, 16384), 0.4, 8),
    _ipad("iPad (A16)", "iPad", "Apple A16 Bionic", (6144,), 0.2, 20, PHONE_GB),
    _ipad("iPad mini (A17 Pro)", "iPad mini", "Apple A17 Pro", (8192,), 0.3, 8, PHONE_GB),
    _android("Google", "Pixel 8", "Pixel 8", ANDROID_PIXEL, "Google Tensor G3", (8192,), 15),
    _android("Google", "Pixel 8a", "Pixel 8a", ANDROID_PIXEL, "Google Tensor G3", (8192,), 8),
    _android("Google", "Pixel 9", "Pixel 9", ANDROID_PIXEL, "Google Tensor G4", (12288,), 12),
    _android("Samsung", "Galaxy S24 (SM-S921B)", "Galaxy S24", ANDROID_SAMSUNG, "Samsung Exynos 2400", (8192,), 18),
    _android("Samsung", "Galaxy S25 (SM-S931B)", "Galaxy S25", SAMSUNG_16, "Snapdragon 8 Elite", (12288,), 12),
    _android("Samsung", "Galaxy A55 5G (SM-A556B)", "Galaxy A55", ANDROID_SAMSUNG, "Samsung Exynos 1480", (8192,), 12),
    _android("Motorola", "moto g85 5G", "moto g85", ANDROID_SAMSUNG[:2], "Snapdragon 6s Gen 3", (8192, 12288), 5),
    _android("Samsung", "Galaxy Tab S9 FE (SM-X510)", "Galaxy Tab", ANDROID_SAMSUNG, "Samsung Exynos 1380", (6144,), 6,
             kind="tablet", cellular=0.0),
    _android("Zebra Technologies", "TC58", "TC58", ANDROID_RUGGED, "Qualcomm QCM6490", (8192,), 5, storage=(128,)),
    _computer(WIN, "Microsoft Corporation", "Surface Laptop 7", "Surface", "laptop", WINDOWS[1:], "surface",
              LAPTOP_GB, (16384, 32768), "Snapdragon(R) X Elite - X1E80100 - Qualcomm(R) Oryon(TM) CPU", 12),
    _computer(WIN, "LENOVO", "ThinkPad T14 Gen 5", "ThinkPad", "laptop", WINDOWS, "lenovo",
              LAPTOP_GB, (16384, 32768), "Intel(R) Core(TM) Ultra 7 155U", 20),
    _computer(WIN, "LENOVO", "ThinkPad X1 Carbon Gen 12", "ThinkPad", "laptop", WINDOWS, "lenovo",
              LAPTOP_GB, (32768,), "Intel(R) Core(TM) Ultra 7 165U", 10),
    _computer(WIN, "Dell Inc.", "Latitude 7450", "Latitude", "laptop", WINDOWS, "dell",
              LAPTOP_GB, (16384, 32768), "Intel(R) Core(TM) Ultra 5 135U", 18),
    _computer(WIN, "HP", "EliteBook 840 G11", "EliteBook", "laptop", WINDOWS, "hp",
              LAPTOP_GB, (16384,), "Intel(R) Core(TM) Ultra 5 125U", 14),
    _computer(WIN, "Dell Inc.", "OptiPlex 7020 Micro", "OptiPlex", "desktop", WINDOWS, "dell",
              (512,), (16384,), "Intel(R) Core(TM) i5-14500T", 8),
    _computer(MAC, "Apple", "MacBook Air 13-inch (M3)", "MacBook Air", "laptop", MACOS, "apple",
              LAPTOP_GB, (16384, 24576), "Apple M3", 20),
    _computer(MAC, "Apple", "MacBook Air 15-inch (M4)", "MacBook Air", "laptop", MACOS[1:], "apple",
              LAPTOP_GB, (16384, 24576), "Apple M4", 12),
    _computer(MAC, "Apple", "MacBook Pro 14-inch (M4 Pro)", "MacBook Pro", "laptop", MACOS[1:], "apple",
              (512, 1024, 2048), (24576, 49152), "Apple M4 Pro", 18),
    _computer(MAC, "Apple", "MacBook Pro 16-inch (M3 Max)", "MacBook Pro", "laptop", MACOS, "apple",
              (1024, 2048), (36864, 49152), "Apple M3 Max", 6),
    _computer(MAC, "Apple", "Mac mini (M4)", "Mac mini", "desktop", MACOS[1:], "apple",
              (256, 512), (16384, 24576), "Apple M4", 5),
    _computer(LNX, "LENOVO", "ThinkPad P16s Gen 3", "thinkpad", "laptop", (), "lenovo",
              LAPTOP_GB, (32768, 65536), "Intel(R) Core(TM) Ultra 7 165H", 12),
    _computer(LNX, "Dell Inc.", "XPS 13 9340", "xps", "laptop", (), "dell",
              LAPTOP_GB, (16384, 32768), "Intel(R) Core(TM) Ultra 7 155H", 8),
    _computer(LNX, "Framework", "Laptop 13 (AMD Ryzen 7040Series)", "framework", "laptop", (), "framework",
              LAPTOP_GB, (32768,), "AMD Ryzen 7 7840U w/ Radeon  780M Graphics", 5),
    _computer(LNX, "Dell Inc.", "Precision 3680 Tower", "precision", "desktop", (), "dell",
              (1024, 2048), (65536,), "Intel(R) Core(TM) i9-14900K", 5),
    _computer(LNX, "Dell Inc.", "PowerEdge R660", "", "server", (), "dell",
              (1920, 3840), (131072, 262144), "Intel(R) Xeon(R) Gold 6430", 14),
    _computer(LNX, "HPE", "ProLiant DL360 Gen11", "", "server", (), "hpe",
              (1920, 3840), (131072, 262144), "Intel(R) Xeon(R) Gold 6426Y", 10),
    _computer(LNX, "QEMU", "Standard PC (Q35 + ICH9, 2009)", "", "vm", (), "vm",
              (40, 80, 160), (4096, 8192, 16384), "AMD EPYC 9454P 48-Core Processor", 16),
)
# fmt: on

ALNUM = string.ascii_uppercase + string.digits
# prefix, alphabet, length of the random part
SERIAL_FORMATS: dict[str, tuple[str, str, int]] = {
    "apple": ("", "CDFGHJKLMNPQRTVWXY0123456789", 10),
    "dell": ("", "BCDFGHJKLMNPQRSTVWXYZ0123456789", 7),
    "lenovo": ("PF", ALNUM, 6),
    "hp": ("5CG", ALNUM, 7),
    "surface": ("0F", string.digits, 10),
    "samsung": ("R5C", ALNUM, 8),
    "google": ("", string.digits + "ABCDEFGHJK", 14),
    "motorola": ("ZY22", ALNUM, 6),
    "zebra": ("2", string.digits, 13),
    "framework": ("FRANDWCP", ALNUM, 10),
    "hpe": ("CZJ", ALNUM, 7),
}
# Type allocation codes: the first 8 digits of an IMEI, per manufacturer.
TAC: dict[str, tuple[str, ...]] = {
    "Apple": ("35391110", "35672011", "35441216", "35325411"),
    "Samsung": ("35078211", "35292812", "35104515"),
    "Google": ("35869213", "35189920"),
    "Motorola": ("35938714",),
    "Zebra Technologies": ("35317811",),
}

FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Amara", "Mateo", "Sofia", "Kenji", "Aisha", "Lukas", "Priya",
    "Jonas", "Chloe", "Omar", "Freya", "Diego", "Mei", "Tariq", "Hannah", "Arjun", "Ingrid", "Kwame",
    "Lucia", "Malik", "Nora", "Pavel", "Rosa", "Sven", "Yara", "Zoe", "Elif", "Hugo", "Ines", "Jamal",
)  # fmt: skip
SERVER_ROLES = ("web", "api", "db", "build-host", "worker", "cache", "ci-runner", "k8s-node", "monitoring", "backup")

# (identifier, name, (installed version, the update)); the first three are the corporate core set.
App = tuple[str, str, tuple[str, str]]
APPS: dict[str, tuple[App, ...]] = {
    IPH: (
        ("com.microsoft.Office.Outlook", "Microsoft Outlook", ("4.2540.0", "4.2544.1")),
        ("com.microsoft.skype.teams", "Microsoft Teams", ("7.18.1", "7.20.0")),
        ("com.microsoft.azureauthenticator", "Microsoft Authenticator", ("6.8.30", "6.8.33")),
        ("com.tinyspeck.chatlyio", "Slack", ("25.10.10", "25.11.20")),
        ("us.zoom.videomeetings", "Zoom Workplace", ("6.6.5", "6.6.10")),
        ("com.google.chrome.ios", "Google Chrome", ("141.0.7390.96", "142.0.7444.77")),
        ("net.whatsapp.WhatsApp", "WhatsApp Messenger", ("25.30.74", "25.32.80")),
        ("com.spotify.client", "Spotify", ("9.0.86", "9.0.94")),
        ("com.microsoft.skydrive", "Microsoft OneDrive", ("15.48.1", "15.50.0")),
        ("com.microsoft.Office.Word", "Microsoft Word", ("2.102", "2.103")),
        ("com.microsoft.Office.Excel", "Microsoft Excel", ("2.102", "2.103")),
        ("com.linkedin.LinkedIn", "LinkedIn", ("9.31.2710", "9.31.3410")),
        ("ph.telegra.Telegraph", "Telegram Messenger", ("12.1", "12.2")),
        ("com.atlassian.jira.core", "Jira Cloud", ("168.0", "170.0")),
        ("com.1password.1password", "1Password", ("8.11.12", "8.11.14")),
        ("com.google.Maps", "Google Maps", ("25.43.1", "25.45.2")),
        ("com.duolingo.DuolingoMobile", "Duolingo", ("7.100.0", "7.104.0")),
        ("com.burbn.instagram", "Instagram", ("402.0", "404.0")),
    ),
    AND: (
        ("com.microsoft.office.outlook", "Microsoft Outlook", ("4.2540.2", "4.2544.0")),
        ("com.microsoft.teams", "Microsoft Teams", ("1416/1.0.0.2025183701", "1416/1.0.0.2025203101")),
        ("com.azure.authenticator", "Microsoft Authenticator", ("6.2510.6654", "6.2511.7021")),
        ("com.Slack", "Slack", ("25.10.10.0", "25.11.20.0")),
        ("us.zoom.videomeetings", "Zoom Workplace", ("6.6.5.32811", "6.6.10.33370")),
        ("com.android.chrome", "Google Chrome", ("141.0.7390.111", "142.0.7444.102")),
        ("com.whatsapp", "WhatsApp Messenger", ("2.25.30.74", "2.25.32.80")),
        ("com.spotify.music", "Spotify", ("9.0.86.520", "9.0.94.611")),
        ("com.microsoft.skydrive", "Microsoft OneDrive", ("7.48", "7.50")),
        ("com.microsoft.office.word", "Microsoft Word", ("16.0.19328.20110", "16.0.19426.20030")),
        ("com.linkedin.android", "LinkedIn", ("4.1.1150", "4.1.1172")),
        ("org.telegram.messenger", "Telegram", ("12.1.1", "12.2.0")),
        ("com.atlassian.android.jira.core", "Jira Cloud", ("168.0.0", "170.0.1")),
        ("com.onepassword.android", "1Password", ("8.11.12", "8.11.14")),
        ("com.google.android.apps.maps", "Google Maps", ("25.43.01", "25.45.02")),
        ("com.duolingo", "Duolingo", ("6.48.4", "6.52.2")),
        ("com.instagram.android", "Instagram", ("402.0.0.38.95", "404.0.0.47.83")),
    ),
    WIN: (
        ("Microsoft.Office", "Microsoft 365 Apps for enterprise", ("16.0.19127.20264", "16.0.19231.20194")),
        ("Microsoft.Teams", "Microsoft Teams", ("25275.2601.4002.2815", "25290.205.4069.4894")),
        ("Microsoft.Edge", "Microsoft Edge", ("141.0.3537.99", "142.0.3595.65")),
        ("Google.Chrome", "Google Chrome", ("141.0.7390.123", "142.0.7444.135")),
        ("Mozilla.Firefox", "Mozilla Firefox", ("144.0.2", "145.0")),
        ("Zoom.Zoom", "Zoom Workplace", ("6.6.5.21887", "6.6.10.22508")),
        ("SlackTechnologies.Slack", "Slack", ("4.46.101", "4.47.59")),
        ("7zip.7zip", "7-Zip", ("25.00", "25.01")),
        ("Notepad++.Notepad++", "Notepad++", ("8.8.6", "8.8.7")),
        ("Microsoft.VisualStudioCode", "Microsoft Visual Studio Code", ("1.105.1", "1.106.0")),
        ("Adobe.Acrobat.Reader.64-bit", "Adobe Acrobat Reader", ("25.001.20813", "25.001.20844")),
        ("Git.Git", "Git", ("2.51.1", "2.51.2")),
        ("Python.Python.3.13", "Python 3.13", ("3.13.8", "3.13.9")),
        ("Docker.DockerDesktop", "Docker Desktop", ("4.48.0", "4.49.0")),
        ("Microsoft.PowerToys", "PowerToys", ("0.95.0", "0.95.1")),
        ("VideoLAN.VLC", "VLC media player", ("3.0.20", "3.0.21")),
        ("AgileBits.1Password", "1Password", ("8.11.12", "8.11.14")),
    ),
    MAC: (
        ("com.microsoft.Outlook", "Microsoft Outlook", ("16.102", "16.103")),
        ("com.microsoft.teams2", "Microsoft Teams", ("25275.2601.4002.2815", "25290.205.4069.4894")),
        ("com.microsoft.CompanyPortalMac", "Company Portal", ("5.2509.0", "5.2510.1")),
        ("com.google.Chrome", "Google Chrome", ("141.0.7390.123", "142.0.7444.135")),
        ("org.mozilla.firefox", "Firefox", ("144.0.2", "145.0")),
        ("us.zoom.xos", "zoom.us", ("6.6.5", "6.6.10")),
        ("com.tinyspeck.slackmacgap", "Slack", ("4.46.101", "4.47.59")),
        ("com.microsoft.VSCode", "Visual Studio Code", ("1.105.1", "1.106.0")),
        ("com.apple.dt.Xcode", "Xcode", ("26.0.1", "26.1")),
        ("com.docker.docker", "Docker", ("4.48.0", "4.49.0")),
        ("com.googlecode.iterm2", "iTerm", ("3.6.4", "3.6.5")),
        ("com.1password.1password", "1Password", ("8.11.12", "8.11.14")),
        ("com.spotify.client", "Spotify", ("1.2.74", "1.2.76")),
        ("com.microsoft.Word", "Microsoft Word", ("16.102", "16.103")),
        ("com.microsoft.Excel", "Microsoft Excel", ("16.102", "16.103")),
        ("org.videolan.vlc", "VLC", ("3.0.20", "3.0.21")),
    ),
}
APPS[IPD] = APPS[IPH]
