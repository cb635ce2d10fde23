"""Facts about statements, each checked against numbers worked out by hand."""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from pydantic import ValidationError

from support.sessions import run_events
from support.sessions import video_event
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.ids import v4_shaped
from xapitap.player import PlayerState
from xapitap.pseudonym import Pseudonymizer
from xapitap.session import VideoSessions
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.translate import format_timestamp

event = video_event


def test_v4_shaped_ids_are_deterministic_v4_uuids() -> None:
    first, again, other = v4_shaped("a", "b"), v4_shaped("a", "b"), v4_shaped("a", "c")
    assert first == again != other
    parsed = uuid.UUID(first)
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_pseudonym_is_hmac_sha256_of_platform_kind_and_id() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"udemy\x1fuserId\x1f1234567", hashlib.sha256).hexdigest()
    assert Pseudonymizer(key).name("udemy", "userId", "1234567") == expected
    assert Pseudonymizer(b"x" * 32).name("udemy", "userId", "1234567") != expected


def test_timestamps_are_utc_with_milliseconds() -> None:
    when = datetime(2018, 5, 11, 19, 55, 38, 742999, tzinfo=UTC) + timedelta(hours=0)
    assert format_timestamp(when) == "2018-05-11T19:55:38.742Z"


def test_timestamps_before_year_1000_keep_four_digits() -> None:
    assert format_timestamp(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
    assert format_timestamp(datetime(999, 12, 31, tzinfo=UTC)) == "0999-12-31T00:00:00.000Z"


def test_progress_is_the_union_of_segments_over_the_length() -> None:
    s = PlayerState(length=100)
    s.segments = [(0, 30), (20, 50), (80, 90)]  # union: 0-50 and 80-90 = 60 s
    assert s.progress() == 0.6
    assert s.summary().segments == "0.000[.]30.000[,]20.000[.]50.000[,]80.000[.]90.000"
    s.segments.append((0, 500))
    assert s.progress() == 1.0


def _verbs(out: list[m.Statement]) -> list[str]:
    return [s.verb.display["en-US"] for s in out]


def _statements(events: list[VideoEvent]) -> list[m.Statement]:
    out = run_events(events, close=False)
    assert all(isinstance(s, m.Statement) for s in out)
    return [s for s in out if isinstance(s, m.Statement)]


def test_a_session_of_play_pause_seek_and_the_end() -> None:
    out = _statements(
        [
            event(Kind.PLAYED, 0, position=0.0, length=40.0),
            event(Kind.PAUSED, 10, position=10.0),
            event(Kind.SEEKED, 12, seek_from=10.0, seek_to=30.0),
            event(Kind.PLAYED, 13, position=30.0),
            event(Kind.COMPLETED, 23, position=40.0, ends_playback=True),
        ]
    )
    # The player reached the end, but half of the video was played: no completion.
    assert _verbs(out) == ["initialized", "played", "paused", "seeked", "played", "paused"]
    last = out[-1]
    assert last.result is not None and last.result.extensions is not None
    assert last.result.extensions[v.PROGRESS] == 0.5  # 10 s + 10 s of 40 s
    assert last.result.extensions[v.PLAYED_SEGMENTS] == "0.000[.]10.000[,]30.000[.]40.000"
    assert last.context is not None and last.context.extensions is not None
    assert last.context.extensions[v.SOURCE]["platformCompleted"] is True
    session_ids = {
        s.context.extensions[v.SESSION_ID] for s in out if s.context and s.context.extensions
    }
    assert len(session_ids) == 1
    assert len({s.id for s in out}) == len(out)


def test_a_platform_completion_after_watching_it_all_is_not_inferred() -> None:
    out = _statements(
        [
            event(Kind.PLAYED, 0, position=0.0, length=20.0),
            event(Kind.PROGRESS, 10, position=10.0),
            event(Kind.COMPLETED, 20, position=20.0, ends_playback=True),
        ]
    )
    assert _verbs(out) == ["initialized", "played", "completed"]
    completed = out[-1]
    assert completed.result is not None and completed.result.completion is True
    assert completed.result.duration == "PT20S"
    assert completed.context is not None and completed.context.extensions is not None
    assert completed.context.extensions[v.SOURCE]["inferred"] is False


def test_completed_only_once_per_session() -> None:
    out = _statements(
        [
            event(Kind.PLAYED, 0, position=0.0, length=10.0),
            event(Kind.PROGRESS, 10, position=10.0),
            event(Kind.COMPLETED, 11, position=10.0),
            event(Kind.COMPLETED, 12, position=10.0),
        ]
    )
    assert _verbs(out).count("completed") == 1


def test_a_platform_completion_alone_is_no_completion() -> None:
    assert "completed" not in _verbs(_statements([event(Kind.COMPLETED, 0, position=5.0)]))


def test_an_idle_gap_starts_a_new_session() -> None:
    sessions = VideoSessions(idle_timeout=timedelta(minutes=30))
    a, b = event(Kind.PLAYED, 0, position=1.0), event(Kind.PLAYED, 3600, position=1.0)
    first = sessions.route("p1", a, a.timestamp).session
    second = sessions.route("p1", b, b.timestamp).session
    assert first is not None and second is not None
    assert first.session_id != second.session_id


def test_sessions_are_bounded() -> None:
    sessions = VideoSessions(max_sessions=3)
    for i in range(10):
        e = event(Kind.PLAYED, i, position=0.0).model_copy(update={"session_key": f"s{i}"})
        sessions.route("p1", e, e.timestamp)
    assert len(sessions) == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "not-a-uuid"},
        {"timestamp": "2024-01-01 12:00:00"},
        {"object": {"id": "no scheme", "definition": {"type": v.VIDEO_TYPE}}},
        {"verb": {"id": v.VERBS["played"], "display": {"not a tag!": "played"}}},
        {"result": {"completion": True}},  # completion outside `completed`
        {"result": {"duration": "PT1M30"}},
        {"result": {"extensions": {"time": 1}}},  # extension key must be an IRI
        {"context": {"extensions": {}}},  # no empty objects
    ],
)
def test_statement_model_refuses_invalid_xapi(bad: dict[str, object]) -> None:
    good: dict[str, object] = {
        "id": v4_shaped("x"),
        "actor": {"account": {"homePage": "https://www.example.org", "name": "p"}},
        "verb": {"id": v.VERBS["played"], "display": {"en-US": "played"}},
        "object": {"id": "https://www.example.org/v/1", "definition": {"type": v.VIDEO_TYPE}},
        "timestamp": "2024-01-01T12:00:00.000Z",
    }
    m.Statement.model_validate(good)
    with pytest.raises(ValidationError):
        m.Statement.model_validate(good | bad)


def test_canonical_json_has_sorted_keys_and_no_spaces() -> None:
    _, statement = _statements([event(Kind.PLAYED, 0, position=1.23456)])
    text = statement.to_json()
    assert ": " not in text and ", " not in text
    assert re.search(r"/extensions/time\":1\.235\b", text)
