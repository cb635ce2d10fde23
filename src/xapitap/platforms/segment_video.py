"""The Segment Video Spec (also RudderStack's), as many course sites send it.

Activity id: the page the player is on (no query or fragment), plus `#video-{asset id}` when
the event names its asset (`content_asset_id` or `asset_id`); an event without one joins the
open session of its `session_id`. Learner: `userId`, else `anonymousId`. `position` and
`total_length` are seconds; `session_id` is the playback session.

Playback events (`Video Playback *`) describe the session, and their `position` and
`total_length` include ads; content events (`Video Content *`) describe one pod of content
and exclude them. The session model uses content positions only while both levels give the
same length (no ads), and `Video Content Completed` (a pod ending) is no completion.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from xapitap.events import Activity
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import PayloadError
from xapitap.events import VideoEvent
from xapitap.platforms.base import iri_segment
from xapitap.platforms.base import number_or_none
from xapitap.platforms.base import text_or_none
from xapitap.platforms.segment import TrackCall
from xapitap.platforms.segment import TrackHandler
from xapitap.platforms.segment import handlers_for
from xapitap.platforms.segment import normalize_event_name
from xapitap.xapi.vocab import VIDEO_TYPE

_KINDS = {
    "video playback started": Kind.PLAYED,
    "video playback resumed": Kind.PLAYED,
    "video playback paused": Kind.PAUSED,
    "video playback interrupted": Kind.PAUSED,
    "video playback seek started": Kind.SEEKED,
    "video playback seek completed": Kind.SEEKED,
    "video playback completed": Kind.COMPLETED,
    "video playback exited": Kind.TERMINATED,
    "video content started": Kind.PROGRESS,
    "video content playing": Kind.PROGRESS,
    "video content completed": Kind.PROGRESS,
}


def _asset(p: dict[str, object]) -> str | None:
    asset = text_or_none(p.get("content_asset_id")) or text_or_none(p.get("asset_id"))
    ids = p.get("content_asset_ids")
    if asset is None and isinstance(ids, list) and ids:
        asset = text_or_none(ids[0])
    return asset


def video_spec(call: TrackCall) -> list[VideoEvent]:
    name = normalize_event_name(call.event)
    kind = _KINDS[name]
    p = call.properties
    asset = _asset(p)
    page = f"{call.origin}{call.page_path or '/'}"
    if asset is None and call.page_path is None:
        raise PayloadError("names neither a video asset nor a page")
    video_id = f"{page}#video-{iri_segment(asset)}" if asset else page
    position = number_or_none(p.get("position"))
    seek_from = seek_to = None
    if kind is Kind.SEEKED:
        if name.endswith("seek started"):  # its end may bring the target
            seek_from, seek_to = position, number_or_none(p.get("seek_position"))
        else:
            seek_to = position
    return [
        VideoEvent(
            platform="segment",
            platform_name=urlsplit(call.origin).hostname or call.origin,
            origin=call.origin,
            rule=call.rule,
            event_type=call.event,
            source_event_id=call.message_id,
            kind=kind,
            timestamp=call.timestamp,
            timed=call.timed,
            user_ref=call.user_ref,
            user_ref_kind=call.user_ref_kind,
            video=Activity(id=video_id, type=VIDEO_TYPE, name=text_or_none(p.get("title"))),
            session_key=text_or_none(p.get("session_id")),
            position=position,
            seek_from=seek_from,
            seek_to=seek_to,
            length=number_or_none(p.get("total_length")) or None,
            player=_player(p),
            level="content" if name.startswith("video content") else "playback",
            asset_known=asset is not None,
            ends_playback=kind is Kind.COMPLETED,
        )
    ]


HANDLERS: dict[str, TrackHandler] = handlers_for(_KINDS, video_spec)


def _player(p: dict[str, object]) -> Interaction | None:
    """The settings the Video Spec reports with every event: sound 0-100, full_screen,
    quality."""
    sound = number_or_none(p.get("sound"))
    full_screen = p.get("full_screen")
    settings = Interaction(
        volume=None if sound is None else min(sound / 100, 1.0),
        full_screen=full_screen if isinstance(full_screen, bool) else None,
        quality=text_or_none(p.get("quality")),
    )
    return settings if settings != Interaction() else None
