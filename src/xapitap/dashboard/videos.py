"""Per-video aggregates, from the Video Profile statements in the store: who watched, how far,
how many finished, and for each second of the video how many sessions played it.

Pure: it reads `VideoStatement`s and returns plain data for the API. A second counts as played
by a session when the session's played segments cover at least half of it, so a segment
ending at 3.01 s does not claim the fourth second."""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from xapitap.store.reads import VideoStatement

_VERBS = "https://w3id.org/xapi/video/verbs/"
_COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
# Beyond this many seconds (4 hours) a bar stands for several seconds, so that a bogus length
# cannot make the chart's data unbounded.
MAX_BINS = 4 * 3600
# Timelines are drawn for the newest sessions of a video, and up to this many marks each.
MAX_TIMELINES = 50
MAX_MARKS = 500


def video_key(object_id: str) -> str:
    """A short, stable name for a video in URLs (object ids are IRIs)."""
    return hashlib.sha256(object_id.encode()).hexdigest()[:16]


def parse_segments(text: str | None) -> list[tuple[float, float]]:
    """`played-segments` ("0.000[.]30.000[,]45.000[.]60.000") as (start, end) pairs; parts
    that are not two numbers in order are left out."""
    pairs = []
    for part in (text or "").split("[,]"):
        start, sep, end = part.partition("[.]")
        try:
            a, b = float(start), float(end)
        except ValueError:
            continue
        if sep and math.isfinite(a) and math.isfinite(b) and 0 <= a <= b:
            pairs.append((a, b))
    return pairs


def union(segments: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching segments merged, in order."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def played_bins(segments: Iterable[tuple[float, float]], width: int = 1) -> set[int]:
    """The bins (of `width` seconds) that the segments cover at least half of."""
    covered: dict[int, float] = {}
    for start, end in union(segments):
        first, last = int(start // width), math.ceil(end / width)
        for b in range(first, min(last, first + MAX_BINS + 1)):
            overlap = min(end, (b + 1) * width) - max(start, b * width)
            if overlap > 0:
                covered[b] = covered.get(b, 0.0) + overlap
    return {b for b, seconds in covered.items() if seconds >= width / 2}


@dataclass
class _Session:
    session_id: str
    actor: str
    platform: str
    started: str
    ended: str = ""
    length: float | None = None
    progress: float | None = None
    segments: str | None = None
    completed: bool = False
    terminated: bool = False
    marks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, s: VideoStatement, marks: bool) -> None:
        self.ended = s.timestamp
        self.length = s.length if s.length is not None else self.length
        self.progress = s.progress if s.progress is not None else self.progress
        self.segments = s.played_segments if s.played_segments is not None else self.segments
        self.completed |= s.verb == _COMPLETED
        self.terminated |= s.verb == _VERBS + "terminated"
        if marks and len(self.marks) < MAX_MARKS:
            mark: dict[str, Any] = {"verb": s.verb.rsplit("/", 1)[-1], "at": s.timestamp}
            for name in ("time", "time_from", "time_to"):
                if (value := getattr(s, name)) is not None:
                    mark[name] = value
            self.marks.append(mark)

    def played(self) -> list[tuple[float, float]]:
        return union(parse_segments(self.segments))


@dataclass
class _Video:
    object_id: str
    platform: str
    name: str | None
    sessions: dict[str, _Session] = field(default_factory=dict)

    def add(self, s: VideoStatement, marks: bool) -> None:
        self.name = s.name or self.name
        session = self.sessions.get(s.session_id)
        if session is None:
            session = self.sessions[s.session_id] = _Session(
                s.session_id, s.actor, s.platform, s.timestamp
            )
        session.add(s, marks)

    def summary(self) -> dict[str, Any]:
        progress = [s.progress for s in self.sessions.values() if s.progress is not None]
        lengths = [s.length for s in self.sessions.values() if s.length]
        completed = sum(s.completed for s in self.sessions.values())
        return {
            "key": video_key(self.object_id),
            "id": self.object_id,
            "name": self.name,
            "platform": self.platform,
            "length": max(lengths) if lengths else None,
            "learners": len({s.actor for s in self.sessions.values()}),
            "sessions": len(self.sessions),
            "median_progress": statistics.median(progress) if progress else None,
            "completed_sessions": completed,
            "completion_rate": completed / len(self.sessions),
            "last_activity": max(s.ended for s in self.sessions.values()),
        }

    def detail(self) -> dict[str, Any]:
        """The summary, the views across the video, and the newest sessions' timelines."""
        sessions = list(self.sessions.values())
        summary = self.summary()
        ends = [end for s in sessions for _, end in s.played()]
        extent = summary["length"] or (max(ends) if ends else 0.0)
        width = max(1, math.ceil(extent / MAX_BINS))
        count = math.ceil(extent / width)
        views, reached = [0] * count, [0] * count
        for session in sessions:
            bins = {b for b in played_bins(session.played(), width) if b < count}
            for b in bins:
                views[b] += 1
            for b in range(max(bins) + 1 if bins else 0):
                reached[b] += 1  # how far the session got: its furthest played bin
        timelines = sorted(sessions, key=lambda s: s.ended, reverse=True)[:MAX_TIMELINES]
        return summary | {
            "bin_seconds": width,
            "views": views,
            "reached": reached,
            "timelines": [
                {
                    "session_id": s.session_id,
                    "actor": s.actor,
                    "started": s.started,
                    "ended": s.ended,
                    "length": s.length,
                    "progress": s.progress,
                    "completed": s.completed,
                    "terminated": s.terminated,
                    "played": [[a, b] for a, b in s.played()],
                    "marks": s.marks,
                }
                for s in timelines
            ],
        }


def _videos(statements: Iterable[VideoStatement], marks: bool) -> dict[str, _Video]:
    videos: dict[str, _Video] = {}
    for s in statements:
        video = videos.get(s.object_id)
        if video is None:
            video = videos[s.object_id] = _Video(s.object_id, s.platform, s.name)
        video.add(s, marks)
    return videos


def summaries(statements: Iterable[VideoStatement]) -> list[dict[str, Any]]:
    """One summary per video, the most recently watched first."""
    found = [v.summary() for v in _videos(statements, marks=False).values()]
    return sorted(found, key=lambda v: v["last_activity"], reverse=True)


def detail(statements: Iterable[VideoStatement]) -> dict[str, Any] | None:
    """The detail of the one video the statements are about (None without any)."""
    videos = list(_videos(statements, marks=True).values())
    return videos[0].detail() if videos else None
