"""What the player did, decided from one session's events.

This is the only place that says when playback ran, stopped, jumped or completed; the xAPI
renderer writes down its decisions. Platforms report moments (a play, a heartbeat, a progress
log); the Video Profile wants facts about the viewing: the stretches played, progress,
completion. The rule throughout: **never claim more than was played**. A stretch enters
played-segments only when consecutive reports show that playback carried the playhead from
one position to the next; where the traffic cannot tell, less is claimed, never more.

Two consecutive position reports (p0 at t0, p at t) of a playing session are continuous when:
- the gap is no longer than the platform's report cadence allows (Udemy logs every 15 s while
  playing: a longer gap proves that playback stopped in between);
- the playhead moved forward no further than playback could carry it: at the rate measured on
  earlier intervals (or reported), else at most 3x where the platform can report seeks, 1x
  where it cannot (a silent drag would look the same).

Stretches a platform reports exactly (WATCHED: Udacity's after each pause, YouTube's played
intervals at each flush) are taken as reported; a jump between two of them is a seek.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from enum import Enum
from typing import Any

from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import VideoEvent

SLACK = 0.5  # seconds of playhead either way: report timing and rounding
RATE_TOLERANCE = 0.10  # a measured rate may drift this much (timers, stalls)
MAX_RATE = 3.0  # the fastest playback believed where no rate was measured
GAP_SLACK = 1.0  # how late a fixed-cadence report may be
MEASURE_SECONDS = 0.8  # shorter intervals are too short to measure a rate on
SLOWEST_RATE = 0.45  # a slower advance is a stall (buffering), not a playback rate
# Stretches a session lists at most: past this, played-segments becomes their union
# (sorted, merged), which says no more than was played and stops a page from growing it.
MAX_SEGMENTS = 100
# Events this much older than the session's last report are stale (a queue flushed late);
# closer ones are requests racing each other, or one clock against another, and are taken
# as simultaneous.
STALE_SECONDS = 1.0
# Settings reported as state whose change is the learner's doing (an adaptive player
# changes its quality by itself, so a quality change is no interaction).
_LEARNER_SETTINGS = ("volume", "full_screen", "cc_enabled", "cc_language", "speed")


@dataclass(frozen=True)
class Summary:
    """What paused, completed and terminated say about the whole session so far."""

    progress: float | None
    segments: str | None


@dataclass(frozen=True)
class Decision:
    """One thing the player did (or that we deduce it did), ready to be written down."""

    verb: str
    at: datetime
    length: float | None
    inferred: bool = False
    time: float | None = None
    time_from: float | None = None
    time_to: float | None = None
    summary: Summary | None = None
    interaction: Interaction | None = None  # the change (interacted), or the start settings
    played_seconds: float | None = None  # completed: content seconds played
    estimated: tuple[str, ...] = ()  # values worked out rather than reported
    platform_completed: bool = False  # the platform has marked the video complete


@dataclass
class PlayerState:
    length: float | None = None
    playback_length: float | None = None  # Segment's playback-level total_length
    position: float | None = None  # the last reported playhead
    at: datetime | None = None  # ... and its event time
    timed: bool = True  # whether `at` is the event's own time
    playing_from: float | None = None  # where the open stretch began
    resume_after_seek: bool = False  # a seek interrupted playback; it goes on at the target
    segments: list[tuple[float, float]] = field(default_factory=list)
    rate: float | None = None  # the highest rate measured on continuous intervals
    last_rate: float | None = None  # the most recent measurement
    candidate_rate: float | None = None  # a faster rate seen once, believed when seen again
    reported_rate: float | None = None
    initialized: bool = False
    completed: bool = False
    platform_completed: bool = False
    pending_seek_from: float | None = None
    last_seek_to: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    last_at: datetime | None = None  # the latest statement time: statements never go back

    @property
    def playing(self) -> bool:
        return self.playing_from is not None

    def copy(self) -> PlayerState:
        return replace(self, segments=list(self.segments), settings=dict(self.settings))

    def close(self, at: float | None) -> None:
        """End the open stretch at `at` (nothing is recorded without a known end)."""
        start = self.playing_from
        # Compared as sent (3 decimals): a stretch too short to show is none.
        if start is not None and at is not None and round(at, 3) > round(start, 3):
            self.segments.append((start, at))
            if len(self.segments) > MAX_SEGMENTS:
                self.segments = _union(self.segments)
        self.playing_from = None

    def progress(self, extra: list[tuple[float, float]] | None = None) -> float | None:
        """Share of the video played at least once: union of the segments ÷ length.

        Unknown (None) without a length, or before any playback was seen: a proxy that saw
        nothing played cannot say that nothing was.
        """
        segments = self.segments + (extra or [])
        if not self.length or not segments:
            return None
        covered = reach = 0.0
        for a, b in sorted(segments):
            a = max(a, reach)
            if b > a:
                covered += b - a
                reach = b
        return round(min(covered / self.length, 1.0), 3)

    def summary(self) -> Summary:
        text = "[,]".join(f"{a:.3f}[.]{b:.3f}" for a, b in self.segments) or None
        return Summary(self.progress(), text)


class _Verdict(Enum):
    CONTINUOUS = "continuous"  # playback carried the playhead from p0 to p
    # Playback at the known rate could not: a seek (or a faster rate, which the next
    # report shows: a rate seen twice in a row is believed).
    JUMP = "jump"
    GAP = "gap"  # too long between reports: playback stopped in between
    UNKNOWN = "unknown"  # the reports carry no times of their own


def decide(state: PlayerState, event: VideoEvent, threshold: float) -> tuple[list[Decision], str]:
    """What `event` means for the session whose state this is, updating the state.

    Returns the decisions and, when there are none, why the event changed nothing.
    """
    return _Decider(state, event, threshold).run()


def end(state: PlayerState) -> list[Decision]:
    """The end of a session nobody reported: a pause if it was playing, then terminated, at
    the last moment the learner was known to be there. The open stretch ends at the last
    reported position: whatever played after it was not seen."""
    known = [t for t in (state.last_at, state.at) if t is not None]
    assert known, "a session has seen an event before it ends"
    when = max(known)
    out = []
    if state.playing:
        state.close(state.position)
        out.append(_closing(state, "paused", when, state.position, inferred=True))
    out.append(_closing(state, "terminated", when, state.position, inferred=True))
    return out


def _closing(
    s: PlayerState, verb: str, at: datetime, position: float | None, *, inferred: bool
) -> Decision:
    return Decision(
        verb,
        at,
        s.length,
        inferred=inferred,
        time=position,
        summary=s.summary(),
        platform_completed=s.platform_completed,
    )


class _Decider:
    def __init__(self, state: PlayerState, event: VideoEvent, threshold: float) -> None:
        self.s = state
        self.e = event
        self.threshold = threshold
        self.out: list[Decision] = []
        self.t = event.timestamp

    def run(self) -> tuple[list[Decision], str]:
        s, e = self.s, self.e
        if s.at is not None and e.timed and s.timed and self.t < s.at:
            if (s.at - self.t).total_seconds() > STALE_SECONDS:
                return [], "older than the session's last report"
            self.t = s.at
        pos = self._position()
        if e.platform_completed or e.kind is Kind.COMPLETED:
            s.platform_completed = True
        if not s.initialized:
            self._initialized()
            if e.kind is Kind.INITIALIZED:
                return self.out, ""
        reported = e.kind is Kind.WATCHED and e.reported_state is not None
        if not reported:  # a reported stretch says when its settings held (see _reported)
            self._settings_changes(pos)
        match e.kind:
            case Kind.INITIALIZED:
                self._seen_at(pos)  # a second initialized says nothing new but where it is
            case Kind.PLAYED:
                self._played(pos)
            case Kind.PROGRESS:
                self._progress(pos)
            case Kind.PAUSED:
                self._stop(pos)
                self._add_closing("paused", pos)
            case Kind.SEEKED:
                pos = self._seeked()
            case Kind.WATCHED:
                pos = self._watched()
            case Kind.INTERACTED:
                self._interacted(pos)
            case Kind.COMPLETED:
                self._platform_completion(pos)
            case Kind.TERMINATED:
                if s.playing:  # the profile wants a paused before terminated
                    self._stop(pos)
                    self._add_closing("paused", pos, inferred=True)
                self._moved_to(pos)
                self._reached_threshold()  # nothing may follow the terminated
                self._add_closing("terminated", pos)
        if e.kind is not Kind.SEEKED:
            s.last_seek_to = None
        if pos is not None and e.kind is not Kind.SEEKED:
            self._moved_to(pos)
        if e.kind is not Kind.TERMINATED:
            self._reached_threshold()
        if not self.out and e.kind is Kind.COMPLETED:
            if s.completed:
                return [], "platform completion of a session that has completed"
            return [], "platform completion below the threshold (kept as platformCompleted)"
        return self.out, ""

    # -- what each kind of event means

    def _position(self) -> float | None:
        """The event's playhead, on the session's scale, and the length it reports."""
        s, e = self.s, self.e
        pos = e.position
        if e.level == "playback" and e.length:
            s.playback_length = e.length
        other_scale = (
            e.level == "content"
            and s.playback_length is not None
            and e.length is not None
            and abs(e.length - s.playback_length) > 1.0
        )
        if other_scale:  # ads make content positions another scale: never mix the two
            return None
        if e.length and not (e.level == "content" and s.playback_length is not None):
            s.length = e.length
        return pos

    def _initialized(self) -> None:
        s, e = self.s, self.e
        s.initialized = True
        at = self.t
        if e.kind is Kind.WATCHED:
            at = self._stretch_began()
        start = e.player.model_dump(exclude_none=True) if e.player else {}
        s.settings.update(start)
        self._add(
            Decision(
                "initialized",
                at,
                s.length,
                inferred=e.kind is not Kind.INITIALIZED,
                interaction=e.player,
            )
        )

    def _settings_changes(self, pos: float | None, at: datetime | None = None) -> None:
        """Settings reported as state on every event: a change between two reports is an
        interaction nobody reported (at `pos`, dated `at`: the event's time by default)."""
        s, e = self.s, self.e
        if e.player is None:
            return
        reported = e.player.model_dump(exclude_none=True)
        changed = {
            k: x
            for k, x in reported.items()
            if k in _LEARNER_SETTINGS and k in s.settings and s.settings[k] != x
        }
        s.settings.update(reported)
        if changed:
            self._add(
                Decision(
                    "interacted",
                    at or self.t,
                    s.length,
                    inferred=True,
                    time=pos if pos is not None else s.position,
                    interaction=Interaction(**changed),
                )
            )

    def _played(self, pos: float | None) -> None:
        s = self.s
        pos = pos if pos is not None else s.position
        if s.playing:
            verdict = self._judge(pos)
            if verdict is _Verdict.CONTINUOUS:
                return  # still playing: nothing new happened
            s.close(s.position)
            if verdict is _Verdict.JUMP:
                self._seek(s.position, pos, inferred=True)
        elif _apart(s.position, pos):
            self._seek(s.position, pos, inferred=True)  # it starts elsewhere than it stopped
        self._add(Decision("played", self.t, s.length, time=pos))
        s.playing_from = pos

    def _progress(self, pos: float | None) -> None:
        """A heartbeat or progress log: evidence of the playhead while playing."""
        s = self.s
        if pos is None:
            return
        if not s.playing:
            # It resumed at a moment nobody reported: nothing before `pos` is claimed.
            if _apart(s.position, pos):
                self._seek(s.position, pos, inferred=True)
            self._add(Decision("played", self.t, s.length, inferred=True, time=pos))
            s.playing_from = pos
            return
        verdict = self._judge(pos)
        if verdict is _Verdict.CONTINUOUS:
            return
        s.close(s.position)
        if verdict is _Verdict.JUMP:
            self._seek(s.position, pos, inferred=True)
        elif verdict is _Verdict.GAP:  # it stopped in between, and plays again now
            stopped_at = s.at or self.t
            self._add(_closing(s, "paused", stopped_at, s.position, inferred=True))
            self._add(Decision("played", self.t, s.length, inferred=True, time=pos))
        s.playing_from = pos

    def _stop(self, pos: float | None) -> None:
        """Playback stops at `pos`: the stretch ends there if playback could carry it there,
        else at the last report (what came between was not seen played)."""
        s = self.s
        if not s.playing:
            return
        if pos is None:
            s.close(s.position)
            return
        verdict = self._judge(pos)
        if verdict is _Verdict.CONTINUOUS:
            s.close(pos)
            return
        s.close(s.position)
        if verdict is _Verdict.JUMP:
            self._seek(s.position, pos, inferred=True)

    def _seeked(self) -> float | None:
        s, e = self.s, self.e
        start, target = e.seek_from, e.seek_to
        if target is None:  # a seek began; where it lands comes with its end
            if start is not None:
                was_playing = s.playing
                self._stop(start)
                s.resume_after_seek = s.resume_after_seek or was_playing
                s.pending_seek_from = start
                self._moved_to(start)
            return start
        if start is None and _same(target, s.last_seek_to):
            return target  # the end of a seek already reported with its target
        estimated: tuple[str, ...] = ()
        if start is None and s.pending_seek_from is not None:
            start = s.pending_seek_from
        elif start is None:
            start, estimated = self._seek_origin()
        was_playing = s.playing or s.resume_after_seek
        # An estimated start is no evidence of playback (the player may have stalled):
        # the stretch ends at the last report.
        self._stop(s.position if estimated else start)
        self._seek(start, target, inferred=False, estimated=estimated)
        s.pending_seek_from = None
        s.resume_after_seek = False
        if was_playing:
            s.playing_from = target
        s.last_seek_to = target
        self._moved_to(target)
        return target

    def _seek_origin(self) -> tuple[float | None, tuple[str, ...]]:
        """Where a seek reported only with its target began: the last position, moved on
        by the time since at a known rate (a guess, named in `estimated`)."""
        s, e = self.s, self.e
        rate = s.reported_rate or s.last_rate
        if not (s.playing and rate and s.position is not None and s.at and e.timed and s.timed):
            return s.position, ()
        elapsed = (self.t - s.at).total_seconds()
        if e.cadence is not None and elapsed > e.cadence + GAP_SLACK:
            return s.position, ()
        return s.position + elapsed * rate, ("time-from",)

    def _watched(self) -> float | None:
        """A stretch the platform reports after the fact, exactly (Udacity)."""
        s, e = self.s, self.e
        start, end_ = e.segment_from, e.segment_to
        assert start is not None and end_ is not None, "adapters set both for WATCHED"
        if e.reported_state is not None:
            return self._reported(start, end_)
        began = self._stretch_began()
        if s.playing:
            s.close(s.position)
        if _apart(s.position, start):
            self._seek(s.position, start, inferred=True, at=began)
        self._add(Decision("played", began, s.length, inferred=True, time=start))
        s.playing_from = start
        s.close(end_)
        self._add_closing("paused", end_)
        return end_

    def _reported(self, start: float, end_: float) -> float:
        """A stretch from a report of the player's state at a flush (YouTube's pings): the
        playhead was at `start` (a jump from the last report's position is a seek), played on
        to `end_` (nothing, if they are equal), and the player is then `reported_state`.

        A stretch that starts where the open one reached extends it: a periodic report while
        playing claims no pause and no new played. "paused" pauses a playing session, and
        tells a paused one nothing new: reports while paused make no statements."""
        s, e = self.s, self.e
        began = self._stretch_began()
        played = round(end_, 3) > round(start, 3)
        if s.playing and not played and e.reported_state == "paused":
            # Nothing played since: it stopped where it was last seen playing. A playhead
            # elsewhere now moved without playing, before the pause or after it (a drag
            # while paused, a drag to the end): which, the report cannot tell.
            s.close(s.position)
            moved = _apart(s.position, start)
            paused = _closing(s, "paused", self.t, s.position, inferred=False)
            self._add(replace(paused, estimated=("time",)) if moved else paused)
            if moved:
                self._seek(s.position, start, inferred=True)
            self._settings_changes(start, at=began)
            return end_
        if s.playing and not _same_point(s.position, start):
            s.close(s.position)  # the playhead left the open stretch where it was last seen
            if _apart(s.position, start):
                self._seek(s.position, start, inferred=True, at=began)
            s.playing_from = start
        elif not s.playing:
            if _apart(s.position, start):
                self._seek(s.position, start, inferred=True, at=began)
            if played:  # a stretch with nothing played opens none
                self._add(Decision("played", began, s.length, inferred=True, time=start))
                s.playing_from = start
        self._settings_changes(start, at=began)  # the settings held through this stretch
        if e.reported_state == "paused" and s.playing:
            s.close(end_)
            self._add_closing("paused", end_)
        return end_

    def _stretch_began(self) -> datetime:
        """When a reported stretch began: its content seconds before the report (its true
        wall time is unknown at other rates), never before what came earlier."""
        e, s = self.e, self.s
        stretch = max((e.segment_to or 0.0) - (e.segment_from or 0.0), 0.0)
        try:
            began = self.t - timedelta(seconds=stretch)
        except OverflowError:
            began = self.t
        return max(began, s.last_at) if s.last_at else began

    def _seen_at(self, pos: float | None) -> None:
        """An event that is no report of playback (a settings change, a platform's completion)
        still says where the playhead is: while playing, it is judged as a heartbeat would
        be, so a playhead that jumped there is a seek, not a stretch played."""
        if self.s.playing:
            self._progress(pos)

    def _interacted(self, pos: float | None) -> None:
        s, e = self.s, self.e
        self._seen_at(pos)
        if e.interaction is not None and e.interaction.speed is not None:
            s.reported_rate = _rate(e.interaction.speed) or s.reported_rate
        at = pos if pos is not None else s.position
        self._add(Decision("interacted", self.t, s.length, time=at, interaction=e.interaction))

    def _platform_completion(self, pos: float | None) -> None:
        """The platform says complete. Kept as a fact of its record; a Video Profile
        completion needs the played segments to reach the threshold."""
        s, e = self.s, self.e
        if not (e.ends_playback and s.playing):
            self._seen_at(pos)
            return  # the video may play on (a lecture API marking the item)
        self._stop(pos)
        before = len(self.out)
        self._moved_to(pos if pos is not None else s.position)
        self._reached_threshold()
        if len(self.out) == before:  # the player stopped at the end: say what was played
            self._add_closing("paused", pos if pos is not None else s.position, inferred=True)

    # -- shared steps

    def _judge(self, pos: float | None) -> _Verdict:
        s, e = self.s, self.e
        if pos is None or s.position is None or s.at is None or not (e.timed and s.timed):
            return _Verdict.UNKNOWN
        elapsed = (self.t - s.at).total_seconds()
        advance = pos - s.position
        if advance < -SLACK or advance > MAX_RATE * elapsed + SLACK:
            return _Verdict.JUMP
        if e.cadence is not None and elapsed > e.cadence + GAP_SLACK:
            return _Verdict.GAP
        measured = advance / elapsed if elapsed >= MEASURE_SECONDS else None
        known = s.reported_rate or s.rate
        bound = known if known else (MAX_RATE if e.reports_seeks else 1.0)
        fits = _within(advance, elapsed, bound)
        candidate = s.candidate_rate
        if not fits and candidate and _within(advance, elapsed, candidate):
            # The same faster rate twice in a row: the learner sped up.
            fits = advance >= candidate * elapsed * (1 - RATE_TOLERANCE) - SLACK
            if fits and s.reported_rate is None:
                s.rate = candidate
        if not fits:
            s.candidate_rate = measured
            return _Verdict.JUMP
        if measured is not None and measured >= SLOWEST_RATE:
            s.last_rate = measured
            s.rate = max(s.rate or 0.0, measured) if s.reported_rate is None else s.rate
        return _Verdict.CONTINUOUS

    def _moved_to(self, pos: float | None) -> None:
        s = self.s
        if pos is None:
            return
        s.position = pos
        s.at = self.t
        s.timed = self.e.timed

    def _seek(
        self,
        start: float | None,
        target: float | None,
        *,
        inferred: bool,
        estimated: tuple[str, ...] = (),
        at: datetime | None = None,
    ) -> None:
        self._add(
            Decision(
                "seeked",
                at or self.t,
                self.s.length,
                inferred=inferred,
                time_from=start,
                time_to=target,
                estimated=estimated,
            )
        )

    def _add_closing(self, verb: str, pos: float | None, *, inferred: bool = False) -> None:
        s = self.s
        self._add(
            _closing(s, verb, self.t, pos if pos is not None else s.position, inferred=inferred)
        )

    def _reached_threshold(self) -> None:
        """Completed, once, when the share played reaches the completion threshold (counting
        the stretch playing now, which is then split at the last report so the statement
        says so)."""
        s = self.s
        if s.completed or s.position is None:
            return
        open_stretch = [(s.playing_from, s.position)] if s.playing_from is not None else []
        progress = s.progress(extra=open_stretch)
        if progress is None or progress < self.threshold:
            return
        if s.playing:
            s.close(s.position)
            s.playing_from = s.position
        s.completed = True
        self._add(
            Decision(
                "completed",
                self.t,
                s.length,
                inferred=not s.platform_completed,
                time=s.position,
                summary=s.summary(),
                played_seconds=sum(b - a for a, b in s.segments),
                platform_completed=s.platform_completed,
            )
        )

    def _add(self, decision: Decision) -> None:
        s = self.s
        if s.last_at is not None and decision.at < s.last_at:
            decision = replace(decision, at=s.last_at)  # a session's statements never go back
        if s.platform_completed and not decision.platform_completed:
            decision = replace(decision, platform_completed=True)
        s.last_at = decision.at
        self.out.append(decision)


def _union(segments: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(segments):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _within(advance: float, elapsed: float, rate: float) -> bool:
    return advance <= rate * elapsed * (1 + RATE_TOLERANCE) + SLACK


def _apart(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) > SLACK


def _same_point(a: float | None, b: float | None) -> bool:
    """The same position as sent (3 decimals): a stretch that goes on from there."""
    return a is not None and b is not None and round(a, 3) == round(b, 3)


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= SLACK


def _rate(speed: str) -> float | None:
    try:
        value = float(speed.rstrip("x"))
    except ValueError:
        return None
    return value if value > 0 else None
