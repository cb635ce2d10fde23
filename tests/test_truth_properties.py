"""The session model against the truth: random viewings, each platform's traffic, and what
was really played (tests/truth/).

Every generated viewing goes through a fresh Pipeline as tests/golden.py's `run` does; its
statements, grouped by session-id, must satisfy (TOL = 0.5 s, PROGRESS_TOL = 0.01):

P0  the traffic is read: every request matches a rule, no error, nothing quarantined.
P1  a session starts with `initialized`, has exactly one `terminated`, and it is the last.
P2  every played-segments interval of every statement lies within what was truly played,
    within TOL at each boundary (the truth as a union of intervals). "Truly played" also
    counts, on sites that drag silently (Segment without seek reports, Udemy), the range of a
    drag no observer of the traffic could tell from playback (`Traffic.indistinguishable`).
P3  progress never exceeds the true progress by more than PROGRESS_TOL.
P3x where the traffic tells enough (`Traffic.exact`: Segment reporting seeks at one constant
    speed without stalls, and Udacity, whose stretches are exact), the viewing is one
    session whose final progress is within PROGRESS_TOL of the true progress.
P4  no `completed` unless the true progress reached the threshold (0.95, less 0.005 for the
    3-decimal rounding of positions and progress), whatever the platform says.
P5  a session's statement timestamps never go backwards, and none precedes its initialized.
P6  each statement id is made once: a resent event (retried within a second, or minutes
    later) adds nothing (an LRS would refuse the same id with other content).
Where the traffic reports every played interval (YouTube's st/et), also:
P7  every paused is at a position where the player truly stopped (a pause, the end, the
    leave), within TOL, unless its time is marked estimated: a report made while playing
    is no pause.
P8  every seek made while playing that moved the playhead more than 1 s, and after which it
    played on, is a seeked with its true time-from and time-to, within TOL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st

from truth.player import Action
from truth.player import Interval
from truth.player import Pause
from truth.player import Play
from truth.player import Seek
from truth.player import Speed
from truth.player import Stall
from truth.player import Timeline
from truth.player import Wait
from truth.player import covered
from truth.player import simulate
from truth.player import union
from truth.reporters import CourseraSite
from truth.reporters import Delivery
from truth.reporters import OpenEdxSite
from truth.reporters import Platform
from truth.reporters import Resend
from truth.reporters import Scenario
from truth.reporters import SegmentSite
from truth.reporters import Site
from truth.reporters import YouTubeSite
from truth.reporters import replay
from truth.reporters import segment
from truth.reporters import udemy

TOL = 0.5
PROGRESS_TOL = 0.01
THRESHOLD = 0.95
ROUNDING = 0.005
EXAMPLES = 300
PROPERTIES = ("P0", "P1", "P2", "P3", "P3x", "P4", "P5", "P6", "P7", "P8")

_V = "https://w3id.org/xapi/video/extensions/"
SESSION_ID = _V + "session-id"
PLAYED_SEGMENTS = _V + "played-segments"
PROGRESS = _V + "progress"
TIME = _V + "time"
TIME_FROM = _V + "time-from"
TIME_TO = _V + "time-to"
SOURCE = "https://xapitap.github.io/xapi/extensions/source"

# --- Strategies -------------------------------------------------------------------------------


def _hundredths(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(round(lo * 100), round(hi * 100)).map(lambda c: c / 100)


def action_lists(length: float) -> st.SearchStrategy[tuple[Action, ...]]:
    """A first play and some watching, then learner moves: mostly watching, pausing (seconds
    to minutes) and resuming, dragging (while playing or paused), changing speed, stalling;
    and bare play/pause clicks in any state."""
    seconds = _hundredths(0.01, 40)
    pause = seconds | _hundredths(60, 600)
    position = _hundredths(0, length)
    move: st.SearchStrategy[tuple[Action, ...]] = st.one_of(
        seconds.map(lambda s: (Wait(s),)),
        _hundredths(5, 40).map(lambda s: (Wait(s),)),
        _hundredths(15, 120).map(lambda s: (Wait(s),)),
        pause.map(lambda s: (Pause(), Wait(s), Play())),
        position.map(lambda x: (Seek(x),)),
        st.tuples(pause, position).map(lambda p: (Pause(), Wait(p[0]), Seek(p[1]), Play())),
        _hundredths(0.5, 3).map(lambda r: (Speed(r),)),
        _hundredths(0.5, 20).map(lambda s: (Stall(s),)),
        st.sampled_from([(Play(),), (Pause(),)]),
        _hundredths(60, 600).map(lambda s: (Wait(s),)),  # minutes (of playing, or paused)
    )
    first = _hundredths(16, 90).map(lambda s: (Play(), Wait(s)))
    return st.tuples(first, st.lists(move, min_size=3, max_size=12)).map(
        lambda fm: (*fm[0], *(a for m in fm[1] for a in m))
    )


@st.composite
def deliveries(draw: st.DrawFn, can_batch: bool) -> Delivery:
    batch_every = draw(st.none() | st.sampled_from([1.0, 2.0, 5.0])) if can_batch else None
    return Delivery(
        skew=draw(st.just(0.0) | _hundredths(-7200, 7200)),
        delay=draw(_hundredths(0.05, 1.5)),
        jitter=0.05,
        batch_every=batch_every,
        shuffle=batch_every is not None and draw(st.booleans()),
        resends=tuple(
            draw(
                st.lists(
                    st.builds(
                        Resend, st.integers(0, 500), _hundredths(0.05, 1) | _hundredths(1, 300)
                    ),
                    max_size=3,
                )
            )
        ),
        seed=draw(st.integers(0, 2**16)),
    )


@st.composite
def scenarios(draw: st.DrawFn, platform: Platform) -> Scenario:
    length = draw(st.sampled_from([300.0, 120.0, 600.0, 60.0, 30.0]))
    rate = draw(st.sampled_from([1.0, 1.5, 2.0, 0.75, 3.0]))
    actions = draw(action_lists(length))
    site: Site = None
    if platform == "segment":
        site = SegmentSite(float(draw(st.integers(1, 10))), draw(st.booleans()))
    elif platform == "coursera":
        site = CourseraSite(float(draw(st.integers(1, 10))))
    elif platform == "youtube":
        method = draw(st.sampled_from(["GET", "POST"]))
        site = YouTubeSite(draw(st.booleans()), method, draw(st.booleans()))
    elif platform == "openedx":
        site = OpenEdxSite(draw(st.booleans()), draw(st.booleans()))
    delivery = draw(deliveries(platform not in ("udemy", "youtube", "openedx")))
    return Scenario(platform, length, actions, rate, site, delivery)


# --- Reading statements -----------------------------------------------------------------------


def verb(s: dict[str, Any]) -> str:
    return str(s["verb"]["display"]["en-US"])


def result_ext(s: dict[str, Any], key: str) -> Any:
    return s.get("result", {}).get("extensions", {}).get(key)


def when(s: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(s["timestamp"].replace("Z", "+00:00"))


def segments(s: dict[str, Any]) -> list[Interval]:
    text = result_ext(s, PLAYED_SEGMENTS)
    if not text:
        return []
    pairs = (part.split("[.]") for part in text.split("[,]"))
    return [(float(a), float(b)) for a, b in pairs]


def by_session(statements: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = {}
    for s in statements:
        sessions.setdefault(s["context"]["extensions"][SESSION_ID], []).append(s)
    return sessions


def within(interval: Interval, allowed: list[Interval]) -> bool:
    a, b = interval
    return any(lo <= a and b <= hi for lo, hi in allowed)


def describe(statements: list[dict[str, Any]]) -> str:
    """One line per statement, for the falsifying example's notes."""
    rows = []
    for s in statements:
        extensions = s.get("result", {}).get("extensions", {})
        ext = {k.rsplit("/", 1)[-1]: v for k, v in extensions.items()}
        source = s["context"]["extensions"].get(SOURCE)
        inferred = " INF" if source and source.get("inferred") else ""
        sid = s["context"]["extensions"][SESSION_ID][:4]
        rows.append(f"  {s['timestamp'][11:23]} {sid} {verb(s):<11} {ext}{inferred}")
    return "\n".join(rows)


