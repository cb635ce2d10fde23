"""Video sessions: which events belong together, and when a session ends.

A session is one actor watching one video, within the platform's own playback session when
it names one (the Segment Video Spec gives each player its own `session_id`, so two players
on one page are two sessions side by side). It ends when the platform says so, when the same
actor starts playing another video in the same platform session (or where the platform names
none), after 30 idle minutes, or when the proxy stops. What the player did within a session
is decided in player.py.

Everything here is ordered (dicts, never sets) and ties are broken by session id, so the same
events give the same sessions in every process.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.ids import MAPPING_VERSION
from xapitap.ids import v4_shaped
from xapitap.player import PlayerState

DEFAULT_IDLE_TIMEOUT = timedelta(minutes=30)
DEFAULT_MAX_SESSIONS = 10_000
_MAX_ENDED = 10_000  # ended sessions remembered, so that their late events open nothing

_Key = tuple[str, str, str]  # actor, video, platform session
# Events that say the learner is playing this video now.
_PLAY_KINDS = frozenset({Kind.PLAYED, Kind.PROGRESS, Kind.WATCHED})
# Events that end something: one for a session that has ended is a late report of it.
_CLOSING_KINDS = frozenset({Kind.PAUSED, Kind.COMPLETED, Kind.TERMINATED})


@dataclass
class VideoSession:
    key: _Key
    session_id: str
    actor: str  # the account name (a pseudonym, by default)
    actor_home: str  # the account's homePage
    template: VideoEvent  # its first event: the video and its context activities
    last_event: VideoEvent  # what statements the session itself makes are attributed to
    last_seen: datetime  # on the proxy's clock
    state: PlayerState = field(default_factory=PlayerState)

    @property
    def last_time(self) -> datetime:
        """The latest event time in the session."""
        return self.state.last_at or self.last_event.timestamp


@dataclass(frozen=True)
class Routed:
    """Where an event goes: its session (None if it belongs to none, and why), and the
    sessions that have ended by now."""

    session: VideoSession | None
    ended: list[VideoSession]
    reason: str = ""


class VideoSessions:
    """Open sessions, bounded: the oldest are ended (with their statements) to make room."""

    def __init__(
        self,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self.idle_timeout = idle_timeout
        self._max = max_sessions
        # Least recently seen first, so that idle sessions are found at the front.
        self._sessions: OrderedDict[_Key, VideoSession] = OrderedDict()
        # Each actor's open sessions (ordered, so every process ends them in one order): an
        # event looks at its actor's sessions only, never at all of them.
        self._by_actor: dict[str, dict[_Key, None]] = {}
        # When each recently ended session ended (event time): late events for it are stale.
        self._ended: OrderedDict[_Key, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def route(
        self, actor: str, event: VideoEvent, seen_at: datetime, actor_home: str = ""
    ) -> Routed:
        """The event's session, and the sessions that have ended by now.

        Idleness is measured on the proxy's clock: events mix the platform's clock (times in
        bodies) with ours (bodies without times), and only ours is shared by all of them.
        """
        ended = self.expire(seen_at)
        key = (actor, event.video.id, event.session_key or "")
        session = self._sessions.get(key) or self._joined(actor, event)
        if session is None:
            ended_at = self._ended.get(key)
            if ended_at is not None and (
                event.timestamp <= ended_at or event.kind in _CLOSING_KINDS
            ):
                return Routed(None, ended, "event for a session that has ended")
            session = self._new(key, actor, actor_home, event, seen_at)
        if event.kind in _PLAY_KINDS:
            ended += self._end_others(session, event)
        self._sessions.move_to_end(session.key)
        session.last_seen = max(session.last_seen, seen_at)
        session.last_event = event
        while len(self._sessions) > self._max:
            ended.append(self._pop(next(iter(self._sessions))))
        return Routed(session, ended)

    def _joined(self, actor: str, event: VideoEvent) -> VideoSession | None:
        """The open session an event belongs to although its key differs:
        - an event that names no asset joins the open session of its platform session;
        - an event that names no platform session (a lecture API's "ended") joins the
          actor's open session of this video."""
        if not event.asset_known and event.session_key:
            same = [s for s in self._of(actor) if s.key[2] == event.session_key]
        elif not event.session_key:
            same = [s for s in self._of(actor) if s.key[1] == event.video.id]
        else:
            return None
        return max(same, key=lambda s: (s.last_seen, s.session_id), default=None)

    def _new(
        self, key: _Key, actor: str, actor_home: str, event: VideoEvent, seen_at: datetime
    ) -> VideoSession:
        # The first event names the session, so a replay gets the same session id (the
        # platform's session key alone is not enough: a session can end and resume).
        first = f"{event.source_event_id}@{event.timestamp.isoformat()}"
        seed = f"{event.session_key or ''}|{first}"
        session_id = v4_shaped("session", MAPPING_VERSION, actor, event.video.id, seed)
        session = VideoSession(
            key, session_id, actor, actor_home or event.origin, event, event, seen_at
        )
        self._sessions[key] = session
        self._by_actor.setdefault(actor, {})[key] = None
        return session

    def _of(self, actor: str) -> list[VideoSession]:
        return [self._sessions[k] for k in self._by_actor.get(actor, ())]

    def _end_others(self, session: VideoSession, event: VideoEvent) -> list[VideoSession]:
        """Playing another video ends the actor's sessions of other videos in the same
        platform session (or where the platform names none), unless the event is older
        than what those sessions last saw (a late report)."""
        actor, video, platform_session = session.key
        others = [
            s.key
            for s in self._of(actor)
            if s.key[1] != video and s.key[2] == platform_session and event.timestamp >= s.last_time
        ]
        return [self._pop(k, ended_at=event.timestamp) for k in others]

    def _pop(self, key: _Key, ended_at: datetime | None = None) -> VideoSession:
        session = self._sessions.pop(key)
        keys = self._by_actor[key[0]]
        del keys[key]
        if not keys:
            del self._by_actor[key[0]]
        self._remember_end(key, ended_at or session.last_time)
        return session

    def _remember_end(self, key: _Key, at: datetime) -> None:
        self._ended[key] = at
        self._ended.move_to_end(key)
        while len(self._ended) > _MAX_ENDED:
            self._ended.popitem(last=False)

    def drop(self, session: VideoSession) -> None:
        """Forget a session that its platform ended: nothing may follow its terminated."""
        if self._sessions.get(session.key) is session:
            self._pop(session.key)

    def expire(self, now: datetime) -> list[VideoSession]:
        """End and return the sessions idle for longer than the timeout."""
        ended = []
        while self._sessions:
            key, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_seen <= self.idle_timeout:
                break
            ended.append(self._pop(key))
        return ended

    def close_all(self) -> list[VideoSession]:
        """End every session (the proxy stops)."""
        ended = list(self._sessions.values())
        self._sessions.clear()
        self._by_actor.clear()
        return ended
