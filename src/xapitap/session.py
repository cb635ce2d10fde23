"""Per-session video state: what the player has done so far in one viewing.

Platforms report single moments; the Video Profile wants facts about the whole session (its
id, the length, the stretches actually played). A session is one actor watching one video,
within the platform's own playback session when it names one, until it goes idle.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

from xapitap.events import VideoEvent
from xapitap.xapi.ids import MAPPING_VERSION
from xapitap.xapi.ids import v4_shaped

DEFAULT_IDLE_TIMEOUT = timedelta(minutes=30)
DEFAULT_MAX_SESSIONS = 10_000


@dataclass
class VideoSession:
    session_id: str
    last_seen: datetime  # on the proxy's clock
    length: float | None = None
    position: float | None = None
    playing_from: float | None = None  # where the current stretch of playback began
    segments: list[tuple[float, float]] = field(default_factory=list)
    completed: bool = False
    position_at: datetime | None = None  # when `position` was last reported
    last_seek_to: float | None = None  # where the last seeked statement landed

    def stop_playing(self, at: float | None) -> None:
        """Close the current stretch of playback at `at`, if one is open."""
        if self.playing_from is not None and at is not None and at > self.playing_from:
            self.segments.append((self.playing_from, at))
        self.playing_from = None

    def played_segments(self) -> str | None:
        if not self.segments:
            return None
        return "[,]".join(f"{a:.3f}[.]{b:.3f}" for a, b in self.segments)

    def progress(self) -> float | None:
        """Share of the video played at least once: union of the segments ÷ length.

        Unknown (None) without a length, or before any playback was seen: a proxy that saw
        nothing played cannot say that nothing was.
        """
        if not self.length or not self.segments:
            return None
        covered = 0.0
        reach = 0.0
        for a, b in sorted(self.segments):
            a = max(a, reach)
            if b > a:
                covered += b - a
                reach = b
        return round(min(covered / self.length, 1.0), 3)

    def time_played(self) -> float:
        return sum(b - a for a, b in self.segments)


class VideoSessions:
    """Sessions by (actor, video, platform session); bounded, oldest evicted first.

    Eviction only forgets state: every statement was already emitted when it happened.
    """

    def __init__(
        self,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
    ) -> None:
        self._idle_timeout = idle_timeout
        self._max = max_sessions
        self._sessions: OrderedDict[tuple[str, str, str], VideoSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def for_event(self, actor: str, event: VideoEvent, seen_at: datetime) -> VideoSession:
        """The event's session; `seen_at` is when the proxy saw it.

        Idleness is measured on the proxy's clock: events mix the platform's clock (times in
        bodies) with ours (bodies without times), and only ours is shared by all of them.
        """
        key = (actor, event.video.id, event.session_key or "")
        session = self._sessions.get(key)
        if session is None or seen_at - session.last_seen > self._idle_timeout:
            # The first event's id names the session, so a replay gets the same session id.
            seed = event.session_key or f"{event.source_event_id}@{event.timestamp.isoformat()}"
            session_id = v4_shaped("session", MAPPING_VERSION, actor, event.video.id, seed)
            session = VideoSession(session_id=session_id, last_seen=seen_at)
            self._sessions[key] = session
        self._sessions.move_to_end(key)
        session.last_seen = max(session.last_seen, seen_at)
        if event.length:
            session.length = event.length
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session