# --- The properties ---------------------------------------------------------------------------


def violations(scenario: Scenario) -> list[tuple[str, str]]:
    """Every property the pipeline's statements break for this viewing, with why."""
    timeline = scenario.timeline()
    traffic = scenario.traffic()
    out = replay(traffic.requests)
    truth = timeline.played_union()
    admissible = union(truth + traffic.indistinguishable)
    allowed = union([(a - TOL, b + TOL) for a, b in admissible])
    true_progress = timeline.progress()
    admissible_progress = min(covered(admissible) / timeline.length, 1.0)
    note(f"truly played {truth}, progress {true_progress:.3f}")
    if traffic.indistinguishable:
        note(f"indistinguishable drags {traffic.indistinguishable}")
    note(f"{len(traffic.requests)} requests; statements:\n{describe(out.statements)}")

    found: list[tuple[str, str]] = []
    if out.unmatched or out.errors or out.quarantined:
        found.append(("P0", f"{out.unmatched} {out.errors} {out.quarantined}"))
    sessions = by_session(out.statements)
    for statements in sessions.values():
        verbs = [verb(s) for s in statements]
        if verbs[0] != "initialized":
            found.append(("P1", f"the first statement is {verbs[0]}"))
        if verbs.count("terminated") != 1 or verbs[-1] != "terminated":
            found.append(("P1", f"{verbs.count('terminated')} terminated, last {verbs[-1]}"))
        for s in statements:
            if over := [seg for seg in segments(s) if not within(seg, allowed)]:
                found.append(("P2", f"{verb(s)} claims {over}, truly played {admissible}"))
            progress = result_ext(s, PROGRESS)
            if progress is not None and progress > admissible_progress + PROGRESS_TOL:
                found.append(("P3", f"{verb(s)} progress {progress}, true {admissible_progress}"))
        if "completed" in verbs and admissible_progress < THRESHOLD - ROUNDING:
            found.append(("P4", f"completed, true progress {admissible_progress:.3f}"))
        times = [when(s) for s in statements]
        if any(a > b for a, b in pairwise(times)):
            found.append(("P5", "a statement is dated before the one it follows"))
        if min(times) < times[0]:
            found.append(("P5", "a statement is dated before the initialized"))
    ids = [s["id"] for s in out.statements]
    if len(set(ids)) != len(ids):
        found.append(("P6", f"{len(ids) - len(set(ids))} statement ids made twice"))
    if traffic.exact:
        finals = [result_ext(statements[-1], PROGRESS) for statements in sessions.values()]
        final = finals[0] if len(finals) == 1 else None
        if len(finals) != 1:
            found.append(("P3x", f"{len(finals)} sessions for one viewing"))
        elif (final is None and true_progress >= PROGRESS_TOL) or (
            final is not None and abs(final - true_progress) > PROGRESS_TOL
        ):
            found.append(("P3x", f"final progress {final}, true {true_progress:.3f}"))
    if scenario.platform == "youtube":
        found += moves_agree(timeline, out.statements)
    return found


