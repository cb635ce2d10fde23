"""YouTube's embedded player's stats pings: Video Profile sessions.

Undocumented and reverse-engineered (research: wire-formats.md §7, dashboard-replay-youtube.md
§D); everything is in the URL's query string, sent as GET or POST alike:
- `/api/stats/playback` once at playback start: the session's initialized (with `len`);
- `/api/stats/watchtime` at each flush (10, 20, 30 s, then every 40 s of wall time, and when
  the page is left, `final=1`): `st`/`et`, comma lists of the intervals played since the
  previous flush (seconds; several when the playhead jumped), `cmt` the playhead then,
  `state` `playing` or `paused`. Each interval is a stretch played exactly; a jump between two
  is a seek. `final=1` ends the session.
Other stats endpoints (`qoe`, `ptracking`, ...) carry no positions and are not matched.
Only players embedded in a page (`el=embedded`) are read: pings from YouTube's own pages
(`el=detailpage`, TV's `leanback`, ...) are the learner's own YouTube viewing, and are only
counted.

Activity ids: the video `https://www.youtube.com/watch?v={docid}`; the page the player is
embedded in (`euri`, without query and fragment) as its parent.
Learner: the pings carry no user id, so the learner is the player's session (`cpn`, a nonce
per playback): one pseudonymous learner per playback, unless the proxy login names them.
Muted playback is still playback: its stretches count; `muted` and `volume` are the player's
volume (0 when muted), on the initialized and as an inferred interacted when they change.
"""

from __future__ import annotations

import re
from typing import Any
from typing import Literal
from urllib.parse import parse_qsl

from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import event_time
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import page_url
from xapitap.platforms.base import raw_event_id
from xapitap.xapi.vocab import PAGE_TYPE
from xapitap.xapi.vocab import VIDEO_TYPE

NAME = "youtube"
# One origin for every host the pings go to (s.youtube.com, www.youtube.com, the privacy
# embeds' youtube-nocookie.com): one player's pings name one learner and one video.
ORIGIN = "https://www.youtube.com"
_HOSTS = r"(?:www|s)\.youtube\.com|(?:www\.)?youtube-nocookie\.com"
_METHODS = frozenset({"GET", "POST"})  # GET in older captures, POST in 2026's (§D)
# Seconds of playhead that are rounding and report timing, not a jump (the session model's
# SLACK); a playhead this far past the length is another unit or another video.
SLACK = 0.5
MAX_INTERVALS = 1_000  # a flush holds a few; more is no player's ping
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # 11 characters today (§D)
_CPN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # 16 characters today (§D)

PLAYBACK = EndpointRule(
    "youtube.playback",
    NAME,
    r"^/api/stats/playback$",
    hosts=_HOSTS,
    methods=_METHODS,
    reads_body=False,
)
WATCHTIME = EndpointRule(
    "youtube.watchtime",
    NAME,
    r"^/api/stats/watchtime$",
    hosts=_HOSTS,
    methods=_METHODS,
    reads_body=False,
)


# The parameters read; the others (client, experiments, quality, ...) say nothing we map.
_READ = (
    "el",
    "docid",
    "cpn",
    "euri",
    "len",
    "st",
    "et",
    "cmt",
    "state",
    "final",
    "muted",
    "volume",
)
MAX_PARAMS = 1_000  # a ping has about fifty


