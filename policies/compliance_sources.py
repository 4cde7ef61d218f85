"""Blocked apps that come from outside compliance policies, registered by other stage apps.

``policies`` never imports the stage apps that build on it; an app that can block apps on
devices (the ``apps`` stage: apps assigned with the *blocked* intent) registers a
``BlockedAppsSource`` from its ``AppConfig.ready`` instead, and the compliance engine asks every
registered source while it evaluates a batch of devices:

* ``flag()`` is a boolean expression over ``Device`` rows, added to the engine's one device query:
  whether the device may have blocked apps from this source at all. A fleet with none costs no
  query.
* ``identifiers(device_ids)`` returns, in ONE query, ``{device id: identifiers}`` for the flagged
  devices of the batch.

An identifier a source returns that the device's inventory lists (compared case-insensitively, as
the policies' own blocked apps are) is a failure of the ``blocked_apps`` rule with no policy: an
organisation-wide rule, so the device is noncompliant at once (no grace period, no policy schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BlockedAppsSource:
    name: str
    flag: Callable[[], Any]
    identifiers: Callable[[list[int]], Mapping[int, Iterable[str]]]


_SOURCES: dict[str, BlockedAppsSource] = {}


def register_blocked_apps_source(source: BlockedAppsSource) -> None:
    """Register (or replace, by name) a source; called from an ``AppConfig.ready``."""
    _SOURCES[source.name] = source


def blocked_apps_sources() -> tuple[BlockedAppsSource, ...]:
    return tuple(_SOURCES.values())
