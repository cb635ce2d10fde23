"""A simulated learner with a real timeline: the truth the session model is judged against.

The learner plays, pauses (for any length), seeks or drags anywhere, changes the speed
(0.5x..3x), sits through buffering stalls and finally leaves. The simulation keeps the wall-clock
timeline (seconds after the start, on a true clock) as spans of constant state, the discrete
things that happened (`Happening`), and from them the content seconds truly played.

Pure Python, no xapitap imports: this is the oracle, not a second copy of the model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

# Two things the player does are never at the same instant: a later one waits this long (the
# learner really waits; playback goes on meanwhile). Platforms date events to the millisecond.
MIN_GAP = 0.01
MIN_RATE, MAX_RATE = 0.5, 3.0

Mode = Literal["idle", "playing", "stalled", "paused", "ended"]
HappeningKind = Literal[
    "start", "resume", "pause", "seek", "speed", "stall", "unstall", "end", "leave"
]
Interval = tuple[float, float]


# The learner's actions. `Wait` lets wall time pass in whatever state the player is in.
@dataclass(frozen=True)
class Play:
    pass


@dataclass(frozen=True)
class Pause:
    pass


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Seek:
    to: float  # content seconds; a drag and a click on the bar alike


@dataclass(frozen=True)
class Speed:
    rate: float


@dataclass(frozen=True)
class Stall:
    seconds: float  # buffering while playing: wall time passes, the playhead does not move


Action = Play | Pause | Wait | Seek | Speed | Stall


@dataclass(frozen=True)
class Span:
    """Wall time [t0, t1] in one state; the playhead moves only while `playing`."""

    t0: float
    t1: float
    p0: float
    rate: float
    mode: Mode

    @property
    def p1(self) -> float:
        if self.mode == "playing":
            return self.p0 + self.rate * (self.t1 - self.t0)
        return self.p0


@dataclass(frozen=True)
class Happening:
    """Something the player did at wall time `t`, the playhead then at `position`.

    `seek`: `position` is where it left, `to` where it landed. `end`: playback reached the
    length. `leave`: the learner closes the page (always the last happening).
    """

    t: float
    kind: HappeningKind
    position: float
    to: float | None = None


def union(intervals: list[Interval] | tuple[Interval, ...]) -> list[Interval]:
    """Sorted, merged (overlapping or touching) intervals."""
    merged: list[Interval] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def covered(intervals: list[Interval] | tuple[Interval, ...]) -> float:
    return sum(b - a for a, b in union(intervals))


@dataclass(frozen=True)
class Timeline:
    length: float
    spans: tuple[Span, ...]
    happenings: tuple[Happening, ...]

    @property
    def end_time(self) -> float:
        return self.happenings[-1].t  # the leave

    @property
    def started(self) -> bool:
        return any(h.kind == "start" for h in self.happenings)

    def has(self, kind: HappeningKind) -> bool:
        return any(h.kind == kind for h in self.happenings)

    def played(self) -> list[Interval]:
        """The content stretches truly played, in the order they were played."""
        return [(s.p0, s.p1) for s in self.spans if s.mode == "playing" and s.p1 > s.p0]

    def played_union(self) -> list[Interval]:
        return union(self.played())

    def progress(self) -> float:
        """Share of the video played at least once (the Video Profile's progress)."""
        return min(covered(self.played()) / self.length, 1.0)

    def episodes(self) -> list[Interval]:
        """Wall-time stretches of playback: from a play (start/resume) to the next pause, end
        or leave. Seeks, speed changes and stalls happen inside an episode."""
        out: list[Interval] = []
        began: float | None = None
        for h in self.happenings:
            if h.kind in ("start", "resume"):
                began = h.t
            elif h.kind in ("pause", "end", "leave") and began is not None:
                out.append((began, h.t))
                began = None
        return out

    def position_at(self, t: float) -> float:
        """The playhead at wall time t (after whatever happened exactly at t)."""
        found = self.spans[0] if self.spans else None
        for s in self.spans:
            if s.t0 <= t:
                found = s
            else:
                break
        if found is None:
            return 0.0
        if found.mode == "playing":
            return min(found.p0 + found.rate * (min(t, found.t1) - found.t0), self.length)
        return found.p0

    def mode_at(self, t: float) -> Mode:
        """The player's state just after wall time t."""
        for s in self.spans:
            if s.t0 <= t < s.t1:
                return s.mode
        return self.spans[-1].mode if self.spans and t >= self.spans[-1].t1 else "idle"

    def ticks(self, every: float, avoid: float = 0.005) -> list[float]:
        """A periodic timer that runs while playing (stalls included) and restarts on every
        play: the wall times it fires. Ticks within `avoid` of a happening are skipped, so a
        heartbeat never shares its millisecond with a player event."""
        moments = [h.t for h in self.happenings]
        out: list[float] = []
        for began, ended in self.episodes():
            k = 1
            while (t := began + k * every) < ended:
                if all(abs(t - m) > avoid for m in moments):
                    out.append(t)
                k += 1
        return out


def simulate(
    length: float,
    actions: list[Action] | tuple[Action, ...],
    rate: float = 1.0,
    start: float = 0.0,
) -> Timeline:
    """Play `actions` on a video of `length` seconds, starting at speed `rate` (the page opens
    at wall time `start`); then leave."""
    spans: list[Span] = []
    happenings: list[Happening] = []
    t, pos, speed = start, 0.0, rate
    mode: Mode = "idle"

    def span(d: float, m: Mode) -> None:
        nonlocal t, pos
        s = Span(t, t + d, pos, speed, m)
        spans.append(s)
        t, pos = s.t1, min(s.p1, length)

    def happen(kind: HappeningKind, to: float | None = None) -> None:
        happenings.append(Happening(t, kind, pos, to))

    def wait(d: float) -> None:
        nonlocal mode, pos
        while d > 1e-9:
            if mode == "playing":
                left = (length - pos) / speed
                if left <= d:
                    span(left, "playing")
                    pos = length
                    happen("end")
                    mode = "ended"
                    d -= left
                    continue
            span(d, mode)
            d = 0

    def gap() -> None:
        if happenings and t - happenings[-1].t < MIN_GAP:
            wait(MIN_GAP - (t - happenings[-1].t))

    for action in actions:
        if isinstance(action, Wait):
            wait(action.seconds)
            continue
        gap()
        if isinstance(action, Play):
            if mode == "idle":
                mode = "playing"
                happen("start")
            elif mode == "paused":
                mode = "playing"
                happen("resume")
        elif isinstance(action, Pause):
            if mode == "playing":
                mode = "paused"
                happen("pause")
        elif isinstance(action, Seek):
            to = min(max(action.to, 0.0), length)
            if mode == "idle":
                pos = to  # before the first play: where playback will start, nothing to report
                continue
            happen("seek", to)
            pos = to
            if mode == "ended":
                mode = "paused"
            elif mode == "playing" and pos >= length:
                happen("end")
                mode = "ended"
        elif isinstance(action, Speed):
            new = min(max(action.rate, MIN_RATE), MAX_RATE)
            if new != speed and mode != "idle":
                happen("speed")
            speed = new
        elif isinstance(action, Stall):
            if mode == "playing":
                happen("stall")
                span(action.seconds, "stalled")
                happen("unstall")
            else:
                wait(action.seconds)
    gap()
    happen("leave")
    return Timeline(length, tuple(spans), tuple(happenings))


def random_actions(rng: random.Random, length: float, count: int) -> list[Action]:
    """A plain-`random` learner (the determinism test's fixed sessions): mostly playing."""
    actions: list[Action] = [Play()]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35:
            actions.append(Wait(round(rng.uniform(0.5, 40), 2)))
        elif roll < 0.5:
            actions.append(Pause())
        elif roll < 0.65:
            actions.append(Play())
        elif roll < 0.8:
            actions.append(Seek(round(rng.uniform(0, length), 2)))
        elif roll < 0.9:
            actions.append(Speed(rng.choice([0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0])))
        else:
            actions.append(Stall(round(rng.uniform(0.5, 8), 2)))
    return actions
