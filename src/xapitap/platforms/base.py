"""What a platform provides, and helpers that every platform module uses."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

from xapitap.capture import Capture
from xapitap.events import Extraction
from xapitap.events import PayloadError
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch
from xapitap.privacy import COMPUTED_ID_PREFIX

Extract = Callable[[RuleMatch, Capture, Any], Extraction]


@dataclass(frozen=True)
class Platform:
    """A platform: its endpoint rules, and how to read what each of them carries.

    A platform whose events travel inside another's requests (Udacity's, inside Segment's)
    has no rules of its own: it names its carrier, whose rules read its events."""

    name: str
    extractors: Mapping[EndpointRule, Extract]
    carried_by: str | None = None

    @property
    def rules(self) -> tuple[EndpointRule, ...]:
        return tuple(self.extractors)

    def extract(self, match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
        # By name: rules for user-added hosts are copies that keep the name.
        for rule, extract in self.extractors.items():
            if rule.name == match.rule.name:
                return extract(match, capture, doc)
        raise KeyError(match.rule.name)


def raw_event_id(raw: Any) -> str:
    """An id for an event that carries none: a hash of its canonical JSON. The raw content
    may hold a user id, so the pipeline keys it with the study key before it is published."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return COMPUTED_ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def event_time(candidate: datetime | None, capture: Capture) -> tuple[datetime, bool]:
    """The event's own time and True, or when the proxy saw it and False (no time given).

    A fast browser clock is corrected for the whole request by the pipeline, which keeps
    the spacing of a batch's events."""
    if candidate is None:
        return capture.received_at, False
    try:
        return candidate.astimezone(UTC), True
    except OverflowError:  # year 1 or 9999 with an offset
        return capture.received_at, False


def parse_iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_epoch_ms(value: Any) -> datetime | None:
    number = number_or_none(value)
    if number is None or number <= 0:
        return None
    try:
        return datetime.fromtimestamp(number / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def number_or_none(value: Any) -> float | None:
    """A finite, non-negative number from a JSON number or numeric string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def text_or_none(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value).strip()
        return text or None
    return None


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is {type(value).__name__}, expected an object")
    return value


def dict_at(container: dict[str, Any], key: str) -> dict[str, Any]:
    """The object at `key`, or an empty one when it is missing or not an object."""
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def page_url(url: Any) -> tuple[str, str] | None:
    """(origin, path) of a page URL, dropping query and fragment, which can carry tokens.

    The path is percent-encoded where an IRI may not hold a character as is (`|`, `^`,
    spaces), and an encoded and a raw form of one path give the same id."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port out of range, a malformed IPv6 host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = quote(unquote(parts.path), safe=_PATH_SAFE) or "/"
    return f"{parts.scheme}://{parts.hostname}{port}", path


# RFC 3986 path characters that stay as they are.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"


def iri_segment(value: str) -> str:
    """A value safe to use as one path segment of an IRI."""
    return quote(value, safe="-._~")
