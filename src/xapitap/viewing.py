"""What the stored Video Profile statements say about each viewing session: when it ran,
what it played, how far it got, whether it completed, how often it paused and seeked.

Read by the dashboard's video views and by `xapitap export --sessions`; it reads statements,
never the session model that made them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from xapitap.store.reads import VideoStatement

_VERBS = "https://w3id.org/xapi/video/verbs/"
_ADL = "http://adlnet.gov/expapi/verbs/"  # the profile's initialized, completed, terminated
# A bogus length cannot make a per-second series unbounded: past this many bins (4 hours of
# seconds), a bin stands for several seconds.
MAX_BINS = 4 * 3600
MAX_MARKS = 500  # marks kept per session for a timeline


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
    """The bins (of `width` seconds) that the segments cover at least half of: a segment
    ending at 3.01 s does not claim the fourth second."""
    covered: dict[int, float] = {}
    for start, end in union(segments):
        first, last = int(start // width), math.ceil(end / width)
        for b in range(first, min(last, first + MAX_BINS + 1)):
            overlap = min(end, (b + 1) * width) - max(start, b * width)
            if overlap > 0:
                covered[b] = covered.get(b, 0.0) + overlap
    return {b for b, seconds in covered.items() if seconds >= width / 2}


@dataclass
class Viewing:
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
    course: str | None = None
    pauses: int = 0
    seeks: int = 0
    statements: int = 0
    marks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, s: VideoStatement, marks: bool = False) -> None:
        """The session's next statement; `marks`: keep it for a timeline."""
        self.ended = s.timestamp
        self.course = self.course or s.course
        self.pauses += s.verb == _VERBS + "paused"
        self.seeks += s.verb == _VERBS + "seeked"
        self.statements += 1
        self.length = s.length if s.length is not None else self.length
        self.progress = s.progress if s.progress is not None else self.progress
        self.segments = s.played_segments if s.played_segments is not None else self.segments
        self.completed |= s.verb == _ADL + "completed"
        self.terminated |= s.verb == _ADL + "terminated"
        if marks and len(self.marks) < MAX_MARKS:
            mark: dict[str, Any] = {"verb": s.verb.rsplit("/", 1)[-1], "at": s.timestamp}
            for name in ("time", "time_from", "time_to"):
                if (value := getattr(s, name)) is not None:
                    mark[name] = value
            self.marks.append(mark)

    def played(self) -> list[tuple[float, float]]:
        return union(parse_segments(self.segments))

    def seconds_played(self) -> float:
        """Content seconds played, each counted once (the union of the segments)."""
        return sum(end - start for start, end in self.played())
