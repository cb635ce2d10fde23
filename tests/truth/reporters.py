"""What each platform's tracker sends for a viewing: golden-style requests (tests/golden.py).

Clocks: a `Timeline` counts true seconds after `T0`. The browser's clock reads `T0 + t + skew`
(every time a body carries); the proxy's clock reads the true time plus the network delay
(`received_at`). Body shapes follow what the adapters read (src/xapitap/platforms/*.py) and the
golden inputs (tests/fixtures/golden/*/*.input.json):

- Segment Video Spec: `Video Playback Started/Paused/Resumed/Completed/Exited`, `Seek Started`
  (`position` = from, `seek_position` = to) + `Seek Completed` (`position` = to) on sites that
  report seeks, buffering as `Buffer Started/Completed`, and `Video Content Playing` heartbeats
  every `heartbeat` s of wall time while playing (the timer restarts on every play). One message
  per `/v1/t` request with its own `sentAt`, or `/v1/b` batches with a batch-level `sentAt`.
- Udacity: `Course Video Watched`, one per stretch, sent when the player pauses, seeks, ends
  (`playerState: ended`) or the learner leaves while it plays; over the same Segment transport.
- Udemy: a progress log every 15 s of wall time while playing (the timer restarts on every play;
  nothing while paused), `completed-lectures` once when `position > total - 15` while playing.
- Coursera: eventing `open_course.video.{play,pause,seek,heartbeat,end}` (seek: the target only;
  never a length), heartbeats every `heartbeat` s while playing; `videoEvents/ended` once when
  the video first ends (the user id in its path, the browser's visit cookie `__400v` with it).
  Eventing items carry the `visitId` and no user id, as the tracker sends them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from itertools import pairwise
from typing import Any
from typing import Literal

from golden import MAX_BODY
from golden import TEST_KEY
from golden import Request
from truth.player import MAX_RATE
from truth.player import Action
from truth.player import Interval
from truth.player import Timeline
from truth.player import random_actions
from truth.player import simulate
from xapitap.capture import Capture
from xapitap.pipeline import Pipeline
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
MAX_BATCH = 10  # analytics-next flushes at 10 events (or when its window closes)
UDEMY_CADENCE = 15.0
UDEMY_COMPLETION_OFFSET = 15.0

Platform = Literal["segment", "udacity", "udemy", "coursera"]
PLATFORMS: tuple[Platform, ...] = ("segment", "udacity", "udemy", "coursera")


@dataclass(frozen=True)
class Resend:
    index: int  # which resendable message (modulo their count)
    lag: float  # seconds after it was first sent


@dataclass(frozen=True)
class Delivery:
    """How the messages travel: the browser's clock skew, the network, batching, retries."""

    skew: float = 0.0  # browser clock minus true clock, seconds
    delay: float = 0.2  # network delay to the proxy, seconds
    jitter: float = 0.05  # extra delay of each request, uniform in [0, jitter]
    batch_every: float | None = None  # a batch window in seconds; None: a request per message
    shuffle: bool = False  # the messages of a batch arrive out of order
    resends: tuple[Resend, ...] = ()  # a message sent again later (same id, same body time)
    seed: int = 0  # for jitter and shuffling


@dataclass(frozen=True)
class SegmentSite:
    heartbeat: float = 10.0  # seconds of wall time between `Video Content Playing`
    reports_seeks: bool = True


@dataclass(frozen=True)
class CourseraSite:
    heartbeat: float = 5.0


Site = SegmentSite | CourseraSite | None


@dataclass(frozen=True)
class Report:
    """A playhead position the traffic gives (true time of the moment it describes)."""

    t: float
    position: float


@dataclass
class Traffic:
    requests: list[Request]
    # Positions the session model can read, in time order.
    reports: list[Report] = field(default_factory=list)
    # Content ranges a silent drag skipped where no observer of this traffic could tell the
    # drag from playback (see `_indistinguishable`): claiming them is not over-claiming.
    indistinguishable: list[Interval] = field(default_factory=list)
    # The platform says the video is complete (whatever was really played).
    platform_completed: bool = False
    # The traffic tells the true progress (what an exact model must reach; see `exact`).
    exact: bool = False


