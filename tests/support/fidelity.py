"""Traffic as the platforms send it, and facts about statements, for the fidelity tests.

Builders make request bodies in each platform's wire format (Segment Video Spec and
`Course Video Watched`, Udemy progress logs and course-taking events, Coursera eventing);
`Run` drives the pipeline with them as `golden.run` does; the other helpers read what the
statements claim (verbs, sessions, played-segments) so tests can compare it with the truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import golden
from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decompress
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.xapi import vocab as v

T0 = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
PAGE = "https://learn.example.org/courses/stats/intro"
SEGMENT_T = "https://api.segment.io/v1/t"
SEGMENT_B = "https://api.segment.io/v1/b"
UDEMY = "https://www.udemy.com/api-2.0/users/me/subscribed-courses/4242"
UDEMY_LOG = f"{UDEMY}/lectures/9002/progress-logs/"
UDEMY_COMPLETED = f"{UDEMY}/completed-lectures/"
UDEMY_CONTROLS = "https://www.udemy.com/api-2.0/visits/me/course-taking-events/"
UDEMY_COOKIE = {"Cookie": "ud_cache_user=7654321; __udmy_2_v57r=a1b2c3d4e5f60718293a4b5c6d7e8f90"}
COURSERA_EVENTING = "https://www.coursera.org/api/rest/v1/eventing/infobatch"
COURSERA_USER = "77001122"
COURSERA_ENDED = (
    f"https://www.coursera.org/api/opencourse.v1/user/{COURSERA_USER}/course/geospatial"
    "/item/8xwbQ/lecture/videoEvents/ended?autoEnroll=false"
)
VISIT = "12345679-1234-5678-9012-34567890"
UDACITY_PAGE = "https://classroom.udacity.com/courses/cs271/lessons/48688925/concepts/487421730923"


def at(seconds: float, base: datetime = T0) -> datetime:
    return base + timedelta(seconds=seconds)


def iso(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


# --- Segment ---------------------------------------------------------------------------------


def seg(
    event: str,
    t: float,
    position: float | None,
    *,
    mid: str | None = None,
    sid: str | None = "s1",
    asset: str | None = "v1",
    total: float | None = 60,
    page: str = PAGE,
    sent: float | None = None,
    base: datetime = T0,
    **props: Any,
) -> dict[str, Any]:
    """A Video Spec track message, timestamped `t` s after `base` on the browser's clock and
    sent at `sent` (default: at once). `asset=None` sends `content_asset_id: null` as the
    spec's own example does; `sid=None` leaves `session_id` out."""
    properties: dict[str, Any] = {"content_asset_id": asset}
    if sid is not None:
        properties["session_id"] = sid
    if position is not None:
        properties["position"] = position
    if total is not None:
        properties["total_length"] = total
    properties.update(props)
    return {
        "type": "track",
        "event": event,
        "properties": properties,
        "userId": "learner-42",
        "anonymousId": "9f1c2d3e-0000-4000-8000-000000000001",
        "messageId": mid or f"ajs-{event.split()[-1].lower()}-{t:g}-{sid}-{asset}",
        "timestamp": iso(at(t, base)),
        "sentAt": iso(at(t if sent is None else sent, base)),
        "writeKey": "WK-example",
        "context": {"page": {"url": page}, "library": {"name": "analytics.js", "version": "next"}},
    }


def batch(messages: list[dict[str, Any]], sent_at: datetime) -> dict[str, Any]:
    """An analytics-next `/v1/b` body: every message stamped with the batch's sentAt."""
    sent = iso(sent_at)
    return {"batch": [{**m, "sentAt": sent} for m in messages], "sentAt": sent}