def moves_agree(timeline: Timeline, statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """P7 and P8: the pauses and seeks said are the true ones."""
    found: list[tuple[str, str]] = []
    stops = [h.position for h in timeline.happenings if h.kind in ("pause", "end", "leave")]
    for s in statements:
        at = result_ext(s, TIME)
        if verb(s) != "paused" or "time" in s["context"]["extensions"][SOURCE].get("estimated", []):
            continue
        if not any(abs(at - p) <= TOL for p in stops):
            found.append(("P7", f"paused at {at}, the player stopped at {stops}"))
    said = [(result_ext(s, TIME_FROM), result_ext(s, TIME_TO)) for s in statements]
    for h in timeline.happenings:
        playing = timeline.mode_at(h.t - 0.001) == timeline.mode_at(h.t) == "playing"
        if h.kind != "seek" or not playing:  # (a seek to the end ends playback: none after)
            continue
        assert h.to is not None
        if abs(h.to - h.position) > 1.0 and not any(
            v == "seeked" and abs(a - h.position) <= TOL and abs(b - h.to) <= TOL
            for v, (a, b) in zip(map(verb, statements), said, strict=True)
        ):
            found.append(("P8", f"no seeked {h.position:.3f} -> {h.to:.3f}"))
    return found


def check(scenario: Scenario) -> None:
    found = violations(scenario)
    failed = {p: [why for q, why in found if q == p] for p in PROPERTIES}
    # One line per property, so that Hypothesis shrinks and reports each failure on its own.
    assert not failed["P0"], f"P0 traffic not read: {failed['P0']}"
    assert not failed["P1"], f"P1 initialized first, one terminated last: {failed['P1']}"
    assert not failed["P2"], f"P2 played-segments within the truth: {failed['P2']}"
    assert not failed["P3"], f"P3 progress not above the truth: {failed['P3']}"
    assert not failed["P3x"], f"P3x progress equals the truth (exact traffic): {failed['P3x']}"
    assert not failed["P4"], f"P4 completed only at the threshold: {failed['P4']}"
    assert not failed["P5"], f"P5 timestamps in order: {failed['P5']}"
    assert not failed["P6"], f"P6 each statement once: {failed['P6']}"
    assert not failed["P7"], f"P7 paused only where the player stopped: {failed['P7']}"
    assert not failed["P8"], f"P8 every seek while playing is said: {failed['P8']}"


def _property(platform: Platform) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenario=scenarios(platform))
    def test(scenario: Scenario) -> None:
        check(scenario)

    return test


test_segment_statements_agree_with_the_truth = _property("segment")
test_udacity_statements_agree_with_the_truth = _property("udacity")
test_udemy_statements_agree_with_the_truth = _property("udemy")
test_coursera_statements_agree_with_the_truth = _property("coursera")
test_youtube_statements_agree_with_the_truth = _property("youtube")
test_openedx_statements_agree_with_the_truth = _property("openedx")


# --- The oracle itself, on timelines worked out by hand ---------------------------------------


