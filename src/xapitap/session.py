"""Video sessions: which events belong together, and when a session ends.

A session is one actor watching one video, within the platform's own playback session when
it names one (the Segment Video Spec gives each player its own `session_id`, so two players
on one page are two sessions side by side). It ends when the platform says so, when the same
actor starts playing another video in the same platform session (or where the platform names
none), after 30 idle minutes, or when the proxy stops. What the player did within a session
is decided in player.py.

Everything here is ordered (dicts, never sets) and ties are broken by session id, so the same
events give the same sessions in every process.

The state can be kept in a store and carried over to another process (session_codec.py):
with `track_changes`, `take_changes` says what changed since it was last called, and
`VideoSessions.restore` rebuilds sessions that behave exactly as the ones that were stored,
orders included. The orders that decide what ends first (least recently routed to, each
actor's sessions by opening, the ended memory's oldest) are kept as places in one counter
rather than as times, so that they restore exactly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
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
DEFAULT_MAX_ENDED = 10_000  # ended sessions remembered, so that their late events open nothing

SessionKey = tuple[str, str, str]  # actor, video, platform session
# Events that say the learner is playing this video now.
_PLAY_KINDS = frozenset({Kind.PLAYED, Kind.PROGRESS, Kind.WATCHED})
# Events that end something: one for a session that has ended is a late report of it.
_CLOSING_KINDS = frozenset({Kind.PAUSED, Kind.COMPLETED, Kind.TERMINATED})


@dataclass
class VideoSession:
    key: SessionKey
    session_id: str
    actor: str  # the account name (a pseudonym, by default)
    actor_home: str  # the account's homePage
    template: VideoEvent  # its first event: the video and its context activities
    last_event: VideoEvent  # what statements the session itself makes are attributed to
    last_seen: datetime  # on the proxy's clock
    state: PlayerState = field(default_factory=PlayerState)
    # Places in VideoSessions' order counter: when the session opened (an actor's sessions
    # are ended in that order) and when it was last routed to (idle ones expire in that order).
    created: int = 0
    touched: int = 0

    @property
    def last_time(self) -> datetime:
        """The latest event time in the session."""
        return self.state.last_at or self.last_event.timestamp


@dataclass(frozen=True)
class EndedSession:
    """A recently ended session, remembered so that its late events open nothing."""

    key: SessionKey
    at: datetime  # when it ended (event time)
    order: int  # its place in the memory, which forgets the lowest first


@dataclass(frozen=True)
class SessionCounters:
    """The counters a restored VideoSessions goes on from."""

    next_order: int


@dataclass(frozen=True)
class SessionChanges:
    """What changed since the last `take_changes`: rows to upsert and keys to delete.

    `open` holds the live sessions (encode them before routing the next event).
    """

    open: list[VideoSession]
    closed: list[SessionKey]
    ended: list[EndedSession]
    forgotten: list[SessionKey]
    counters: SessionCounters

    def __bool__(self) -> bool:
        return bool(self.open or self.closed or self.ended or self.forgotten)


@dataclass
class _ChangeLog:
    """Keys whose rows may differ from the store's; what they became is read at take time
    (the pipeline changes a session's state after routing to it)."""

    sessions: dict[SessionKey, None] = field(default_factory=dict)
    ended: dict[SessionKey, None] = field(default_factory=dict)


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
        *,
        max_ended: int = DEFAULT_MAX_ENDED,
        track_changes: bool = False,
    ) -> None:
        self.idle_timeout = idle_timeout
        self._max = max_sessions
        self._max_ended = max_ended
        # Least recently seen first, so that idle sessions are found at the front.
        self._sessions: OrderedDict[SessionKey, VideoSession] = OrderedDict()
        # Each actor's open sessions (ordered, so every process ends them in one order): an
        # event looks at its actor's sessions only, never at all of them.
        self._by_actor: dict[str, dict[SessionKey, None]] = {}
        # When each recently ended session ended (event time): late events for it are stale.
        self._ended: OrderedDict[SessionKey, EndedSession] = OrderedDict()
        self._next_order = 0
        # Off by default: nothing accumulates for callers that never take changes.
        self._changes = _ChangeLog() if track_changes else None

    @classmethod
    def restore(
        cls,
        sessions: Iterable[VideoSession],
        ended: Iterable[EndedSession],
        counters: SessionCounters,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        *,
        max_ended: int = DEFAULT_MAX_ENDED,
        track_changes: bool = False,
    ) -> VideoSessions:
        """Sessions that behave exactly as those whose state this is (rows in any order),
        given the same limits."""
        restored = cls(idle_timeout, max_sessions, max_ended=max_ended, track_changes=track_changes)
        opened = sorted(sessions, key=lambda s: s.touched)
        remembered = sorted(ended, key=lambda e: e.order)
        restored._sessions.update((s.key, s) for s in opened)
        restored._ended.update((e.key, e) for e in remembered)
        if len(restored._sessions) < len(opened) or len(restored._ended) < len(remembered):
            raise ValueError("session state holds a key twice")
        for s in sorted(opened, key=lambda s: s.created):
            restored._by_actor.setdefault(s.key[0], {})[s.key] = None
        # Never behind a stored order, even if the counters were not stored with them.
        orders = [o for s in opened for o in (s.created, s.touched)] + [e.order for e in remembered]
        restored._next_order = max([counters.next_order, *(o + 1 for o in orders)])
        return restored

    def take_changes(self) -> SessionChanges:
        """What changed since the last call (or the start): the store's next upserts and
        deletes. Needs `track_changes`."""
        log = self._changes
        if log is None:
            raise RuntimeError("take_changes needs VideoSessions(track_changes=True)")
        self._changes = _ChangeLog()
        sessions, ended = self._sessions, self._ended
        return SessionChanges(
            open=[sessions[k] for k in log.sessions if k in sessions],
            closed=[k for k in log.sessions if k not in sessions],
            ended=[ended[k] for k in log.ended if k in ended],
            forgotten=[k for k in log.ended if k not in ended],
            counters=SessionCounters(self._next_order),
        )

    def snapshot(self) -> SessionChanges:
        """All of the state as changes (a store written from nothing); resets nothing."""
        return SessionChanges(
            open=list(self._sessions.values()),
            closed=[],
            ended=list(self._ended.values()),
            forgotten=[],
            counters=SessionCounters(self._next_order),
        )

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
            gone = self._ended.get(key)
            if gone is not None and (event.timestamp <= gone.at or event.kind in _CLOSING_KINDS):
                return Routed(None, ended, "event for a session that has ended")
            if not event.opens_session:
                # E.g. a lecture ticked complete in a course menu while no player of it is
                # seen: it shows neither that the video was opened nor that it played.
                return Routed(None, ended, "joins an open session only, and none is open")
            session = self._new(key, actor, actor_home, event, seen_at)
        if event.kind in _PLAY_KINDS:
            ended += self._end_others(session, event)
        self._sessions.move_to_end(session.key)
        session.touched = self._order()
        self._session_changed(session.key)
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

    def open_session(
        self, actor: str, video: str, platform_session: str | None
    ) -> VideoSession | None:
        """The actor's open session of `video` (in that platform session, where one is
        named), the most recently seen if there are several; it is not touched."""
        same = [
            s
            for s in self._of(actor)
            if s.key[1] == video and (not platform_session or s.key[2] == platform_session)
        ]
        return max(same, key=lambda s: (s.last_seen, s.session_id), default=None)

    def _new(
        self, key: SessionKey, actor: str, actor_home: str, event: VideoEvent, seen_at: datetime
    ) -> VideoSession:
        # The first event names the session, so a replay gets the same session id (the
        # platform's session key alone is not enough: a session can end and resume).
        first = f"{event.source_event_id}@{event.timestamp.isoformat()}"
        seed = f"{event.session_key or ''}|{first}"
        session_id = v4_shaped("session", MAPPING_VERSION, actor, event.video.id, seed)
        session = VideoSession(
            key, session_id, actor, actor_home or event.origin, event, event, seen_at
        )
        session.created = self._order()
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

    def _pop(self, key: SessionKey, ended_at: datetime | None = None) -> VideoSession:
        session = self._sessions.pop(key)
        keys = self._by_actor[key[0]]
        del keys[key]
        if not keys:
            del self._by_actor[key[0]]
        self._session_changed(key)
        self._remember_end(key, ended_at or session.last_time)
        return session

    def _remember_end(self, key: SessionKey, at: datetime) -> None:
        self._ended[key] = EndedSession(key, at, self._order())
        self._ended.move_to_end(key)
        self._ended_changed(key)
        while len(self._ended) > self._max_ended:
            forgotten, _ = self._ended.popitem(last=False)
            self._ended_changed(forgotten)

    def _order(self) -> int:
        order = self._next_order
        self._next_order += 1
        return order

    def _session_changed(self, key: SessionKey) -> None:
        if self._changes is not None:
            self._changes.sessions[key] = None

    def _ended_changed(self, key: SessionKey) -> None:
        if self._changes is not None:
            self._changes.ended[key] = None

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
        for key in self._sessions:
            self._session_changed(key)
        self._sessions.clear()
        self._by_actor.clear()
        return ended
