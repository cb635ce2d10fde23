"""Google Analytics: GA4's gtag.js hits (`/g/collect`) and Universal Analytics' (wire-formats.md
§6.1, §6.2), as the analytics of many course sites.

Where: `/g/collect` on Google's collectors (`*.google-analytics.com`, `*.analytics.google.com`),
GET or POST; and on a host of the site's own (server-side tagging), recognised by a body of
gtag.js event lines (ga4_hits.looks_like_event_lines). The request's `v=2` and `tid=G-…` are
checked before anything is read. Universal Analytics (`v=1`: `/collect`, `/r/collect`,
`/j/collect`, `/batch`) is counted hit by hit, not translated: it is sunset, and its events
(`ec`/`ea`/`el`) name nothing a statement could be made of without guessing.

Learner: `uid` (the site's user id) where the hit has one, else `cid` (the client id of the
`_ga` cookie: one browser, not one person). Times: GA4 hits carry none of their own (`_et`
is engagement time, `_p` the page load's start), so every event is dated when the proxy saw
its request, untimed, in the body's order. What each event means: ga4_events.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import event_time
from xapitap.platforms.base import page_url
from xapitap.platforms.base import text_or_none
from xapitap.platforms.ga4_events import IGNORED
from xapitap.platforms.ga4_events import LEARNING_EVENTS
from xapitap.platforms.ga4_events import NAME
from xapitap.platforms.ga4_events import OTHER
from xapitap.platforms.ga4_events import VIDEO_KINDS
from xapitap.platforms.ga4_events import HitContext
from xapitap.platforms.ga4_events import learning_event
from xapitap.platforms.ga4_events import video_event
from xapitap.platforms.ga4_hits import EVENT_NAME
from xapitap.platforms.ga4_hits import Hit
from xapitap.platforms.ga4_hits import hit_id
from xapitap.platforms.ga4_hits import looks_like_event_lines
from xapitap.platforms.ga4_hits import read_hits
from xapitap.xapi.vocab import PAGE_TYPE

_GET_POST = frozenset({"GET", "POST"})
_GOOGLE = r"(?:[a-z0-9-]+\.)*(?:google-analytics\.com|analytics\.google\.com)"
# Google's other hosts receive copies of GA4 hits (advertising features) [I]: never a site's own.
_NOT_GOOGLE = r"(?!(?:[a-z0-9-]+\.)*(?:google\.com|doubleclick\.net|google-analytics\.com)$).+"

# The adapter reads the query string and the body lines itself (ga4_hits.py): `reads_body=False`.
GA4 = EndpointRule(
    "ga4.collect", NAME, r"^/g/collect/?$", hosts=_GOOGLE, methods=_GET_POST, reads_body=False
)
GA4_FIRST_PARTY = EndpointRule(
    "ga4.first-party",
    NAME,
    r"/g/collect/?$",
    hosts=_NOT_GOOGLE,
    methods=_GET_POST,
    body_check=looks_like_event_lines,
    reads_body=False,
)
UA = EndpointRule(
    "ua.collect",
    NAME,
    r"^/(?:r/|j/)?collect/?$",
    hosts=_GOOGLE,
    methods=_GET_POST,
    reads_body=False,
)
UA_BATCH = EndpointRule("ua.batch", NAME, r"^/batch/?$", hosts=_GOOGLE, reads_body=False)

_MEASUREMENT_ID = re.compile(r"G-[A-Z0-9]{1,20}", re.IGNORECASE)
# Universal Analytics' hit types (`t`); another value is counted as unknown.
_UA_TYPES = frozenset(
    {"pageview", "screenview", "event", "transaction", "item", "social", "exception", "timing"}
)
UA_REASON = "Universal Analytics: counted, not translated"


def extract_ga4(match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    """Every event line of a gtag.js request (the decoded `doc` merges them: unused)."""
    hits = read_hits(capture)
    shared = hits.shared
    if shared.get("v") != "2" or not _MEASUREMENT_ID.fullmatch(shared.get("tid", "")):
        raise PayloadError("not a GA4 hit: its query has no v=2 and tid=G-…")
    out = Extraction()
    out.rejected.extend(Skip("(unreadable line)", reason) for reason in hits.unreadable)
    for hit in hits.hits:
        name = hit.get("en")
        if name is None or EVENT_NAME.fullmatch(name) is None:
            out.rejected.append(Skip("(no event name)", "an event without a valid name (en)"))
            continue
        if name not in VIDEO_KINDS and name not in LEARNING_EVENTS:
            out.ignored.append(Skip(name, IGNORED.get(name, OTHER)))
            continue
        try:
            ctx = _context(match.rule.name, capture, hit, name)
            if name in VIDEO_KINDS:
                out.events.append(video_event(ctx))
            else:
                out.learning.append(learning_event(ctx))
        except PayloadError as e:  # one bad event; the others are independent
            out.rejected.append(Skip(name, str(e)))
    return out


def _context(rule: str, capture: Capture, hit: Hit, name: str) -> HitContext:
    user_id, client_id = text_or_none(hit.get("uid")), text_or_none(hit.get("cid"))
    if user_id is None and client_id is None:
        # One actor for every unnamed browser would pile their events onto one person.
        raise PayloadError("names no learner (no uid or cid)")
    located = page_url(hit.get("dl"))
    page = None
    if located is not None:
        page = Activity(id="".join(located), type=PAGE_TYPE, name=text_or_none(hit.get("dt")))
    origin = located[0] if located else capture.origin
    when, timed = event_time(None, capture)
    return HitContext(
        rule=rule,
        hit=hit,
        event=name,
        source_event_id=hit_id(capture, hit),
        timestamp=when,
        timed=timed,
        user_ref=user_id or client_id or "",
        user_ref_kind="uid" if user_id else "cid",
        origin=origin,
        platform_name=urlsplit(origin).hostname or origin,
        page=page,
    )


def extract_ua(match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    """Each Universal Analytics hit counted by its type; a /batch holds one hit a line."""
    batch = match.rule.name == UA_BATCH.name
    hits = read_hits(capture, merge_query=not batch)
    out = Extraction()
    out.rejected.extend(Skip("(unreadable line)", reason) for reason in hits.unreadable)
    for hit in hits.hits:
        if hit.get("v") != "1":
            out.rejected.append(Skip("(not UA)", "not a Universal Analytics hit (no v=1)"))
            continue
        kind = hit.get("t") or ""
        out.ignored.append(Skip(kind if kind in _UA_TYPES else "(unknown hit type)", UA_REASON))
    return out


PLATFORM = Platform(
    NAME,
    {GA4: extract_ga4, UA: extract_ua, UA_BATCH: extract_ua, GA4_FIRST_PARTY: extract_ga4},
)
