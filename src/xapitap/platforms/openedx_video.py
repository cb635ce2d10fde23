"""Open edX's video player events (wire-formats.md §5.2) as player events.

The emitter is edx-platform's `video/09_events_plugin.js`: every event carries `id` (the
video block's id), `code` and `duration` (seconds), plus, per event, the playhead in seconds.
The newer `edx.video.*` names (mobile apps, ERB) mean the same.

What each one says, and so its kind:
- `load_video`: the player is ready → initialized (length: `duration`).
- `play_video`: playback starts (the first play, and the first after a pause, seek or end).
- `pause_video`; `seek_video` (`old_time` → `new_time`).
- `stop_video`: playback reached the end of the video, or of the clip the course shows
  (`ended`/`stop`): the player stops there and stays on the page, ready to play again, so it
  is the player's own end (a completion signal that stops playback), not the end of the
  session that ERB and Ralph make of it (`terminated`).
- `complete_video`: the playhead passed the course's completion percentage (or the video
  ended, or YouTube will not play it here): the platform's completion, no evidence of viewing.
- `speed_change_video`: the new speed; captions shown/hidden: captions on/off.
- transcript shown/hidden: the learner used the transcript panel beside the video. It is
  an interaction with the player, but not captions (ERB says cc-enabled): no setting changes.
"""

from __future__ import annotations

from xapitap.events import Activity
from xapitap.events import Extraction
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.events import VideoEvent
from xapitap.platforms.openedx_event import BrowserEvent
from xapitap.platforms.openedx_keys import BLOCK_ID
from xapitap.platforms.openedx_keys import UsageKey
from xapitap.platforms.openedx_keys import usage_key
from xapitap.xapi.vocab import VIDEO_TYPE

_KINDS = {
    "load_video": Kind.INITIALIZED,
    "edx.video.loaded": Kind.INITIALIZED,
    "play_video": Kind.PLAYED,
    "edx.video.played": Kind.PLAYED,
    "pause_video": Kind.PAUSED,
    "edx.video.paused": Kind.PAUSED,
    "seek_video": Kind.SEEKED,
    "edx.video.position.changed": Kind.SEEKED,
    "stop_video": Kind.COMPLETED,
    "edx.video.stopped": Kind.COMPLETED,
    "complete_video": Kind.COMPLETED,
    "edx.video.completed": Kind.COMPLETED,
    "speed_change_video": Kind.INTERACTED,
    "show_transcript": Kind.INTERACTED,
    "hide_transcript": Kind.INTERACTED,
    "edx.video.transcript.shown": Kind.INTERACTED,
    "edx.video.transcript.hidden": Kind.INTERACTED,
    "edx.video.closed_captions.shown": Kind.INTERACTED,
    "edx.video.closed_captions.hidden": Kind.INTERACTED,
}
_ENDS_PLAYBACK = frozenset({"stop_video", "edx.video.stopped"})
_CAPTIONS = {"edx.video.closed_captions.shown": True, "edx.video.closed_captions.hidden": False}
# Player events that make no statement, and why.
IGNORED = {
    "edx.video.language_menu.shown": "opens a menu",
    "edx.video.language_menu.hidden": "closes a menu; the language may be unchanged",
    "video_show_cc_menu": "opens a menu",
    "video_hide_cc_menu": "closes a menu",
    "skip_video": "the bumper (a pre-roll), not the course video",
    "do_not_show_again_video": "the bumper (a pre-roll), not the course video",
    "auto_advance_change_video": "a course-navigation setting, not the player's",
}
NAMES = frozenset(_KINDS) | frozenset(IGNORED)


def video_event(event: BrowserEvent) -> Extraction:
    if event.name in IGNORED or event.name.startswith("edx.video.bumper."):
        reason = IGNORED.get(event.name, "the bumper (a pre-roll), not the course video")
        return Extraction(ignored=[Skip(event.name, reason)])
    kind = _KINDS[event.name]
    usage = _video(event)
    position = event.number("currentTime", "current_time")
    seek_from = seek_to = None
    if kind is Kind.SEEKED:
        seek_from = event.number("old_time", "oldTime")
        seek_to = event.number("new_time", "newTime")
        if seek_to is None:
            raise PayloadError("seek without new_time")
        position = seek_to
    interaction = None
    if event.name == "speed_change_video":
        speed = event.number("new_speed", "newSpeed")
        if not speed:
            return Extraction(ignored=[Skip(event.name, "does not say the new speed")])
        interaction = Interaction(speed=f"{speed:g}x")
    elif event.name in _CAPTIONS:
        interaction = Interaction(cc_enabled=_CAPTIONS[event.name])
    video = VideoEvent(
        **event.common(),
        kind=kind,
        video=Activity(id=usage.iri(event.lms), type=VIDEO_TYPE),
        parents=event.parents(usage),
        session_key=event.session_key,
        position=position,
        seek_from=seek_from,
        seek_to=seek_to,
        length=event.number("duration") or None,
        interaction=interaction,
        platform_completed=kind is Kind.COMPLETED,
        ends_playback=event.name in _ENDS_PLAYBACK,
    )
    return Extraction(events=[video])


def _video(event: BrowserEvent) -> UsageKey:
    """The video block: `id` is its usage key, or (legacy pages) the block id alone, placed
    in the page's course as ERB's make_video_block_id does."""
    raw = event.fields().get("id")
    if (full := usage_key(raw)) is not None:
        return full
    if not isinstance(raw, str) or BLOCK_ID.fullmatch(raw) is None:
        raise PayloadError("names no video block")
    if event.course is None:
        raise PayloadError("no course key to place the video in")
    found = usage_key(event.course.usage("video", raw))
    assert found is not None, "a course key and a block id make a usage key"
    return found
