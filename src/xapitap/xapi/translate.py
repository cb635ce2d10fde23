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


def seconds(value: float) -> float:
    """Seconds and ratios carry at most 3 decimals (Video Profile)."""
    return round(value, 3)


def format_timestamp(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def format_duration(total_seconds: float) -> str:
    return f"PT{round(total_seconds, 2):g}S" if total_seconds < 1e15 else "PT0S"


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
        )
        ctx_ext: dict[str, Any] = {v.SESSION_ID: s.session_id}
        if s.length:
            ctx_ext[v.LENGTH] = seconds(s.length)
        ctx_ext.update(context_ext or {})
        ctx_ext[v.SOURCE] = {
            "platform": e.platform,
            "rule": e.rule,
            "eventId": e.source_event_id,
            "mapping": MAPPING_VERSION,
            "inferred": inferred,
        }
        result_ext = {k: val for k, val in result_ext.items() if val is not None}
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
            was_playing = s.playing_from is not None
            s.stop_playing(start)
            if was_playing:
                s.playing_from = end
            pos = end
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
            pass  # evidence of the playhead only
        case Kind.INTERACTED:
            result_ext, context_ext = _interaction(event.interaction)
            b.add("interacted", {v.TIME: _secs(pos), **result_ext}, context_ext)
        case Kind.COMPLETED:
            if s.completed:
                return []
            s.stop_playing(pos)
            s.completed = True
            b.add(
                "completed",
                b.summary(pos),
                completion=True,
                duration=format_duration(s.time_played()),
            )
        case Kind.TERMINATED:
            s.stop_playing(pos)
            b.add("terminated", b.summary(pos))
    if pos is not None:
        s.position = pos
    return b.out


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