def _params(capture: Capture) -> dict[str, str]:
    """The parameters read from the query string; one of them given twice with two values is
    unreadable (which one would hold?)."""
    try:
        pairs = parse_qsl(capture.query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
    except ValueError:
        raise PayloadError(f"stats ping with more than {MAX_PARAMS} parameters") from None
    out: dict[str, str] = {}
    for key, value in pairs:
        if key not in _READ:
            continue
        if out.get(key, value) != value:
            raise PayloadError(f"stats ping that gives {key} twice, with two values")
        out[key] = value
    return out


def _common(rule: RuleMatch, capture: Capture, p: dict[str, str]) -> dict[str, Any]:
    """What every event of a ping says: the video, its page, the player's session."""
    docid = p.get("docid", "")
    cpn = p.get("cpn", "")
    if not _VIDEO_ID.fullmatch(docid):
        raise PayloadError("stats ping without a video id (docid)")
    if not _CPN.fullmatch(cpn):
        raise PayloadError("stats ping without a player session (cpn)")
    page = page_url(p.get("euri"))
    when, timed = event_time(None, capture)  # a ping holds no time of its own
    return {
        "platform": NAME,
        "platform_name": "YouTube",
        "origin": ORIGIN,
        "rule": rule.rule.name,
        "timestamp": when,
        "timed": timed,
        # No user id: the player's session stands for the learner (see the module doc).
        "user_ref": cpn,
        "user_ref_kind": "cpn",
        "session_key": cpn,
        "video": Activity(id=f"{ORIGIN}/watch?v={docid}", type=VIDEO_TYPE),
        "parents": () if page is None else (Activity(id=page[0] + page[1], type=PAGE_TYPE),),
        "length": number_or_none(p.get("len")) or None,
    }


def _numbers(text: str, what: str) -> list[float]:
    values = [number_or_none(part) for part in text.split(",")]
    if len(values) > MAX_INTERVALS:
        raise PayloadError(f"watchtime ping with more than {MAX_INTERVALS} intervals")
    if any(v is None for v in values):
        raise PayloadError(f"watchtime ping whose {what} is not a list of times in seconds")
    return [v for v in values if v is not None]


def _intervals(p: dict[str, str], length: float | None) -> list[tuple[float, float]]:
    """The intervals played since the previous flush (`st`/`et`)."""
    if not p.get("st") or not p.get("et"):
        raise PayloadError("watchtime ping without st/et (the intervals played)")
    starts, ends = _numbers(p["st"], "st"), _numbers(p["et"], "et")
    if len(starts) != len(ends):
        raise PayloadError("watchtime ping whose st and et lists differ in length")
    intervals = list(zip(starts, ends, strict=True))
    if any(b < a for a, b in intervals):
        raise PayloadError("watchtime ping with an interval that ends before it starts")
    if length is not None and any(b > length + SLACK for _, b in intervals):
        raise PayloadError("watchtime ping with an interval beyond the video's length")
    return intervals


def _volumes(p: dict[str, str], count: int) -> list[float | None]:
    """The player's volume (0-1) during each interval: `muted` and `volume` (0-100) are one
    value, or a comma list with one per interval; otherwise unknown."""

    def per_interval(key: str) -> list[str | None]:
        values: list[str | None] = [v.strip() for v in p[key].split(",")] if p.get(key) else []
        if len(values) == 1:
            return values * count
        return values if len(values) == count else [None] * count

    out: list[float | None] = []
    for muted, volume in zip(per_interval("muted"), per_interval("volume"), strict=True):
        level = number_or_none(volume)
        if muted == "1":
            out.append(0.0)
        elif muted == "0" and level is not None and level <= 100:
            out.append(level / 100)
        else:
            out.append(None)
    return out


def _player(volume: float | None) -> Interaction | None:
    return None if volume is None else Interaction(volume=volume)


def _event_id(capture: Capture, index: int) -> str:
    # A ping is its URL (no id, no time of its own): the same URL again is a resend.
    return raw_event_id([capture.path, capture.query, index])


def _elsewhere(p: dict[str, str], event_type: str) -> Extraction | None:
    """Pings of a player that is not embedded in a page (`el`: YouTube's own watch page,
    TV, Shorts) are the learner's own YouTube viewing, not a course's: counted, not read."""
    if p.get("el") == "embedded":
        return None
    return Extraction(ignored=[Skip(event_type, "not an embedded player (el)")])


def _playback(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    p = _params(capture)
    if skipped := _elsewhere(p, "playback"):
        return skipped
    common = _common(rule, capture, p)
    (volume,) = _volumes(p, 1)
    event = VideoEvent(
        kind=Kind.INITIALIZED,
        event_type="playback",
        source_event_id=_event_id(capture, 0),
        player=_player(volume),
        **common,
    )
    return Extraction(events=[event])


def _watchtime(rule: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    p = _params(capture)
    if skipped := _elsewhere(p, "watchtime"):
        return skipped
    common = _common(rule, capture, p)
    state = p.get("state")
    if state not in ("playing", "paused"):
        raise PayloadError("watchtime ping whose state is neither playing nor paused")
    intervals = _intervals(p, common["length"])
    volumes = _volumes(p, len(intervals))
    cmt = number_or_none(p.get("cmt"))
    if cmt is not None and common["length"] is not None and cmt > common["length"] + SLACK:
        raise PayloadError("watchtime ping whose playhead (cmt) is beyond the video's length")
    if cmt is not None and abs(cmt - intervals[-1][1]) > SLACK:
        # The playhead moved after the last interval without playing (a jump at the flush).
        intervals.append((cmt, cmt))
        volumes.append(volumes[-1])
    last = len(intervals) - 1
    events = []
    for i, ((start, end), volume) in enumerate(zip(intervals, volumes, strict=True)):
        # Before a later interval the player played on (or jumped): only the last one ends
        # in the reported state.
        after: Literal["playing", "paused"] = (
            "paused" if i == last and state == "paused" else "playing"
        )
        events.append(
            VideoEvent(
                kind=Kind.WATCHED,
                event_type="watchtime",
                source_event_id=_event_id(capture, i),
                segment_from=start,
                segment_to=end,
                position=start,
                reported_state=after,
                player=_player(volume),
                **common,
            )
        )
    if p.get("final") == "1":  # the last flush of the playback: the player is gone
        events.append(
            VideoEvent(
                kind=Kind.TERMINATED,
                event_type="watchtime final",
                source_event_id=_event_id(capture, len(intervals)),
                position=intervals[-1][1],
                **common,
            )
        )
    return Extraction(events=events)


PLATFORM = Platform(NAME, {PLAYBACK: _playback, WATCHTIME: _watchtime})
