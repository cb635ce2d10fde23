"""GA4 and Universal Analytics: which requests are theirs, how hits are read, what each names.

Expected values are worked out by hand from the wire format (wire-formats.md §6.1, §6.2).
"""

from __future__ import annotations

import gzip
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import quote
from urllib.parse import urlencode

import pytest

from golden import Request
from golden import run_requests
from xapitap.capture import Capture
from xapitap.events import LearningEvent
from xapitap.events import VideoEvent
from xapitap.matching import Matcher
from xapitap.matching import RuleMatch
from xapitap.platforms import all_rules
from xapitap.platforms import ga4
from xapitap.platforms.ga4_events import youtube_id
from xapitap.platforms.ga4_hits import MAX_LINES
from xapitap.platforms.ga4_hits import read_hits

WHEN = datetime(2025, 9, 17, 14, 0, tzinfo=UTC)
SHARED = {
    "v": "2",
    "tid": "G-7KQ2ZP4ABC",
    "_p": "1758117262938",
    "cid": "1369988567.1756151735",
    "sid": "1758117000",
    "dl": "https://learn.example.org/courses/stats/week-1?token=secret",
    "dt": "Week 1",
}
LINES = b"en=page_view&_et=4\nen=scroll&epn.percent_scrolled=90&_et=800"


def q(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote, safe="")


def rule_for(
    method: str,
    host: str,
    path: str,
    body: bytes = b"",
    extra: dict[str, list[str]] | None = None,
) -> str | None:
    found = Matcher(all_rules(), extra).match(method, host, path, {}.get, lambda: body)
    return found.rule.name if found else None


@pytest.mark.parametrize(
    ("method", "host", "path", "body", "rule"),
    [
        ("POST", "www.google-analytics.com", "/g/collect", b"", "ga4.collect"),
        ("GET", "region1.google-analytics.com", "/g/collect", b"", "ga4.collect"),
        ("POST", "analytics.google.com", "/g/collect", LINES, "ga4.collect"),
        ("POST", "region1.analytics.google.com", "/g/collect", b"", "ga4.collect"),
        ("POST", "evil-google-analytics.com", "/g/collect", b"", None),
        ("POST", "www.google-analytics.com", "/g/collected", b"", None),
        # The site's own host: only a body of gtag.js event lines tells it.
        ("POST", "sgtm.learn.example.org", "/g/collect", LINES, "ga4.first-party"),
        ("POST", "learn.example.org", "/metrics/g/collect", LINES, "ga4.first-party"),
        ("POST", "sgtm.learn.example.org", "/g/collect", b"", None),  # bodiless: unknowable
        ("GET", "sgtm.learn.example.org", "/g/collect", b"", None),
        ("POST", "sgtm.learn.example.org", "/g/collect", b'{"en":"page_view"}', None),
        ("POST", "sgtm.learn.example.org", "/g/collect", b"en=page_view&password=x", None),
        ("POST", "sgtm.learn.example.org", "/g/collect", b"en=page_view\n_et=4", None),
        ("POST", "sgtm.learn.example.org", "/g/collect", b"en=9lives&_et=4", None),
        ("POST", "sgtm.learn.example.org", "/g/collect", b"en=page_view\n\xff", None),
        # Google's other collectors get copies of the same hits [I]: never translated twice.
        ("POST", "stats.g.doubleclick.net", "/g/collect", LINES, None),
        ("POST", "www.google.com", "/g/collect", LINES, None),
        # Universal Analytics.
        ("GET", "www.google-analytics.com", "/collect", b"", "ua.collect"),
        ("POST", "www.google-analytics.com", "/r/collect", b"v=1", "ua.collect"),
        ("POST", "ssl.google-analytics.com", "/j/collect", b"v=1", "ua.collect"),
        ("POST", "www.google-analytics.com", "/batch", b"v=1", "ua.batch"),
        ("GET", "www.google-analytics.com", "/batch", b"", None),
        ("POST", "learn.example.org", "/collect", b"v=1&t=pageview", None),
    ],
)
def test_rules(method: str, host: str, path: str, body: bytes, rule: str | None) -> None:
    assert rule_for(method, host, path, body) == rule


def test_a_named_first_party_host_takes_bodiless_hits() -> None:
    """xapi_hosts=ga4=HOST: the host is a collector, as Google's are."""
    extra = {"ga4": ["sgtm.learn.example.org"]}
    assert rule_for("GET", "sgtm.learn.example.org", "/g/collect", extra=extra) == "ga4.collect"
    assert rule_for("GET", "other.example.org", "/g/collect", extra=extra) is None


