"""Video session state kept in a store: a translator that starts again from it goes on exactly
where the last one stopped.

The truth here is a translator that never stopped: the same traffic through one Pipeline,
uninterrupted, with change tracking off. Another runs it in chunks, committing the changes of
each chunk into a dict that stands for the database (through the codec's text), and after a
chunk either goes on, restarts from the database, or is killed before its commit (the chunk is
then done again by a translator restored from the database). Every statement, every skip and
every count must come out the same, byte for byte, those of sweeps and of the stop included.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from functools import partial
from itertools import cycle
from typing import Any
from typing import Literal
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import note
from hypothesis import settings
from hypothesis import strategies as st
from pydantic import BaseModel

import golden
from support.sessions import video_event
from truth.reporters import PLATFORMS
from truth.reporters import Platform
from truth.reporters import merge
from truth.reporters import random_scenario
from xapitap.capture import Capture
from xapitap.events import Activity
from xapitap.events import Interaction
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.player import PlayerState
from xapitap.player import decide
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.session import EndedSession
from xapitap.session import SessionChanges
from xapitap.session import SessionCounters
from xapitap.session import VideoSession
from xapitap.session import VideoSessions
from xapitap.session_codec import FORMAT_VERSION
from xapitap.session_codec import decode_counters
from xapitap.session_codec import decode_ended
from xapitap.session_codec import decode_key
from xapitap.session_codec import decode_session
from xapitap.session_codec import encode_counters
from xapitap.session_codec import encode_ended
from xapitap.session_codec import encode_key
from xapitap.session_codec import encode_session

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
SEGMENT_T = "https://api.segment.io/v1/t"
PAGE = "https://learn.example.org/courses/stats/intro"
IDLE = timedelta(minutes=30)
T = TypeVar("T")

# --- Comparing values exactly ----------------------------------------------------------------


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """`b` is `a`, value by value and type by type (floats bit for bit, times with their
    offset, tuples as tuples)."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, BaseModel):
        for name in type(a).model_fields:
            assert_same(getattr(a, name), getattr(b, name), f"{path}.{name}")
    elif isinstance(a, datetime):
        assert (a.isoformat(), a.utcoffset()) == (b.isoformat(), b.utcoffset()), path
        assert a == b, path
    elif isinstance(a, float):
        assert math.copysign(1, a) == math.copysign(1, b), path  # -0.0 stays -0.0
        assert a == b or (math.isnan(a) and math.isnan(b)), f"{path}: {a!r} became {b!r}"
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    else:
        assert a == b, f"{path}: {a!r} became {b!r}"


def round_trip(session: VideoSession) -> None:
    text = encode_session(session)
    assert text.isascii()
    assert_same(session, decode_session(text), "session")


# --- Round trips -----------------------------------------------------------------------------


def played_session(events: list[VideoEvent]) -> VideoSession:
    """The session these events make (one actor), as the pipeline leaves it."""
    sessions = VideoSessions()
    session = None
    for event in events:
        session = sessions.route("p1", event, event.timestamp).session
        assert session is not None
        decide(session.state, event, 0.95)
    assert session is not None
    return session


def test_a_session_made_by_real_events_round_trips_value_by_value() -> None:
    volume = Interaction(volume=0.5, quality="720p")
    session = played_session(
        [
            video_event(Kind.PLAYED, 0, position=0.0, length=60.0, player=volume),
            video_event(Kind.PROGRESS, 10, position=10.0, length=60.0),
            video_event(Kind.SEEKED, 12, seek_from=12.0, seek_to=14.0),
            video_event(Kind.PROGRESS, 20, position=22.0, player=Interaction(volume=0.25)),
            video_event(Kind.INTERACTED, 21, position=23.0, interaction=Interaction(speed="2x")),
            video_event(Kind.PROGRESS, 30, position=32.0),
            video_event(Kind.PROGRESS, 40, position=42.0),
            video_event(Kind.PROGRESS, 50, position=52.0),
            video_event(Kind.PAUSED, 58, position=60.0),
        ]
    )
    state = session.state
    assert state.segments and state.settings and state.completed and state.rate
    assert session.template is not session.last_event
    round_trip(session)


