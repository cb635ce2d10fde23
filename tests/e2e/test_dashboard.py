"""The dashboard through the real parts: a real mitmdump serving it, real HTTP clients, a real
Ralph LRS behind a relay that refuses a statement, and `xapitap dashboard` over the store."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import secrets
import select
import signal
import socket
import struct
import termios
import time
import uuid
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

import golden
from support import delivery
from support.dashboard import ROUTES
from support.dashboard import DashboardClient
from support.dashboard import StandaloneDashboard
from support.dashboard import statement_events
from support.delivery import proxy_for
from support.delivery import target
from support.delivery import targets_file
from support.delivery import wait_until_delivered
from support.fidelity import seg
from support.fidelity import watched
from support.local import reading
from support.proxy import ADDON
from support.proxy import MITMDUMP
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.relay import Relay
from xapitap.pseudonym import key_path_for
from xapitap.store import StoreFile
from xapitap.store.records import Provenance
from xapitap.xapi.models import Statement

pytestmark = pytest.mark.e2e

SEGMENT = "https://api.segment.io/v1/t"
# Raw identifiers and keys the traffic carries: none may reach the page.
RAW = (
    "learner-42",
    "1234567890",
    "9f1c2d3e-0000-4000-8000-000000000001",
    "WK-example",
    "WK-udacity",
)


def post(proxy: Mitmdump, body: dict[str, Any]) -> None:
    answer = requests.post(
        SEGMENT,
        data=json.dumps(body),
        headers={"Content-Type": "text/plain"},
        proxies=proxy.proxies,
        verify=str(proxy.ca),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text


def udacity_session(proxy: Mitmdump) -> None:
    """One Udacity learner: 0-20 s, then 30-40 s of a 60 s video (exact stretches); back
    once it is translated."""
    post(proxy, watched(10, 0, 10))
    post(proxy, watched(25, 5, 20, mid="back"))
    post(proxy, watched(40, 30, 40, mid="on"))
    with reading(proxy.store):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_route_needs_the_token(tmp_path: Path) -> None:
    with Mitmdump(tmp_path, "--set", "xapi_answer_locally=true") as proxy:
        udacity_session(proxy)
        client = DashboardClient(proxy.dashboard_url)
        wrong = secrets.token_urlsafe(24)
        for route in ROUTES:
            url = client.base + route
            for headers, cookies, expected in (
                ({}, {}, 401),
                ({"Authorization": f"Bearer {wrong}"}, {}, 403),
                ({"Authorization": f"Basic {client.token}"}, {}, 403),
                ({}, {f"xapitap-dashboard-{client.base.rsplit(':', 1)[1]}": client.token}, 403),
            ):
                answer = requests.get(url, headers=headers, cookies=cookies, timeout=10)
                assert answer.status_code == expected, (route, headers, cookies)
                assert "statements" not in answer.text and "actor" not in answer.text
            post_answer = requests.post(client.base + "/api/retry", timeout=10)
            assert post_answer.status_code == 401
        assert requests.get(f"{client.base}/?token={wrong}", timeout=10).status_code == 403

        # The page's way in: ?token= becomes an HttpOnly, SameSite=Strict cookie, and the
        # token leaves the address bar.
        browser = requests.Session()
        first = browser.get(proxy.dashboard_url, allow_redirects=False, timeout=10)
        assert first.status_code == 302 and first.headers["Location"] == "/"
        cookie = first.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and client.token not in cookie
        page = browser.get(client.base + "/", timeout=10)
        assert page.status_code == 200 and "<title>xapitap dashboard</title>" in page.text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert browser.get(client.base + "/api/status", timeout=10).json()["statements"] > 0
        # Scripts: the bearer token.
        assert client.json("/api/status")["statements"] > 0
        assert client.get("/api/videos/0123456789abcdef").status_code == 404
        assert client.get("/no/such/route").status_code == 404
    # The token was printed once, at start, and no request logged it again.
    assert proxy.output.count(client.token) == 1


def refused(answer: requests.Response) -> bool:
    return answer.status_code == 403 and "not served through the proxy" in answer.text


def test_the_proxy_refuses_requests_to_the_dashboard(tmp_path: Path) -> None:
    """In every mode: a proxied request would come from loopback, or from the next proxy."""
    with Mitmdump(tmp_path / "regular") as proxy:
        client = DashboardClient(proxy.dashboard_url)
        assert client.get("/api/status").status_code == 200  # directly: served
        port = client.base.rsplit(":", 1)[1]
        for host in ("127.0.0.1", "localhost", "127.0.0.2", "dashboard.localhost", "0.0.0.0"):
            answer = requests.get(
                f"http://{host}:{port}/api/status",
                headers=client.bearer,
                proxies=proxy.proxies,
                timeout=10,
            )
            assert refused(answer), (host, answer.status_code, answer.text)
        # A CONNECT tunnel to it is refused before any byte reaches it.
        with pytest.raises(requests.exceptions.ProxyError, match="403"):
            requests.get(
                f"https://127.0.0.1:{port}/api/status",
                headers=client.bearer,
                proxies=proxy.proxies,
                timeout=10,
            )
        # Other ports on loopback are not the dashboard's business.
        other = requests.get(f"http://127.0.0.1:{free_port()}/", proxies=proxy.proxies, timeout=10)
        assert other.status_code == 502

    # Upstream mode: the next proxy would make the connection.
    with (
        Mitmdump(tmp_path / "next", addon=False) as next_proxy,
        Mitmdump(
            tmp_path / "upstream", "--mode", f"upstream:http://127.0.0.1:{next_proxy.port}"
        ) as proxy,
    ):
        client = DashboardClient(proxy.dashboard_url)
        answer = requests.get(
            client.base + "/api/status",
            headers=client.bearer,
            proxies=proxy.proxies,
            timeout=10,
        )
        assert refused(answer)
        # ... which the next proxy would have done: the guard is what stops it.
        direct = requests.get(
            client.base + "/api/status",
            headers=client.bearer,
            proxies=next_proxy.proxies,
            timeout=10,
        )
        assert direct.status_code == 200

    # Reverse mode in front of the dashboard's own address.
    port = free_port()
    with Mitmdump(
        tmp_path / "reverse",
        "--mode",
        f"reverse:http://127.0.0.1:{port}",
        "--set",
        f"xapi_dashboard=127.0.0.1:{port}",
    ) as proxy:
        client = DashboardClient(proxy.dashboard_url)
        answer = requests.get(
            f"http://127.0.0.1:{proxy.port}/api/status", headers=client.bearer, timeout=10
        )
        assert refused(answer)


def test_listening_beyond_loopback_is_warned_about_and_still_refused_through_the_proxy(
    tmp_path: Path,
) -> None:
    with Mitmdump(tmp_path, "--set", "xapi_dashboard=0.0.0.0:0") as proxy:
        assert "the dashboard listens at 0.0.0.0, beyond this machine" in proxy.output
        client = DashboardClient(proxy.dashboard_url)
        port = client.base.rsplit(":", 1)[1]
        for host in (socket.gethostname(), "127.0.0.1"):
            answer = requests.get(
                f"http://{host}:{port}/api/status",
                headers=client.bearer,
                proxies=proxy.proxies,
                timeout=10,
            )
            assert refused(answer), host


def test_a_reconnecting_feed_gets_every_statement_once(tmp_path: Path) -> None:
    with Mitmdump(tmp_path, "--set", "xapi_answer_locally=true") as proxy:
        client = DashboardClient(proxy.dashboard_url)
        post(proxy, watched(10, 0, 10))
        with reading(proxy.store) as reader:
            first_batch = reader.last_seq()
        assert first_batch >= 2
        # Read part of it, and drop the connection.
        early = client.events(after=0, until_id=2)
        assert [seq for seq, _ in statement_events(early)] == [1, 2]
        post(proxy, watched(25, 5, 20, mid="back"))
        post(proxy, watched(40, 30, 40, mid="on"))
        with reading(proxy.store) as reader:
            total = reader.last_seq()
            stored = [json.loads(text) for text in reader.statements_json()]
        # EventSource reconnects with the last id it saw: the rest comes, once, in order.
        rest = client.events(last_event_id="2", until_id=total)
        seqs = [seq for seq, _ in statement_events(early + rest)]
        assert seqs == list(range(1, total + 1))
        assert [s for _, s in statement_events(early + rest)] == stored

        # A feed with no position starts at the newest: live from here on.
        assert statement_events(client.events(idle=1.5)) == []

        # Filtered: only what it asks for, while its ids still move past the rest, so that a
        # reconnect does not look at them again.
        filtered = client.events(after=0, query="verb=initialized", idle=2)
        assert [(seq, s) for seq, s in statement_events(filtered)] == [(1, stored[0])]
        assert stored[0]["verb"]["id"].endswith("/initialized")
        assert filtered[-1].id == str(total) and filtered[-1].data is None


def test_live_and_stored_views_agree_and_hold_no_secret(ralph: RalphLRS, tmp_path: Path) -> None:
    """The LRS refuses one statement: the dashboard shows it dead-lettered with the LRS's
    reason, its retry (from the page's origin only) re-queues it, and it is delivered. The
    same store, served by `xapitap dashboard` while the proxy writes it, answers the same;
    and nothing served holds the LRS password or a raw id."""
    key = secrets.token_bytes(32)
    events = [watched(10, 0, 10), watched(25, 5, 20, mid="back"), watched(40, 30, 40, mid="on")]
    events.append(seg("Video Playback Started", 0, 0, asset="v9", total=100))
    # Without sentAt, what the events give does not depend on when the proxy sees them.
    for event in events:
        event.pop("sentAt")
    now = datetime.now(UTC)
    requests_ = [
        golden.Request("POST", SEGMENT, {"Content-Type": "text/plain"}, json.dumps(e).encode(), now)
        for e in events
    ]
    predicted = delivery.predicted(requests_, key)
    with Relay(ralph.base_url) as relay:
        relay.refuse_ids = {predicted[1]["id"]}
        path = targets_file(tmp_path, target("strict", ralph, relay.url))
        proxy = proxy_for(tmp_path, path)
        key_path_for(proxy.store).write_text(key.hex())
        with proxy:
            for event in events:
                post(proxy, event)
            wait_until_delivered(proxy.store, "strict")
            client = DashboardClient(proxy.dashboard_url)
            status = client.json("/api/status")
            (strict,) = status["targets"]
            assert (strict["dead"], strict["queued"]) == (1, 0)
            (letter,) = status["dead_letters"]
            assert letter["statement_id"] == predicted[1]["id"] and "refused" in letter["reason"]

            served = _everything_served(client)
            for secret in (ralph.password, *RAW):
                assert secret not in served, secret

            with StandaloneDashboard(proxy.store) as standalone:
                stored = DashboardClient(standalone.url)
                for route in ("/api/statements?after=0&limit=1000", "/api/videos"):
                    assert stored.json(route) == client.json(route), route
                for video in client.json("/api/videos")["videos"]:
                    route = f"/api/videos/{video['key']}"
                    assert stored.json(route) == client.json(route), route
                live_status, stored_status = client.json("/api/status"), stored.json("/api/status")
                assert live_status["about"]["mode"] == "live"
                assert stored_status["about"] == {
                    "mode": "store",
                    "store": str(proxy.store),
                    "proxy": None,
                    "ca": None,
                    "actions": False,
                }
                for key_ in ("statements", "accounting", "targets", "dead_letters"):
                    assert stored_status[key_] == live_status[key_], key_
                # It only reads: no retry from there.
                assert (
                    stored.http.post(
                        stored.base + "/api/retry", headers=stored.bearer, timeout=10
                    ).status_code
                    == 405
                )

            # The retry: not from another origin, even with the page's cookie.
            browser = requests.Session()
            browser.get(proxy.dashboard_url, timeout=10)
            for headers in (
                {
                    "Origin": "http://evil.example",
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                {"Sec-Fetch-Site": "cross-site"},
                {"Sec-Fetch-Site": "same-site"},
                {},
            ):
                answer = browser.post(client.base + "/api/retry", headers=headers, timeout=10)
                assert answer.status_code == 403, headers
            assert client.json("/api/status")["targets"][0]["dead"] == 1
            relay.refuse_ids = set()
            answer = browser.post(
                client.base + "/api/retry?target=strict",
                headers={"Sec-Fetch-Site": "same-origin", "Origin": client.base},
                timeout=10,
            )
            assert answer.json() == {"requeued": 1}
            delivered = wait_until_delivered(proxy.store, "strict", timeout=15)
            assert (delivered.dead, delivered.queued) == (0, 0)
            assert delivery.in_lrs(ralph, [predicted[1]]) == [predicted[1]]


def _everything_served(client: DashboardClient) -> str:
    """Every page, asset and API answer, and the feed from the start."""
    parts = [client.get(path).text for path in ("/", "/static/app.js", "/static/app.css")]
    for path in (
        "/api/status",
        "/api/statements?after=0&limit=1000",
        "/api/videos",
        "/api/activity",
    ):
        parts.append(client.get(path).text)
    for video in client.json("/api/videos")["videos"]:
        parts.append(client.get(f"/api/videos/{video['key']}").text)
    last = client.json("/api/status")["last_seq"]
    parts += [e.data or "" for e in client.events(after=0, until_id=last)]
    return "\n".join(parts)


def test_mitmweb_serves_the_dashboard_beside_its_own(tmp_path: Path) -> None:
    web_port = free_port()
    with Mitmdump(
        tmp_path,
        "--set",
        "web_open_browser=false",
        "--set",
        f"web_port={web_port}",
        "--set",
        "xapi_answer_locally=true",
        program=MITMDUMP.with_name("mitmweb"),
    ) as proxy:
        udacity_session(proxy)
        client = DashboardClient(proxy.dashboard_url)
        deadline = time.monotonic() + 10
        while client.json("/api/status")["statements"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.json("/api/status")["statements"] > 0
        assert requests.get(f"http://127.0.0.1:{web_port}/", timeout=10).status_code in (200, 403)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_browser_that_takes_nothing_holds_one_batch_not_the_store(tmp_path: Path) -> None:
    """A feed whose reader never reads: the dashboard goes on serving, and its memory does
    not grow with what is stored meanwhile (each feed waits for its batch to be taken)."""
    store = StoreFile(tmp_path / "s.sqlite3")
    template = golden_statement()
    writer = store.writer()

    def add(count: int) -> None:
        items = []
        for _ in range(count):
            s = Statement.model_validate({**template, "id": str(uuid.uuid4())})
            items.append((s, Provenance("segment", "segment.api", s.id, "f")))
        writer.add(items)

    add(10)
    with StandaloneDashboard(store.path) as standalone:
        client = DashboardClient(standalone.url)
        hung = socket.create_connection(("127.0.0.1", int(client.base.rsplit(":", 1)[1])))
        hung.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hung.sendall(
            f"GET /api/stream?after=0 HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {client.token}\r\n\r\n".encode()
        )
        time.sleep(1)
        before = _rss_mb(standalone.pid)
        for _ in range(20):
            add(1000)  # 20 000 statements, about 30 MB of JSON
        time.sleep(3)
        after = _rss_mb(standalone.pid)
        assert client.json("/api/status")["statements"] == 20_010  # still serving
        hung.close()
    writer.close()
    assert after - before < 15, (before, after)


def golden_statement() -> dict[str, Any]:
    case = next(c for c in golden.cases() if c.name == "segment/whole-session")
    return next(s for r in golden.expected(case) for s in r["statements"])


def test_the_mitmproxy_console_serves_it_too(tmp_path: Path) -> None:
    """`mitmproxy` (the console UI, on a pseudo-terminal), with a token set by the option."""
    port, token = free_port(), "a-token-set-by-the-user-42"
    console = [
        str(MITMDUMP.with_name("mitmproxy")),
        "--listen-host",
        "127.0.0.1",
        "-p",
        "0",
        "--set",
        f"confdir={tmp_path / 'confdir'}",
        "-s",
        str(ADDON),
        "--set",
        f"xapi_store={tmp_path / 's.sqlite3'}",
        "--set",
        f"xapi_dashboard=127.0.0.1:{port}",
        "--set",
        f"xapi_dashboard_token={token}",
    ]
    pid, terminal = pty.fork()
    if pid == 0:  # the console needs a terminal with a size
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        os.execve(console[0], console, {**os.environ, "TERM": "xterm"})
    try:
        answer = None
        deadline = time.monotonic() + 30
        while answer is None and time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):
                    os.read(terminal, 65536)  # the screen, drawn and dropped
            with contextlib.suppress(requests.RequestException):
                answer = requests.get(
                    f"http://127.0.0.1:{port}/api/status",
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=2,
                )
        assert answer is not None and answer.status_code == 200
        assert answer.json()["about"]["mode"] == "live"
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(terminal)
