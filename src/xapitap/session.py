"""Per-session video state: what the player has done so far in one viewing.

Platforms report single moments; the Video Profile wants facts about the whole session (its
id, the length, the stretches actually played, how it ended). A session is one actor watching
one video, within the platform's own playback session when it names one. It ends when the
same actor starts another video, when it has been idle too long, or when the proxy stops.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from xapitap.events import VideoEvent
from xapitap.xapi.ids import MAPPING_VERSION
from xapitap.xapi.ids import v4_shaped

DEFAULT_IDLE_TIMEOUT = timedelta(minutes=30)
DEFAULT_MAX_SESSIONS = 10_000

_Key = tuple[str, str, str]  # actor, video, platform session


@dataclass
class VideoSession:
    session_id: str
    actor: str  # the account name (a pseudonym, by default)
    first_event: VideoEvent
    last_event: VideoEvent  # the template for statements the session itself makes
    last_seen: datetime  # on the proxy's clock
    length: float | None = None
    position: float | None = None
    position_at: datetime | None = None  # when `position` was last reported (event clock)
    position_seen_at: datetime | None = None  # ... and when the proxy saw that (its clock)
    playing_from: float | None = None  # where the current stretch of playback began
    segments: list[tuple[float, float]] = field(default_factory=list)
    initialized: bool = False
    completed: bool = False
    last_seek_to: float | None = None  # where the last seeked statement landed
    actor_home: str = ""  # the account's homePage
    player: dict[str, Any] = field(default_factory=dict)  # last known player settings

    @property
    def playing(self) -> bool:
        return self.playing_from is not None

    def stop_playing(self, at: float | None) -> None:
        """Close the current stretch of playback at `at`, if one is open."""
        start = self.playing_from
        # Compared as sent (3 decimals): a stretch too short to show is none.
        if start is not None and at is not None and round(at, 3) > round(start, 3):
            self.segments.append((start, at))
        self.playing_from = None

    def played_segments(self) -> str | None:
        if not self.segments:
            return None
        return "[,]".join(f"{a:.3f}[.]{b:.3f}" for a, b in self.segments)

    def progress(self, extra: list[tuple[float, float]] | None = None) -> float | None:
        """Share of the video played at least once: union of the segments ÷ length.

        Unknown (None) without a length, or before any playback was seen: a proxy that saw
        nothing played cannot say that nothing was.
        """
        segments = self.segments + (extra or [])
        if not self.length or not segments:
            return None
        covered = 0.0
        reach = 0.0
        for a, b in sorted(segments):
            a = max(a, reach)
            if b > a:
                covered += b - a
                reach = b
        return round(min(covered / self.length, 1.0), 3)

    def time_played(self) -> float:
        return sum(b - a for a, b in self.segments)


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
        self._by_actor: dict[str, set[_Key]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(
        self, actor: str, event: VideoEvent, seen_at: datetime, actor_home: str = ""
    ) -> tuple[VideoSession, list[VideoSession]]:
        """The event's session, and the sessions that have ended by now.

        Idleness is measured on the proxy's clock: events mix the platform's clock (times in
        bodies) with ours (bodies without times), and only ours is shared by all of them.
        """
        ended = self.expire(seen_at)
        key = (actor, event.video.id, event.session_key or "")
        # Starting another video ends the actor's other sessions.
        for other in [k for k in self._by_actor.get(actor, ()) if k[1] != event.video.id]:
            ended.append(self._pop(other))
        session = self._sessions.get(key)
        if session is None and not event.session_key:
            # An event that names no playback session (a lecture API's "ended", say) belongs
            # to the actor's open session of this video, whatever that session's key.
            same_video = [k for k in self._by_actor.get(actor, ()) if k[1] == event.video.id]
            if same_video:
                key = max(same_video, key=lambda k: self._sessions[k].last_seen)
                session = self._sessions[key]
        if session is None:
            # The first event names the session, so a replay gets the same session id (the
            # platform's session key alone is not enough: a session can end and resume).
            first = f"{event.source_event_id}@{event.timestamp.isoformat()}"
            seed = f"{event.session_key or ''}|{first}"
            session_id = v4_shaped("session", MAPPING_VERSION, actor, event.video.id, seed)
            session = VideoSession(session_id, actor, event, event, seen_at)
            session.actor_home = actor_home or event.origin
            self._sessions[key] = session
            self._by_actor.setdefault(actor, set()).add(key)
        self._sessions.move_to_end(key)
        session.last_seen = max(session.last_seen, seen_at)
        session.last_event = event
        if event.length:
            session.length = event.length
        while len(self._sessions) > self._max:
            ended.append(self._pop(next(iter(self._sessions))))
        return session, ended

    def _pop(self, key: _Key) -> VideoSession:
        keys = self._by_actor[key[0]]
        keys.discard(key)
        if not keys:
            del self._by_actor[key[0]]
        return self._sessions.pop(key)

    def drop(self, session: VideoSession) -> None:
        """Forget a session that its platform ended: nothing may follow its terminated."""
        e = session.last_event
        key = (session.actor, e.video.id, e.session_key or "")
        if self._sessions.get(key) is session:
            self._pop(key)

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
