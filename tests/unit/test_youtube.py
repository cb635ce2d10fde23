"""YouTube's stats pings: what the session model makes of them, checked against the pings
themselves (dashboard-replay-youtube.md §D). Expected values are worked out here from the URLs
sent, never read back from the adapter."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import partial
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest

import golden
from xapitap.pipeline import Pipeline
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer

T0 = datetime(2026, 4, 23, 10, 0, tzinfo=UTC)
V = "https://w3id.org/xapi/video/extensions/"
SOURCE = "https://xapitap.github.io/xapi/extensions/source"


def ping(
    t: float,
    *,
    path: str = "watchtime",
    host: str = "www.youtube.com",
    method: str = "GET",
    cpn: str = "Zz9yXw8vUt7sRq6p",
    **params: str,
) -> golden.Request:
    query = {"ns": "yt", "el": "embedded", "cpn": cpn, "docid": "M7lc1UVf-VE", "len": "120"}
    query |= {"euri": "https://school.example.org/unit/4?x=1", **params}
    return golden.Request(
        method=method,
        url=f"https://{host}/api/stats/{path}?{urlencode(query)}",
        headers={},
        body=b"",
        received_at=T0 + timedelta(seconds=t),
    )


def watch(t: float, st: str, et: str, state: str, **more: str) -> golden.Request:
    cmt = et.rsplit(",", 1)[-1]
    return ping(t, st=st, et=et, cmt=more.pop("cmt", cmt), state=state, **more)


def statements(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for r in results for s in r.get("statements", [])]


def verbs(results: list[dict[str, Any]]) -> list[str]:
    return [s["verb"]["display"]["en-US"] for s in statements(results)]


def ext(s: dict[str, Any], name: str) -> Any:
    return s.get("result", {}).get("extensions", {}).get(V + name)


def union(pairs: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(p for p in pairs if p[1] > p[0]):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def sent_pairs(request: golden.Request) -> list[tuple[float, float]]:
    """The st/et pairs of a watchtime ping, read from its URL."""
    parts = urlsplit(request.url)
    if not parts.path.endswith("/watchtime"):
        return []
    q = parse_qs(parts.query)
    starts, ends = q["st"][0].split(","), q["et"][0].split(",")
    return [(float(a), float(b)) for a, b in zip(starts, ends, strict=True)]


def claimed(s: dict[str, Any]) -> list[tuple[float, float]]:
    text = ext(s, "played-segments") or ""
    pairs = [part.split("[.]") for part in text.split("[,]") if part]
    return union([(float(a), float(b)) for a, b in pairs])


def embed_requests() -> list[golden.Request]:
    return next(c for c in golden.cases() if c.name == "youtube/embed-session").requests()


SEEK_AND_PAUSE = [
    ping(0.5, path="playback", muted="0", volume="100"),
    watch(10, "0", "9.5", "playing"),
    watch(20, "9.5,40.25", "12.75,47", "playing"),  # a seek 12.75 -> 40.25
    watch(30, "47", "51.5", "paused"),
    watch(70, "51.5", "51.5", "paused"),  # still paused: st = et = cmt
    watch(110, "20,60", "28.125,66.5", "playing"),  # a seek while paused, then another
    watch(115.5, "66.5", "70", "paused", final="1"),
]


@pytest.mark.parametrize("requests", [embed_requests(), SEEK_AND_PAUSE], ids=["golden", "more"])
def test_played_segments_are_the_st_et_intervals_sent(requests: list[golden.Request]) -> None:
    results = golden.run_requests(requests)
    closing = [
        (i, s)
        for i, r in enumerate(results)
        for s in r.get("statements", [])
        if s["verb"]["display"]["en-US"] in ("paused", "terminated")
    ]
    assert closing and closing[-1][1]["verb"]["display"]["en-US"] == "terminated"
    for i, s in closing:
        sent = union([p for r in requests[: i + 1] for p in sent_pairs(r)])
        assert claimed(s) == sent, (i, s["verb"]["display"]["en-US"])


@pytest.mark.parametrize("requests", [embed_requests(), SEEK_AND_PAUSE], ids=["golden", "more"])
def test_each_jump_between_intervals_is_a_seek(requests: list[golden.Request]) -> None:
    # Every interval sent, in order: where one starts more than 0.5 s away from where the
    # last one ended, the playhead jumped there without playing.
    pairs = [p for r in requests for p in sent_pairs(r)]
    jumps = [(a[1], b[0]) for a, b in pairwise(pairs) if abs(b[0] - a[1]) > 0.5]
    made = statements(golden.run_requests(requests))
    seeks = [(ext(s, "time-from"), ext(s, "time-to")) for s in made if "seeked" in s["verb"]["id"]]
    assert jumps and seeks == jumps


def test_a_playing_ping_is_no_pause_and_a_paused_one_is() -> None:
    requests = [watch(10, "0", "10", "playing"), watch(20, "10", "20", "playing")]
    assert verbs(golden.run_requests(requests)[:2]) == ["initialized", "played"]
    paused = golden.run_requests([*requests, watch(30, "20", "26", "paused")])
    assert verbs(paused[:3]) == ["initialized", "played", "paused"]
    assert ext(statements(paused[2:3])[0], "time") == 26.0


def test_reports_while_paused_say_nothing_new() -> None:
    quiet = [watch(70 + 40 * k, "26", "26", "paused", rt=str(70 + 40 * k)) for k in range(3)]
    results = golden.run_requests([watch(30, "0", "26", "paused"), *quiet])
    assert [r["statements"] for r in results[1:4]] == [[], [], []]
    assert all(not r["errors"] and not r["ignored"] for r in results[1:4])


def test_the_playhead_moved_while_paused_is_a_seek_after_an_estimated_pause() -> None:
    # Played 0-26 while playing at the last flush, now paused at 80 with nothing played
    # there: where it paused (26, then dragged; or dragged, then paused) the ping cannot
    # tell. The pause is at the last position seen played, its time marked estimated.
    results = golden.run_requests(
        [watch(30, "0", "26", "playing"), watch(40, "26", "26", "paused", cmt="80")]
    )
    last = statements(results[1:2])
    assert [s["verb"]["display"]["en-US"] for s in last] == ["paused", "seeked"]
    assert ext(last[0], "time") == 26.0
    assert last[0]["context"]["extensions"][SOURCE]["estimated"] == ["time"]
    assert (ext(last[1], "time-from"), ext(last[1], "time-to")) == (26.0, 80.0)
    assert claimed(last[0]) == [(0.0, 26.0)]


def test_one_player_session_is_one_learner_whatever_the_host() -> None:
    requests = [
        ping(0.5, path="playback", host="s.youtube.com", method="POST"),
        watch(10, "0", "10", "playing"),
        ping(20, host="www.youtube-nocookie.com", st="10", et="20", cmt="20", state="paused"),
        ping(30, cpn="Other0Player0Cpn", st="0", et="5", cmt="5", state="paused"),
    ]
    results = golden.run_requests(requests)
    made = statements(results)
    one, other = statements(results[:3]), statements(results[3:4])

    def who(made: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {
            (s["actor"]["account"]["name"], s["context"]["extensions"][V + "session-id"])
            for s in made
        }

    assert len(who(one)) == 1 and len(who(other)) == 1
    # Another player session (cpn) is another learner: the pings name no one.
    assert {a for a, _ in who(one)}.isdisjoint(a for a, _ in who(other))
    assert {s["actor"]["account"]["homePage"] for s in made} == {"https://www.youtube.com"}
    # With a proxy login, the participant is the learner of every playback.
    pipeline = Pipeline(Privacy("participant", Pseudonymizer(golden.TEST_KEY), "P-017"), 1 << 20)
    matcher = pipeline.matcher()
    names = set()
    for request in requests:
        capture = request.capture()
        match = matcher.match(
            capture.method, capture.host, capture.path, capture.header, partial(bytes)
        )
        assert match is not None
        names |= {s.actor.account.name for s, _ in pipeline.process(match, capture).statements}
    assert names == {"P-017"}


@pytest.mark.parametrize(
    ("method", "host", "path", "rule"),
    [
        ("GET", "www.youtube.com", "/api/stats/watchtime", "youtube.watchtime"),
        ("POST", "www.youtube.com", "/api/stats/watchtime", "youtube.watchtime"),
        ("GET", "s.youtube.com", "/api/stats/playback", "youtube.playback"),
        ("POST", "www.youtube-nocookie.com", "/api/stats/watchtime", "youtube.watchtime"),
        ("GET", "youtube-nocookie.com", "/api/stats/playback", "youtube.playback"),
        ("POST", "www.youtube.com", "/api/stats/qoe", None),  # no positions
        ("GET", "www.youtube.com", "/ptracking", None),
        ("PUT", "www.youtube.com", "/api/stats/watchtime", None),
        ("GET", "stats.example.org", "/api/stats/watchtime", None),
        ("GET", "youtube.com.example.org", "/api/stats/watchtime", None),
    ],
)
def test_rules(method: str, host: str, path: str, rule: str | None) -> None:
    found = Pipeline(Privacy("pseudonym", Pseudonymizer(golden.TEST_KEY)), 1 << 20).matcher()
    match = found.match(method, host, path, lambda _: None, bytes)
    assert (match.rule.name if match else None) == rule


def test_a_resent_ping_adds_nothing() -> None:
    first = watch(10, "0", "10", "paused")
    results = golden.run_requests([first, first])
    assert results[1]["statements"] == [] and "resent" in results[1]["ignored"][0]


def test_muted_playback_counts_as_played_and_says_volume_0() -> None:
    results = golden.run_requests(
        [
            ping(0.5, path="playback", muted="1", volume="100"),
            watch(10, "0", "10", "playing", muted="1", volume="100"),
            watch(20, "10,15", "15,20", "paused", muted="1,0", volume="100,60"),
        ]
    )
    made = statements(results)
    volume = V + "volume"
    assert made[0]["context"]["extensions"][volume] == 0.0  # on the initialized
    unmuted = [s for s in made if s["verb"]["display"]["en-US"] == "interacted"]
    assert [(ext(s, "time"), s["context"]["extensions"][volume]) for s in unmuted] == [(15.0, 0.6)]
    assert claimed(made[-2]) == [(0.0, 20.0)] and ext(made[-2], "progress") == round(20 / 120, 3)


def test_without_a_length_progress_is_not_known() -> None:
    request = watch(10, "0", "10", "paused")
    request = golden.Request(
        request.method,
        request.url.replace("&len=120", ""),
        request.headers,
        request.body,
        request.received_at,
    )
    paused = statements(golden.run_requests([request]))[2]
    assert ext(paused, "progress") is None and ext(paused, "played-segments") == "0.000[.]10.000"
    missing = paused["context"]["extensions"][SOURCE]["missing"]
    assert missing == ["length", "progress"]


@pytest.mark.parametrize("el", ["detailpage", "leanback", ""])
def test_youtubes_own_pages_are_counted_not_read(el: str) -> None:
    # The learner's own YouTube viewing (the watch page, a TV, no `el`) is not a course's.
    results = golden.run_requests(
        [ping(0.5, path="playback", el=el), watch(10, "0", "10", "paused", el=el)]
    )
    assert [r["statements"] for r in results] == [[], []]
    assert [r["ignored"] for r in results] == [
        ["playback: not an embedded player (el)"],
        ["watchtime: not an embedded player (el)"],
    ]
