"""The addon inside mitmproxy's test harness (taddons + tflow): options and the request hook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.test import taddons
from mitmproxy.test import tflow

import golden
from support.local import reading
from support.local import stored
from xapitap.addon import XapiTap

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
        tctx.configure(addon, xapi_store=str(tmp_path / "s.sqlite3"))
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
    asyncio.run(waiting)  # returns once the statements are committed: read them now
    assert f.response is None and f.request.get_state() == before
    with reading(tmp_path / "s.sqlite3") as reader:
        assert reader.count_statements() == 3
    addon.stop()  # the proxy stops: the session ends
    verbs = [s["verb"]["display"]["en-US"] for s in stored(tmp_path / "s.sqlite3")]  # type: ignore[index]
    assert verbs == ["initialized", "played", "paused", "terminated"]


def test_other_traffic_is_not_even_read(tap: tuple[XapiTap, taddons.context]) -> None:
    addon, _ = tap
    addon.running()
    f = flow("POST", "https://example.org/api/cart", b'{"item": 1}')
    assert addon.request(f) is None
    assert f.response is None and addon.intake is not None and addon.intake.has_room()


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


class _FullIntake:
    """An intake whose queue is full until `room` is set; it records what it is given."""

    def __init__(self) -> None:
        self.room = False
        self.order: list[str] = []

    def has_room(self) -> bool:
        return self.room

    def submit(self, match: object, capture: object, stored: Callable[[], None]) -> None:
        self.order.append(str(getattr(capture, "flow_id", "")))
        stored()


def test_requests_held_for_a_full_queue_go_on_in_arrival_order(
    tap: tuple[XapiTap, taddons.context],
) -> None:
    """Under back-pressure, requests reach the intake in the order they arrived (the
    session model assumes time order: polling used to reorder them)."""
    addon, _ = tap
    addon.running()
    intake = _FullIntake()
    real_intake, addon.intake = addon.intake, intake  # type: ignore[assignment]

    async def scenario() -> None:
        flows = [
            flow("POST", "https://api.segment.io/v1/t", SEGMENT.read_bytes()) for _ in range(6)
        ]
        waiting = [addon.request(f) for f in flows]
        tasks = [asyncio.create_task(w) for w in waiting if w is not None]
        await asyncio.sleep(0.05)  # all six are waiting in line
        assert intake.order == []
        intake.room = True
        addon._stored(asyncio.get_running_loop().create_future())  # a commit frees room
        await asyncio.gather(*tasks)
        assert intake.order == [f.id for f in flows]

    try:
        asyncio.run(scenario())
    finally:
        addon.intake = real_intake
