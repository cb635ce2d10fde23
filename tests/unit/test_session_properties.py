"""Properties of every video session, over random play/pause/seek/heartbeat sequences."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from support.sessions import run_events
from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v

LENGTH = 120.0
T0 = datetime(2024, 1, 1, tzinfo=UTC)

action = st.one_of(
    st.just(("play",)),
    st.just(("pause",)),
    st.tuples(st.just("wait"), st.floats(min_value=0.5, max_value=30)),
    st.tuples(st.just("seek"), st.floats(min_value=0, max_value=LENGTH)),
    st.just(("complete",)),
)


def simulate(actions: list[tuple[Any, ...]]) -> list[VideoEvent]:
    """Events a player would send for these actions; heartbeats while playing."""
    pos, playing, now = 0.0, False, 0.0
    events = []

    def emit(kind: Kind, **kw: Any) -> None:
        events.append(
            VideoEvent(
                platform="test",
                platform_name="Test",
                origin="https://www.example.org",
                rule="test",
                source_event_id=f"e{len(events)}",
                kind=kind,
                timestamp=T0 + timedelta(seconds=now),
                user_ref="u",
                user_ref_kind="userId",
                video=Activity(id="https://www.example.org/v/1", type=v.VIDEO_TYPE),
                length=LENGTH,
                **kw,
            )
        )

    for act in actions:
        if act[0] == "play" and not playing:
            playing = True
            emit(Kind.PLAYED, position=pos)
        elif act[0] == "pause" and playing:
            playing = False
            emit(Kind.PAUSED, position=pos)
        elif act[0] == "wait":
            now += act[1]
            if playing:
                pos = min(pos + act[1], LENGTH)
                emit(Kind.PROGRESS, position=pos)
        elif act[0] == "seek":
            emit(Kind.SEEKED, seek_from=pos, seek_to=act[1])
            pos = act[1]
        elif act[0] == "complete":
            emit(Kind.COMPLETED, position=pos)
    return events


def run(events: list[VideoEvent]) -> list[dict[str, Any]]:
    out = run_events(events)
    assert all(isinstance(s, m.Statement) for s in out)
    return [s.model_dump(mode="json", exclude_none=True) for s in out if isinstance(s, m.Statement)]


def parse_segments(text: str) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in (seg.split("[.]") for seg in text.split("[,]"))]


def union(segments: list[tuple[float, float]]) -> float:
    covered, reach = 0.0, 0.0
    for a, b in sorted(segments):
        a = max(a, reach)
        if b > a:
            covered, reach = covered + b - a, b
    return covered


def ext(statement: dict[str, Any], key: str) -> Any:
    return statement.get("result", {}).get("extensions", {}).get(key)


sequences = st.lists(action, min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_a_session_starts_with_initialized_completes_at_most_once_and_ends_last(
    actions: list[tuple[Any, ...]],
) -> None:
    events = simulate(actions)
    if not events:
        return
    verbs = [s["verb"]["display"]["en-US"] for s in run(events)]
    assert verbs[0] == "initialized" and verbs.count("initialized") == 1
    assert verbs[-1] == "terminated" and verbs.count("terminated") == 1
    assert verbs.count("completed") <= 1


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_progress_is_the_union_of_played_segments_over_length(
    actions: list[tuple[Any, ...]],
) -> None:
    for statement in run(simulate(actions)):
        segments = ext(statement, v.PLAYED_SEGMENTS)
        progress = ext(statement, v.PROGRESS)
        if segments is None:
            assert progress is None
            continue
        parsed = parse_segments(segments)
        assert all(0 <= a < b <= LENGTH for a, b in parsed)
        assert 0 <= progress <= 1
        assert abs(progress - min(union(parsed) / LENGTH, 1)) <= 0.0015


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_played_segments_agree_with_the_times_sent(actions: list[tuple[Any, ...]]) -> None:
    statements = run(simulate(actions))
    sent = {
        round(value, 3)
        for s in statements
        for key in (v.TIME, v.TIME_FROM, v.TIME_TO)
        if (value := ext(s, key)) is not None
    }
    for statement in statements:
        if segments := ext(statement, v.PLAYED_SEGMENTS):
            for a, b in parse_segments(segments):
                assert a in sent and b in sent, (a, b, sorted(sent))


@settings(max_examples=100, deadline=None)
@given(sequences)
def test_replaying_the_same_events_gives_the_same_statements(
    actions: list[tuple[Any, ...]],
) -> None:
    events = simulate(actions)
    assert run(events) == run(events)