def test_every_field_round_trips_even_unusual_values() -> None:
    """Every field of the event and of the player state set (to a value other than its
    default), with values a careless encoding would change."""
    plus_530 = timezone(timedelta(hours=5, minutes=30))
    event = VideoEvent(
        platform="segment",
        platform_name="Learn \u00e9\u00e8",
        origin="https://learn.example.org",
        rule="segment.t",
        event_type="Video Playback Paused",
        source_event_id="id-\ud800-lone-surrogate",
        kind=Kind.SEEKED,
        timestamp=datetime(2024, 6, 1, 9, 0, 0, 123456, tzinfo=plus_530),
        user_ref="u\u2603",
        user_ref_kind="userId",
        video=Activity(id="https://learn.example.org/v#1", type="video", name="\U0001f3ac"),
        parents=(Activity(id="https://x.org/c", type="course"),),
        groupings=(Activity(id="https://x.org/g", type="group", name="G"),),
        session_key="s1",
        position=-0.0,
        seek_from=1e-300,
        seek_to=0.1 + 0.2,
        segment_from=math.inf,
        segment_to=math.nan,
        length=1e308,
        interaction=Interaction(cc_enabled=True, cc_language="fr", speed="1.5x"),
        player=Interaction(quality="hd", volume=0.0, full_screen=False),
        user_agent="Firefox/126",
        timed=False,
        cadence=15.0,
        reports_seeks=False,
        level="content",
        asset_known=False,
        platform_completed=True,
        ends_playback=True,
        reported_state="paused",
        opens_session=False,
    )
    defaults = {n: f.default for n, f in VideoEvent.model_fields.items() if not f.is_required()}
    unset = [n for n, default in defaults.items() if getattr(event, n) == default]
    assert not unset, f"set these too: {unset}"
    state = PlayerState(
        length=120.0,
        playback_length=121.5,
        position=-0.0,
        at=datetime(1, 1, 1, tzinfo=UTC),
        timed=False,
        playing_from=math.inf,
        resume_after_seek=True,
        segments=[(0.0, 0.1 + 0.2), (5.0, 7.0)],
        rate=1.0000000000000002,
        last_rate=0.5,
        candidate_rate=3.0,
        reported_rate=2.0,
        initialized=True,
        completed=True,
        platform_completed=True,
        pending_seek_from=4.0,
        last_seek_to=9.0,
        settings={"volume": 1, "full_screen": True, "cc_language": "de", "quality": None},
        last_at=datetime(2024, 6, 1, 9, 0, 0, 1, tzinfo=UTC),
    )
    unset = [
        f.name
        for f in dataclasses.fields(state)
        if getattr(state, f.name) == getattr(PlayerState(), f.name)
    ]
    assert not unset, f"set these too: {unset}"
    key = ("actor \u00e9", "https://learn.example.org/v#1", "s\ud800")
    session = VideoSession(
        key, "sid", "actor", "https://home", event, video_event(Kind.PLAYED, 1), T0, state, 7, 11
    )
    round_trip(session)


@pytest.mark.parametrize("case", golden.cases(), ids=lambda c: c.name)
def test_every_session_of_the_golden_cases_round_trips(case: golden.Case) -> None:
    """Sessions as each platform's real traffic leaves them, after every request."""
    translator = Translator(VideoSessions(track_changes=True))
    for request in case.requests():
        translator.step(request)
        for session in translator.sessions.take_changes().open:
            round_trip(session)


def test_the_ended_memory_and_the_counters_round_trip() -> None:
    entry = EndedSession(("a", "v", ""), datetime(2024, 1, 1, 0, 0, 0, 5, tzinfo=UTC), 42)
    assert_same(entry, decode_ended(encode_ended(entry)))
    assert_same(SessionCounters(7), decode_counters(encode_counters(SessionCounters(7))))


def test_keys_are_ascii_text_one_per_key_and_fit_sqlite() -> None:
    keys = [("p1", "https://x.org/v/1", ""), ("\u00e9\ud800", 'a"b\\c', "s,1"), ("a", "b", "c")]
    texts = [encode_key(k) for k in keys]
    assert all(t.isascii() for t in texts) and len(set(texts)) == len(keys)
    assert [decode_key(t) for t in texts] == keys
    assert all(type(decode_key(t)) is tuple for t in texts)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE s (key TEXT PRIMARY KEY)")
    db.executemany("INSERT INTO s VALUES (?)", [(t,) for t in texts])
    assert sorted(decode_key(k) for (k,) in db.execute("SELECT key FROM s")) == sorted(keys)


