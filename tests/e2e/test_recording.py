"""Recording through a real mitmdump (`xapi_record`), and replaying the recording: the golden
cases go through the proxy over HTTPS with cookies, authorization and a proxy login; the
recording holds none of their values, and `xapitap replay` of it into a fresh store gives
byte-identical statements to the live store's."""

from __future__ import annotations

import contextlib
import json
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from mitmproxy import http
from mitmproxy import io

import golden
from support.delivery import in_lrs
from support.fidelity import watched
from support.local import cli
from support.local import reading
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.upstream import Upstream
from xapitap.accounting import Fate
from xapitap.pseudonym import key_path_for

pytestmark = pytest.mark.e2e

COOKIE = "session=ck-7e1d2a90"
AUTHORIZATION = "Bearer tok-51c0ffee"
LOGIN = ("p-7", "proxy-pw-0d15ea5e")


def send(proxy: Mitmdump, request: golden.Request) -> None:
    url = f"http://{LOGIN[0]}:{LOGIN[1]}@127.0.0.1:{proxy.port}"
    headers = {**request.headers, "Cookie": COOKIE, "Authorization": AUTHORIZATION}
    # Analytics requests are answered by the proxy; the few others find no host (offline).
    requests.request(
        request.method,
        request.url,
        data=request.body,
        headers=headers,
        proxies={"http": url, "https": url},
        verify=str(proxy.ca),
        timeout=30,
    )


def statements_of(store: Path) -> list[str]:
    with reading(store) as reader:
        return list(reader.statements_json())


def test_a_recording_replays_to_the_same_statements_and_holds_no_credential(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "study.flows"
    proxy = Mitmdump(
        tmp_path,
        "--set",
        f"xapi_record={recording}",
        "--set",
        "xapi_answer_locally=true",
        "--set",
        "proxyauth=any",
    )
    with proxy:
        for case in golden.cases():
            for request in case.requests():
                send(proxy, request)
    live = statements_of(proxy.store)
    with reading(proxy.store) as reader:
        matched = sum(r.count for r in reader.accounting() if r.fate is Fate.REQUEST)
    assert len(live) > 50
    assert stat.S_IMODE(recording.stat().st_mode) == 0o600

    data = recording.read_bytes()
    for secret in (COOKIE, AUTHORIZATION, LOGIN[1], "ck-7e1d2a90", "tok-51c0ffee"):
        assert secret.encode() not in data, secret
    assert b"redacted" in data and LOGIN[0].encode() in data  # the participant stays

    # mitmproxy itself reads it: every analytics request, with its response.
    flows = cli(
        "replay",
        "--store",
        str(tmp_path / "fresh.sqlite3"),
        str(recording),
        "--key-file",
        str(key_path_for(proxy.store)),
    ).stdout
    assert f"{matched} entries read, 0 unreadable, {matched} analytics requests" in flows, flows
    assert statements_of(tmp_path / "fresh.sqlite3") == live

    # Replaying into the live store adds nothing; nor does replaying twice.
    again = cli("replay", "--store", str(proxy.store), str(recording)).stdout
    assert "0 new statements" in again, again
    assert statements_of(proxy.store) == live


def test_a_request_still_waiting_for_its_answer_is_recorded_at_the_stop(tmp_path: Path) -> None:
    """SIGTERM while a matched request waits for a server that never answers: the recording
    still has it (without a response)."""
    recording = tmp_path / "study.flows"
    body = json.dumps({"type": "track", "event": "Video Playback Paused", "writeKey": "WK"})
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/t"
        with Mitmdump(tmp_path, "--set", f"xapi_record={recording}") as proxy:
            waiting = threading.Thread(
                target=lambda: _quietly(
                    lambda: requests.post(url, data=body, proxies=proxy.proxies, timeout=60)
                ),
                daemon=True,
            )
            waiting.start()
            with reading(proxy.store) as reader:  # it is journaled, and translated
                assert reader.accounting()
            assert proxy.stop() == 0
    with recording.open("rb") as file:
        flows = list(io.FlowReader(file).stream())
    assert len(flows) == 1
    (flow,) = flows
    assert isinstance(flow, http.HTTPFlow)
    assert flow.request.url == url and flow.request.content == body.encode()
    assert flow.response is None


def _quietly(call: Callable[[], object]) -> None:
    with contextlib.suppress(requests.RequestException):  # the proxy stopped under it
        call()


def test_record_all_records_every_flow_the_same_way(tmp_path: Path) -> None:
    recording = tmp_path / "all.flows"
    with Upstream() as upstream:
        args = ("--set", f"xapi_record={recording}", "--set", "xapi_record_all=true")
        with Mitmdump(tmp_path, *args) as proxy:
            answer = requests.get(
                f"http://127.0.0.1:{upstream.port}/page?x=1",
                headers={"Cookie": COOKIE},
                proxies=proxy.proxies,
                timeout=30,
            )
            assert answer.status_code == 200
    with recording.open("rb") as file:
        (flow,) = list(io.FlowReader(file).stream())
    assert isinstance(flow, http.HTTPFlow) and flow.response is not None
    assert flow.request.path == "/page?x=1" and flow.request.headers["cookie"] == "redacted"
    assert COOKIE.encode() not in recording.read_bytes()


def test_replay_forwards_to_an_lrs_as_live_capture_does(ralph: RalphLRS, tmp_path: Path) -> None:
    """Through the outbox, as a proxy's sink: the new statements reach a real Ralph."""
    entries = [
        {
            "startedDateTime": f"2024-06-01T09:00:{10 + 15 * n}.000Z",
            "request": {
                "method": "POST",
                "url": "https://api.segment.io/v1/t",
                "headers": [{"name": "Content-Type", "value": "text/plain"}],
                "postData": {"mimeType": "text/plain", "text": json.dumps(body)},
            },
        }
        for n, body in enumerate([watched(10, 0, 10), watched(25, 10, 20, mid="b")])
    ]
    har = tmp_path / "s.har"
    har.write_text(json.dumps({"log": {"entries": entries}}))
    store = tmp_path / "s.sqlite3"
    report = cli(
        "replay",
        str(har),
        "--store",
        str(store),
        "--lrs-endpoint",
        ralph.url,
        "--lrs-username",
        ralph.username,
        "--lrs-password-env",
        "RALPH_PASSWORD",
        env={"RALPH_PASSWORD": ralph.password},
    ).stdout
    made = [json.loads(text) for text in statements_of(store)]
    assert len(made) >= 4 and f"{len(made)} delivered, 0 still queued" in report, report
    assert in_lrs(ralph, made) == made
    assert ralph.password not in report
