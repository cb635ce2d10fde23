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
- YouTube: a `/api/stats/playback` ping when playback starts, then `/api/stats/watchtime` at
  10, 20, 30 s of wall time after it and every 40 s (while paused too), at each pause where
  the site flushes on pause, and at the leave (`final=1`); `st`/`et` the intervals played since
  the previous flush (`st = et = cmt` when none), `state` playing or paused. Query strings only.
- Open edX: the video events plugin's Logger.log form POSTs to `/event`, one per event as it
  happens (`load_video` as the page opens, `play_video` on the first play and the first after a
  pause, seek or end, `pause_video`, `seek_video`, `speed_change_video`; at the end
  `stop_video`, after a `pause_video` on HTML5 players), `complete_video` and the completion
  handler's POST once, when the playhead first passes 95 % or at the end. No time in the body,
  no resends (jQuery does not retry), nothing on buffering or on the leave.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from itertools import pairwise
from typing import Any
from typing import Literal
from urllib.parse import urlencode

from golden import MAX_BODY
from golden import TEST_KEY
from golden import Request
from support.openedx_browser import COURSE as OPENEDX_COURSE
from support.openedx_browser import LMS as OPENEDX_LMS
from support.openedx_browser import logger_log as openedx_log
from support.openedx_browser import publish_completion as openedx_completion
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

Platform = Literal["segment", "udacity", "udemy", "coursera", "youtube", "openedx"]
PLATFORMS: tuple[Platform, ...] = ("segment", "udacity", "udemy", "coursera", "youtube", "openedx")


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


@dataclass(frozen=True)
class YouTubeSite:
    """What the research leaves open, drawn both ways: whether a pause flushes at once (else at
    the next scheduled flush, as the 2020 embed's paused ping suggests), the method (GET before,
    POST in 2026), and whether the last ping says `paused` whatever the player did (the 2026
    captures left a playing video with `state=paused&final=1`)."""

    flush_on_pause: bool = False
    method: str = "GET"
    final_paused: bool = True


@dataclass(frozen=True)
class OpenEdxSite:
    """The two players behind Open edX's video block: HTML5 sends `pause_video` before
    `stop_video` at the end (the media element pauses, then ends), YouTube does not; whether
    the player logs `play_video` again after a seek made while playing (it does once the
    player reports playing again: YouTube's buffering, HTML5's `playing`)."""

    html5: bool = True
    play_after_seek: bool = True


Site = SegmentSite | CourseraSite | YouTubeSite | OpenEdxSite | None


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


# --- YouTube (embedded player stats pings) ----------------------------------------------------

YOUTUBE_PLAYBACK = "https://s.youtube.com/api/stats/playback"
YOUTUBE_WATCHTIME = "https://www.youtube.com/api/stats/watchtime"
YOUTUBE_PAGE = "https://learn.example.org/courses/stats/intro?unit=2"
# The player's flush schedule, wall seconds after playback starts (dashboard-replay-youtube.md
# §D): videostatsScheduledFlushWalltimeSeconds, then every videostatsDefaultFlushIntervalSeconds.
YOUTUBE_SCHEDULE = (10.0, 20.0, 30.0)
YOUTUBE_EVERY = 40.0


def _youtube_flushes(timeline: Timeline, started: float, site: YouTubeSite) -> list[float]:
    """Wall times of the flushes before the leave (the leave flushes with final=1)."""
    times = [started + s for s in YOUTUBE_SCHEDULE]
    while (nxt := times[-1] + YOUTUBE_EVERY) < timeline.end_time:
        times.append(nxt)
    if site.flush_on_pause:
        times += [h.t for h in timeline.happenings if h.kind == "pause"]
    return sorted(t for t in set(times) if started < t < timeline.end_time)


def _played_between(timeline: Timeline, t0: float, t1: float) -> list[Interval]:
    """The content intervals played in wall time (t0, t1], one per stretch: playback goes on in
    one interval across a speed change or a stall; a pause, an end or a seek starts another."""
    out: list[Interval] = []
    joinable = False
    for s in timeline.spans:
        a, b = max(s.t0, t0), min(s.t1, t1)
        if b <= a or s.mode == "stalled":
            continue
        if s.mode != "playing":
            joinable = False  # paused or ended: playback after it is another interval
            continue
        p0 = s.p0 + s.rate * (a - s.t0)
        p1 = min(s.p0 + s.rate * (b - s.t0), timeline.length)
        if joinable and abs(out[-1][1] - p0) < 1e-9:
            out[-1] = (out[-1][0], p1)
        else:
            out.append((p0, p1))
        joinable = True
    return out


