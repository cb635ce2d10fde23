"""End to end: a page that speaks xAPI to a third-party LRS, through a real mitmdump with the
addon, over HTTPS. The page and that LRS see each other's bytes untouched; a pseudonymised
copy of each statement lands in our store and in our (real, Ralph) LRS.

The third-party LRS is a loopback HTTPS server that records what it receives and answers as an
LRS would (ids, 204s, its version and consistency headers). The pages' requests are the golden
cases' (tests/fixtures/golden/xapi/), sent to it instead of their .example hosts; the local
answers option is on, to show that it never applies to xAPI traffic.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from test_capture_to_lrs import lrs_options
from test_capture_to_lrs import send

import golden
from support.local import stored
from support.loopback import LoopbackServer
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.upstream import self_signed
from xapitap.pseudonym import key_path_for
from xapitap.xapi.mirror import MIRRORED_HOME
from xapitap.xapi.vocab import SOURCE

pytestmark = pytest.mark.e2e

CASES = ("storyline-batch", "put-statement-id", "alternate-syntax", "moodle-h5p")
HOSTS = ("https://lrs.vendor.example", "https://moodle.university.example")
# What the page sends that the LRS must get as sent (the rest is checked whole, below).
XAPI_HEADERS = ("x-experience-api-version", "authorization", "content-type", "origin")
# The golden learners' identifiers and names: none may reach our store or our LRS.
ORIGINAL = ("jane.doe", "Jane Doe", "learner-0042")


@dataclass(frozen=True)
class Exchange:
    method: str
    target: str  # path and query, as received
    headers: list[tuple[str, str]]
    body: bytes
    status: int  # what the LRS answered
    answer_headers: list[tuple[str, str]]
    answer: bytes


class ThirdPartyLrs(LoopbackServer):
    """Someone else's LRS: HTTPS on localhost, answering as an LRS does."""

    def __init__(self, tls_dir: Path) -> None:
        self.exchanges: list[Exchange] = []
        exchanges = self.exchanges

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = _answer(self.command, self.path, body)
                headers = [
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("X-Experience-API-Version", "1.0.3"),
                    ("X-Experience-API-Consistent-Through", "2024-05-06T10:20:16.000Z"),
                    ("ETag", '"third-party-lrs-7"'),
                    ("Set-Cookie", "lrs-session=abc; Secure; HttpOnly"),
                    ("Content-Length", str(len(answer))),
                ]
                self.send_response_only(status)  # no Server or Date: every header is ours
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer)
                exchanges.append(
                    Exchange(
                        self.command,
                        self.path,
                        list(self.headers.items()),
                        body,
                        status,
                        headers,
                        answer,
                    )
                )

            do_POST = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)
        cert, key = self_signed(tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"


def _answer(method: str, target: str, body: bytes) -> tuple[int, bytes]:
    """What an LRS answers: the stored ids to a POST, 204 to a PUT; Moodle its AJAX reply."""
    if target.startswith("/lib/ajax/service.php"):
        return 200, b'[{"error":false,"data":[true,true]},{"error":false,"data":[]}]'
    if method == "PUT" or "method=PUT" in target:
        return 204, b""
    if "method=POST" in target:
        return 200, b'["f2a3b4c5-d6e7-4f8a-9b0c-1d2e3f4a5b6c"]'
    sent = json.loads(body)
    ids = [s.get("id", "0000") for s in (sent if isinstance(sent, list) else [sent])]
    return 200, json.dumps(ids).encode()


@pytest.fixture
def lrs(tmp_path: Path) -> Iterator[ThirdPartyLrs]:
    with ThirdPartyLrs(tmp_path) as server:
        yield server


@pytest.fixture
def ours_lrs() -> Iterator[RalphLRS]:
    """A Ralph of its own: the golden cases' copies, sent to the session's Ralph by
    test_capture_to_lrs.py, have these ids with another `sentTo` (an LRS keeps the first)."""
    with RalphLRS() as ralph:
        yield ralph


def proxy_with_key(tmp_path: Path, ralph: RalphLRS) -> Mitmdump:
    proxy = Mitmdump(
        tmp_path,
        *lrs_options(ralph),
        "--set",
        "xapi_answer_locally=true",  # never for xAPI: it must make no difference
        "--set",
        "ssl_insecure=true",  # the third-party LRS's certificate is self-signed
    )
    key_path_for(proxy.store).write_text(golden.TEST_KEY.hex())  # the golden pseudonyms
    return proxy


def pages_requests(lrs: ThirdPartyLrs) -> list[tuple[str, golden.Request]]:
    """The golden cases' requests, addressed to the third-party LRS (only PUT, POST: the
    alternate-syntax GET is a read, which the golden test covers)."""
    out = []
    for case in golden.cases():
        family, name = case.name.split("/")
        if family != "xapi" or name not in CASES:
            continue
        for request in case.requests():
            if "method=GET" in request.url:
                continue
            url = request.url
            for host in HOSTS:
                url = url.replace(host, lrs.url)
            out.append((name, dataclasses.replace(request, url=url)))
    return out


def predicted_copies(names: set[str]) -> list[dict[str, Any]]:
    """The golden copies (reviewed by hand), as sent to the third-party LRS on localhost."""
    out = []
    for case in golden.cases():
        family, name = case.name.split("/")
        if family == "xapi" and name in names:
            for result in golden.expected(case):
                for statement in result.get("statements", []):
                    statement = copy.deepcopy(statement)
                    statement["context"]["extensions"][SOURCE]["sentTo"] = "localhost"
                    out.append(statement)
    return out


def apart_from_arrival(statement: dict[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in statement.items() if k not in ("id", "timestamp")}
    rest["context"] = copy.deepcopy(statement["context"])
    del rest["context"]["extensions"][SOURCE]["eventId"]
    return rest


def test_pages_xapi_traffic_passes_untouched_and_a_pseudonymised_copy_reaches_our_lrs(
    lrs: ThirdPartyLrs, ours_lrs: RalphLRS, tmp_path: Path
) -> None:
    ralph = ours_lrs
    proxy = proxy_with_key(tmp_path, ralph)
    sent = pages_requests(lrs)
    assert {name for name, _ in sent} == set(CASES) and len(sent) == 6
    started = datetime.now(UTC)
    with proxy:
        answers = [send(proxy, request) for _, request in sent]
    ended = datetime.now(UTC)
    assert proxy.returncode == 0, proxy.output

    # The page got the LRS's answer, byte for byte, and nothing of ours.
    assert len(lrs.exchanges) == len(sent)
    for response, exchange in zip(answers, lrs.exchanges, strict=True):
        assert response.status_code == exchange.status
        assert response.content == exchange.answer
        got = sorted((k.lower(), v) for k, v in response.headers.items())
        assert got == sorted((k.lower(), v) for k, v in exchange.answer_headers)

    # The LRS got exactly what the page sent: method, path and query, body, headers.
    for (_, request), response, exchange in zip(sent, answers, lrs.exchanges, strict=True):
        assert exchange.method == request.method
        assert f"{lrs.url}{exchange.target}" == request.url
        assert exchange.body == request.body
        received = sorted((k.lower(), v) for k, v in exchange.headers if k.lower() != "host")
        assert received == sorted((k.lower(), v) for k, v in response.request.headers.items())
        page = {k.lower(): v for k, v in request.headers.items()}
        for name in XAPI_HEADERS:
            if name in page:
                assert (name, page[name]) in received

    # A copy of each statement (less the one the LRS refuses: its id is not its
    # statementId), pseudonymised, in our store and in our LRS.
    ours = stored(proxy.store)
    timed = predicted_copies({"storyline-batch", "put-statement-id", "alternate-syntax"})
    untimed = predicted_copies({"moodle-h5p"})
    assert len(ours) == len(timed) + len(untimed) == 8
    by_id = {s["id"]: s for s in ours}
    assert [by_id.get(s["id"]) for s in timed] == timed
    moodle = [s for s in ours if s["context"]["extensions"][SOURCE]["rule"] == "xapi.moodle"]
    assert [apart_from_arrival(s) for s in moodle] == [apart_from_arrival(s) for s in untimed]
    for statement in moodle:  # Moodle's have no time of their own: the proxy's
        when = datetime.fromisoformat(statement["timestamp"].replace("Z", "+00:00"))
        assert started.replace(microsecond=0) <= when <= ended
    assert {s["actor"]["account"]["homePage"] for s in ours} == {MIRRORED_HOME}
    assert not [name for name in ORIGINAL if name in json.dumps(ours)]
    in_lrs = [ralph.get(s["id"]) for s in ours]
    assert [as_sent(s) for s in in_lrs if s] == ours, "our LRS holds exactly what we stored"


def as_sent(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement as the LRS returns it, less what the LRS adds."""
    return {k: v for k, v in statement.items() if k not in ("stored", "authority")}
