"""Video events → xAPI statements following the ADL Video Profile, session by session.

Pure: given the same events in the same order (and the same pseudonym), it returns the same
statements, byte for byte. A value the traffic does not give is left out, never invented;
what xapitap deduces (an initialized nobody sent, a seek seen only as a jump of the
playhead, a pause before the end of a session) is marked `inferred` in the source extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError

from xapitap import events as ev
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.privacy import scrub
from xapitap.session import VideoSession
from xapitap.validation import describe
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.ids import MAPPING_VERSION
from xapitap.xapi.ids import v4_shaped

_PROFILE = {
    "objectType": "Activity",
    "id": v.VIDEO_PROFILE,
    "definition": {"type": v.PROFILE_ACTIVITY_TYPE},
}

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
# Verbs whose context carries completion-threshold (the profile: MUST when it is not 1).
_WITH_THRESHOLD = {"initialized", "paused", "completed", "terminated"}

# How far a playhead may run per second of wall-clock time and still count as playing on
# (speeds up to 2x), and the slack for when a report was sent; beyond it is a seek.
_MAX_RATE = 2.0
_SLACK = 1.0


@dataclass(frozen=True)
class Policy:
    """What every statement of a run shares."""

    completion_threshold: float = 0.95
    privacy: str = "pseudonym/1"  # names the policy that made the actor (see privacy.py)
    xapi_version: str = "1.0.3"  # which xAPI the statements are written for


def seconds(value: float) -> float:
    """Seconds and ratios carry at most 3 decimals (Video Profile)."""
    return round(value, 3)


def format_timestamp(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def format_duration(total_seconds: float) -> str:
    """ISO 8601 seconds with at most 2 decimals (xAPI asks for 0.01 s precision at most)."""
    return f"PT{round(total_seconds, 2):.2f}".rstrip("0").rstrip(".") + "S"


def activity(a: ev.Activity) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": a.type}
    if a.name:
        definition["name"] = {"und": scrub(a.name)}
    return {"objectType": "Activity", "id": scrub(a.id), "definition": definition}


@dataclass(frozen=True)
class Quarantined:
    """A statement that our xAPI models refuse: never sent, kept with the reason."""

    draft: dict[str, Any]
    reason: str


Emitted = m.Statement | Quarantined


def _plain(value: Any) -> Any:
    """The draft as JSON-ready data (models inside it dumped, None values dropped)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, dict):
        return {k: _plain(v_) for k, v_ in value.items() if v_ is not None}
    if isinstance(value, list):
        return [_plain(v_) for v_ in value]
    return value