def youtube(
    timeline: Timeline, site: YouTubeSite, delivery: Delivery, tab: str = "a", video: int = 1
) -> Traffic:
    out = _Outbox()
    length = round(timeline.length, 3)
    cpn = f"cpn-{tab}-video{video:02d}"
    docid = f"yTvid{video:06d}"
    start = next((h for h in timeline.happenings if h.kind == "start"), None)
    if start is None:  # the player never started: it sends no stats pings
        return Traffic([], [], exact=False)

    def fmt(x: float) -> str:  # seconds as the player writes them: 3 decimals at most
        return f"{x:.3f}".rstrip("0").rstrip(".")

    def send(path: str, t: float, params: list[tuple[str, str]], position: float) -> None:
        common = [("ns", "yt"), ("el", "embedded"), ("cpn", cpn), ("ver", "2")]
        common += [("euri", YOUTUBE_PAGE), ("len", fmt(length)), ("docid", docid)]
        query = urlencode([*common, ("rt", fmt(t - start.t)), *params])
        out.add(_Msg(t, {}, position, f"{path}?{query}"))

    sound = [("volume", "100"), ("muted", "0")]
    send(YOUTUBE_PLAYBACK, start.t, [("cmt", fmt(start.position)), *sound], start.position)
    previous = start.t
    flushes = [(t, False) for t in _youtube_flushes(timeline, start.t, site)]
    for t, final in [*flushes, (timeline.end_time, True)]:
        played = [(round(a, 3), round(b, 3)) for a, b in _played_between(timeline, previous, t)]
        cmt = round(timeline.position_at(t), 3)
        mode = timeline.mode_at(t - 1e-6 if final else t)  # the leave itself stops nothing
        playing = mode in ("playing", "stalled") and not (final and site.final_paused)
        pairs = played or [(cmt, cmt)]  # nothing played since the last flush: st = et = cmt
        params = [
            ("cmt", fmt(cmt)),
            ("state", "playing" if playing else "paused"),
            ("st", ",".join(fmt(a) for a, _ in pairs)),
            ("et", ",".join(fmt(b) for _, b in pairs)),
            *sound,
        ]
        if final:
            params.append(("final", "1"))
        send(YOUTUBE_WATCHTIME, t, params, cmt)
        previous = t

    def unused(bodies: list[dict[str, Any]], at: float) -> tuple[str, dict[str, Any]]:
        raise AssertionError("YouTube sends every ping on its own")

    sent = _deliver(out.msgs, delivery, timeline.end_time, unused, {})
    # Everything is in the URL: the body is empty, whatever the method.
    requests = [replace(r, method=site.method, body=b"") for r in sent]
    return Traffic(
        requests,
        [Report(m.t, m.position) for m in out.msgs if m.position is not None],
        # The st/et intervals are the played stretches, exactly (to the millisecond).
        exact=_quiet_enough(requests),
    )


# --- Open edX (the LMS's video block) ---------------------------------------------------------

OPENEDX_COMPLETION = 0.95  # the video block's default completion percentage
# The unit each video is on, as the learning MFE's iframe shows it (one unit per video).
OPENEDX_PAGE = f"{OPENEDX_LMS}/xblock/block-v1:{OPENEDX_COURSE[10:]}+type@vertical+block@unit"


def _openedx_completion_time(timeline: Timeline) -> float | None:
    """When the player's completion handler fires: the first timeupdate past 95 % of the
    length (playing, or a seek landing there), else the end (09_completion.js)."""
    threshold = OPENEDX_COMPLETION * timeline.length
    times = [h.t for h in timeline.happenings if h.kind == "end"]
    times += [h.t for h in timeline.happenings if h.kind == "seek" and (h.to or 0) > threshold]
    for s in timeline.spans:
        if s.mode == "playing" and s.t1 > s.t0 and s.p0 <= threshold < s.p1:
            times.append(s.t0 + (threshold - s.p0) / s.rate + 0.001)
    return min(times, default=None)