@dataclass
class _Msg:
    t: float  # true time of the moment it describes
    body: dict[str, Any]  # client-clock times already set
    position: float | None = None  # a position the model reads (None: not a position report)
    url: str = ""  # sent alone to this url (not batchable)
    headers: dict[str, str] = field(default_factory=dict)
    resendable: bool = True  # it has an id of its own (a retry of it is recognisable)


def client_time(t: float, skew: float) -> datetime:
    return T0 + timedelta(milliseconds=round((t + skew) * 1000))


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _epoch_ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


class _Outbox:
    """Messages in time order, never two at the same millisecond."""

    def __init__(self) -> None:
        self.msgs: list[_Msg] = []

    def add(self, msg: _Msg) -> None:
        if self.msgs and msg.t <= self.msgs[-1].t + 0.0005:
            msg.t = self.msgs[-1].t + 0.001
        self.msgs.append(msg)


Envelope = Callable[[list[dict[str, Any]], float], tuple[str, dict[str, Any]]]


def _deliver(
    msgs: list[_Msg],
    delivery: Delivery,
    end_time: float,
    envelope: Envelope,
    headers: dict[str, str],
) -> list[Request]:
    """Batch (or not), send, retry: the requests in the order the proxy receives them."""
    rng = random.Random(delivery.seed)
    sends: list[tuple[float, str, dict[str, Any], dict[str, str]]] = []
    first_sent: dict[int, float] = {}
    pending: list[int] = []
    opened = 0.0

    def flush(at: float) -> None:
        bodies = [msgs[i].body for i in pending]
        if delivery.shuffle:
            rng.shuffle(bodies)
        url, body = envelope(bodies, at)
        sends.append((at, url, body, headers))
        for i in pending:
            first_sent[i] = at
        pending.clear()

    every = delivery.batch_every
    for i, m in enumerate(msgs):
        if every is not None and pending and m.t > opened + every:
            flush(opened + every)
        if m.url:
            sends.append((m.t, m.url, m.body, m.headers))
            first_sent[i] = m.t
            continue
        if every is None:
            pending.append(i)
            flush(m.t)
            continue
        if not pending:
            opened = m.t
        pending.append(i)
        if len(pending) >= MAX_BATCH:
            flush(m.t)
    if pending:
        assert every is not None
        flush(max(min(opened + every, end_time), msgs[pending[-1]].t))

    timed: list[tuple[float, str, dict[str, Any], dict[str, str]]] = []
    last = -1e9
    for at, url, body, hdrs in sends:
        last = max(last + 0.001, at + delivery.delay + rng.uniform(0, delivery.jitter))
        timed.append((last, url, body, hdrs))
    resendable = [i for i, m in enumerate(msgs) if m.resendable]
    for resend in delivery.resends if resendable else ():
        i = resendable[resend.index % len(resendable)]
        at = first_sent[i] + resend.lag
        m = msgs[i]
        url, body = (m.url, m.body) if m.url else envelope([m.body], at)
        arrival = at + delivery.delay + rng.uniform(0, delivery.jitter)
        timed.append((arrival, url, body, m.headers if m.url else headers))
    timed.sort(key=lambda x: x[0])
    return [
        Request(
            method="POST",
            url=url,
            headers=dict(hdrs),
            body=json.dumps(body, separators=(",", ":")).encode("utf-8"),
            received_at=T0 + timedelta(milliseconds=round(arrival * 1000)),
        )
        for arrival, url, body, hdrs in timed
    ]


def _indistinguishable(
    timeline: Timeline,
    reports: list[Report],
    delivery: Delivery,
    cadence: float | None,
) -> list[Interval]:
    """Report intervals that hide a silent drag no observer could tell from playback.

    Between two consecutive position reports while playing, a drag the site does not report
    shows only in the advance. It is surely visible when the advance is more than playback at
    the top speed (3x) could make in the time the model sees between the reports (true time
    plus the network jitter), plus 1 s; or backwards by more than 1 s; or (fixed cadence)
    when the gap is longer than the cadence + 1 s. Otherwise the stretch between the two
    reported positions may be taken as played.
    """
    seeks = [h.t for h in timeline.happenings if h.kind == "seek"]
    slack = delivery.jitter + 0.01
    out: list[Interval] = []
    for a, b in pairwise(reports):
        if timeline.mode_at(a.t) not in ("playing", "stalled"):
            continue
        if not any(a.t < s < b.t for s in seeks):
            continue
        dt, advance = b.t - a.t, b.position - a.position
        visible = (
            advance > MAX_RATE * (dt + slack) + 1.0
            or advance < -1.0
            or (cadence is not None and dt - slack > cadence + 1.0)
        )
        if not visible and advance > 0:
            out.append((a.position, b.position))
    return out