class _Builder:
    """Makes the statements of one event (or of a session's end); `index` keeps ids apart."""

    def __init__(
        self, event: VideoEvent, session: VideoSession, actor: m.Agent, policy: Policy
    ) -> None:
        self.event = event
        self.session = session
        self.actor = actor
        self.policy = policy
        self.out: list[Emitted] = []

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
        statement_id: str | None = None,
    ) -> None:
        e, s = self.event, self.session
        statement_id = statement_id or v4_shaped(
            "statement",
            MAPPING_VERSION,
            e.platform,
            e.source_event_id,
            verb,
            str(len(self.out)),
            self.actor.account.name,
            s.session_id,
            self.policy.xapi_version,
        )
        ctx_ext: dict[str, Any] = {v.SESSION_ID: s.session_id}
        if s.length:
            ctx_ext[v.LENGTH] = seconds(s.length)
        if verb in _WITH_THRESHOLD:
            ctx_ext[v.COMPLETION_THRESHOLD] = seconds(self.policy.completion_threshold)
        ctx_ext.update(context_ext or {})
        result_ext = {k: val for k, val in result_ext.items() if val is not None}
        source: dict[str, Any] = {
            "platform": e.platform,
            "rule": e.rule,
            "eventId": e.source_event_id,
            "mapping": MAPPING_VERSION,
            "privacy": self.policy.privacy,
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
        draft: dict[str, Any] = {
            "id": statement_id,
            "actor": self.actor,
            "verb": {"id": v.VERBS[verb], "display": {"en-US": verb}},
            "object": activity(e.video),
            "context": {
                "platform": e.platform_name,
                "contextActivities": {
                    "parent": [activity(a) for a in e.parents] or None,
                    "grouping": [activity(a) for a in e.groupings] or None,
                    "category": [_PROFILE],
                },
                "extensions": ctx_ext,
            },
            "timestamp": format_timestamp(at or e.timestamp),
        }
        if result_ext or completion is not None or duration is not None:
            draft["result"] = {
                "completion": completion,
                "duration": duration,
                "extensions": result_ext or None,
            }
        if self.policy.xapi_version != "1.0.3":  # 1.0.3 producers should not set it
            draft["version"] = self.policy.xapi_version
        try:
            self.out.append(m.Statement.model_validate(draft))
        except ValidationError as error:  # never sent: kept aside with the reason
            self.out.append(Quarantined(_plain(draft), describe(error)))

    def summary(self, at: float | None) -> dict[str, Any]:
        """time, progress and played-segments, which paused, completed and terminated carry."""
        s = self.session
        return {
            v.TIME: None if at is None else seconds(at),
            v.PROGRESS: s.progress(),
            v.PLAYED_SEGMENTS: s.played_segments(),
        }

    def seeked(
        self,
        start: float | None,
        end: float | None,
        *,
        inferred: bool,
        when: datetime | None = None,
    ) -> None:
        s = self.session
        was_playing = s.playing
        s.stop_playing(start)
        if was_playing:
            s.playing_from = end
        s.last_seek_to = end
        ext = {v.TIME_FROM: _secs(start), v.TIME_TO: _secs(end)}
        self.add("seeked", ext, inferred=inferred, at=when)

    def played(self, at: float | None, *, inferred: bool, when: datetime | None = None) -> None:
        """Playback (re)starts at `at`; a jump from where the playhead was is a seek."""
        s = self.session
        if not s.playing and _jumped(s.position, at):
            self.seeked(s.position, at, inferred=True, when=when)
        s.stop_playing(at)
        s.playing_from = at
        self.add("played", {v.TIME: _secs(at)}, inferred=inferred, at=when)

    def complete(self, at: float | None, *, inferred: bool) -> None:
        s = self.session
        s.completed = True
        # result.duration is the time spent playing, which is unknown if none was seen.
        duration = format_duration(s.time_played()) if s.segments else None
        self.add(
            "completed",
            self.summary(at),
            completion=True,
            duration=duration,
            inferred=inferred,
        )

    def reached_threshold(self, at: float | None) -> None:
        """Completed, once, when the share played reaches the completion threshold (counting
        the stretch playing now, which is then closed at `at` so the statement says so)."""
        s = self.session
        if s.completed or at is None:
            return
        open_stretch = [(s.playing_from, at)] if s.playing_from is not None else []
        progress = s.progress(extra=open_stretch)
        if progress is not None and progress >= self.policy.completion_threshold:
            if s.playing:
                s.stop_playing(at)
                s.playing_from = at
            self.complete(at, inferred=True)


DEFAULT_POLICY = Policy()


def translate(
    event: VideoEvent,
    session: VideoSession,
    actor: m.Agent,
    policy: Policy = DEFAULT_POLICY,
    seen_at: datetime | None = None,
) -> list[Emitted]:
    """The statements for one event, updating the session with what it tells; `seen_at` is
    when the proxy saw it."""
    b = _Builder(event, session, actor, policy)
    s = session
    began = event.timestamp  # when what the event reports began
    if event.kind is Kind.WATCHED and event.segment_from is not None:
        stretch = (event.segment_to or event.segment_from) - event.segment_from
        began = event.timestamp - timedelta(seconds=max(stretch, 0))
    reported = event.player.model_dump(exclude_none=True) if event.player else {}
    if not s.initialized:
        s.initialized = True
        inferred = event.kind is not Kind.INITIALIZED
        context = _interaction(event.player)[1]  # the settings it starts with
        if event.user_agent:
            context[v.USER_AGENT] = event.user_agent
        b.add("initialized", {}, context, inferred=inferred, statement_id=s.session_id, at=began)
        s.player.update(reported)
        if event.kind is Kind.INITIALIZED:
            return b.out
    changed = {k: x for k, x in reported.items() if k in s.player and s.player[k] != x}
    s.player.update(reported)
    if changed:  # settings changed between two reports: an interaction nobody reported
        result_ext, context_ext = _interaction(ev.Interaction(**changed))
        at = event.position if event.position is not None else s.position
        b.add("interacted", {v.TIME: _secs(at), **result_ext}, context_ext, inferred=True)
    pos = event.position if event.position is not None else s.position
    match event.kind:
        case Kind.INITIALIZED:
            pass  # a second initialized in one session says nothing new
        case Kind.PLAYED:
            if s.playing and not _jumped(s.position, pos, _elapsed(s, event, seen_at)):
                pass  # still playing: nothing new happened
            else:
                if s.playing:  # playing, but elsewhere than it could have reached
                    b.seeked(s.position, pos, inferred=True)
                b.played(pos, inferred=False)
        case Kind.PAUSED:
            s.stop_playing(pos)
            b.add("paused", b.summary(pos))
            b.reached_threshold(pos)
        case Kind.SEEKED:
            start = event.seek_from if event.seek_from is not None else s.position
            end = event.seek_to if event.seek_to is not None else event.position
            pos = end
            if event.seek_from is None and _same(end, s.last_seek_to):
                pass  # the end of a seek whose start was already reported with its target
            else:
                b.seeked(start, end, inferred=False)
        case Kind.WATCHED:
            start, end = event.segment_from, event.segment_to
            assert start is not None and end is not None, "adapters set both for WATCHED"
            b.played(start, inferred=True, when=began)
            s.stop_playing(end)
            pos = end
            b.add("paused", b.summary(end))
            b.reached_threshold(end)
        case Kind.PROGRESS:
            _progress(b, event, pos, seen_at)
        case Kind.INTERACTED:
            result_ext, context_ext = _interaction(event.interaction)
            b.add("interacted", {v.TIME: _secs(pos), **result_ext}, context_ext)
        case Kind.COMPLETED:
            if not s.completed:
                s.stop_playing(pos)
                b.complete(pos, inferred=False)
        case Kind.TERMINATED:  # ends the session: the caller drops it
            if s.playing:  # the profile wants a paused before terminated
                s.stop_playing(pos)
                b.add("paused", b.summary(pos), inferred=True)
            b.add("terminated", b.summary(pos))
    if event.kind is not Kind.SEEKED:
        s.last_seek_to = None
    if pos is not None:
        s.position = pos
        s.position_at = event.timestamp
        s.position_seen_at = seen_at
    return b.out


def terminate(
    session: VideoSession, actor: m.Agent, policy: Policy = DEFAULT_POLICY
) -> list[Emitted]:
    """The end of a session nobody reported: a pause if it was playing, then terminated.

    Both are dated at the last event seen, when the learner was last known to be there.
    """
    last = session.last_event
    b = _Builder(last, session, actor, policy)
    pos = session.position
    if session.playing:
        session.stop_playing(pos)
        b.add("paused", b.summary(pos), inferred=True)
    b.add("terminated", b.summary(pos), inferred=True)
    return b.out


def _progress(b: _Builder, event: VideoEvent, pos: float | None, seen_at: datetime | None) -> None:
    """A heartbeat: playback ran from the last known position to here, if it could have."""
    s = b.session
    if pos is None:
        return
    if _jumped(s.position, pos, _elapsed(s, event, seen_at)):
        if s.playing:
            b.seeked(s.position, pos, inferred=True)
        else:
            b.played(pos, inferred=True)
    elif not s.playing:
        # Still where it was, or moving on from there: it played from the last position.
        start = s.position if s.position is not None else pos
        b.played(start, inferred=True, when=s.position_at if s.position is not None else None)
    b.reached_threshold(pos)


def _elapsed(s: VideoSession, event: VideoEvent, seen_at: datetime | None) -> float:
    """Seconds since the last reported position, on whichever clock says more: the event
    clock keeps apart the events of one batch, the proxy's survives a client clock that
    is off (or events that carry no time of their own)."""
    on_events = (event.timestamp - s.position_at).total_seconds() if s.position_at else 0.0
    on_proxy = (
        (seen_at - s.position_seen_at).total_seconds() if seen_at and s.position_seen_at else 0.0
    )
    return max(on_events, on_proxy, 0.0)


def _jumped(last: float | None, now: float | None, elapsed: float = 0.0) -> bool:
    """Whether the playhead moved further than playback could have carried it."""
    if last is None or now is None:
        return False
    return not (-_SLACK <= now - last <= elapsed * _MAX_RATE + _SLACK)


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
