"""Segment's tracking API (analytics.js, analytics-next, HTTP API) as a transport.

This module reads the envelopes (single messages and batches, on Segment's hosts or on a
first-party proxy host). What a `track` event means is up to the handler given for its name
(platforms/__init__.py composes them): the Segment Video Spec (segment_video.py) and
Udacity's events (udacity.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from xapitap.capture import Capture
from xapitap.events import Extraction
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import dict_at
from xapitap.platforms.base import event_time
from xapitap.platforms.base import page_url
from xapitap.platforms.base import parse_iso
from xapitap.platforms.base import raw_event_id
from xapitap.platforms.base import text_or_none

NAME = "segment"
_PATH = r"/v1/(?:t|p|i|g|a|s|b|batch|track|page|identify|group|alias|screen)/?$"


def _looks_like_segment(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """On a first-party host: a Segment body, authenticated by a writeKey somewhere."""
    data = body()
    if b'"type"' not in data and b'"batch"' not in data:
        return False
    auth = header("authorization") or ""
    return b'"writeKey"' in data or auth.lower().startswith("basic ")


def _looks_like_beacon_batch(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """RudderStack's sendBeacon batches carry the writeKey in the query string only."""
    data = body()
    return b'"batch"' in data and b'"messageId"' in data


RULES = (
    EndpointRule(
        "segment.api",
        NAME,
        "^" + _PATH,
        hosts=r"api\.segment\.(?:io|com)|events\.eu1\.segmentapis\.com",
    ),
    EndpointRule("segment.first-party", NAME, _PATH, body_check=_looks_like_segment),
    EndpointRule(
        "segment.beacon", NAME, r"/beacon/v1/batch/?$", body_check=_looks_like_beacon_batch
    ),
)


@dataclass(frozen=True)
class TrackCall:
    """One `track` message, with what every handler needs already worked out."""

    capture: Capture
    rule: str
    event: str  # as sent
    properties: dict[str, Any]
    message_id: str
    timestamp: datetime
    timed: bool  # False: the message gave no time of its own
    user_ref: str
    user_ref_kind: str
    origin: str  # the page's origin, else the collector's
    page_path: str | None


TrackHandler = Callable[[TrackCall], list[VideoEvent]]
Handlers = Mapping[str, TrackHandler]  # by normalized event name


def normalize_event_name(name: str) -> str:
    """`Video Playback Started`, `video_playback_started` and `videoPlaybackStarted` alike."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return " ".join(spaced.replace("_", " ").replace("-", " ").lower().split())


def handlers_for(names: Iterable[str], handler: TrackHandler) -> dict[str, TrackHandler]:
    """A handler table entry for each of these event names, normalized."""
    return {normalize_event_name(name): handler for name in names}


def _messages(doc: Any) -> list[Any]:
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        batch = doc.get("batch")
        if batch is None:
            return [doc]
        if isinstance(batch, list):
            return batch
    raise PayloadError("Segment body is neither a message nor a batch")


def _client_time(
    msg: dict[str, Any], batch_sent_at: datetime | None, received_at: datetime
) -> datetime | None:
    """The message's time on the proxy's clock, by Segment's own rule: the client's
    timestamp moved by how far the client's clock is off (arrival - sentAt)."""
    when = parse_iso(msg.get("timestamp")) or parse_iso(msg.get("originalTimestamp"))
    sent = parse_iso(msg.get("sentAt")) or batch_sent_at
    if when is None or sent is None:
        return when
    try:
        return when - (sent - received_at)
    except OverflowError:
        return None


def _track_call(
    rule: str, capture: Capture, msg: dict[str, Any], batch_sent_at: datetime | None
) -> TrackCall:
    page = dict_at(dict_at(msg, "context"), "page")
    located = page_url(page.get("url"))
    user_id = text_or_none(msg.get("userId"))
    anonymous_id = text_or_none(msg.get("anonymousId"))
    user, kind = (
        (user_id, "userId")
        if user_id
        else (anonymous_id, "anonymousId")
        if anonymous_id
        else ("unknown", "none")
    )
    when, timed = event_time(_client_time(msg, batch_sent_at, capture.received_at), capture)
    return TrackCall(
        capture=capture,
        rule=rule,
        event=str(msg.get("event")),
        properties=dict_at(msg, "properties"),
        message_id=text_or_none(msg.get("messageId")) or raw_event_id(msg),
        timestamp=when,
        timed=timed,
        user_ref=user,
        user_ref_kind=kind,
        origin=located[0] if located else capture.origin,
        page_path=located[1] if located else None,
    )


def platform(handlers: Handlers) -> Platform:
    """Segment, reading track events with these handlers."""

    def extract(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
        out = Extraction()
        batch_sent_at = parse_iso(doc.get("sentAt")) if isinstance(doc, dict) else None
        for msg in _messages(doc):
            try:
                _track(rule.rule.name, capture, msg, batch_sent_at, handlers, out)
            except PayloadError as e:  # one bad item; the others are independent
                out.rejected.append(Skip(_type_of(msg), str(e)))
        return out

    return Platform(NAME, dict.fromkeys(RULES, extract))


def _type_of(msg: Any) -> str:
    if not isinstance(msg, dict):
        return "(not an object)"
    name = text_or_none(msg.get("event"))
    return name if name and msg.get("type") == "track" else f"{msg.get('type')} call"


def _track(
    rule: str,
    capture: Capture,
    msg: Any,
    batch_sent_at: datetime | None,
    handlers: Handlers,
    out: Extraction,
) -> None:
    if not isinstance(msg, dict):
        raise PayloadError("a batch item that is not an object")
    kind = msg.get("type")
    if kind != "track":
        out.ignored.append(Skip(f"{kind} call", "not a player event"))
        return
    name = text_or_none(msg.get("event"))
    if name is None:
        raise PayloadError("a track call without an event name")
    handler = handlers.get(normalize_event_name(name))
    if handler is None:
        out.ignored.append(Skip(name, "no xAPI mapping"))
        return
    out.events.extend(handler(_track_call(rule, capture, msg, batch_sent_at)))