def test_another_format_or_a_malformed_document_is_refused() -> None:
    session = played_session([video_event(Kind.PLAYED, 0, position=0.0)])
    doc = json.loads(encode_session(session))
    for version in (FORMAT_VERSION + 1, None):
        with pytest.raises(ValueError, match="format"):
            decode_session(json.dumps({**doc, "v": version}))
    with pytest.raises(ValueError, match="format"):
        decode_ended(json.dumps({"v": FORMAT_VERSION + 1, "key": ["a", "b", ""], "at": "x"}))
    with pytest.raises(ValueError, match="format"):
        decode_counters('{"v": 0, "next_order": 1}')
    del doc["state"]["rate"]
    with pytest.raises(ValueError, match="malformed"):
        decode_session(json.dumps(doc))
    with pytest.raises(ValueError, match="not JSON"):
        decode_session("{")
    with pytest.raises(ValueError, match="three strings"):
        decode_key('["a", "b"]')
    with pytest.raises(ValueError, match="integer"):
        decode_counters(json.dumps({"v": FORMAT_VERSION, "next_order": 1.0}))


def test_what_a_round_trip_would_change_is_refused_when_encoded() -> None:
    named_zone = played_session([video_event(Kind.PLAYED, 0, position=0.0)])
    named_zone.last_seen = datetime(2024, 6, 1, tzinfo=ZoneInfo("Europe/Paris"))
    with pytest.raises(ValueError, match="named zone"):
        encode_session(named_zone)
    a_list = played_session([video_event(Kind.PLAYED, 0, position=0.0)])
    a_list.state.settings["languages"] = ["fr", "de"]
    with pytest.raises(TypeError, match=r"settings\.languages"):
        encode_session(a_list)


# --- What take_changes says ------------------------------------------------------------------


def test_change_tracking_is_off_unless_asked_for() -> None:
    sessions = VideoSessions()
    e = video_event(Kind.PLAYED, 0, position=0.0)
    sessions.route("p1", e, e.timestamp)
    with pytest.raises(RuntimeError, match="track_changes"):
        sessions.take_changes()


def test_changes_name_what_opened_closed_ended_and_was_forgotten() -> None:
    sessions = VideoSessions(max_ended=1, track_changes=True)

    def route(kind: Kind, at: float, video: str, **kw: Any) -> VideoSession | None:
        e = video_event(kind, at, **kw).model_copy(
            update={"video": Activity(id=f"https://x.org/{video}", type="video")}
        )
        return sessions.route("p1", e, e.timestamp).session

    a = route(Kind.PLAYED, 0, "a", position=0.0)
    assert a is not None
    first = sessions.take_changes()
    assert (first.open, first.closed, first.ended, first.forgotten) == ([a], [], [], [])
    assert not sessions.take_changes()  # taken: nothing is left
    b = route(Kind.PLAYED, 10, "b", position=0.0)  # playing b ends a
    assert b is not None
    second = sessions.take_changes()
    assert second.open == [b] and second.closed == [a.key]
    assert [(e.key, e.at) for e in second.ended] == [(a.key, b.template.timestamp)]
    assert second.counters.next_order > first.counters.next_order
    sessions.drop(b)  # b's terminated: a is forgotten to make room for b
    third = sessions.take_changes()
    assert third.closed == [b.key] and [e.key for e in third.ended] == [b.key]
    assert third.forgotten == [a.key] and third.open == []
    # A key closed and opened again within one batch is an upsert, not a delete.
    c = route(Kind.PLAYED, 100, "c", position=0.0)
    assert c is not None and sessions.expire(c.last_seen + 2 * IDLE) == [c]
    c2 = route(Kind.PLAYED, 9000, "c", position=0.0)
    assert c2 is not None and c2 is not c
    fourth = sessions.take_changes()
    assert fourth.open == [c2] and fourth.closed == []
    assert sessions.close_all() == [c2]
    assert sessions.take_changes().closed == [c2.key]


def test_a_pipeline_keeps_the_sessions_it_is_given_even_empty_ones() -> None:
    """An empty VideoSessions has no length: it must not be taken for none given."""
    sessions = VideoSessions(track_changes=True)
    assert Translator(sessions).pipeline.sessions is sessions