def _rates_around(timeline: Timeline, t: float) -> tuple[float, float]:
    """The playback rate just before and just after wall time t."""
    before = [s.rate for s in timeline.spans if s.t0 < t]
    after = [s.rate for s in timeline.spans if s.t0 >= t]
    old = before[-1] if before else timeline.spans[0].rate
    return old, after[0] if after else old


def openedx(
    timeline: Timeline, site: OpenEdxSite, delivery: Delivery, tab: str = "a", video: int = 1
) -> Traffic:
    out = _Outbox()
    length = round(timeline.length, 3)
    block = f"{video:032x}"
    page = f"{OPENEDX_PAGE}{video}"
    common = {"id": block, "code": "html5" if site.html5 else "yt-" + block[:8], "duration": length}

    def log(t: float, name: str, position: float | None = None, **data: Any) -> None:
        fields = {**common, **data}
        if position is not None:
            key = "current_time" if name == "speed_change_video" else "currentTime"
            fields[key] = round(position, 3)
        request = openedx_log(name, fields, T0, page=page)
        out.add(_Msg(t, {"form": request.body.decode()}, position, request.url, request.headers))
        out.msgs[-1].resendable = False  # jQuery does not retry; a resend is a new event

    if not timeline.happenings:
        return Traffic([], [])
    log(timeline.happenings[0].t - 1.0, "load_video")
    completion = _openedx_completion_time(timeline)
    moments = sorted(
        [(h.t, 0, h) for h in timeline.happenings]
        + ([(completion, 1, None)] if completion is not None else []),
        key=lambda x: (x[0], x[1]),
    )
    for t, _, h in moments:
        if h is None:
            log(t, "complete_video", timeline.position_at(t))
            usage = f"block-v1:{OPENEDX_COURSE[10:]}+type@video+block@{block}"
            request = openedx_completion(usage, T0, page=page)
            out.add(_Msg(t, {"form": request.body.decode()}, None, request.url, request.headers))
            out.msgs[-1].resendable = False
        elif h.kind in ("start", "resume"):
            log(t, "play_video", h.position)
        elif h.kind == "pause":
            log(t, "pause_video", h.position)
        elif h.kind == "seek":
            assert h.to is not None
            log(t, "seek_video", None, old_time=round(h.position, 3), new_time=round(h.to, 3))
            if site.play_after_seek and timeline.mode_at(t) == "playing":
                log(t + 0.001, "play_video", timeline.position_at(t + 0.001))
        elif h.kind == "speed":
            old, new = _rates_around(timeline, t)
            speeds = {"old_speed": f"{old:.2f}", "new_speed": f"{new:.2f}"}
            log(t, "speed_change_video", timeline.position_at(t), **speeds)
        elif h.kind == "end":
            if site.html5:
                log(t, "pause_video", timeline.length)
            log(t, "stop_video", timeline.length)

    def unused(bodies: list[dict[str, Any]], at: float) -> tuple[str, dict[str, Any]]:
        raise AssertionError("Open edX sends every event on its own")

    sent = _deliver(out.msgs, delivery, timeline.end_time, unused, {})
    requests = [replace(r, body=json.loads(r.body)["form"].encode()) for r in sent]
    reports = [Report(m.t, m.position) for m in out.msgs if m.position is not None]
    # Every stretch's start and end is reported (plays, pauses, seeks, speeds, the end),
    # unless the learner leaves while it plays: nothing is sent then. A stall is not: the
    # positions that complete_video and the settings events report while "playing" then
    # measure a slower rate than the player's (as Segment's heartbeats would).
    left_playing = timeline.mode_at(timeline.end_time - 1e-6) in ("playing", "stalled")
    return Traffic(
        requests,
        reports,
        platform_completed=completion is not None,
        exact=timeline.started
        and not left_playing
        and not timeline.has("stall")
        and _quiet_enough(requests),
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
        if self.platform == "youtube":
            assert isinstance(self.site, YouTubeSite)
            return youtube(timeline, self.site, self.delivery, self.tab, self.video)
        if self.platform == "openedx":
            assert isinstance(self.site, OpenEdxSite)
            return openedx(timeline, self.site, self.delivery, self.tab, self.video)
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
    elif platform == "youtube":
        site = YouTubeSite(rng.random() < 0.5, rng.choice(["GET", "POST"]), rng.random() < 0.5)
    elif platform == "openedx":
        site = OpenEdxSite(rng.random() < 0.5, rng.random() < 0.5)
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
