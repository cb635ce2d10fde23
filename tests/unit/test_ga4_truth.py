"""GA4's video events against what was really played (tests/truth/player.py's learner).

GA4 reports a start, the first time the playhead is seen past 10, 25, 50 and 75 % while
playing (a seek past a threshold fires it too), and the end; never a pause or a seek, and no
time of its own. Whatever the learner did, the statements made of that must claim no more than
was played: played-segments within the truth, progress not above it, no completed below the
threshold.
"""

from __future__ import annotations

import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from golden import Request
from golden import run_requests
from truth.player import Action
from truth.player import Pause
from truth.player import Play
from truth.player import Seek
from truth.player import Timeline
from truth.player import Wait
from truth.player import random_actions
from truth.player import simulate
from truth.player import union

T0 = datetime(2025, 9, 17, 14, 0, tzinfo=UTC)
TOL = 0.5
URL = "https://region1.google-analytics.com/g/collect?"
SHARED = {
    "v": "2",
    "tid": "G-7KQ2ZP4ABC",
    "_p": "1758117262938",
    "cid": "1369988567.1756151735",
    "sid": "1758117000",
    "dl": "https://learn.example.org/courses/stats/week-1",
    "dt": "Week 1",
}
THRESHOLDS = (10, 25, 50, 75)
POLL = 1.0  # seconds between the tracker's looks at the playhead while playing
_V = "https://w3id.org/xapi/video/extensions/"


def q(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote, safe="")


def ga4_events(timeline: Timeline) -> list[tuple[float, dict[str, str]]]:
    """(true time, event parameters) as the enhanced-measurement tracker sends them."""
    length = timeline.length

    def video(name: str, position: float, percent: int) -> dict[str, str]:
        return {
            "en": name,
            "epn.video_current_time": f"{position:.3f}",
            "epn.video_duration": f"{length:g}",
            "ep.video_percent": str(percent),
            "ep.video_url": "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
            "ep.video_title": "Variance",
        }

    out: list[tuple[float, dict[str, str]]] = [(0.0, {"en": "page_view"})]
    for h in timeline.happenings:
        if h.kind == "start":
            out.append((h.t, video("video_start", h.position, 0)))
        elif h.kind == "end":
            out.append((h.t, video("video_complete", length, 100)))
    fired: set[int] = set()
    t = 0.0
    while t < timeline.end_time:
        if timeline.mode_at(t) == "playing":
            position = timeline.position_at(t)
            for percent in THRESHOLDS:
                if percent not in fired and position >= length * percent / 100:
                    fired.add(percent)
                    out.append((t, video("video_progress", position, percent)))
        t = round(t + POLL, 6)
    return sorted(out, key=lambda item: item[0])


def requests(timeline: Timeline, batch: float | None) -> list[Request]:
    """One bodiless POST per event, or (`batch`) the events of each window as body lines."""
    events = ga4_events(timeline)
    if batch is None:
        return [
            Request("POST", URL + q({**SHARED, **p}), {}, b"", T0 + timedelta(seconds=t + 0.2))
            for t, p in events
        ]
    windows: dict[int, list[dict[str, str]]] = {}
    for t, p in events:
        windows.setdefault(int(t // batch), []).append(p)
    return [
        Request(
            "POST",
            URL + q(SHARED),
            {},
            "\n".join(q(p) for p in lines).encode(),
            T0 + timedelta(seconds=(window + 1) * batch + 0.2),
        )
        for window, lines in sorted(windows.items())
    ]


def statements(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in results:
        assert r["rule"] is not None and not r.get("errors") and not r.get("quarantined"), r
    return [s for r in results for s in r.get("statements", [])]


def segments(text: str) -> list[tuple[float, float]]:
    pairs = (part.split("[.]") for part in text.split("[,]"))
    return [(float(a), float(b)) for a, b in pairs]


def check(timeline: Timeline, results: list[dict[str, Any]]) -> None:
    truth = timeline.played_union()
    video = [s for s in statements(results) if s["verb"]["display"]["en-US"] != "viewed"]
    assert video, "a viewing that started makes statements"
    verbs = [s["verb"]["display"]["en-US"] for s in video]
    assert (
        verbs[0] == "initialized" and verbs[-1] == "terminated" and verbs.count("terminated") == 1
    )
    for s in video:
        ext = s.get("result", {}).get("extensions", {})
        for a, b in segments(ext.get(_V + "played-segments", "0[.]0")):
            inside = any(x - TOL <= a and b <= y + TOL for x, y in truth)
            assert a == b or inside, (s["verb"], (a, b), truth)
        claimed = ext.get(_V + "progress", 0.0)
        assert claimed <= timeline.progress() + 0.01, (claimed, timeline.progress())
    if "completed" in verbs:
        assert timeline.progress() >= 0.945


def test_a_drag_during_a_pause_is_not_played() -> None:
    """Worked by hand: 0→2 s played, paused 30 s, dragged to 22 s, played on past 24 s (10 %
    of 240 s). The 10 % ping (24 s, 34 s after the start) would fit 1x playback from 0: a
    model believing untimed pings would claim 0-24 s; the truth is 0-2 and 22-27."""
    actions: list[Action] = [Play(), Wait(2), Pause(), Wait(30), Seek(22), Play(), Wait(5)]
    timeline = simulate(240, actions)
    assert union(timeline.played()) == [(0.0, 2.0), (22.0, 27.0)]
    results = run_requests(requests(timeline, None))
    check(timeline, results)
    verbs = [s["verb"]["display"]["en-US"] for s in statements(results)]
    assert verbs == ["viewed", "initialized", "played", "paused", "terminated"]


@st.composite
def viewings(draw: st.DrawFn) -> tuple[Timeline, float | None]:
    length = draw(st.sampled_from([40.0, 95.5, 240.0, 600.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    actions = random_actions(random.Random(seed), length, draw(st.integers(3, 25)))
    actions += [Wait(draw(st.floats(1, 400)))]
    batch = draw(st.none() | st.sampled_from([2.0, 5.0, 30.0]))
    return simulate(length, actions), batch


@settings(max_examples=200, deadline=None)
@given(viewings())
def test_ga4_never_claims_more_than_was_played(viewing: tuple[Timeline, float | None]) -> None:
    timeline, batch = viewing
    check(timeline, run_requests(requests(timeline, batch)))
