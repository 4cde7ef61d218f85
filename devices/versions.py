"""OS versions as sortable keys, so version rules compare in SQL instead of in Python."""

import re

_COMPONENTS = 4
_WIDTH = 6
_LEADING = re.compile(r"\d+(?:\.\d+)*")


class InvalidVersion(ValueError):
    pass


def version_key(version: str) -> str:
    """``"17.4.1"`` -> ``"000017.000004.000001.000000"``; missing components count as 0.

    Only the first dotted run of numbers counts ("6.1.0-18-amd64" is 6.1.0, "14 (UP1A.231005)" is
    14); a version with no number in it has the empty key, which sorts before every real version.
    """
    match = _LEADING.search(version or "")
    if not match:
        return ""
    numbers = match.group(0).split(".")[:_COMPONENTS]
    numbers += ["0"] * (_COMPONENTS - len(numbers))
    return ".".join(n[-_WIDTH:].zfill(_WIDTH) for n in numbers)


def parse_version(version: str) -> str:
    """Validate a version typed by a person and return its key."""
    key = version_key(version)
    if not key or not re.fullmatch(r"\s*\d+(\.\d+){0,3}\s*", version):
        raise InvalidVersion(
            f"'{version}' is not a version number. Use digits and dots, for example 17.4 or 10.0.22631."
        )
    return key