def capture(
    query: dict[str, str] | str, body: bytes = b"", headers: dict[str, str] | None = None
) -> Capture:
    return Capture(
        method="POST",
        scheme="https",
        host="region1.google-analytics.com",
        port=443,
        path="/g/collect",
        query=query if isinstance(query, str) else q(query),
        headers=tuple((k.lower(), v) for k, v in (headers or {}).items()),
        body=body,
        received_at=WHEN,
    )


def extract(c: Capture, rule: Any = ga4.GA4) -> tuple[list[VideoEvent], list[LearningEvent], Any]:
    out = ga4.PLATFORM.extract(RuleMatch(rule, {}), c, None)
    return out.events, out.learning, out


def test_lines_extend_and_override_the_shared_parameters() -> None:
    body = (
        b"en=page_view&dl=https%3A%2F%2Flearn.example.org%2Fcourses%2Fstats%2Fweek-2&dt=Week%202"
        b"\n\nen=page_view"
    )
    _, learning, _ = extract(capture(SHARED, body))
    assert [(e.object.id, e.object.name) for e in learning] == [
        ("https://learn.example.org/courses/stats/week-2", "Week 2"),  # the line's own page
        ("https://learn.example.org/courses/stats/week-1", "Week 1"),  # the shared one
    ]
    assert all(not e.timed and e.timestamp == WHEN for e in learning)


def test_a_gzipped_body_is_read() -> None:
    body = gzip.compress(b"en=page_view\nen=page_view", mtime=0)
    _, learning, _ = extract(capture(SHARED, body, {"Content-Encoding": "gzip"}))
    assert len(learning) == 2
    assert learning[0].source_event_id != learning[1].source_event_id  # told apart by place


def test_ep_and_epn_are_read_alike_and_a_repeated_key_keeps_its_first_value() -> None:
    video = {
        "ep.video_title": "Intro",
        "ep.video_url": "https://cdn.example.org/v/intro.mp4?sig=1",
        "epn.video_duration": "95.5",
    }
    body = "\n".join(
        [
            q({"en": "video_start", "ep.video_current_time": "3.5", **video}),
            q({"en": "video_progress", "epn.video_current_time": "9.6", **video}),
            q({"en": "video_progress", "epn.video_current_time": "-1", **video}),
        ]
    )
    events, _, _ = extract(capture(q(SHARED) + "&cid=second", body.encode()))
    assert [(e.position, e.length) for e in events] == [(3.5, 95.5), (9.6, 95.5), (None, 95.5)]
    assert events[0].video.id == "https://cdn.example.org/v/intro.mp4"  # no query: a token
    assert events[0].user_ref == SHARED["cid"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=30s&list=PLx", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/watch?feature=share&v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/embed/dQw4w9WgXcQ?enablejsapi=1", "dQw4w9WgXcQ"),
        ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://youtu.be/dQw4w9WgXcQ?si=abc", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/watch?v=short", None),
        ("https://www.youtube.com/watch", None),
        ("https://vimeo.com/76979871", None),
        ("https://notyoutube.com/watch?v=dQw4w9WgXcQ", None),
        ("http://[::1", None),
    ],
)
def test_youtube_ids(url: str, expected: str | None) -> None:
    assert youtube_id(url) == expected


def video_hit(**params: str) -> Capture:
    return capture({**SHARED, "en": "video_progress", "epn.video_current_time": "24", **params})


def test_the_video_is_named_by_its_url_else_by_its_title_on_its_page() -> None:
    yt, _, _ = extract(video_hit(**{"ep.video_url": "https://youtu.be/dQw4w9WgXcQ"}))
    assert yt[0].video.id == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert [p.id for p in yt[0].parents] == ["https://learn.example.org/courses/stats/week-1"]
    titled, _, _ = extract(video_hit(**{"ep.video_title": "Intro: part 1/2"}))
    assert titled[0].video.id == (
        "https://learn.example.org/courses/stats/week-1#video-Intro%3A%20part%201%2F2"
    )
    assert titled[0].video.name == "Intro: part 1/2"
    # A URL that is no web address is no name: the title is.
    odd, _, _ = extract(video_hit(**{"ep.video_url": "blob:x", "ep.video_title": "Intro"}))
    assert odd[0].video.id.endswith("#video-Intro")


def test_a_video_event_naming_no_video_is_rejected_alone() -> None:
    body = f"{q({'en': 'video_start'})}\nen=page_view".encode()
    events, learning, out = extract(capture(SHARED, body))
    assert events == [] and len(learning) == 1
    assert [str(s) for s in out.rejected] == [
        "video_start: a video event that names no video (no usable video_url, no title)"
    ]
    # A title needs the page it is named on.
    no_page = {k: v for k, v in SHARED.items() if k != "dl"}
    _, _, out = extract(capture({**no_page, "en": "video_start", "ep.video_title": "Intro"}))
    assert len(out.rejected) == 1


