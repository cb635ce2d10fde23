"""Every platform xapitap reads, by name: an explicit list, so that a reader (or mypy) can
follow a request from its rule to the code that reads it.

Adding a platform: a module with its endpoint rules and extractors (or, for events carried
by Segment, a table of track-event handlers), one line here, and golden cases under
tests/fixtures/golden/<platform>/.
"""

from __future__ import annotations

from xapitap.matching import EndpointRule
from xapitap.platforms import coursera
from xapitap.platforms import segment
from xapitap.platforms import segment_video
from xapitap.platforms import udacity
from xapitap.platforms import udemy
from xapitap.platforms.base import Platform

PLATFORMS: tuple[Platform, ...] = (
    udemy.PLATFORM,
    segment.platform(handlers={**segment_video.HANDLERS, **udacity.HANDLERS}),
    udacity.PLATFORM,
    coursera.PLATFORM,
)
BY_NAME = {p.name: p for p in PLATFORMS}
NAMES = tuple(BY_NAME)


def all_rules() -> list[EndpointRule]:
    return [rule for platform in PLATFORMS for rule in platform.rules]


def reader_of(rule: EndpointRule) -> Platform:
    """The platform whose extractors read requests that match `rule`."""
    return BY_NAME[rule.platform]


def carrier(name: str) -> str:
    """The platform whose rules carry `name`'s events (itself, for most)."""
    return BY_NAME[name].carried_by or name
