"""Golden cases: captured requests in, the exact statements expected out.

Each case is `fixtures/golden/<platform>/<name>.input.json`, with its expectation beside it in
`<name>.expected.json`. Run `XAPITAP_UPDATE_GOLDEN=1 pytest tests/test_golden.py` to write the
expectations after a deliberate mapping change, then review every changed line: a golden file
is a claim about what the platform's traffic means, checked by a person.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decompress
from xapitap.pipeline import Pipeline
from xapitap.platforms.base import Platform
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = FIXTURES / "golden"
SEED = FIXTURES / "seed"
# A fixed pseudonym key, so the expected actor names are stable.
TEST_KEY = bytes(range(32))
MAX_BODY = 1024 * 1024
UPDATE = os.environ.get("XAPITAP_UPDATE_GOLDEN") == "1"


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime

    def capture(self) -> Capture:
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        return Capture(
            method=self.method,
            scheme=parts.scheme,
            host=(parts.hostname or "").lower(),
            port=parts.port or default,
            path=parts.path,
            query=parts.query,
            headers=tuple((k.lower(), v) for k, v in self.headers.items()),
            body=self.body,
            received_at=self.received_at,
            flow_id="golden",
        )


@dataclass(frozen=True)
class Case:
    name: str  # platform/name
    input_path: Path
    spec: dict[str, Any]

    @property
    def expected_path(self) -> Path:
        return self.input_path.with_name(
            self.input_path.name.replace(".input.json", ".expected.json")
        )

    @property
    def arrival_dependent(self) -> bool:
        """Its statements use the time the proxy saw a request: the body has no time, or
        says when it was sent (Segment's `sentAt`), which corrects its times to ours."""
        return bool(self.spec.get("arrival_dependent", False))

    def requests(self) -> list[Request]:
        return [_request(r) for r in self.spec["requests"]]


def cases() -> list[Case]:
    found = []
    for path in sorted(GOLDEN.glob("*/*.input.json")):
        name = f"{path.parent.name}/{path.name.removesuffix('.input.json')}"
        found.append(Case(name, path, json.loads(path.read_text())))
    return found


def _request(spec: dict[str, Any]) -> Request:
    if "body_seed" in spec:
        body = (SEED / spec["body_seed"]).read_bytes()
    elif "body_text" in spec:
        body = spec["body_text"].encode("utf-8")
    else:
        body = json.dumps(spec["body"], separators=(",", ":")).encode("utf-8")
    headers = dict(spec.get("headers", {}))
    if spec.get("encoding") == "gzip":
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Request(
        method=spec.get("method", "POST"),
        url=spec["url"],
        headers=headers,
        body=body,
        received_at=datetime.fromisoformat(spec["received_at"].replace("Z", "+00:00")),
    )


def run(
    case: Case, key: bytes = TEST_KEY, platforms: Sequence[Platform] = ()
) -> list[dict[str, Any]]:
    """What the pipeline makes of each request of the case, in order. `platforms`: more
    than the built-in ones (mapping files)."""
    return run_requests(case.requests(), key, platforms)


def run_requests(
    requests: list[Request], key: bytes = TEST_KEY, platforms: Sequence[Platform] = ()
) -> list[dict[str, Any]]:
    """What the pipeline makes of each request, in order, and of the proxy stopping."""
    pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(key)), MAX_BODY, platforms=platforms)
    matcher = pipeline.matcher()
    results = []
    for request in requests:
        capture = request.capture()
        match = matcher.match(
            capture.method, capture.host, capture.path, capture.header, partial(_plain, capture)
        )
        if match is None:
            results.append({"rule": None})
            continue
        outcome = pipeline.process(match, capture)
        results.append(
            {
                "rule": match.rule.name,
                "statements": [json.loads(s.to_json()) for s, _ in outcome.statements],
                "quarantined": [q.reason for q, _ in outcome.quarantined],
                "ignored": outcome.ignored,
                "errors": outcome.errors,
            }
        )
    # The proxy stops: every open session ends.
    ended = [json.loads(s.to_json()) for s, _ in pipeline.finish().statements]
    if ended:
        results.append({"rule": "(proxy stops)", "statements": ended})
    return results


def without_sent_at(request: Request) -> Request:
    """The request without Segment's `sentAt`: its times are then the client's own, and
    what it gives no longer depends on when the proxy sees it."""
    body = json.loads(request.body)
    body.pop("sentAt", None)
    for message in body.get("batch", []):
        message.pop("sentAt", None)
    return dataclasses.replace(request, body=json.dumps(body).encode())


def _plain(capture: Capture) -> bytes:
    try:
        return decompress(capture.body, capture.header("content-encoding"), MAX_BODY)
    except DecodeError:
        return capture.body


def expected(case: Case) -> list[dict[str, Any]]:
    return json.loads(case.expected_path.read_text())  # type: ignore[no-any-return]


def write_expected(case: Case, results: list[dict[str, Any]]) -> None:
    text = json.dumps(results, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    case.expected_path.write_text(text)