def test_flags_that_keep_ga4_playback_unclaimed() -> None:
    start, progress, complete = (
        extract(video_hit(en=name, **{"ep.video_url": "https://youtu.be/dQw4w9WgXcQ"}))[0][0]
        for name in ("video_start", "video_progress", "video_complete")
    )
    assert [e.kind.value for e in (start, progress, complete)] == [
        "played",
        "progress",
        "completed",
    ]
    assert not any(e.timed or e.reports_seeks or e.cadence for e in (start, progress, complete))
    assert complete.ends_playback and not progress.ends_playback
    assert start.session_key == SHARED["_p"]  # the page load, not GA4's session
    no_page_load = {k: v for k, v in SHARED.items() if k != "_p"}
    other = extract(capture({**no_page_load, "en": "video_start", "ep.video_title": "x"}))[0]
    assert other[0].session_key == SHARED["sid"]


def test_the_learner_is_uid_else_cid_else_nobody() -> None:
    _, learning, _ = extract(capture({**SHARED, "uid": "lms-8841", "en": "page_view"}))
    assert (learning[0].user_ref, learning[0].user_ref_kind) == ("lms-8841", "uid")
    _, learning, _ = extract(capture({**SHARED, "en": "page_view"}))
    assert (learning[0].user_ref, learning[0].user_ref_kind) == (SHARED["cid"], "cid")
    anonymous = {k: v for k, v in SHARED.items() if k != "cid"}
    _, learning, out = extract(capture({**anonymous, "en": "page_view"}))
    assert learning == [] and [s.reason for s in out.rejected] == [
        "names no learner (no uid or cid)"
    ]


def test_file_download_names_the_file_without_its_query() -> None:
    link = "https://cdn.example.org/files/slides.pdf?Signature=abc"
    params = {"en": "file_download", "ep.link_url": link, "ep.file_name": "/files/slides.pdf"}
    _, learning, _ = extract(capture({**SHARED, **params}))
    event = learning[0]
    assert (event.verb.display, event.object.id, event.object.name) == (
        "downloaded",
        "https://cdn.example.org/files/slides.pdf",
        "/files/slides.pdf",
    )
    assert [p.id for p in event.parents] == ["https://learn.example.org/courses/stats/week-1"]
    _, learning, out = extract(capture({**SHARED, "en": "file_download"}))
    assert learning == [] and len(out.rejected) == 1


@pytest.mark.parametrize(
    "query",
    [
        {**SHARED, "v": "1"},
        {**SHARED, "tid": "UA-12345-1"},
        {k: v for k, v in SHARED.items() if k != "tid"},
    ],
)
def test_a_request_that_is_no_ga4_hit_is_refused_whole(query: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not a GA4 hit"):
        extract(capture(query, LINES))


def test_bounds_on_lines_and_parameters() -> None:
    many = b"\n".join(b"en=scroll" for _ in range(MAX_LINES + 5))
    hits = read_hits(capture(SHARED, many))
    assert len(hits.hits) == MAX_LINES and len(hits.unreadable) == 1
    wide = b"en=scroll&" + b"&".join(b"ep.k%d=1" % i for i in range(2_000))
    _, _, out = extract(capture(SHARED, wide + b"\nen=page_view"))
    assert [s.reason for s in out.rejected] == ["more than 1000 parameters in one hit"]
    assert len(out.learning) == 1
    with pytest.raises(ValueError, match="more than 1000 parameters"):
        extract(capture("&".join(f"k{i}=1" for i in range(2_000))))


def test_ua_hits_are_counted_by_type() -> None:
    lines = b"v=1&t=pageview&tid=UA-1-1&cid=1\nv=1&t=event&ec=Video\nv=1&t=bogus\nt=event"
    c = capture("", lines)
    out = ga4.PLATFORM.extract(RuleMatch(ga4.UA_BATCH, {}), c, None)
    assert [str(s) for s in out.ignored] == [
        f"pageview: {ga4.UA_REASON}",
        f"event: {ga4.UA_REASON}",
        f"(unknown hit type): {ga4.UA_REASON}",
    ]
    assert [s.reason for s in out.rejected] == ["not a Universal Analytics hit (no v=1)"]
    assert out.events == [] and out.learning == []


def test_a_resent_request_is_recognised() -> None:
    request = Request(
        "POST",
        "https://region1.google-analytics.com/g/collect?" + q(SHARED),
        {},
        b"en=page_view",
        WHEN,
    )
    first, again = run_requests([request, request])
    assert len(first["statements"]) == 1
    assert again["statements"] == [] and again["ignored"] == [
        "ga4 page_view: resent (same event id)"
    ]