def test_a_snapshot_is_all_of_the_state_and_resets_nothing() -> None:
    sessions = VideoSessions(track_changes=True)
    for at in (0.0, 1.0):
        e = video_event(Kind.PLAYED, at, position=at)
        sessions.route("p1", e, e.timestamp)
    snapshot = sessions.snapshot()
    assert len(snapshot.open) == 1 and not snapshot.closed and not snapshot.forgotten
    assert sessions.take_changes().open == snapshot.open


# --- The store, and translators that stop -----------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """The journal's TICK: end the sessions idle at `at`."""

    at: datetime


@dataclass(frozen=True)
class Stop:
    """The journal's STOP: the proxy stopped; every open session ends."""


Op = golden.Request | Tick | Stop


@dataclass(frozen=True)
class Limits:
    max_sessions: int = 10_000
    max_ended: int = 10_000


class Translator:
    """A Pipeline as the translator process runs it, one journal record at a time."""

    def __init__(
        self,
        sessions: VideoSessions,
        seen_before: Callable[[str, str], bool] | None = None,
    ) -> None:
        privacy = Privacy("pseudonym", Pseudonymizer(golden.TEST_KEY))
        self.pipeline = Pipeline(privacy, golden.MAX_BODY, sessions, seen_before=seen_before)
        self.matcher = self.pipeline.matcher()
        self.translated: list[tuple[str, str]] = []

    @property
    def sessions(self) -> VideoSessions:
        return self.pipeline.sessions

    def step(self, op: Op) -> str:
        """What the record made, as canonical text."""
        if isinstance(op, Tick):
            return "sweep " + record(self.pipeline.sweep(op.at))
        if isinstance(op, Stop):
            return "stop " + record(self.pipeline.finish())
        capture = op.capture()
        match = self.matcher.match(
            capture.method, capture.host, capture.path, capture.header, partial(_body, capture)
        )
        if match is None:
            return f"unmatched {op.url}"
        outcome = self.pipeline.process(match, capture)
        self.translated += outcome.translated
        return f"{match.rule.name} " + record(outcome)


def _body(capture: Capture) -> bytes:
    return capture.body


def record(outcome: Outcome) -> str:
    tallies = [[*dataclasses.astuple(t), n] for t, n in outcome.tallies.items()]
    return json.dumps(
        {
            "statements": [s.to_json() for s, _ in outcome.statements],
            "quarantined": [[q.reason, q.draft] for q, _ in outcome.quarantined],
            "ignored": outcome.ignored,
            "errors": outcome.errors,
            "tallies": tallies,
        },
        sort_keys=True,
    )


@dataclass
class Database:
    """The store's session tables, as text; and the event ids translated so far."""

    sessions: dict[str, str] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    counters: str | None = None
    translated: set[tuple[str, str]] = field(default_factory=set)

    def commit(self, changes: SessionChanges, translated: list[tuple[str, str]]) -> None:
        for session in changes.open:
            self.sessions[encode_key(session.key)] = encode_session(session)
        for key in changes.closed:
            self.sessions.pop(encode_key(key), None)
        for entry in changes.ended:
            self.ended[encode_key(entry.key)] = encode_ended(entry)
        for key in changes.forgotten:
            self.ended.pop(encode_key(key), None)
        self.counters = encode_counters(changes.counters)
        self.translated.update(translated)

    def restore(self, limits: Limits) -> VideoSessions:
        """Rows in primary-key order (not the order they were written in)."""
        return VideoSessions.restore(
            [decode_session(self.sessions[k]) for k in sorted(self.sessions)],
            [decode_ended(self.ended[k]) for k in sorted(self.ended)],
            decode_counters(self.counters) if self.counters else SessionCounters(0),
            max_sessions=limits.max_sessions,
            max_ended=limits.max_ended,
            track_changes=True,
        )

    def rows(self) -> tuple[dict[str, str], dict[str, str], str | None]:
        return self.sessions, self.ended, self.counters

    @classmethod
    def of(cls, sessions: VideoSessions) -> Database:
        """The database written from nothing with the whole of this state."""
        db = cls()
        db.commit(sessions.snapshot(), [])
        return db

    def seen_before(self, platform: str, event_id: str) -> bool:
        return (platform, event_id) in self.translated


