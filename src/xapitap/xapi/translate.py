"""Video events → xAPI statements following the ADL Video Profile.

Pure: given the same events in the same order (and the same pseudonym), it returns the same
statements, byte for byte. A value the traffic does not give is left out, never invented.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from xapitap import events as ev
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.session import VideoSession
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.ids import MAPPING_VERSION
from xapitap.xapi.ids import v4_shaped

_PROFILE = m.Activity(
    id=v.VIDEO_PROFILE, definition=m.ActivityDefinition(type=v.PROFILE_ACTIVITY_TYPE)
)


# Extensions the Video Profile's statement templates require for each verb ("included").
_REQUIRED = {
    "initialized": (v.LENGTH,),
    "played": (v.TIME,),
    "paused": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
    "seeked": (v.TIME_FROM, v.TIME_TO),
    "interacted": (v.TIME,),
    "completed": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
    "terminated": (v.TIME, v.LENGTH, v.PROGRESS, v.PLAYED_SEGMENTS),
}


def seconds(value: float) -> float:
    """Seconds and ratios carry at most 3 decimals (Video Profile)."""
    return round(value, 3)


def format_timestamp(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def format_duration(total_seconds: float) -> str:
    """ISO 8601 seconds with at most 2 decimals (xAPI asks for 0.01 s precision at most)."""
    return f"PT{round(total_seconds, 2):.2f}".rstrip("0").rstrip(".") + "S"


def activity(a: ev.Activity) -> m.Activity:
    name = {"und": a.name} if a.name else None
    return m.Activity(id=a.id, definition=m.ActivityDefinition(type=a.type, name=name))


class _Builder:
    """Makes the statements of one event; `index` keeps their ids apart."""

    def __init__(self, event: VideoEvent, session: VideoSession, actor: m.Agent) -> None:
        self.event = event
        self.session = session
        self.actor = actor
        self.out: list[m.Statement] = []

    def add(
        self,
        verb: str,
        result_ext: dict[str, Any],
        context_ext: dict[str, Any] | None = None,
        *,
        at: datetime | None = None,
        inferred: bool = False,
        completion: bool | None = None,
        duration: str | None = None,
    ) -> None:
        e, s = self.event, self.session
        index = str(len(self.out))
        statement_id = v4_shaped(
            "statement",
            MAPPING_VERSION,
            e.platform,
            e.source_event_id,
            verb,
            index,
            self.actor.account.name,
            s.session_id,
        )
        ctx_ext: dict[str, Any] = {v.SESSION_ID: s.session_id}
        if s.length:
            ctx_ext[v.LENGTH] = seconds(s.length)
        ctx_ext.update(context_ext or {})
        result_ext = {k: val for k, val in result_ext.items() if val is not None}
        source: dict[str, Any] = {
            "platform": e.platform,
            "rule": e.rule,
            "eventId": e.source_event_id,
            "mapping": MAPPING_VERSION,
            "inferred": inferred,
        }
        missing = [
            key.rsplit("/", 1)[-1]
            for key in _REQUIRED[verb]
            if key not in result_ext and key not in ctx_ext
        ]
        if verb == "completed" and duration is None:
            missing.append("duration")
        if missing:  # the profile wants these, but the traffic did not tell them
            source["missing"] = missing
        ctx_ext[v.SOURCE] = source
        result = None
        if result_ext or completion is not None or duration is not None:
            result = m.Result(
                completion=completion, duration=duration, extensions=result_ext or None
            )
        self.out.append(
            m.Statement(
                id=statement_id,
                actor=self.actor,
                verb=m.Verb(id=v.VERBS[verb], display={"en-US": verb}),
                object=activity(e.video),
                result=result,
                context=m.Context(
                    platform=e.platform_name,
                    contextActivities=m.ContextActivities(
                        parent=[activity(a) for a in e.parents] or None,
                        grouping=[activity(a) for a in e.groupings] or None,
                        category=[_PROFILE],
                    ),
                    extensions=ctx_ext,
                ),
                timestamp=format_timestamp(at or e.timestamp),
            )
        )

    def summary(self, at: float | None) -> dict[str, Any]:
        """time, progress and played-segments, which paused, completed and terminated carry."""
        s = self.session
        return {
            v.TIME: None if at is None else seconds(at),
            v.PROGRESS: s.progress(),
            v.PLAYED_SEGMENTS: s.played_segments(),
        }


def translate(event: VideoEvent, session: VideoSession, actor: m.Agent) -> list[m.Statement]:
    """The statements for one event, updating the session with what it tells."""
    b = _Builder(event, session, actor)
    s = session
    pos = event.position if event.position is not None else s.position
    match event.kind:
        case Kind.INITIALIZED:
            b.add("initialized", {})
        case Kind.PLAYED:
            s.stop_playing(pos)
            s.playing_from = pos
            b.add("played", {v.TIME: _secs(pos)})
        case Kind.PAUSED:
            s.stop_playing(pos)
            b.add("paused", b.summary(pos))
        case Kind.SEEKED:
            start = event.seek_from if event.seek_from is not None else s.position
            end = event.seek_to if event.seek_to is not None else event.position
            pos = end
            if event.seek_from is None and _same(end, s.last_seek_to):
                pass  # the end of a seek whose start was already reported with its target
            else:
                was_playing = s.playing_from is not None
                s.stop_playing(start)
                if was_playing:
                    s.playing_from = end
                b.add("seeked", {v.TIME_FROM: _secs(start), v.TIME_TO: _secs(end)})
        case Kind.WATCHED:
            start, end = event.segment_from, event.segment_to
            assert start is not None and end is not None, "adapters set both for WATCHED"
            s.stop_playing(start)
            s.playing_from = start
            began = event.timestamp - timedelta(seconds=max(end - start, 0))
            b.add("played", {v.TIME: seconds(start)}, at=began, inferred=True)
            s.stop_playing(end)
            pos = end
            b.add("paused", b.summary(end))
        case Kind.PROGRESS:
            _progress(s, event, pos)
        case Kind.INTERACTED:
            result_ext, context_ext = _interaction(event.interaction)
            b.add("interacted", {v.TIME: _secs(pos), **result_ext}, context_ext)
        case Kind.COMPLETED:
            if s.completed:
                return []
            s.stop_playing(pos)
            s.completed = True
            # result.duration is the time spent playing, which is unknown if none was seen.
            duration = format_duration(s.time_played()) if s.segments else None
            b.add("completed", b.summary(pos), completion=True, duration=duration)
        case Kind.TERMINATED:
            s.stop_playing(pos)
            b.add("terminated", b.summary(pos))
    s.last_seek_to = pos if event.kind is Kind.SEEKED else None
    if pos is not None:
        s.position = pos
        s.position_at = event.timestamp
    return b.out


# How far a playhead may advance per second of wall-clock time and still count as playing
# on (speeds up to 2x, plus slack for when the ping was sent).
_MAX_RATE = 2.0
_SLACK = 1.0


def _progress(s: VideoSession, event: VideoEvent, pos: float | None) -> None:
    """A heartbeat: playback ran from the last known position to here, if it could have."""
    if pos is None:
        return
    last, last_at = s.position, s.position_at
    continuous = False
    if last is not None and last_at is not None:
        elapsed = (event.timestamp - last_at).total_seconds()
        continuous = 0 <= pos - last <= max(elapsed, 0) * _MAX_RATE + _SLACK
    if s.playing_from is None:
        s.playing_from = last if continuous else pos
    elif not continuous:  # the playhead jumped: what came before ended where it was last seen
        s.stop_playing(last)
        s.playing_from = pos


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 0.5


def _secs(value: float | None) -> float | None:
    return None if value is None else seconds(value)


def _interaction(i: ev.Interaction | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Result and context extensions for a settings change.

    cc-enabled goes in the result, where the profile's closed-captioning template (and Ralph)
    look for it; the concept's cc-subtitle-enabled goes in the context with the same value.
    """
    result: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    if i is None:
        return result, ext
    if i.quality is not None:
        ext[v.QUALITY] = i.quality
    if i.speed is not None:
        ext[v.SPEED] = i.speed
    if i.volume is not None:
        ext[v.VOLUME] = seconds(i.volume)
    if i.full_screen is not None:
        ext[v.FULL_SCREEN] = i.full_screen
    if i.cc_enabled is not None:
        result[v.CC_ENABLED] = i.cc_enabled
        ext[v.CC_SUBTITLE_ENABLED] = i.cc_enabled
    if i.cc_language is not None:
        ext[v.CC_LANG] = i.cc_language
    return result, ext
