"""The addon inside mitmproxy's test harness (taddons + tflow): options and the request hook."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import brotli
import pytest
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.test import taddons
from mitmproxy.test import tflow

import golden
from support.local import reading
from support.local import stored
from xapitap import addon as addon_module
from xapitap import flows as flows_module
from xapitap.addon import XapiTap
from xapitap.decoding import decompress
from xapitap.journal.format import Kind
from xapitap.journal.segments import JournalReader
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import Matcher
from xapitap.pipeline import matcher as pipeline_matcher

ADDON_SCRIPT = Path(__file__).resolve().parents[1] / "addons" / "xapitap.py"
SEGMENT = golden.SEED / "udacity-course-video-watched.json"


def flow(
    method: str, url: str, body: bytes, headers: dict[str, str] | None = None
) -> http.HTTPFlow:
    request = http.Request.make(method, url, body, headers or {"content-type": "text/plain"})
    return tflow.tflow(req=request)


@pytest.fixture
def tap(tmp_path: Path) -> Iterator[tuple[XapiTap, taddons.context]]:
    addon = XapiTap()
    with taddons.context(addon) as tctx:
        # The dashboard needs the proxy's running event loop, which this harness has not.
        tctx.configure(addon, xapi_store=str(tmp_path / "s.sqlite3"), xapi_dashboard="off")
        yield addon, tctx
        addon.stop()


def test_analytics_request_is_stored_and_left_untouched(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    addon, _ = tap
    addon.running()
    f = flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes())
    before = f.request.get_state()
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)  # returns once the request is journaled, on disk
    assert f.response is None and f.request.get_state() == before
    with reading(tmp_path / "s.sqlite3") as reader:  # ... and translated a moment later
        assert reader.count_statements() == 3
    addon.stop()  # the proxy stops: the session ends
    verbs = [s["verb"]["display"]["en-US"] for s in stored(tmp_path / "s.sqlite3")]  # type: ignore[index]
    assert verbs == ["initialized", "played", "paused", "terminated"]


def test_other_traffic_is_not_even_read(tap: tuple[XapiTap, taddons.context]) -> None:
    addon, _ = tap
    addon.running()
    f = flow("POST", "https://example.org/api/cart", b'{"item": 1}')
    assert addon.request(f) is None
    assert f.response is None and addon.journal is not None and addon.journal.has_room()


def test_local_answers_reply_to_requests_and_preflights(
    tap: tuple[XapiTap, taddons.context],
) -> None:
    addon, tctx = tap
    tctx.configure(addon, xapi_answer_locally=True)
    addon.running()
    f = flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes())
    f.request.headers["origin"] = "https://classroom.udacity.com"
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)
    assert f.response is not None and f.response.status_code == 200
    assert f.response.headers["x-xapitap"] == "answered-locally"
    assert f.response.headers["access-control-allow-origin"] == "https://classroom.udacity.com"
    pre = flow(
        "OPTIONS",
        "https://api.segment.io/v1/t",
        b"",
        {
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
            "origin": "https://classroom.udacity.com",
        },
    )
    addon.request(pre)
    assert pre.response is not None and pre.response.status_code == 204
    assert pre.response.headers["access-control-allow-headers"] == "content-type"
    other = flow("OPTIONS", "https://example.org/x", b"", {"access-control-request-method": "POST"})
    addon.request(other)
    assert other.response is None


def test_preflights_pass_through_without_local_answers(
    tap: tuple[XapiTap, taddons.context],
) -> None:
    addon, _ = tap
    addon.running()
    pre = flow(
        "OPTIONS", "https://api.segment.io/v1/t", b"", {"access-control-request-method": "POST"}
    )
    addon.request(pre)
    assert pre.response is None


def test_streamed_bodies_are_passed_over(tap: tuple[XapiTap, taddons.context]) -> None:
    addon, _ = tap
    addon.running()
    f = flow("POST", "https://api.segment.io/v1/t", b"")
    f.request.raw_content = None
    assert addon.request(f) is None


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("xapi_lrs_endpoint", "ftp://lrs", "must be an http"),
        ("xapi_hosts", ["nope"], "PLATFORM=HOST-GLOB"),
        ("xapi_max_body_bytes", -5, "positive"),
    ],
)
def test_invalid_options_are_refused(
    tap: tuple[XapiTap, taddons.context], option: str, value: object, message: str
) -> None:
    addon, tctx = tap
    with pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(addon, **{option: value})


def test_store_cannot_change_while_running(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    addon, tctx = tap
    addon.running()
    with pytest.raises(exceptions.OptionsError, match="restart"):
        tctx.configure(addon, xapi_store=str(tmp_path / "other.sqlite3"))
    tctx.configure(addon, xapi_answer_locally=True)  # this one applies live


def test_entry_script_loads_as_mitmdump_would(tmp_path: Path) -> None:
    with taddons.context() as tctx:
        module = tctx.script(str(ADDON_SCRIPT))
        (addon,) = module.addons
        assert isinstance(addon, XapiTap)


class _FullJournal:
    """A journal whose queue is full until `room` is set; it records what it is given."""

    def __init__(self) -> None:
        self.room = False
        self.order: list[str] = []

    def has_room(self) -> bool:
        return self.room

    def append(
        self,
        kind: Kind,
        at: float,
        payload: Callable[[], bytes],
        size: int = 0,
        durable: Callable[[int], None] | None = None,
    ) -> None:
        data = payload()
        meta_size = int.from_bytes(data[:4], "little")  # the request record's layout
        self.order.append(json.loads(data[4 : 4 + meta_size])["flow_id"])
        if durable is not None:
            durable(len(self.order))


def test_requests_held_for_a_full_queue_go_on_in_arrival_order(
    tap: tuple[XapiTap, taddons.context],
) -> None:
    """Under back-pressure, requests reach the journal in the order they arrived (the
    session model assumes time order: polling used to reorder them)."""
    addon, _ = tap
    addon.running()
    journal = _FullJournal()
    real_journal, addon.journal = addon.journal, journal  # type: ignore[assignment]

    async def scenario() -> None:
        flows = [
            flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes()) for _ in range(6)
        ]
        waiting = [addon.request(f) for f in flows]
        tasks = [asyncio.create_task(w) for w in waiting if w is not None]
        await asyncio.sleep(0.05)  # all six are waiting in line
        assert journal.order == []
        journal.room = True
        addon._durable(asyncio.get_running_loop().create_future())  # a write frees room
        await asyncio.gather(*tasks)
        assert journal.order == [f.id for f in flows]

    try:
        asyncio.run(scenario())
    finally:
        addon.journal = real_journal


# Issue 14: bodies that must be read to be matched are read off the event loop.


def encoded(f: http.HTTPFlow, raw: bytes, encoding: str) -> http.HTTPFlow:
    """The flow with a body as sent on the wire (Request.make would encode it again)."""
    f.request.headers["content-encoding"] = encoding
    f.request.raw_content = raw
    return f


def _first_party(body: bytes, encoding: str) -> http.HTTPFlow:
    return encoded(flow("POST", "https://t.example.org/v1/t", b""), body, encoding)


def test_body_checks_run_in_a_worker_thread_while_the_loop_goes_on(
    tap: tuple[XapiTap, taddons.context],
) -> None:
    addon, _ = tap
    addon.running()
    seen: dict[str, object] = {}

    def slow_check(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
        seen["thread"] = threading.get_ident()
        seen["body"] = body()
        time.sleep(0.3)
        return False

    addon.matcher = Matcher(
        [EndpointRule("shape", "segment", r"^/collect$", body_check=slow_check)]
    )
    f = encoded(
        flow("POST", "https://first.example/collect", b""), gzip.compress(b'{"a": 1}'), "gzip"
    )
    before = f.request.get_state()

    async def scenario() -> tuple[int, int]:
        waiting = addon.request(f)
        assert waiting is not None and not seen  # the hook itself read nothing
        task = asyncio.create_task(waiting)
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await task
        return threading.get_ident(), ticks

    loop_thread, ticks = asyncio.run(scenario())
    assert seen["thread"] != loop_thread
    assert seen["body"] == b'{"a": 1}'  # decoded, in that thread
    assert ticks >= 10  # the loop went on during the 0.3 s check
    assert f.request.get_state() == before and f.response is None


def test_a_brotli_bomb_on_a_first_party_host_is_decoded_off_the_loop(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    addon, _ = tap
    addon.running()
    threads: list[int] = []

    def spying(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
        threads.append(threading.get_ident())
        return decompress(body, encoding, max_bytes)

    monkeypatch.setattr(flows_module, "decompress", spying)
    c = brotli.Compressor(quality=3)
    bomb = b"".join(c.process(b" " * (16 << 20)) for _ in range(64)) + c.finish()  # 1 GiB
    f = _first_party(bomb, "br")
    before = f.request.get_state()

    async def scenario() -> int:
        started = time.perf_counter()
        waiting = addon.request(f)
        assert time.perf_counter() - started < 0.05 and not threads  # nothing decoded yet
        assert waiting is not None
        await waiting
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert threads and loop_thread not in threads
    assert f.request.get_state() == before and f.response is None  # passed through untouched
    assert addon.journal is not None and addon.journal.has_room()
    with reading(tmp_path / "s.sqlite3") as reader:
        assert reader.count_statements() == 0


def test_first_party_segment_is_matched_in_a_thread_and_stored(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    addon, tctx = tap
    tctx.configure(addon, xapi_answer_locally=True)
    addon.running()
    f = _first_party(gzip.compress(SEGMENT.read_bytes()), "gzip")
    before = f.request.get_state()
    waiting = addon.request(f)
    assert waiting is not None and f.response is None  # not answered before it is matched
    asyncio.run(waiting)
    assert f.request.get_state() == before
    assert f.response is not None and f.response.headers["x-xapitap"] == "answered-locally"
    with reading(tmp_path / "s.sqlite3") as reader:
        assert reader.count_statements() == 3


def test_requests_that_need_no_body_never_leave_the_loop(
    tap: tuple[XapiTap, taddons.context], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other traffic costs a set lookup and the host/path checks; host-bound rules match
    without reading the body, and a request without a body is judged by its headers alone
    (a GET `/about` of any site, Open edX's GET page_close): none goes to a thread."""
    addon, _ = tap
    addon.running()

    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("went to a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_thread)
    for method, url in [
        ("GET", "https://www.udemy.com/course/x"),
        ("POST", "https://example.org/api/cart"),
        ("POST", "https://t.example.org/v2/other"),
    ]:
        assert addon.request(flow(method, url, b'{"type":"track","writeKey":"k"}')) is None
    waiting = addon.request(flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes()))
    assert waiting is not None
    asyncio.run(waiting)
    for url in ("https://example.org/about", "https://example.org/event?event_type=page_close"):
        assert addon.request(flow("GET", url, b"", {})) is None
    login = {"cookie": 'edx-user-info="{\\"username\\": \\"ann\\"}"; edxloggedin=true'}
    close = "https://lms.example.org/event?event_type=page_close&event=&page=https%3A%2F%2Flms"
    waiting = addon.request(flow("GET", close, b"", login))
    assert waiting is not None
    asyncio.run(waiting)


