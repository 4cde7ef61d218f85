"""What a device needs, per platform, to enrol with the portal: links and native enrolment payloads."""

from __future__ import annotations

from urllib.parse import urlencode

# The URI scheme the agent apps register: opening the link (or scanning its QR code) starts the
# agent with the server and the code filled in, so nobody types the code on a phone.
ENROLLMENT_URI_SCHEME = "mdm-enroll"


def enrollment_uri(*, server_url: str, code: str, platform: str) -> str:
    """``mdm-enroll://enroll?server=…&code=…&platform=…``: what the QR code and the enrolment link carry.

    A custom-scheme URI is handed to the agent app on the device and never requested from the
    portal, so the code does not end up in a web server's access log.
    """
    query = urlencode({"server": server_url, "code": code, "platform": platform})
    return f"{ENROLLMENT_URI_SCHEME}://enroll?{query}"