def uninterrupted(ops: list[Op], limits: Limits) -> list[str]:
    """The truth: one translator, never stopped, tracking nothing."""
    sessions = VideoSessions(max_sessions=limits.max_sessions, max_ended=limits.max_ended)
    translator = Translator(sessions)
    return [translator.step(op) for op in ops]


How = Literal["go on", "restart", "kill"]


def interrupted(ops: list[Op], limits: Limits, plan: list[tuple[int, How]]) -> list[str]:
    """Chunks of the plan's sizes, each committed with its session changes; after each, the
    translator goes on, or restarts from the database, or is killed before committing (a new
    one, restored from the database, does the chunk again)."""
    db = Database()
    out: list[str] = []
    position = 0
    translator: Translator | None = None
    for size, how in cycle(plan):
        if position >= len(ops):
            break
        chunk = ops[position : position + size]
        translator = translator or Translator(db.restore(limits), db.seen_before)
        made = [translator.step(op) for op in chunk]
        if how == "kill":  # nothing of the chunk was committed
            translator = Translator(db.restore(limits), db.seen_before)
            made = [translator.step(op) for op in chunk]
        db.commit(translator.sessions.take_changes(), translator.translated)
        translator.translated = []
        # What was written piece by piece is what the whole state would write.
        assert db.rows() == Database.of(translator.sessions).rows()
        out += made
        position += len(chunk)
        if how == "restart":
            translator = None
    return out


def assert_resumes_exactly(ops: list[Op], limits: Limits, plan: list[tuple[int, How]]) -> None:
    truth = uninterrupted(ops, limits)
    resumed = interrupted(ops, limits, plan)
    for i, (want, got) in enumerate(zip(truth, resumed, strict=True)):
        assert got == want, f"record {i} differs after restoring:\n{want}\n{got}"


plans = st.lists(
    st.tuples(st.integers(1, 6), st.sampled_from(["go on", "restart", "restart", "kill"])),
    min_size=1,
    max_size=8,
)
limits = st.builds(Limits, st.sampled_from([2, 3, 10_000]), st.sampled_from([1, 2, 10_000]))

# --- Synthetic Segment traffic ----------------------------------------------------------------

EVENTS = (
    "Video Playback Started",
    "Video Playback Resumed",
    "Video Playback Paused",
    "Video Playback Seek Started",
    "Video Playback Seek Completed",
    "Video Playback Completed",
    "Video Playback Exited",
    "Video Content Playing",
    "Video Content Playing",
    "Video Content Playing",
)
LENGTHS = (60.0, 120.0, 90.0)


@dataclass(frozen=True)
class Message:
    learner: int
    video: int | None  # None: the event names no asset (it joins its session_id's session)
    session: str | None  # the platform's session_id
    event: str
    wait: float  # seconds on the proxy's clock since the last request
    late: float  # how much older than its arrival the event's own time is
    timed: bool
    jump: float | None  # a playhead elsewhere than playback would bring it (None: where it is)
    sound: int | None
    resend: int | None  # send an earlier message again (its index), instead of this one
    tick: float | None  # a TICK record this many seconds after the request


def _hundredths(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.integers(round(lo * 100), round(hi * 100)).map(lambda c: c / 100)


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each as often as its weight says (the first shrinks best)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


NONE = st.none()
idle = _hundredths(31 * 60, 120 * 60)  # longer than the idle timeout
messages = st.builds(
    Message,
    learner=st.sampled_from([0, 0, 0, 1, 2]),
    video=st.sampled_from([0, 0, 1, 1, 2, None]),
    session=st.sampled_from(["s1", "s1", "s1", "s2", None]),
    event=st.sampled_from(EVENTS),
    wait=weighted((8, _hundredths(0, 20)), (2, _hundredths(20, 300)), (1, idle)),
    late=weighted((3, st.just(0.0)), (1, _hundredths(0, 8))),
    timed=st.sampled_from([True, True, True, False]),
    jump=weighted((4, NONE), (1, _hundredths(0, 120))),
    sound=weighted((3, NONE), (1, st.integers(0, 100))),
    resend=weighted((8, NONE), (1, st.integers(0, 100))),
    tick=weighted((6, NONE), (2, _hundredths(0, 600)), (1, idle)),
)
steps = st.lists(messages, min_size=8, max_size=60)


def segment_traffic(steps: list[Message]) -> list[Op]:
    """Requests as Segment's analytics.js sends them (one message each), and ticks; the
    playhead of each learner's video moves on with the proxy's clock unless a step jumps
    it."""
    now = T0
    playhead: dict[tuple[int, int | None], float] = {}
    sent: list[dict[str, Any]] = []
    ops: list[Op] = []
    for step in steps:
        now += timedelta(seconds=step.wait)
        if step.resend is not None and sent:
            body = sent[step.resend % len(sent)]
        else:
            body = _segment_message(step, now, playhead, len(sent))
            sent.append(body)
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"Content-Type": "text/plain"}
        ops.append(golden.Request("POST", SEGMENT_T, headers, raw, now))
        if step.tick is not None:
            now += timedelta(seconds=step.tick)
            ops.append(Tick(now))
    ops.append(Stop())
    return ops


