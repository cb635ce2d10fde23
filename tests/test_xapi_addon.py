"""The addon never answers a page's own xAPI requests, even where it answers analytics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons
from mitmproxy.test import tflow

import golden
from support.local import stored
from xapitap.addon import XapiTap

STATEMENT = {
    "id": "3f0c9a7e-2b1d-4c5e-9f8a-7b6c5d4e3f21",
    "actor": {"mbox": "mailto:jane@university.example"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced"},
    "object": {"id": "urn:articulate:storyline:5Ujw93Dh98n"},
    "timestamp": "2024-05-06T10:15:03.123Z",
}
HEADERS = {
    "content-type": "application/json",
    "x-experience-api-version": "1.0.3",
    "origin": "https://course.university.example",
}


@pytest.fixture
def tap(tmp_path: Path) -> Iterator[tuple[XapiTap, taddons.context]]:
    addon = XapiTap()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, xapi_store=str(tmp_path / "s.sqlite3"), xapi_dashboard="off")
        yield addon, tctx
        addon.stop()


def test_xapi_requests_and_their_preflights_are_never_answered_locally(
    tap: tuple[XapiTap, taddons.context], tmp_path: Path
) -> None:
    addon, tctx = tap
    tctx.configure(addon, xapi_answer_locally=True)
    addon.running()
    body = json.dumps([STATEMENT]).encode()
    f = tflow.tflow(
        req=http.Request.make("POST", "https://lrs.example/xapi/statements", body, HEADERS)
    )
    before = f.request.get_state()
    waiting = addon.request(f)
    assert waiting is not None
    asyncio.run(waiting)
    assert f.response is None and f.request.get_state() == before
    preflight = tflow.tflow(
        req=http.Request.make(
            "OPTIONS",
            "https://lrs.example/xapi/statements",
            b"",
            {
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,x-experience-api-version",
                "origin": "https://course.university.example",
            },
        )
    )
    addon.request(preflight)
    assert preflight.response is None
    # ... while analytics requests are still answered: the option is on.
    segment = tflow.tflow(
        req=http.Request.make(
            "POST",
            "https://api.segment.io/v1/t",
            (golden.SEED / "udacity-course-video-watched.json").read_bytes(),
        )
    )
    waiting = addon.request(segment)
    assert waiting is not None
    asyncio.run(waiting)
    assert segment.response is not None
    addon.stop()
    copies = [s for s in stored(tmp_path / "s.sqlite3") if s["verb"]["id"].endswith("experienced")]
    assert len(copies) == 1 and copies[0]["actor"]["account"]["name"] != "jane"