def _quiet_enough(requests: list[Request]) -> bool:
    """No silence between requests long enough for the session model's idle timeout (30 min)."""
    times = [r.received_at for r in requests]
    return all((b - a).total_seconds() < 25 * 60 for a, b in pairwise(times))


# --- Segment Video Spec -----------------------------------------------------------------------

SEGMENT_PAGE = "https://learn.example.org/courses/stats/intro"
SEGMENT_URL = "https://api.segment.io/v1/"
WRITE_KEY = "WK-example"


def _segment_envelope(skew: float, batch: bool) -> Envelope:
    """analytics-next: one message per `/v1/t` with its own `sentAt`, or (batching) `/v1/b`
    with the batch's `sentAt`, even for a single message."""

    def envelope(bodies: list[dict[str, Any]], at: float) -> tuple[str, dict[str, Any]]:
        sent = iso(client_time(at, skew))
        if not batch:
            (message,) = bodies
            return SEGMENT_URL + "t", {**message, "sentAt": sent, "writeKey": WRITE_KEY}
        return SEGMENT_URL + "b", {"batch": bodies, "sentAt": sent, "writeKey": WRITE_KEY}

    return envelope


def segment(
    timeline: Timeline, site: SegmentSite, delivery: Delivery, tab: str = "a", video: int = 1
) -> Traffic:
    out = _Outbox()
    length = round(timeline.length, 3)

    def send(t: float, event: str, position: float, report: bool = True, **extra: Any) -> None:
        props = {
            "session_id": f"play-{tab}",
            "content_asset_id": f"intro-{100 + video}",
            "title": "Welcome to Statistics",
            "position": round(position, 3),
            "total_length": length,
            "livestream": False,
            **extra,
        }
        body = {
            "type": "track",
            "event": event,
            "properties": props,
            "userId": "learner-42",
            "anonymousId": "9f1c2d3e-0000-4000-8000-000000000001",
            "messageId": f"ajs-next-{tab}-{len(out.msgs):04d}",
            "timestamp": iso(client_time(t, delivery.skew)),
            "context": {
                "page": {"url": SEGMENT_PAGE + "?utm_source=mail"},
                "library": {"name": "analytics.js", "version": "next-1.70.0"},
            },
        }
        out.add(_Msg(t, body, position if report else None))

    ticks = timeline.ticks(site.heartbeat)
    moments = sorted(
        [(h.t, 0, h) for h in timeline.happenings] + [(t, 1, None) for t in ticks],
        key=lambda x: (x[0], x[1]),
    )
    started = False
    for t, _, h in moments:
        if h is None:
            send(t, "Video Content Playing", timeline.position_at(t))
            continue
        if h.kind == "start":
            started = True
            send(t, "Video Playback Started", h.position)
        elif h.kind == "resume":
            send(t, "Video Playback Resumed", h.position)
        elif h.kind == "pause":
            send(t, "Video Playback Paused", h.position)
        elif h.kind == "seek" and site.reports_seeks:
            assert h.to is not None
            send(t, "Video Playback Seek Started", h.position, seek_position=round(h.to, 3))
            send(t + 0.001, "Video Playback Seek Completed", h.to)
        elif h.kind == "stall":
            send(t, "Video Playback Buffer Started", h.position, report=False)
        elif h.kind == "unstall":
            send(t, "Video Playback Buffer Completed", h.position, report=False)
        elif h.kind == "end":
            send(t, "Video Playback Completed", timeline.length)
        elif h.kind == "leave" and started:
            send(t, "Video Playback Exited", h.position)
    envelope = _segment_envelope(delivery.skew, delivery.batch_every is not None)
    requests = _deliver(
        out.msgs, delivery, timeline.end_time, envelope, {"Content-Type": "text/plain"}
    )
    reports = [Report(m.t, m.position) for m in out.msgs if m.position is not None]
    # Segment: seeks reported (never a silent jump), one speed all along (nothing the model
    # cannot see changes the rate) and no stall (the playhead never stops while "playing").
    exact = (
        site.reports_seeks
        and not timeline.has("speed")
        and not timeline.has("stall")
        and _quiet_enough(requests)
    )
    return Traffic(
        requests,
        reports,
        [] if site.reports_seeks else _indistinguishable(timeline, reports, delivery, None),
        platform_completed=timeline.has("end"),
        exact=exact and started,
    )