def watched(
    t: float,
    start: float,
    end: float,
    *,
    state: str = "paused",
    mid: str | None = None,
    duration: float = 60,
    base: datetime = T0,
) -> dict[str, Any]:
    """Udacity's `Course Video Watched` (one stretch), sent over Segment at `t`."""
    return {
        "type": "track",
        "event": "Course Video Watched",
        "properties": {
            "courseKey": "cs271",
            "lessonKey": "48688925",
            "conceptKey": "487421730923",
            "atomKey": "48742173",
            "startTime": start,
            "endTime": end,
            "videoDuration": duration,
            "playerState": state,
        },
        "userId": "1234567890",
        "anonymousId": "37079069-bbe4-4a20-ab33-b904b2d324fa",
        "messageId": mid or f"ajs-watched-{start:g}-{end:g}",
        "timestamp": iso(at(t, base)),
        "sentAt": iso(at(t, base)),
        "writeKey": "WK-udacity",
        "context": {"page": {"url": UDACITY_PAGE}},
    }


# --- Udemy -----------------------------------------------------------------------------------


def progress_log(t: float, position: float, total: float) -> dict[str, Any]:
    return {
        "position": position,
        "total": total,
        "time": iso(at(t)),
        "context": {"type": "Lecture"},
    }


def video_controls(action: str, ms_position: int, **extra: Any) -> dict[str, Any]:
    return {
        "userId": 7654321,
        "courseId": 4242,
        "objectId": 9002,
        "ctVersion": "1",
        "category": "Video Controls",
        "action": action,
        "extra": {"msPosition": ms_position, **extra},
    }


# --- Coursera --------------------------------------------------------------------------------


def coursera_item(
    action: str, t: float, timecode: float, guid: str, *, base: datetime = T0
) -> dict[str, Any]:
    return {
        "key": f"open_course.video.{action}",
        "value": {
            "open_course_slug": "geospatial",
            "item_id": "8xwbQ",
            "video_name": "Lesson 1 - Lecture 1",
            "lesson_id": "gAaTS",
            "module_id": "EOiNh",
            "timecode": timecode,
            "appName": "ondemand",
        },
        "clientType": "web",
        "url": "https://www.coursera.org/learn/geospatial/lecture/8xwbQ/lesson-1-lecture-1",
        "app": "phoenix",
        "guid": guid,
        "visitId": VISIT,
        "clientTimestamp": int(at(t, base).timestamp() * 1000),
        "sequence": 4000,
    }


def eventing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"clientType": "web", "app": "phoenix", "clientVersion": "build-1", "events": items}


# --- the pipeline ----------------------------------------------------------------------------


@dataclass
class Sent:
    """What the pipeline made of one request (a crash drops it all, as the translator does)."""

    rule: str | None
    statements: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crash: str | None = None


@dataclass
class Run:
    """One pipeline, fed request by request; `statements` is everything kept, in order."""

    key: bytes = golden.TEST_KEY
    sent: list[Sent] = field(default_factory=list)
    statements: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(self.key)), golden.MAX_BODY)
        self.matcher = self.pipeline.matcher()

    def post(
        self,
        url: str,
        body: Any,
        received: float | datetime,
        headers: dict[str, str] | None = None,
        method: str = "POST",
    ) -> Sent:
        when = received if isinstance(received, datetime) else at(received)
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        hdrs = {"Content-Type": "text/plain", **(headers or {})}
        capture = golden.Request(method, url, hdrs, raw, when).capture()
        match = self.matcher.match(
            capture.method, capture.host, capture.path, capture.header, lambda: _plain(capture)
        )
        if match is None:
            result = Sent(rule=None)
        else:
            try:
                outcome = self.pipeline.process(match, capture)
            except Exception as e:  # the translator logs it and drops the request's outcome
                result = Sent(rule=match.rule.name, crash=f"{type(e).__name__}: {e}")
            else:
                result = self._keep(match.rule.name, outcome)
        self.sent.append(result)
        return result

    def sweep(self, now: datetime) -> list[dict[str, Any]]:
        return self._keep("(sweep)", self.pipeline.sweep(now)).statements

    def finish(self) -> list[dict[str, Any]]:
        return self._keep("(proxy stops)", self.pipeline.finish()).statements

    def _keep(self, rule: str, outcome: Outcome) -> Sent:
        result = Sent(
            rule=rule,
            statements=[json.loads(s.to_json()) for s, _ in outcome.statements],
            quarantined=[q.reason for q, _ in outcome.quarantined],
            ignored=list(outcome.ignored),
            errors=list(outcome.errors),
        )
        self.statements.extend(result.statements)
        self.quarantined.extend(result.quarantined)
        return result

    @property
    def crashes(self) -> list[str]:
        return [s.crash for s in self.sent if s.crash]


