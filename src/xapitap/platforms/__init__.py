"""Every platform xapitap reads, by name: an explicit list, so that a reader (or mypy) can
follow a request from its rule to the code that reads it.

Adding a platform: a module with its endpoint rules and extractors (or, for events carried
by Segment, a table of track-event handlers), one line here, and golden cases under
tests/fixtures/golden/<platform>/.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping

from xapitap.matching import EndpointRule
from xapitap.platforms import coursera
from xapitap.platforms import ga4
from xapitap.platforms import openedx
from xapitap.platforms import segment
from xapitap.platforms import segment_video
from xapitap.platforms import udacity
from xapitap.platforms import udemy
from xapitap.platforms import xapi_mirror
from xapitap.platforms import youtube
from xapitap.platforms.base import Platform

PLATFORMS: tuple[Platform, ...] = (
    udemy.PLATFORM,
    segment.platform(handlers={**segment_video.HANDLERS, **udacity.HANDLERS}),
    udacity.PLATFORM,
    coursera.PLATFORM,
    ga4.PLATFORM,
    youtube.PLATFORM,
    openedx.PLATFORM,
    xapi_mirror.PLATFORM,
)
BY_NAME = {p.name: p for p in PLATFORMS}
NAMES = tuple(BY_NAME)


def registry(extra: Iterable[Platform] = ()) -> dict[str, Platform]:
    """Every platform by name: the built-in ones, then `extra` ones (mapping files, which
    may not take a built-in's name; one that does takes its place: a test re-expresses a
    built-in adapter so)."""
    found = dict(BY_NAME)
    for platform in extra:
        found[platform.name] = platform
    return found


def all_rules(platforms: Iterable[Platform] = PLATFORMS) -> list[EndpointRule]:
    return [rule for platform in platforms for rule in platform.rules]


def reader_of(rule: EndpointRule, platforms: Mapping[str, Platform] = BY_NAME) -> Platform:
    """The platform whose extractors read requests that match `rule`."""
    return platforms[rule.platform]


def carrier(name: str, platforms: Mapping[str, Platform] = BY_NAME) -> str:
    """The platform whose rules carry `name`'s events (itself, for most)."""
    return platforms[name].carried_by or name
