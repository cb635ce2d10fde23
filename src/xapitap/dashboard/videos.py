"""Per-video aggregates, from the Video Profile statements in the store: who watched, how far,
how many finished, and for each second of the video how many sessions played it.

Pure: it reads `VideoStatement`s and returns plain data for the API (the sessions themselves
are viewing.py's)."""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from xapitap.store.reads import VideoStatement
from xapitap.viewing import MAX_BINS
from xapitap.viewing import Viewing
from xapitap.viewing import played_bins

# Timelines are drawn for the newest sessions of a video.
MAX_TIMELINES = 50


def video_key(object_id: str) -> str:
    """A short, stable name for a video in URLs (object ids are IRIs)."""
    return hashlib.sha256(object_id.encode()).hexdigest()[:16]


@dataclass
class _Video:
    object_id: str
    platform: str
    name: str | None
    sessions: dict[str, Viewing] = field(default_factory=dict)

    def add(self, s: VideoStatement, marks: bool) -> None:
        self.name = s.name or self.name
        session = self.sessions.get(s.session_id)
        if session is None:
            session = self.sessions[s.session_id] = Viewing(
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
    index = VideoIndex()
    index.add(statements)
    return index.summaries()


class VideoIndex:
    """Per-video summaries, kept up to date from the statements stored since the last look,
    so that looking again costs what was added, not the whole store. It keeps one small
    record per video session (no timelines)."""

    def __init__(self) -> None:
        self.seq = 0  # the statements up to here are in
        self._videos: dict[str, _Video] = {}

    def add(self, statements: Iterable[VideoStatement]) -> None:
        for s in statements:
            video = self._videos.get(s.object_id)
            if video is None:
                video = self._videos[s.object_id] = _Video(s.object_id, s.platform, s.name)
            video.add(s, marks=False)

    def summaries(self) -> list[dict[str, Any]]:
        found = [v.summary() for v in self._videos.values()]
        return sorted(found, key=lambda v: v["last_activity"], reverse=True)


def detail(statements: Iterable[VideoStatement]) -> dict[str, Any] | None:
    """The detail of the one video the statements are about (None without any)."""
    videos = list(_videos(statements, marks=True).values())
    return videos[0].detail() if videos else None