def test_candidates_settle_as_match_does() -> None:
    m = pipeline_matcher()
    segment = b'{"type":"track","writeKey":"k"}'
    video = b'{"ctVersion":"1","action":"video play"}'
    for host, path, body, rule in [
        ("api.segment.io", "/v1/t", b"", "segment.api"),
        ("t.example.org", "/v1/t", segment, "segment.first-party"),
        ("t.example.org", "/v1/t", b"{}", None),
        ("www.udemy.com", "/api-2.0/ecl", b"[]", "udemy.ecl"),
        ("www.udemy.com", "/anything", video, "udemy.video-controls"),
        ("example.org", "/x", segment, None),
    ]:
        found = m.candidates("POST", host, path)
        settled = found.settle({}.get, lambda b=body: b) if found else None  # type: ignore[misc]
        direct = m.match("POST", host, path, {}.get, lambda b=body: b)  # type: ignore[misc]
        assert settled == direct
        assert (settled.rule.name if settled else None) == rule
        if rule in ("segment.api", "udemy.ecl"):
            assert found is not None and not found.needs_body


def test_a_body_over_the_cap_is_journaled_cut_and_refused_with_its_size(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    """A page cannot fill the journal with large bodies: only enough of one to tell that it
    is over the cap is kept; it is counted with its size as sent."""
    addon, tctx = tap
    tctx.configure(addon, xapi_max_body_bytes=1000, xapi_keep_unreadable=True)
    addon.running()
    f = flow("POST", "https://api.segment.io/v1/t", b"x" * 3_000_000)
    before = f.request.get_state()
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)
    assert f.request.get_state() == before  # the request itself goes on whole
    journal = tmp_path / "s.sqlite3.journal"
    assert sum(p.stat().st_size for p in journal.iterdir()) < 3_000
    with reading(tmp_path / "s.sqlite3") as reader:
        (reject,) = reader.rejects()
    assert reject.body_size == 3_000_000 and reject.body is None
    assert "body of 3000000 bytes exceeds the 1000-byte cap" in reject.reason


