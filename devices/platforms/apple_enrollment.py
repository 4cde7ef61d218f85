"""The Apple enrolment profile (``.mobileconfig``) offered with a Company Portal self-enrolment code.

The profile is a configuration profile as Apple's ``TopLevel.yaml`` describes it (``PayloadType``
``Configuration``) that hands the agent the portal URL and the one-time code:

* every Apple platform gets a web clip (``com.apple.webClip.managed``) whose URL is the agent's
  ``mdm-enroll://`` link: tapping "Enrol this device" on the Home Screen (or in the Dock) opens the
  agent with the server and the code filled in;
* macOS also gets managed preferences (``com.apple.ManagedClient.preferences``) in the agent's
  preference domain, so the Mac agent reads ``ServerURL`` and ``EnrollmentCode`` without the person
  typing anything.

The profile removes itself when the code expires (``RemovalDate``): a used or expired code is of no
use to anyone, and the person's device is left clean. It is built on request and never stored,
because it contains the code. It is unsigned; a portal that has a signing certificate can sign it
in front of this function.
"""

from __future__ import annotations

import plistlib
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..choices import APPLE_PLATFORMS, Platform
from . import enrollment_uri

CONTENT_TYPE = "application/x-apple-aspen-config"
FILENAME = "company-portal-enrolment.mobileconfig"
AGENT_PREFERENCE_DOMAIN = "org.mdm-portal.agent"
ORGANIZATION = "Company Portal"

# TopLevel.yaml's TargetDeviceType: 1 = iPhone/iPad/iPod touch, 5 = Mac. It keeps a profile meant
# for an iPhone from being installed on a Mac (and the reverse).
TARGET_DEVICE_TYPE = {Platform.IOS: 1, Platform.IPADOS: 1, Platform.MACOS: 5}


def profile_identifier(server_url: str) -> str:
    """A reverse-DNS identifier from the portal's host (``mdm.example.com`` → ``com.example.mdm``).

    One identifier per portal: installing a newer enrolment profile replaces the older one.
    """
    host = (urlsplit(server_url).hostname or "localhost").lower()
    labels = [re.sub(r"[^a-z0-9-]", "-", label) for label in reversed(host.split(".")) if label]
    return ".".join([*labels, "company-portal", "enrollment"])


def _naive_utc(moment: datetime) -> datetime:
    # plistlib writes <date> values as UTC and wants them without a time zone.
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def enrollment_profile(*, server_url: str, code: str, platform: str, expires_at: datetime, person: str = "") -> dict:
    """The profile as a plist dictionary (what ``enrollment_profile_bytes`` serialises)."""
    if platform not in APPLE_PLATFORMS:
        raise ValueError(f"An enrolment profile exists only for Apple platforms, not {platform!r}.")
    identifier = profile_identifier(server_url)
    link = enrollment_uri(server_url=server_url, code=code, platform=platform)
    web_clip = {
        "PayloadType": "com.apple.webClip.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{identifier}.webclip",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": "Enrol this device",
        "PayloadDescription": "Opens the device agent with your enrolment code filled in.",
        "PayloadOrganization": ORGANIZATION,
        "URL": link,
        "Label": "Enrol this device",
    }
    if platform != Platform.MACOS:
        # Keys Apple defines for iOS and iPadOS only (macOS: "introduced: n/a").
        web_clip |= {"IsRemovable": True, "FullScreen": False, "Precomposed": True}
    content = [web_clip]
    if platform == Platform.MACOS:
        content.append(
            {
                "PayloadType": "com.apple.ManagedClient.preferences",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{identifier}.agent",
                "PayloadUUID": str(uuid.uuid4()).upper(),
                "PayloadDisplayName": "Device agent settings",
                "PayloadDescription": "The portal address and the one-time enrolment code for the device agent.",
                "PayloadOrganization": ORGANIZATION,
                "PayloadContent": {
                    AGENT_PREFERENCE_DOMAIN: {
                        "Forced": [
                            {
                                "mcx_preference_settings": {
                                    "ServerURL": server_url,
                                    "EnrollmentCode": code,
                                    "Platform": platform,
                                }
                            }
                        ]
                    }
                },
            }
        )
    whose = f" for {person}" if person else ""
    return {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": "Company Portal enrolment",
        "PayloadDescription": (
            f"Enrols this {Platform(platform).label} device with the Company Portal{whose}. "
            "It removes itself when the one-time enrolment code expires."
        ),
        "PayloadOrganization": ORGANIZATION,
        "TargetDeviceType": TARGET_DEVICE_TYPE[platform],
        "RemovalDate": _naive_utc(expires_at),
        "PayloadContent": content,
    }


def enrollment_profile_bytes(**kwargs) -> bytes:
    """The ``.mobileconfig`` file: ``enrollment_profile(**kwargs)`` as an XML property list."""
    return plistlib.dumps(enrollment_profile(**kwargs), fmt=plistlib.FMT_XML, sort_keys=True)