def _segment_message(
    step: Message, now: datetime, playhead: dict[tuple[int, int | None], float], n: int
) -> dict[str, Any]:
    length = LENGTHS[step.video or 0]
    where = (step.learner, step.video)
    position = step.jump if step.jump is not None else playhead.get(where, 0.0) + step.wait
    position = round(min(position, length), 3)
    playhead[where] = position
    properties: dict[str, Any] = {"position": position, "total_length": length}
    if step.video is not None:
        properties["content_asset_id"] = f"v{step.video}"
    if step.session is not None:
        properties["session_id"] = step.session
    if step.event.endswith("Seek Started"):
        properties["seek_position"] = round(min(position + 17.0, length), 3)
    if step.sound is not None:
        properties["sound"] = step.sound
    body: dict[str, Any] = {
        "type": "track",
        "event": step.event,
        "properties": properties,
        "userId": f"learner-{step.learner}",
        "messageId": f"m{n}",
        "context": {"page": {"url": PAGE}},
    }
    if step.timed:
        when = (now - timedelta(seconds=step.late)).astimezone(UTC)
        body["timestamp"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(steps=steps, limits=limits, plan=plans)
def test_a_restored_translator_makes_the_same_statements_segment_traffic(
    steps: list[Message], limits: Limits, plan: list[tuple[int, How]]
) -> None:
    ops = segment_traffic(steps)
    note(f"{len(ops)} records, {limits}, plan {plan}")
    assert_resumes_exactly(ops, limits, plan)


def message(video: int, session: str | None, event: str, wait: float = 1.0, **kw: Any) -> Message:
    fields: dict[str, Any] = {
        "learner": 0,
        "video": video,
        "session": session,
        "event": event,
        "wait": wait,
        "late": 0.0,
        "timed": True,
        "jump": None,
        "sound": None,
        "resend": None,
        "tick": None,
        **kw,
    }
    return Message(**fields)


def verbs_by_video(line: str) -> list[str]:
    statements = json.loads(line.partition(" ")[2])["statements"]
    return [
        f"{json.loads(s)['verb']['display']['en-US']} {json.loads(s)['object']['id'][-2:]}"
        for s in statements
    ]


EVERY_RECORD: list[tuple[int, How]] = [(1, "restart"), (1, "kill"), (1, "restart")]


def test_idle_sessions_expire_least_recently_seen_first_after_a_restart() -> None:
    steps = [
        message(0, "s1", "Video Playback Started"),
        message(1, "s2", "Video Playback Started"),  # another player: v0 plays on
        message(0, "s1", "Video Content Playing", tick=45 * 60.0),  # v0 seen last
    ]
    ops = segment_traffic(steps)
    sweep = uninterrupted(ops, Limits())[3]
    assert verbs_by_video(sweep) == ["paused v1", "terminated v1", "paused v0", "terminated v0"]
    assert_resumes_exactly(ops, Limits(), EVERY_RECORD)


def test_an_actors_sessions_end_in_the_order_they_opened_after_a_restart() -> None:
    steps = [
        message(0, "s1", "Video Playback Started"),
        message(1, "s1", "Video Playback Paused"),  # opens v1; a pause ends nothing
        message(0, "s1", "Video Playback Paused"),  # v0 seen last, but opened first
        message(2, "s1", "Video Playback Started"),  # ends v0 and v1
    ]
    ops = segment_traffic(steps)
    ending = uninterrupted(ops, Limits())[3]
    assert verbs_by_video(ending)[:3] == ["terminated v0", "terminated v1", "initialized v2"]
    assert_resumes_exactly(ops, Limits(), EVERY_RECORD)


def test_the_ended_memory_forgets_the_oldest_first_after_a_restart() -> None:
    steps = [
        message(0, "s1", "Video Playback Started"),
        message(0, "s1", "Video Playback Exited"),  # index 1: v0 ended, remembered
        message(1, "s2", "Video Playback Started"),
        message(1, "s2", "Video Playback Exited"),
        message(0, "s1", "Video Playback Started"),  # v0 again, ended again: now the newest
        message(0, "s1", "Video Playback Exited"),
        message(2, None, "Video Playback Started"),
        message(2, None, "Video Playback Exited"),  # remembering v2 forgets v1, not v0
        message(0, "s1", "Video Playback Paused"),  # a late report of v0: ignored
    ]
    ops = segment_traffic(steps)
    truth = uninterrupted(ops, Limits(max_ended=2))
    assert json.loads(truth[8].partition(" ")[2])["ignored"] == [
        "segment Video Playback Paused: event for a session that has ended"
    ]
    assert_resumes_exactly(ops, Limits(max_ended=2), EVERY_RECORD)


# --- Each platform's traffic, from the truth simulator ----------------------------------------

# The learner ids each reporter writes, and what another learner's traffic carries instead.
_LEARNERS = {
    b"learner-42": b"learner-77",  # Segment userId
    b"1234567890": b"1234567899",  # Udacity userId
    b"7654321": b"7654329",  # Udemy's user cookie
    b"77001122": b"77001199",  # Coursera's user in the lecture API's path
}


def as_other_learner(request: golden.Request) -> golden.Request:
    body, url = request.body, request.url.encode()
    headers = {k: v.encode() for k, v in request.headers.items()}
    for mine, theirs in _LEARNERS.items():
        body, url = body.replace(mine, theirs), url.replace(mine, theirs)
        headers = {k: v.replace(mine, theirs) for k, v in headers.items()}
    return dataclasses.replace(
        request, body=body, url=url.decode(), headers={k: v.decode() for k, v in headers.items()}
    )


@dataclass(frozen=True)
class Viewing:
    platform: Platform
    seed: int
    tab: str
    video: int
    start: float  # seconds after T0 (hours apart: the idle timeout ends sessions between)
    other_learner: bool


viewings = st.builds(
    Viewing,
    platform=st.sampled_from(PLATFORMS),
    seed=st.integers(0, 2**16),
    tab=st.sampled_from(["a", "b"]),
    video=st.integers(1, 2),
    start=st.sampled_from([0.0, 30.0, 600.0, 3 * 3600.0]),
    other_learner=st.booleans(),
)


def viewing_traffic(viewings: list[Viewing], tick_times: list[float]) -> list[Op]:
    traffics = []
    for v in viewings:
        scenario = random_scenario(random.Random(v.seed), v.platform, v.tab)
        scenario = dataclasses.replace(scenario, video=v.video, start=v.start)
        traffic = scenario.traffic()
        if v.other_learner:
            traffic.requests = [as_other_learner(r) for r in traffic.requests]
        traffics.append(traffic)
    timed: list[tuple[datetime, Op]] = [(r.received_at, r) for r in merge(*traffics)]
    timed += [(T0 + timedelta(seconds=t), Tick(T0 + timedelta(seconds=t))) for t in tick_times]
    timed.sort(key=lambda x: x[0])  # stable: a tick after the requests of its moment
    return [*(op for _, op in timed), Stop()]


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    viewings=st.lists(viewings, min_size=2, max_size=5),
    tick_times=st.lists(st.floats(0, 4 * 3600), max_size=6),
    limits=limits,
    plan=plans,
)
def test_a_restored_translator_makes_the_same_statements_every_platform(
    viewings: list[Viewing], tick_times: list[float], limits: Limits, plan: list[tuple[int, How]]
) -> None:
    ops = viewing_traffic(viewings, tick_times)
    note(f"{len(ops)} records, {limits}, plan {plan}")
    assert_resumes_exactly(ops, limits, plan)


@pytest.mark.parametrize("case", golden.cases(), ids=lambda c: c.name)
def test_golden_cases_resume_exactly_after_a_restart_at_every_request(case: golden.Case) -> None:
    ops: list[Op] = [*case.requests(), Stop()]
    assert_resumes_exactly(ops, Limits(), EVERY_RECORD)
