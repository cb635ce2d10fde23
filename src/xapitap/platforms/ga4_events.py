"""What a GA4 event means: enhanced-measurement video events, and the page-level events that
are learning events (wire-formats.md §6.1).

Video (`video_start`, `video_progress`, `video_complete`, embedded YouTube players):
- the video: a YouTube `video_url` by its video id, as `https://www.youtube.com/watch?v={id}`
  (its other query parameters, such as `t=` or `list=`, say nothing about which video it is);
  another `video_url` by its origin and path (query and fragment dropped, as for pages: they
  can carry tokens); without a usable URL, `{page}#video-{video_title}` on the page the event
  came from (a title alone is named on its page rather than its site: "Introduction" is the
  title of many videos of one site, and two ids for one video claim less than one for two);
- position `video_current_time` and length `video_duration`, seconds;
- `video_start` is a play; `video_progress` fires when the playhead passes 10, 25, 50 and 75 %
  of the length: evidence of where the playhead was, not that everything before it was played
  (a seek past a threshold fires it too); `video_complete` says the player reached the end.
  GA4 sends no pause and no seek, and its hits carry no time of their own, so no stretch of
  playback is ever proven by them: no played segments, progress or completion are claimed.
- the session: the page load (`_p`), else GA4's session (`sid`): one player lives in one page
  load, and GA4's session can span many pages and tabs.
Page-level events: `page_view` (viewed the page, `dl` without query and fragment, named by
`dt`) and `file_download` (downloaded the file its link names, `link_url`; GA4 fires it on the
click); others are counted, not translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import PayloadError
from xapitap.events import VideoEvent
from xapitap.platforms.base import iri_segment
from xapitap.platforms.base import page_url
from xapitap.platforms.ga4_hits import Hit
from xapitap.xapi.vocab import FILE_TYPE
from xapitap.xapi.vocab import LEARNING_VERBS
from xapitap.xapi.vocab import VIDEO_TYPE

NAME = "ga4"

VIDEO_KINDS = {
    "video_start": Kind.PLAYED,
    "video_progress": Kind.PROGRESS,
    "video_complete": Kind.COMPLETED,
}
LEARNING_EVENTS = frozenset({"page_view", "file_download"})
# Events understood but not translated, each with why (a fixed phrase: it is counted by it).
IGNORED = {
    "scroll": "page scroll depth: no xAPI mapping",
    "click": "outbound link click: no xAPI mapping",
    "user_engagement": "engagement time: no xAPI mapping",
    "session_start": "GA4 session bookkeeping: no xAPI mapping",
    "first_visit": "GA4 session bookkeeping: no xAPI mapping",
    "form_start": "form interaction: no xAPI mapping",
    "form_submit": "form interaction: no xAPI mapping",
    # GA4 guesses a search from a query parameter of the page URL (`q`, `s`, `search`, ...),
    # which many pages use for other things: no claim that the learner searched.
    "view_search_results": "site search guessed from the page URL: not translated",
}
OTHER = "no xAPI mapping"

_YOUTUBE = re.compile(r"(?:www\.|m\.)?youtube(?:-nocookie)?\.com")
_YOUTUBE_PATH = re.compile(r"/(?:embed|shorts|live|v)/([^/]+)")
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")


@dataclass(frozen=True)
class HitContext:
    """What every event of a hit shares, worked out once."""

    rule: str
    hit: Hit
    event: str  # `en`, as sent
    source_event_id: str
    timestamp: datetime
    timed: bool
    user_ref: str
    user_ref_kind: str
    origin: str  # the page's origin, else the collector's
    platform_name: str
    page: Activity | None  # the page it happened on (`dl`, named by `dt`)

    def common(self) -> dict[str, Any]:
        return {
            "platform": NAME,
            "platform_name": self.platform_name,
            "origin": self.origin,
            "rule": self.rule,
            "event_type": self.event,
            "source_event_id": self.source_event_id,
            "timestamp": self.timestamp,
            "timed": self.timed,
            "user_ref": self.user_ref,
            "user_ref_kind": self.user_ref_kind,
        }


def youtube_id(url: str) -> str | None:
    """The video id of a YouTube watch, embed, shorts or youtu.be URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return None
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif _YOUTUBE.fullmatch(host):
        found = _YOUTUBE_PATH.match(parts.path)
        candidate = found.group(1) if found else dict(parse_qsl(parts.query)).get("v", "")
    else:
        return None
    return candidate if _YOUTUBE_ID.fullmatch(candidate) else None


def video_activity(ctx: HitContext) -> Activity:
    hit = ctx.hit
    title = hit.text("video_title")
    url = hit.text("video_url")
    if url is not None and (video := youtube_id(url)) is not None:
        return Activity(id=f"https://www.youtube.com/watch?v={video}", type=VIDEO_TYPE, name=title)
    if url is not None and (located := page_url(url)) is not None:
        return Activity(id="".join(located), type=VIDEO_TYPE, name=title)
    if title is not None and ctx.page is not None:
        video_id = f"{ctx.page.id}#video-{iri_segment(title)}"
        return Activity(id=video_id, type=VIDEO_TYPE, name=title)
    raise PayloadError("a video event that names no video (no usable video_url, no title)")


def video_event(ctx: HitContext) -> VideoEvent:
    hit = ctx.hit
    kind = VIDEO_KINDS[ctx.event]
    video = video_activity(ctx)
    parents = (ctx.page,) if ctx.page is not None and ctx.page.id != video.id else ()
    return VideoEvent(
        **ctx.common(),
        kind=kind,
        video=video,
        parents=parents,
        session_key=hit.get("_p") or hit.get("sid") or None,
        position=hit.number("video_current_time"),
        length=hit.number("video_duration") or None,
        # No pause or seek is ever reported: a drag looks like playback.
        reports_seeks=False,
        ends_playback=kind is Kind.COMPLETED,
    )


def learning_event(ctx: HitContext) -> LearningEvent:
    hit, page = ctx.hit, ctx.page
    if ctx.event == "file_download":
        located = page_url(hit.text("link_url"))
        if located is None:
            raise PayloadError("a file_download without a usable file URL (link_url)")
        file = Activity(id="".join(located), type=FILE_TYPE, name=hit.text("file_name"))
        return LearningEvent(
            **ctx.common(),
            verb=LEARNING_VERBS["downloaded"],
            object=file,
            parents=() if page is None else (page,),
        )
    if page is None:
        raise PayloadError("a page_view without a usable page URL (dl)")
    return LearningEvent(**ctx.common(), verb=LEARNING_VERBS["viewed"], object=page)