# --- Udacity ----------------------------------------------------------------------------------

UDACITY_PAGE = "https://classroom.udacity.com/courses/cs271/lessons/48688925/concepts/"


def udacity(timeline: Timeline, delivery: Delivery, tab: str = "a", video: int = 1) -> Traffic:
    out = _Outbox()
    length = round(timeline.length, 3)

    def send(t: float, start: float, end: float, state: str) -> None:
        start, end = round(start, 3), round(end, 3)
        props = {
            "conceptKey": str(487421730922 + video),
            "courseKey": "cs271",
            "lessonKey": "48688925",
            "atomKey": str(48742172 + video),
            "concept_title": "Terminology",
            "course_title": "Intro to Artificial Intelligence",
            "lesson_title": "1. Welcome to AI",
            "course_key": "cs271",
            "content_type": "course",
            "startTime": start,
            "endTime": end,
            "videoDuration": length,
            "durationWatched": round(end - start, 3),
            "playerState": state,
        }
        body = {
            "type": "track",
            "event": "Course Video Watched",
            "properties": props,
            "userId": "1234567890",
            "anonymousId": "37079069-bbe4-4a20-ab33-b904b2d324fa",
            "messageId": f"ajs-{tab}-{len(out.msgs):04d}",
            "timestamp": iso(client_time(t, delivery.skew)),
            "context": {
                "page": {"url": f"{UDACITY_PAGE}{487421730922 + video}"},
                "library": {"name": "analytics.js", "version": "3.6.0"},
            },
        }
        out.add(_Msg(t, body, end))

    since: float | None = None  # where the stretch playing now began
    for h in timeline.happenings:
        if h.kind in ("start", "resume"):
            since = h.position
        elif h.kind == "pause" and since is not None:
            send(h.t, since, h.position, "paused")
            since = None
        elif h.kind == "seek" and since is not None:
            assert h.to is not None
            send(h.t, since, h.position, "paused")
            since = h.to
        elif h.kind == "end" and since is not None:
            send(h.t, since, timeline.length, "ended")
            since = None
        elif h.kind == "leave" and since is not None:
            send(h.t, since, h.position, "paused")
            since = None
    envelope = _segment_envelope(delivery.skew, delivery.batch_every is not None)
    requests = _deliver(
        out.msgs, delivery, timeline.end_time, envelope, {"Content-Type": "text/plain"}
    )
    return Traffic(
        requests,
        [Report(m.t, m.position) for m in out.msgs if m.position is not None],
        platform_completed=timeline.has("end"),
        # Every stretch is reported with its exact ends.
        exact=bool(out.msgs) and _quiet_enough(requests),
    )


# --- Udemy ------------------------------------------------------------------------------------

UDEMY = "https://www.udemy.com/api-2.0/users/me/subscribed-courses/4242"
UDEMY_HEADERS = {"Cookie": "ud_cache_user=7654321", "Content-Type": "application/json"}


def _udemy_completion_time(timeline: Timeline) -> float | None:
    """First moment the position is beyond total - 15 while playing."""
    threshold = timeline.length - UDEMY_COMPLETION_OFFSET
    for s in timeline.spans:
        if s.mode != "playing" or s.t1 <= s.t0 or s.p1 <= threshold:
            continue
        if s.p0 > threshold:
            return s.t0
        return min(s.t0 + (threshold - s.p0) / s.rate + 0.001, s.t1)
    return None