def _plain(capture: Capture) -> bytes:
    try:
        return decompress(capture.body, capture.header("content-encoding"), golden.MAX_BODY)
    except DecodeError:
        return capture.body


# --- reading statements ----------------------------------------------------------------------


def verb(s: dict[str, Any]) -> str:
    return str(s["verb"]["display"]["en-US"])


def verbs(statements: list[dict[str, Any]]) -> list[str]:
    return [verb(s) for s in statements]


def ext(s: dict[str, Any], key: str) -> Any:
    result = s.get("result", {}).get("extensions", {})
    return result[key] if key in result else s["context"]["extensions"].get(key)


def source(s: dict[str, Any]) -> dict[str, Any]:
    return s["context"]["extensions"][v.SOURCE]  # type: ignore[no-any-return]


def session_of(s: dict[str, Any]) -> str:
    return str(s["context"]["extensions"][v.SESSION_ID])


def sessions(statements: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Statements by session-id, each list in emission order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for s in statements:
        out.setdefault(session_of(s), []).append(s)
    return out


def segments(s: dict[str, Any]) -> list[tuple[float, float]]:
    text = ext(s, v.PLAYED_SEGMENTS)
    if not text:
        return []
    pairs = [part.split("[.]") for part in str(text).split("[,]")]
    return [(float(a), float(b)) for a, b in pairs]


def claimed(statements: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Every stretch any statement claims was played."""
    return [seg for s in statements for seg in segments(s)]


def final_segments(statements: list[dict[str, Any]]) -> list[tuple[float, float]]:
    with_segments = [s for s in statements if ext(s, v.PLAYED_SEGMENTS)]
    return segments(with_segments[-1]) if with_segments else []


def union(stretches: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(stretches):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def beyond_truth(
    stretches: list[tuple[float, float]], truth: list[tuple[float, float]], slack: float = 0.5
) -> list[tuple[float, float]]:
    """The claimed stretches that do not lie within what was really played (± slack)."""
    return [
        (a, b)
        for a, b in stretches
        if b - a > 1e-9 and not any(x - slack <= a and b <= y + slack for x, y in truth)
    ]


def final_progress(statements: list[dict[str, Any]]) -> float | None:
    values = [ext(s, v.PROGRESS) for s in statements if ext(s, v.PROGRESS) is not None]
    return float(values[-1]) if values else None


def rows(statements: list[dict[str, Any]]) -> str:
    """A readable listing for assertion messages."""
    lines = []
    for s in statements:
        bits = [s["timestamp"][11:23], f"{verb(s):<11}", session_of(s)[:8]]
        for name, key in (("t", v.TIME), ("from", v.TIME_FROM), ("to", v.TIME_TO)):
            if ext(s, key) is not None:
                bits.append(f"{name}={ext(s, key)}")
        if ext(s, v.PLAYED_SEGMENTS):
            bits.append(f"seg={ext(s, v.PLAYED_SEGMENTS)}")
        if ext(s, v.PROGRESS) is not None:
            bits.append(f"prog={ext(s, v.PROGRESS)}")
        if ext(s, v.LENGTH) is not None:
            bits.append(f"len={ext(s, v.LENGTH)}")
        if source(s).get("inferred"):
            bits.append("INF")
        lines.append(" ".join(bits))
    return "\n" + "\n".join(lines)