def test_ticks_follow_the_traffics_clock_so_a_rerun_recording_keeps_its_sessions(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-running a 2024 recording now must not end its sessions as idle for two years."""
    monkeypatch.setattr(addon_module, "TICK_SECONDS", 0.05)
    addon, _ = tap
    addon.running()
    f = flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes())
    f.request.timestamp_start = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)
    time.sleep(0.3)
    reader = JournalReader(tmp_path / "s.sqlite3.journal", 1)  # before a stop deletes it
    ticks = [r for r in reader.read() if r.kind is Kind.TICK]
    reader.close()
    assert ticks, "the proxy journals its clock"
    assert all(0 < r.time - f.request.timestamp_start < 60 for r in ticks)


# A page's own xAPI traffic (a Storyline package's statement to its LRS).
XAPI_STATEMENT = {
    "id": "3f0c9a7e-2b1d-4c5e-9f8a-7b6c5d4e3f21",
    "actor": {"mbox": "mailto:jane@university.example"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
    "object": {"id": "urn:articulate:storyline:5Ujw93Dh98n"},
    "timestamp": "2024-05-06T10:15:03.123Z",
}
XAPI_HEADERS = {
    "content-type": "application/json",
    "x-experience-api-version": "1.0.3",
    "origin": "https://course.university.example",
}


def test_xapi_requests_and_their_preflights_are_never_answered_locally(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    addon, tctx = tap
    tctx.configure(addon, xapi_answer_locally=True)
    addon.running()
    body = json.dumps([XAPI_STATEMENT]).encode()
    f = flow("POST", "https://lrs.example/xapi/statements", body, XAPI_HEADERS)
    before = f.request.get_state()
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)
    assert f.response is None and f.request.get_state() == before
    preflight = flow(
        "OPTIONS",
        "https://lrs.example/xapi/statements",
        b"",
        {
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-experience-api-version",
            "origin": "https://course.university.example",
        },
    )
    addon.request(preflight)
    assert preflight.response is None
    # ... while analytics requests are still answered: the option is on.
    segment = flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes())
    waiting = addon.request(segment)
    assert waiting is not None
    asyncio.run(waiting)
    assert segment.response is not None
    addon.stop()
    copies = [s for s in stored(tmp_path / "s.sqlite3") if s["verb"]["id"].endswith("experienced")]
    assert len(copies) == 1 and copies[0]["actor"]["account"]["name"] != "jane"