def udemy(timeline: Timeline, delivery: Delivery, tab: str = "a", video: int = 1) -> Traffic:
    out = _Outbox()
    total = round(timeline.length, 3)
    completion = _udemy_completion_time(timeline)
    moments = [(t, "log") for t in timeline.ticks(UDEMY_CADENCE)]
    if completion is not None:
        moments.append((completion, "completed"))
    for t, what in sorted(moments):
        if what == "log":
            position = timeline.position_at(t)
            body = {
                "position": round(position, 3),
                "total": total,
                "time": iso(client_time(t, delivery.skew)),
                "context": {"type": "Lecture"},
            }
            url = f"{UDEMY}/lectures/{9001 + video}/progress-logs/"
            out.add(_Msg(t, body, position, url, UDEMY_HEADERS))
        else:
            body = {"lecture_id": 9001 + video, "downloaded": False}
            url = f"{UDEMY}/completed-lectures/"
            out.add(_Msg(t, body, None, url, UDEMY_HEADERS, resendable=False))

    def unused(bodies: list[dict[str, Any]], at: float) -> tuple[str, dict[str, Any]]:
        raise AssertionError("Udemy sends every message on its own")

    requests = _deliver(out.msgs, delivery, timeline.end_time, unused, UDEMY_HEADERS)
    reports = [Report(m.t, m.position) for m in out.msgs if m.position is not None]
    return Traffic(
        requests,
        reports,
        _indistinguishable(timeline, reports, delivery, UDEMY_CADENCE),
        platform_completed=completion is not None,
    )


# --- Coursera ---------------------------------------------------------------------------------

COURSERA = "https://www.coursera.org"
COURSERA_USER = "77001122"  # in the lecture API's path


def coursera(
    timeline: Timeline, site: CourseraSite, delivery: Delivery, tab: str = "a", video: int = 1
) -> Traffic:
    out = _Outbox()
    visit = f"a0a0a0a0-0000-4000-8000-00000000000{tab}"
    item = "8xwbQ" if video == 1 else f"8xwbQ{video}"

    def send(t: float, action: str, position: float, report: bool = True) -> None:
        event = {
            "key": f"open_course.video.{action}",
            "value": {
                "open_course_slug": "geospatial",
                "item_id": item,
                "video_name": "Lesson 1 - Lecture 1",
                "lesson_id": "gAaTS",
                "module_id": "EOiNh",
                "timecode": round(position, 3),
                "appName": "ondemand",
            },
            "clientType": "web",
            "url": f"{COURSERA}/learn/geospatial/lecture/{item}/lesson-1-lecture-{video}",
            "app": "phoenix",
            "guid": f"7c2e{tab}000-0000-4000-8000-{len(out.msgs):012d}",
            "visitId": visit,
            "clientTimestamp": _epoch_ms(client_time(t, delivery.skew)),
            "sequence": 5000 + len(out.msgs),
        }
        out.add(_Msg(t, event, position if report else None))

    ticks = timeline.ticks(site.heartbeat)
    moments = sorted(
        [(h.t, 0, h) for h in timeline.happenings] + [(t, 1, None) for t in ticks],
        key=lambda x: (x[0], x[1]),
    )
    ended_sent = False
    for t, _, h in moments:
        if h is None:
            send(t, "heartbeat", timeline.position_at(t))
        elif h.kind in ("start", "resume"):
            send(t, "play", h.position)
        elif h.kind == "pause":
            send(t, "pause", h.position)
        elif h.kind == "seek":
            assert h.to is not None
            send(t, "seek", h.to, report=False)
        elif h.kind == "end":
            send(t, "end", timeline.length)
            if not ended_sent:
                ended_sent = True
                url = (
                    f"{COURSERA}/api/opencourse.v1/user/{COURSERA_USER}/course/geospatial"
                    f"/item/{item}/lecture/videoEvents/ended?autoEnroll=false"
                )
                headers = {
                    "Content-Type": "application/json",
                    "Cookie": f"__400v={visit}; CSRF3-Token=1717232400~abc",
                }
                body: dict[str, Any] = {"contentRequestBody": {}}
                out.add(_Msg(t, body, None, url, headers, resendable=False))

    def envelope(bodies: list[dict[str, Any]], at: float) -> tuple[str, dict[str, Any]]:
        batch = {"clientType": "web", "app": "phoenix", "events": bodies}
        return f"{COURSERA}/api/rest/v1/eventing/infobatch", batch

    requests = _deliver(
        out.msgs, delivery, timeline.end_time, envelope, {"Content-Type": "application/json"}
    )
    return Traffic(
        requests,
        [Report(m.t, m.position) for m in out.msgs if m.position is not None],
        platform_completed=ended_sent,
    )