def test_a_pause_then_a_drag_and_playing_to_the_end() -> None:
    # 0-10 played; paused 2 min; dragged to 40 (while paused); played from 130.01 (the learner's
    # next action waits MIN_GAP after the seek) for 20 s to the end at 150.01; left 10 s later.
    timeline = simulate(60, [Play(), Wait(10), Pause(), Wait(120), Seek(40), Play(), Wait(30)])
    assert timeline.played() == [(0, 10), (40, 60)]
    assert timeline.progress() == 0.5
    assert [(h.t, h.kind, h.position) for h in timeline.happenings] == [
        (0, "start", 0),
        (10, "pause", 10),
        (130, "seek", 10),
        (130.01, "resume", 40),
        (pytest.approx(150.01), "end", 60),
        (pytest.approx(160.01), "leave", 60),
    ]
    assert timeline.episodes() == [(0, 10), (130.01, pytest.approx(150.01))]
    # A Udacity stretch per pause/end; Segment without seek reports: the drag shows only as
    # Resumed at 40 after Paused at 10, which no one can take for playback.
    silent = segment(timeline, SegmentSite(4.0, reports_seeks=False), Delivery())
    assert [(round(r.t, 2), r.position) for r in silent.reports] == [
        (0, 0), (4, 4), (8, 8), (10, 10), (130.01, 40), (134.01, 44), (138.01, 48),
        (142.01, 52), (146.01, 56), (150.01, 60), (160.01, 60),
    ]  # fmt: skip
    assert silent.indistinguishable == []


def test_speed_stall_and_a_seek_back_while_playing() -> None:
    # 2x: 0-10 in 5 s; stall 5-8; 2x again to 20 at t=13; 0.5x to 22 at t=17; drag back to
    # 10 (playing); 0.5x to 15 at t=27; leave. Truly played: 0-22 and 10-15, i.e. 0-22.
    actions: list[Action] = [Play(), Wait(5), Stall(3), Wait(5), Speed(0.5), Wait(4), Seek(10)]
    timeline = simulate(60, [*actions, Wait(10)], rate=2.0)
    assert timeline.played() == [(0, 10), (10, 20), (20, 22), (10, 15)]
    assert timeline.played_union() == [(0, 22)]
    assert timeline.progress() == pytest.approx(22 / 60)
    assert [h.kind for h in timeline.happenings] == [
        "start", "stall", "unstall", "speed", "seek", "leave",
    ]  # fmt: skip
    # Heartbeats every 4 s run through the stall; the one at 8 s (the stall's end) is skipped.
    assert timeline.ticks(4) == [4, 12, 16, 20, 24]
    assert [timeline.position_at(t) for t in timeline.ticks(4)] == [8, 18, 21.5, 11.5, 13.5]
    # A silent site: 16 -> 20 hides the drag back (21.5 -> 11.5): backwards, never a claim.
    silent = segment(timeline, SegmentSite(4.0, reports_seeks=False), Delivery())
    assert silent.indistinguishable == []


def test_udemy_logs_restart_after_a_pause_and_a_short_silent_drag() -> None:
    # 0-40 played (logs at 15, 30), paused 40-45, resumed: log at 60 (pos 55), the end at 65.
    # Completion when position > 45 while playing: at t = 50 (+1 ms).
    timeline = simulate(60, [Play(), Wait(40), Pause(), Wait(5), Play(), Wait(20)])
    assert timeline.played_union() == [(0, 60)]
    traffic = udemy(timeline, Delivery(delay=0.2, jitter=0.0))
    assert [(r.t, r.position) for r in traffic.reports] == [(15, 15), (30, 30), (60, 55)]
    bodies = [r.body.decode() for r in traffic.requests]
    assert [r.url.rsplit("/", 2)[-2] for r in traffic.requests] == [
        "progress-logs", "progress-logs", "completed-lectures", "progress-logs",
    ]  # fmt: skip
    assert '"position":30' in bodies[1] and '"time":"2024-06-01T09:00:30.000Z"' in bodies[1]
    assert traffic.platform_completed
    # A 4-s drag 2 s after a log: 19 s of content in 15 s of wall time, what 1.27x playback
    # would give (the speed is never reported), so the skipped 17-21 may be claimed.
    dragged = simulate(60, [Play(), Wait(17), Seek(21), Wait(20)])
    assert dragged.played_union() == [(0, 17), (21, 41)]
    assert udemy(dragged, Delivery()).indistinguishable == [(15, 34)]
    # A drag across 10 min of pause is visible by the gap (more than 16 s between logs).
    paused = simulate(600, [Play(), Wait(20), Pause(), Wait(600), Seek(570), Play(), Wait(20)])
    assert udemy(paused, Delivery()).indistinguishable == []