# --- Scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One learner viewing one video on one platform, and how the traffic travels."""

    platform: Platform
    length: float
    actions: tuple[Action, ...]
    rate: float = 1.0
    site: Site = None
    delivery: Delivery = Delivery()
    tab: str = "a"  # a browser tab: its own playback session id (Segment), visit (Coursera)
    video: int = 1  # which video of the course
    start: float = 0.0  # when the page opens, seconds after T0

    def timeline(self) -> Timeline:
        return simulate(self.length, self.actions, self.rate, self.start)

    def traffic(self) -> Traffic:
        timeline = self.timeline()
        if self.platform == "segment":
            assert isinstance(self.site, SegmentSite)
            return segment(timeline, self.site, self.delivery, self.tab, self.video)
        if self.platform == "udacity":
            return udacity(timeline, self.delivery, self.tab, self.video)
        if self.platform == "udemy":
            return udemy(timeline, self.delivery, self.tab, self.video)
        assert isinstance(self.site, CourseraSite)
        return coursera(timeline, self.site, self.delivery, self.tab, self.video)


def random_scenario(rng: random.Random, platform: Platform, tab: str = "a") -> Scenario:
    """A scenario from plain `random` (the determinism test's fixed set)."""
    length = float(rng.choice([45, 60, 120, 300]))
    batch = platform in ("segment", "udacity", "coursera") and rng.random() < 0.6
    delivery = Delivery(
        skew=rng.choice([0.0, 90.0, -3600.0, 7200.0]),
        delay=round(rng.uniform(0.05, 1.0), 3),
        batch_every=rng.choice([2.0, 5.0]) if batch else None,
        shuffle=batch and rng.random() < 0.5,
        resends=tuple(Resend(rng.randrange(50), rng.uniform(1, 90)) for _ in range(2)),
        seed=rng.randrange(1000),
    )
    site: Site = None
    if platform == "segment":
        site = SegmentSite(float(rng.randint(1, 10)), rng.random() < 0.5)
    elif platform == "coursera":
        site = CourseraSite(float(rng.randint(1, 10)))
    actions = tuple(random_actions(rng, length, rng.randint(4, 14)))
    return Scenario(platform, length, actions, rng.choice([1.0, 1.5]), site, delivery, tab)


# --- Replaying traffic through the pipeline ---------------------------------------------------


@dataclass
class Replay:
    statements: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)


def replay(requests: list[Request]) -> Replay:
    """Every request through one fresh Pipeline, then the proxy stops (as golden.run does)."""
    pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(TEST_KEY)), MAX_BODY)
    matcher = pipeline.matcher()
    out = Replay()
    for request in requests:
        capture = request.capture()
        match = matcher.match(
            capture.method, capture.host, capture.path, capture.header, partial(_body, capture)
        )
        if match is None:
            out.unmatched.append(request.url)
            continue
        outcome = pipeline.process(match, capture)
        out.statements += [json.loads(s.to_json()) for s, _ in outcome.statements]
        out.quarantined += [q.reason for q, _ in outcome.quarantined]
        out.ignored += outcome.ignored
        out.errors += outcome.errors
    out.statements += [json.loads(s.to_json()) for s, _ in pipeline.finish().statements]
    return out


def _body(capture: Capture) -> bytes:
    return capture.body  # never content-encoded here


def merge(*traffics: Traffic) -> list[Request]:
    """The requests of several viewings (tabs) as one proxy receives them."""
    return sorted((r for t in traffics for r in t.requests), key=lambda r: r.received_at)
