"""Hostile input through the real parts (issue 14): no page can stop capture, stall the proxy,
exhaust its memory or get a secret where it must not be.

A real `mitmdump` with the addon sits in front of a loopback HTTPS upstream (no local answers,
so passthrough is observable). A request reaches the platform's rules through its Host header
(`api.segment.io`, `www.udemy.com`, ...) while mitmproxy connects to the CONNECT target, the
loopback upstream, which records what it receives.

For every hostile request:
- the upstream receives its body and headers byte for byte;
- capture continues: a valid Segment event sent afterwards is stored within CAPTURE_BOUND_S;
- the proxy's peak resident memory (VmHWM) stays under RSS_CEILING_MB;
- plain requests sent meanwhile (a background client, unmatched GETs) each take < PLAIN_BOUND_S.
"""

from __future__ import annotations

import base64
import copy
import importlib
import itertools
import json
import re
import sqlite3
import stat
import struct
import threading
import time
import zlib
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import brotli
import pytest
import requests
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from support.local import cli
from support.loopback import LoopbackServer
from support.proxy import Mitmdump
from support.upstream import RESPONSE_BODY
from support.upstream import Upstream

pytestmark = pytest.mark.e2e

RSS_CEILING_MB = 400  # peak resident memory of the mitmdump process
PLAIN_BOUND_S = 2.0  # each plain request sent while hostile ones go through
CAPTURE_BOUND_S = 10.0  # a valid event sent after a hostile one is stored within this
HOSTILE_TIMEOUT_S = 30.0  # a hostile request itself (held at most 2 s by the addon)
MAX_BODY = 1024 * 1024  # xapi_max_body_bytes' default
GiB = 1 << 30
_BOMB_CHUNK = 16 << 20  # (a full flush per chunk costs a few bytes: 1 GiB must fit in 1 MiB)

WRITE_KEY = "wk-hostile-3f9c2a7d51e8b604"

# ---------------------------------------------------------------------------------------------
# Platform shapes: a valid body per platform endpoint, whose every field can be replaced.


@dataclass(frozen=True)
class Shape:
    name: str
    host: str  # the Host header: which rules see the request
    path: str
    body: Callable[[int], Any]  # n (unique per request) -> a valid document
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "POST"


def segment_message(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Video Playback Paused",
        "messageId": f"ajs-hostile-{n}",
        "userId": f"learner-{n}",
        "anonymousId": f"anon-{n}",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "sentAt": "2024-05-01T10:00:00.100Z",
        "properties": {
            "session_id": f"play-{n}",
            "content_asset_id": f"lecture-{n}",
            "title": "Welcome to Statistics",
            "position": 33.3,
            "total_length": 60,
            "sound": 80,
            "full_screen": False,
            "quality": "hd720",
        },
        "context": {
            "page": {
                "url": "https://learn.example.org/courses/stats/intro",
                "path": "/courses/stats/intro",
                "title": "Intro",
                "referrer": "https://learn.example.org/",
            },
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        },
        "writeKey": WRITE_KEY,
    }


def segment_batch(n: int) -> dict[str, Any]:
    message = segment_message(n)
    del message["writeKey"], message["sentAt"]
    return {"batch": [message], "sentAt": "2024-05-01T10:00:00.100Z", "writeKey": WRITE_KEY}


def udacity_watched(n: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Course Video Watched",
        "messageId": f"ajs-udacity-{n}",
        "userId": f"learner-{n}",
        "timestamp": "2018-05-11T17:55:38.742Z",
        "sentAt": "2018-05-11T17:55:38.744Z",
        "properties": {
            "conceptKey": "487421730923",
            "courseKey": "cs271",
            "lessonKey": "48688925",
            "concept_title": "Terminology",
            "course_title": "Intro to Artificial Intelligence",
            "lesson_title": "1. Welcome to AI",
            "course_key": "cs271",
            "startTime": 0,
            "endTime": 10.155488,
            "videoDuration": 317.341,
            "durationWatched": 10.155488,
            "playerState": "paused",
            "atomKey": f"4874{n}",
        },
        "context": {
            "page": {
                "url": "https://classroom.udacity.com/courses/cs271/lessons/48688925/concepts/1",
                "title": "Intro to Artificial Intelligence - Udacity",
            }
        },
        "writeKey": WRITE_KEY,
    }


def udemy_progress(n: int) -> dict[str, Any]:
    return {
        "position": 15,
        "total": 60,
        "time": "2024-03-04T11:00:15.000Z",
        "context": {"type": "Lecture", "n": n},
    }


def udemy_video_controls(n: int) -> dict[str, Any]:
    return {
        "userId": 7654321,
        "visitorUUID": f"a1b2c3d4e5f60718293a4b5c6d7e{n:04d}",
        "userType": "Student",
        "courseId": 4242,
        "courseType": "Paid",
        "objectId": 9000 + n,
        "objectType": "Lecture",
        "ctVersion": "1",
        "category": "Video Controls",
        "action": "video hd: 480",
        "extra": {
            "dimension2": "videojs Html5",
            "msPosition": 136697.248,
            "userId": 7654321,
            "format": "video/mp4",
            "quality": "720",
            "cdn": "level3",
        },
    }


def coursera_eventing(n: int) -> dict[str, Any]:
    return {
        "clientType": "web",
        "app": "phoenix",
        "events": [
            {
                "key": "open_course.video.pause",
                "value": {
                    "open_course_slug": "geospatial",
                    "video_name": "Lesson 1 - Lecture 1",
                    "item_id": f"item{n}",
                    "item_name": "Lesson 1 - Lecture 1",
                    "lesson_id": "gAaTS",
                    "lesson_name": "The Changing Nature of Place",
                    "module_id": "EOiNh",
                    "module_name": "The Changing Nature of Place",
                    "timecode": 5.503129,
                },
                "url": "https://www.coursera.org/learn/geospatial/lecture/8xwbQ/lesson-1",
                "guid": f"guid-hostile-{n}",
                "visitId": f"visit-{n}",
                "clientTimestamp": 1526061514664,
                "sequence": 3571,
            }
        ],
    }


_UDEMY_COOKIE = (("Cookie", "ud_cache_user=7654321; __udmy_2_v57r=a1b2c3d4e5f6"),)
SHAPES = (
    Shape("segment-api-t", "api.segment.io", "/v1/t", segment_message),
    Shape("segment-api-b", "api.segment.io", "/v1/b", segment_batch),
    Shape("segment-first-party-t", "t.learn.example.org", "/v1/t", segment_message),
    Shape("segment-first-party-b", "t.learn.example.org", "/v1/b", segment_batch),
    Shape("udacity-watched", "api.segment.io", "/v1/t", udacity_watched),
    Shape(
        "udemy-progress-log",
        "www.udemy.com",
        "/api-2.0/users/me/subscribed-courses/4242/lectures/9002/progress-logs/",
        udemy_progress,
        _UDEMY_COOKIE,
    ),
    Shape(
        "udemy-video-controls",
        "www.udemy.com",
        "/api-2.0/visits/me/course-taking-events/",
        udemy_video_controls,
    ),
    Shape(
        "coursera-eventing",
        "www.coursera.org",
        "/api/rest/v1/eventing/infobatch",
        coursera_eventing,
        (("Content-Type", "application/json"),),
    ),
)

Path_ = tuple[str | int, ...]
TIME_KEYS = {"timestamp", "sentAt", "originalTimestamp", "time"}
EPOCH_KEYS = {"clientTimestamp"}
HOLE = "@@hostile-value@@"


def leaves(doc: Any, at: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from leaves(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from leaves(value, (*at, i))
    else:
        yield at, doc


def containers(doc: Any, at: Path_ = ()) -> Iterator[Path_]:
    if isinstance(doc, dict | list):
        yield at
        items = doc.items() if isinstance(doc, dict) else enumerate(doc)
        for key, value in items:
            yield from containers(value, (*at, key))


def kind_of(path: Path_, value: Any) -> str:
    key = path[-1] if path else ""
    if key in TIME_KEYS:
        return "time"
    if key in EPOCH_KEYS:
        return "epoch"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "string"


def positions(shape: Shape, kind: str) -> list[Path_]:
    return [p for p, v in leaves(shape.body(0)) if kind_of(p, v) == kind]


def render(doc: Any, path: Path_ | None = None, token: str | None = None) -> bytes:
    """The document as JSON, with the value at `path` replaced by the raw JSON `token` (which
    need not be valid JSON, nor what Python's json would write: 5000 digits, NaN, -0...).
    An empty path replaces the whole document."""
    if path is None or token is None:
        return json.dumps(doc, separators=(",", ":")).encode()
    if not path:
        return token.encode()
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = HOLE
    text = json.dumps(doc, separators=(",", ":"))
    return text.replace(json.dumps(HOLE), token, 1).encode()


def with_key(doc: Any, at: Path_, key_token: str, value_token: str) -> bytes:
    """The document with one more member, written raw, in the object at `at`."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in at:
        target = target[key]
    target[HOLE] = 0
    text = json.dumps(doc, separators=(",", ":"))
    return text.replace(f"{json.dumps(HOLE)}:0", f"{key_token}:{value_token}", 1).encode()


# ---------------------------------------------------------------------------------------------
# The named classes of hostile values, as raw JSON tokens.

SURROGATES = ['"\\ud800"', '"a\\udfffb"', '"\\udbff\\u0000"', '"\\ud800\\ud800"']
NULS = ['"\\u0000"', '"a\\u0000b"']
NUMBERS = [
    "9" * 5000,
    "-" + "1" * 5000,
    "0." + "1" * 5000,
    "1e300",
    "-1e300",
    "1e999",
    "-0",
    "-0.0",
    "NaN",
    "Infinity",
    "-Infinity",
    "5e-324",
]
TIMESTAMPS = [
    '"0001-01-01T00:00:00+14:00"',
    '"0001-01-01T00:00:00-14:00"',
    '"9999-12-31T23:59:59-14:00"',
    '"9999-12-31T23:59:59.999999+14:00"',
    '"0001-01-01Z"',
    '"0001-01-01"',
    '"9999-12-31"',
]
EPOCHS = ["-62135596800000", "253402300800000", "253402300799999", "1e300", "0", "-0"]


def nested(depth: int, kind: str = "array") -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


DEEP = [nested(990), nested(1000), nested(1000, "object"), nested(50_000)]
_HUGE = 500 * 1024
HUGE_STRINGS = [
    json.dumps("A" * _HUGE),  # a 500 KB title
    json.dumps("word " * (_HUGE // 5)),  # with spaces, as in a content_asset_id
    json.dumps(("x" * 60 + "@" + "a." * 20) * (_HUGE // 101)),  # e-mail-like, unfinished
    json.dumps("\u00e9\u4e2d" * (_HUGE // 5), ensure_ascii=False),  # 2- and 3-byte UTF-8
]

# ---------------------------------------------------------------------------------------------
# Compression bombs: 1 GiB (of zeros, or of a JSON string's letters) in each encoding.


def _deflate_raw_bomb(prefix: bytes, fill: int, size: int) -> bytes:
    """A raw deflate stream of prefix + `size` bytes of `fill`, built fast: after a full flush
    the compressor starts afresh, so every further chunk compresses to the same bytes."""
    chunk = bytes([fill]) * _BOMB_CHUNK
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix + chunk) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.compress(chunk) + c.flush()  # the last chunk, and the final block
    return head + block * (size // _BOMB_CHUNK - 2) + tail


def _checksums(prefix: bytes, fill: int, size: int) -> tuple[int, int]:
    chunk = bytes([fill]) * _BOMB_CHUNK
    crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
    for _ in range(size // _BOMB_CHUNK):
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    return crc, adler


def _zstd_compress(chunks: Iterator[bytes]) -> bytes:
    """zstd with the module this mitmproxy installs: compression.zstd (3.14), backports.zstd
    (mitmproxy 12) or zstandard (mitmproxy 11)."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        compressor = module.ZstdCompressor()
        return b"".join(compressor.compress(c) for c in chunks) + compressor.flush()
    import zstandard

    obj = zstandard.ZstdCompressor().compressobj()
    return b"".join(obj.compress(c) for c in chunks) + obj.flush()


@cache
def bomb(encoding: str, json_prefixed: bool = False) -> bytes:
    """1 GiB, compressed: zeros, or a Segment body whose title is 1 GiB of "A" (so that a body
    check that looks at the first MiB says yes)."""
    prefix = b""
    fill = 0
    if json_prefixed:
        prefix = (
            b'{"type":"track","event":"Video Playback Paused","writeKey":"'
            + WRITE_KEY.encode()
            + b'","ctVersion":"1","action":"video play","properties":{"title":"'
        )
        fill = ord("A")
    size = GiB
    if encoding in ("gzip", "deflate"):
        raw = _deflate_raw_bomb(prefix, fill, size)
        crc, adler = _checksums(prefix, fill, size)
        if encoding == "gzip":
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            return header + raw + struct.pack("<II", crc, (len(prefix) + size) & 0xFFFFFFFF)
        return b"\x78\xda" + raw + struct.pack(">I", adler)
    chunk = bytes([fill]) * _BOMB_CHUNK
    chunks = itertools.chain([prefix], itertools.repeat(chunk, size // _BOMB_CHUNK))
    if encoding == "br":
        compressor = brotli.Compressor(quality=5)
        return b"".join(compressor.process(c) for c in chunks) + compressor.finish()
    if encoding == "zstd":
        return _zstd_compress(chunks)
    raise ValueError(encoding)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(body) + c.flush()
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "br":
        return bytes(brotli.compress(body))
    if encoding == "zstd":
        return _zstd_compress(iter([body]))
    raise ValueError(encoding)


# ---------------------------------------------------------------------------------------------
# The rig: upstream, proxy, a plain client in the background, the proxy's memory, the store.


def proxy_pid(proxy: Mitmdump) -> int:
    assert proxy._proc is not None  # Mitmdump keeps its Popen private; its pid is mitmdump's
    return proxy._proc.pid


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak so far) of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class PlainClient(threading.Thread):
    """Unmatched GETs through the proxy to the upstream, one every 0.1 s, each timed."""

    def __init__(self, proxy: Mitmdump, upstream: Upstream) -> None:
        super().__init__(daemon=True)
        self.proxy, self.upstream = proxy, upstream
        self.done = threading.Event()
        self.results: list[tuple[float, bool, str]] = []  # seconds, ok, what
        self.during = "start"  # what the hostile client is sending

    def run(self) -> None:
        session = requests.Session()
        session.trust_env = False
        for n in itertools.count():
            if self.done.wait(0.1):
                break
            during = self.during
            started = time.monotonic()
            try:
                response = session.get(
                    f"{self.upstream.url}/plain/{n}",
                    proxies=self.proxy.proxies,
                    verify=str(self.proxy.ca),
                    timeout=30,
                )
                ok = response.status_code == 200 and response.content == RESPONSE_BODY
            except requests.RequestException:
                ok = False
            self.results.append((time.monotonic() - started, ok, during))
        session.close()

    def stop(self) -> None:
        self.done.set()
        self.join(40)


class Rig:
    def __init__(self, proxy: Mitmdump, upstream: Upstream) -> None:
        self.proxy, self.upstream = proxy, upstream
        self.pid = proxy_pid(proxy)
        self.session = requests.Session()
        self.session.trust_env = False
        self.plain = PlainClient(proxy, upstream)
        self.seq = itertools.count(1)
        self.canaries = itertools.count(1)
        self.sent_since_canary: list[str] = []
        self._db: sqlite3.Connection | None = None

    # -- sending --------------------------------------------------------------------------

    def send(
        self,
        shape: Shape,
        body: bytes,
        label: str,
        headers: tuple[tuple[str, str], ...] = (),
        session: requests.Session | None = None,
    ) -> None:
        """Send one hostile request; the upstream must get it byte for byte."""
        n = next(self.seq)
        self.plain.during = label
        self.sent_since_canary.append(label)
        sent_headers = {"Host": shape.host, "Content-Type": "text/plain"}
        sent_headers.update(dict(shape.headers))
        sent_headers.update(dict(headers))
        sent_headers["X-Hostile-Seq"] = str(n)
        try:
            response = (session or self.session).request(
                shape.method,
                self.upstream.url + shape.path,
                data=body,
                headers=sent_headers,
                proxies=self.proxy.proxies,
                verify=str(self.proxy.ca),
                timeout=HOSTILE_TIMEOUT_S,
            )
        except requests.Timeout:
            raise AssertionError(
                f"the proxy held {label} ({len(body)} bytes) over {HOSTILE_TIMEOUT_S} s"
            ) from None
        assert response.status_code == 200, f"{label}: {response.status_code} {response.text}"
        assert response.content == RESPONSE_BODY, label
        assert "x-xapitap" not in response.headers, label
        got = [r for r in self.upstream.received if ("X-Hostile-Seq", str(n)) in r.headers]
        assert len(got) == 1, f"{label}: the upstream got it {len(got)} times"
        assert got[0].target == shape.path, label
        assert got[0].body == body, f"{label}: the body changed on the way"
        assert got[0].headers == list(response.request.headers.items()), label
        self.check_memory(label)

    # -- checks ---------------------------------------------------------------------------

    def check_memory(self, label: str) -> None:
        mem = memory_kb(self.pid)
        assert mem["VmHWM"] < RSS_CEILING_MB * 1024, (
            f"mitmdump peaked at {mem['VmHWM'] // 1024} MB (now {mem['VmRSS'] // 1024} MB), "
            f"over the {RSS_CEILING_MB} MB ceiling, by {label}"
        )

    def stored_for(self, asset: str) -> int:
        if self._db is None:
            self._db = sqlite3.connect(f"file:{self.proxy.store}?mode=ro", uri=True)
        row = self._db.execute(
            "SELECT COUNT(*) FROM statements WHERE object_id LIKE ?", (f"%#video-{asset}",)
        ).fetchone()
        return int(row[0])

    def check_capture(self) -> None:
        """A valid Segment event sent now is stored within CAPTURE_BOUND_S."""
        n = next(self.canaries)
        asset = f"canary-{n}"
        body = {
            "type": "track",
            "event": "Video Playback Started",
            "messageId": f"ajs-canary-{n}",
            "userId": "canary-learner",
            "timestamp": "2024-05-01T10:00:00.000Z",
            "properties": {
                "session_id": f"canary-session-{n}",
                "content_asset_id": asset,
                "title": "Canary",
                "position": 0,
                "total_length": 60,
            },
            "context": {"page": {"url": "https://learn.example.org/canary"}},
            "writeKey": WRITE_KEY,
        }
        shape = Shape("canary", "api.segment.io", "/v1/t", lambda n: body)
        after = list(self.sent_since_canary)
        self.send(shape, render(body), f"canary {n}")
        deadline = time.monotonic() + CAPTURE_BOUND_S
        while not self.stored_for(asset):
            assert time.monotonic() < deadline, (
                f"capture stopped: a valid event was not stored within {CAPTURE_BOUND_S} s "
                f"after {after[:3]}{' ...' if len(after) > 3 else ''} "
                f"({len(after)} requests)\n{self.tail()}"
            )
            time.sleep(0.05)
        self.sent_since_canary = []

    def check_plain(self) -> None:
        deadline = time.monotonic() + 10
        while len(self.plain.results) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)  # a few more, after the hostile ones
        results = self.plain.results
        assert len(results) >= 5, "the plain client hardly ran"
        failed = [during for _, ok, during in results if not ok]
        assert not failed, f"plain requests failed during {sorted(set(failed))[:5]}"
        slow = sorted(((s, during) for s, _, during in results if s >= PLAIN_BOUND_S), reverse=True)
        assert not slow, (
            f"{len(slow)} of {len(results)} plain requests took >= {PLAIN_BOUND_S} s; "
            f"slowest {slow[0][0]:.1f} s during {slow[0][1]}; "
            f"during: {sorted({d for _, d in slow})[:5]}"
        )

    def tail(self) -> str:
        return "proxy output (tail):\n" + "\n".join(self.proxy.lines[-15:])

    def close(self) -> None:
        self.session.close()
        if self._db is not None:
            self._db.close()


@contextmanager
def hostile_rig(tmp_path: Path) -> Iterator[Rig]:
    with Upstream(tls_dir=tmp_path) as upstream:
        proxy = Mitmdump(tmp_path, "--set", "ssl_insecure=true")
        with proxy:
            rig = Rig(proxy, upstream)
            rig.plain.start()
            try:
                rig.check_capture()  # the canary works before anything hostile
                yield rig
            finally:
                rig.plain.stop()
                rig.close()
        assert proxy.returncode == 0, proxy.output[-3000:]


# ---------------------------------------------------------------------------------------------
# 1. The named classes, in every platform shape


def _each_leaf(kind: str, tokens: list[str]) -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    """Per shape: each of `tokens` in turn in each field of that kind."""
    for shape in SHAPES:
        out = []
        for path in positions(shape, kind):
            for token in tokens:
                n = next(_ids)
                label = f"{shape.name} {'.'.join(map(str, path))}={token[:24]}"
                out.append((label, render(shape.body(n), path, token)))
        yield shape, out


_ids = itertools.count(1000)


def _surrogates() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    """A lone surrogate in every string field and as every object's member name; the other
    surrogate tokens round robin over the string fields."""
    for shape, out in _each_leaf("string", SURROGATES[:1]):
        doc = shape.body(next(_ids))
        for at in containers(doc):
            if isinstance(_at(doc, at), dict):
                label = f"{shape.name} member name in {'.'.join(map(str, at)) or 'root'}"
                out.append((label, with_key(doc, at, SURROGATES[0], "1")))
        out.append((f"{shape.name}: the 17 bytes of issue 14", b'{"type":"\\ud800"}'))
        paths = positions(shape, "string")
        for i, token in enumerate(SURROGATES[1:] * 2):
            path = paths[(i * 7) % len(paths)]
            label = f"{shape.name} {'.'.join(map(str, path))}={token}"
            out.append((label, render(shape.body(next(_ids)), path, token)))
        yield shape, out


def _at(doc: Any, path: Path_) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _nuls() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    for shape, out in _each_leaf("string", NULS):
        out.append(
            (f"{shape.name} NUL byte after the JSON", render(shape.body(next(_ids))) + b"\x00")
        )
        yield shape, out


def _numbers() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    yield from _each_leaf("number", NUMBERS)


def _timestamps() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    for (shape, times), (_, epochs) in zip(
        _each_leaf("time", TIMESTAMPS), _each_leaf("epoch", EPOCHS), strict=True
    ):
        yield shape, times + epochs


def _nesting() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    for shape in SHAPES:
        doc = shape.body(next(_ids))
        out = []
        for at in containers(doc):
            for token in DEEP[:2]:
                label = (
                    f"{shape.name} {'.'.join(map(str, at)) or 'root'}={token[:8]}..({len(token)})"
                )
                if at:
                    out.append((label, render(doc, at, token)))
                else:
                    out.append((label, with_key(doc, at, '"deep"', token)))
        out += [(f"{shape.name} whole body {t[:4]}..({len(t)})", t.encode()) for t in DEEP]
        yield shape, out


def _huge_strings() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    for shape in SHAPES:
        out = []
        for i, path in enumerate(positions(shape, "string")):
            token = HUGE_STRINGS[i % len(HUGE_STRINGS)]
            label = f"{shape.name} {'.'.join(map(str, path))}=500 KB #{i % len(HUGE_STRINGS)}"
            out.append((label, render(shape.body(next(_ids)), path, token)))
        yield shape, out


def _compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def _huge_batches() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    count = 10_000
    # (compact, to fit 10,000 in the 1 MiB cap: asset_id, base-36 session ids, camelCase names)
    starts = [
        {
            "type": "track",
            "event": "videoPlaybackStarted",
            "properties": {"session_id": _base36(i), "asset_id": "a"},
        }
        for i in range(count)
    ]
    # played 3k..3k+1, then a jump: 5,000 stretches that cannot merge, in one session (no
    # session_id: the learner's one video)
    one_session = [
        {
            "type": "track",
            "event": "videoPlaybackResumed" if i % 2 == 0 else "videoPlaybackPaused",
            "properties": {"asset_id": "a", "position": 3 * (i // 2) + i % 2},
        }
        for i in range(count)
    ]
    heartbeats = [
        {
            "key": "open_course.video.heartbeat" if i else "open_course.video.play",
            "value": {"open_course_slug": "c", "item_id": "i", "timecode": i},
        }
        for i in range(count)
    ]
    segment_api, segment_first_party = SHAPES[1], SHAPES[3]
    coursera = SHAPES[7]
    batches = [
        (segment_api, "10,000 new sessions", {"batch": starts, "writeKey": WRITE_KEY}),
        (segment_api, "10,000 play/pause in one session", {"batch": one_session}),
        (segment_api, "10,000 more of that session", {"batch": one_session[::-1]}),
        (segment_first_party, "10,000 numbers", {"batch": [0] * count, "writeKey": WRITE_KEY}),
        (coursera, "10,000 heartbeats of one video", {"events": heartbeats}),
        (coursera, "10,000 empty events", {"events": [{}] * count}),
    ]
    for shape, label, doc in batches:
        body = _compact(doc)
        assert len(body) <= MAX_BODY, f"{label}: {len(body)} bytes, over the cap: not read"
        yield shape, [(f"{shape.name} {label}", body)]


def _sessions_with_huge_titles() -> Iterator[tuple[Shape, list[tuple[str, bytes]]]]:
    """400 sessions, each opened by a request with a title of a million characters (issue 14:
    300 such sessions kept 353 MB, whole events in memory for 30 idle minutes)."""
    shape = SHAPES[0]
    out = []
    for i in range(400):
        doc = shape.body(next(_ids))
        doc["event"] = "Video Playback Started"
        body = render(doc, ("properties", "title"), json.dumps(f"{i:06d}" + "T" * 999_994))
        assert len(body) <= MAX_BODY
        out.append((f"{shape.name} session {i} with a 1 MB title", body))
    yield shape, out


FAMILIES: dict[str, Callable[[], Iterator[tuple[Shape, list[tuple[str, bytes]]]]]] = {
    "lone-surrogates": _surrogates,
    "nul": _nuls,
    "numbers": _numbers,
    "timestamps": _timestamps,
    "deep-nesting": _nesting,
    "500-KB-strings": _huge_strings,
    "10000-item-batches": _huge_batches,
    "400-sessions-with-1-MB-titles": _sessions_with_huge_titles,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_named_hostile_values_in_every_platform_shape(tmp_path: Path, family: str) -> None:
    with hostile_rig(tmp_path) as rig:
        for shape, requests_ in FAMILIES[family]():
            for label, body in requests_:
                rig.send(shape, body, label)
            rig.check_capture()
        rig.check_plain()


# ---------------------------------------------------------------------------------------------
# 2. Hypothesis: generated bodies per platform shape


_chars = st.one_of(st.characters(), st.sampled_from(["\ud800", "\udbff", "\udc00", "\x00", "@"]))
_text = st.text(_chars, max_size=40)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    _text,
)
_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_text, kids, max_size=4),
    max_leaves=12,
)
_tokens = st.one_of(
    _values.map(json.dumps),  # NaN and Infinity as Python writes them; surrogates escaped
    st.sampled_from(SURROGATES + NULS + NUMBERS + TIMESTAMPS + EPOCHS + DEEP[:3]),
)


@dataclass(frozen=True)
class Fuzzed:
    shape: Shape
    mutation: str  # leaf, container, key, truncate, bytes
    path: Path_
    token: str
    cut: float
    noise: bytes
    encoding: str | None

    def body(self, n: int) -> bytes:
        doc = self.shape.body(n)
        if self.mutation == "bytes":
            body = self.noise
        elif self.mutation == "key":
            body = with_key(doc, self.path, json.dumps(self.token[:20]), "0")
        elif self.mutation == "truncate":
            whole = render(doc)
            body = whole[: int(len(whole) * self.cut)]
        else:
            body = render(doc, self.path, self.token)
        return compress(body, self.encoding) if self.encoding else body

    def __repr__(self) -> str:
        where = ".".join(map(str, self.path))
        return (
            f"Fuzzed({self.shape.name}, {self.mutation} {where}, token={self.token[:60]!r}, "
            f"cut={self.cut}, noise={self.noise[:20]!r}, encoding={self.encoding})"
        )


@st.composite
def fuzzed(draw: st.DrawFn) -> Fuzzed:
    shape = draw(st.sampled_from(SHAPES))
    doc = shape.body(0)
    mutation = draw(
        st.sampled_from(["leaf", "leaf", "leaf", "container", "key", "truncate", "bytes"])
    )
    path: Path_ = ()
    if mutation == "leaf":
        path = draw(st.sampled_from([p for p, _ in leaves(doc)]))
    elif mutation == "container":
        path = draw(st.sampled_from(list(containers(doc))))
    elif mutation == "key":
        path = draw(st.sampled_from([p for p in containers(doc) if isinstance(_at(doc, p), dict)]))
    return Fuzzed(
        shape=shape,
        mutation=mutation,
        path=path,
        token=draw(_tokens) if mutation in ("leaf", "container", "key") else "",
        cut=draw(st.floats(0, 1)) if mutation == "truncate" else 0.0,
        noise=draw(st.binary(max_size=300)) if mutation == "bytes" else b"",
        encoding=draw(st.sampled_from([None, None, None, "gzip", "deflate", "br", "zstd"])),
    )


def test_fuzzed_bodies_per_platform_shape(tmp_path: Path) -> None:
    with hostile_rig(tmp_path) as rig:
        ids = itertools.count(50_000)

        @settings(
            max_examples=100,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs I/O
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=fuzzed())
        @example(case=Fuzzed(SHAPES[0], "leaf", ("type",), SURROGATES[0], 0.0, b"", None))
        def one(case: Fuzzed) -> None:
            headers = (("Content-Encoding", case.encoding),) if case.encoding else ()
            rig.send(case.shape, case.body(next(ids)), repr(case), headers)
            rig.check_capture()

        one()
        rig.check_plain()


# ---------------------------------------------------------------------------------------------
# 3. Compression bombs, for each encoding, where the body is decoded in the hook and where in
# the intake; then all four at once.

BOMB_TARGETS = (
    SHAPES[0],  # api.segment.io: host-bound, decoded by the intake
    SHAPES[2],  # a first-party host: the body check decodes it while matching
    Shape("udemy-any-path", "www.udemy.com", "/any/path", udemy_video_controls),  # body check
    SHAPES[7],  # coursera eventing: host-bound
)
ENCODINGS = ("gzip", "deflate", "br", "zstd")


@pytest.mark.parametrize("encoding", [*ENCODINGS, "all-four-at-once"])
def test_compression_bombs(tmp_path: Path, encoding: str) -> None:
    encodings = ENCODINGS if encoding == "all-four-at-once" else (encoding,)
    bodies = {(e, j): bomb(e, j) for e in encodings for j in (False, True)}
    with hostile_rig(tmp_path) as rig:
        if encoding != "all-four-at-once":
            for shape in BOMB_TARGETS:
                for (e, prefixed), body in bodies.items():
                    label = f"{e} bomb ({len(body)} bytes, {'JSON' if prefixed else 'zeros'})"
                    rig.send(shape, body, f"{shape.name} {label}", (("Content-Encoding", e),))
                rig.check_capture()
        else:
            sessions = [requests.Session() for _ in ENCODINGS]
            for s in sessions:
                s.trust_env = False

            def send(i: int, shape: Shape) -> None:
                e = ENCODINGS[i]
                body = bodies[(e, shape is not BOMB_TARGETS[0])]
                rig.send(
                    shape,
                    body,
                    f"{shape.name} {e} bomb, 4 at once",
                    (("Content-Encoding", e),),
                    sessions[i],
                )

            with ThreadPoolExecutor(len(ENCODINGS)) as pool:
                for shape in BOMB_TARGETS:
                    for future in [pool.submit(send, i, shape) for i in range(len(ENCODINGS))]:
                        future.result()
            for s in sessions:
                s.close()
            rig.check_capture()
        rig.check_memory("the bombs")
        rig.check_plain()


# ---------------------------------------------------------------------------------------------
# 4. Secrets and e-mail addresses


class EchoingLrs(LoopbackServer):
    """An LRS that answers every request with `status` and quotes the request's headers in its
    error body (Authorization, and its credentials alone and decoded), as some misconfigured
    servers do."""

    def __init__(self, status: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.posts: list[float] = []
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                if self.command == "POST":
                    lrs.posts.append(time.monotonic())
                auth = self.headers.get("Authorization", "")
                token = auth.partition(" ")[2]
                echoed = {
                    "error": "bad request",
                    "you sent": dict(self.headers.items()),
                    "credentials": token,
                    "decoded": base64.b64decode(token).decode() if token else "",
                }
                data = json.dumps(echoed).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/xAPI/"


PASSWORD = "pw-Hostile-9d2f7c1e5a"
LRS_USER = "study-user"
COURSERA_USER = "970315246"


def _email(i: int) -> str:
    return f"p{i}.jane-doe@mail.example.org"


def _with_email(path: Path_, value: Any, email: str) -> str:
    """An e-mail where a platform might put one, shaped like the field's value."""
    key = str(path[-1])
    if key == "url" or key == "referrer":
        return f"https://learn.example.org/users/{email}/course?u={email.replace('@', '%40')}"
    if key == "action":
        return f"video hd: {email}"
    if key == "messageId":
        return f"ajs-{email}"
    return email


def _email_bodies() -> Iterator[tuple[Shape, str, bytes, str]]:
    """Every field of every Segment, Udemy and Coursera shape, each with an e-mail of its own."""
    i = 0
    for shape in SHAPES:
        for path, value in leaves(shape.body(0)):
            if path[-1] == "writeKey":
                continue
            i += 1
            email = _email(i)
            token = json.dumps(_with_email(path, value, email))
            label = f"{shape.name} {'.'.join(map(str, path))}"
            yield shape, label, render(shape.body(70_000 + i), path, token), email


def test_no_secret_or_email_reaches_store_logs_status_or_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XAPITAP_HOSTILE_LRS_SECRET", PASSWORD)
    basic = base64.b64encode(f"{LRS_USER}:{PASSWORD}".encode()).decode()
    segment_basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    secrets = {
        "the LRS password": PASSWORD,
        "the Basic credentials": basic,
        "the writeKey": WRITE_KEY,
        "the writeKey as Basic": segment_basic,
        "the Coursera user id": COURSERA_USER,
    }
    with EchoingLrs(400) as lrs, Upstream(tls_dir=tmp_path) as upstream:
        proxy = Mitmdump(
            tmp_path,
            "--set",
            "ssl_insecure=true",
            "--set",
            f"xapi_lrs_endpoint={lrs.url}",
            "--set",
            f"xapi_lrs_username={LRS_USER}",
            "--set",
            "xapi_lrs_password_env=XAPITAP_HOSTILE_LRS_SECRET",
            # mitmdump's own flow log prints every request URL (a Coursera user id in a path,
            # too); it is mitmproxy's, not xapitap's, and a user can turn it off the same way.
            "--set",
            "flow_detail=0",
        )
        with proxy:
            rig = Rig(proxy, upstream)
            try:
                for shape, label, body, email in _email_bodies():
                    secrets[f"e-mail in {label}"] = email
                    rig.send(shape, body, label)
                # a first-party Segment host authenticated by the writeKey as Basic auth
                first_party = SHAPES[2]
                doc = first_party.body(79_999)
                del doc["writeKey"]
                auth = (("Authorization", f"Basic {segment_basic}"),)
                rig.send(first_party, render(doc), "first-party, Basic writeKey", auth)
                # unreadable requests, which the store may keep: a cut-short body with the
                # writeKey and an e-mail, and a Coursera user id (or an e-mail) in the URL
                # path of a request that cannot be read
                email = secrets["e-mail in an unreadable body"] = _email(9001)
                doc = segment_message(79_998)
                doc["userId"] = email
                rig.send(SHAPES[0], render(doc)[:-40], "a cut-short Segment body")
                secrets["e-mail in a rejected URL path"] = _email(9002)
                for user in (COURSERA_USER, _email(9002)):
                    for path, method, body in (
                        (f"/api/onDemandVideoProgresses.v1/{user}~Gx8Eeij~8xwbQ", "PUT", b"{"),
                        (f"/api/onDemandVideoProgresses.v1/{user}~Gx8Eeij~8xwbQ", "PUT", b"{}"),
                        (
                            f"/api/opencourse.v1/user/{user}/course/geo/item/8xwbQ"
                            "/lecture/videoEvents/ended",
                            "POST",
                            b"{",
                        ),
                    ):
                        shape = Shape("coursera-reject", "www.coursera.org", path, dict, (), method)
                        rig.send(shape, body, f"{method} {path} {body!r}")
                rig.check_capture()
                # the LRS refuses everything, echoing our Authorization: wait until all of it
                # is dead-lettered (400s are final), so its answers are in the store
                deadline = time.monotonic() + 60
                while _queued(proxy.store) and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert not _queued(proxy.store), "the LRS's 400s were not all settled"
                assert lrs.posts, "the LRS was never asked"
                files = sorted(tmp_path.glob(proxy.store.name + "*"))
                names = {f.name for f in files}
                assert {f"{proxy.store.name}-wal", f"{proxy.store.name}-shm"} <= names
                journal = tmp_path / f"{proxy.store.name}.journal"
                segments = sorted(journal.iterdir())
                assert segments, "the journal holds the requests not yet translated"
                modes = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in files + segments}
                assert modes.pop(journal.name) == "0o700"
                assert set(modes.values()) == {"0o600"}, modes
                files = [f for f in files if f.is_file()]
                cmdline = Path(f"/proc/{rig.pid}/cmdline").read_bytes()
                assert PASSWORD.encode() not in cmdline
                while_running = {f.name: f.read_bytes() for f in files}
                status_running = cli("status", "--store", str(proxy.store)).stdout
            finally:
                rig.close()
        assert proxy.returncode == 0, proxy.output[-3000:]
    # The journal holds raw requests (secrets and all, by design: mode 0600, below) only
    # until they are translated: once the proxy stopped, nothing of them is left.
    assert list(journal.iterdir()) == []
    places = {
        **{f"{name} (proxy running)": data for name, data in while_running.items()},
        **{f.name: f.read_bytes() for f in tmp_path.glob(proxy.store.name + "*") if f.is_file()},
        "the proxy's output": proxy.output.encode(),
        "xapitap status (proxy running)": status_running.encode(),
        "xapitap status": cli("status", "--store", str(proxy.store)).stdout.encode(),
        "xapitap export": cli("export", "--store", str(proxy.store)).stdout.encode(),
    }
    leaks = []
    for what, secret in secrets.items():
        forms = {secret, secret.replace("@", "%40"), secret.replace("@", "%2540")}
        found = [where for where, data in places.items() if any(f.encode() in data for f in forms)]
        if found:
            leaks.append(f"{what} ({secret}): {', '.join(found)}")
    assert not leaks, f"{len(leaks)} secrets leak:\n" + "\n".join(leaks)


def _queued(store: Path) -> int:
    with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


# ---------------------------------------------------------------------------------------------
# 5. Backoff holds while events flow


def test_retry_after_holds_while_events_flow(tmp_path: Path) -> None:
    with EchoingLrs(429, (("Retry-After", "5"),)) as lrs:
        proxy = Mitmdump(
            tmp_path,
            "--set",
            "xapi_answer_locally=true",
            "--set",
            f"xapi_lrs_endpoint={lrs.url}",
            "--set",
            "xapi_flush_seconds=0",
        )
        with proxy:
            session = requests.Session()
            session.trust_env = False
            deadline = time.monotonic() + 30
            n = 0
            while not lrs.posts:  # until the first POST (and its 429)
                assert time.monotonic() < deadline, "the LRS was never asked"
                n = _send_event(session, proxy, n)
            first = lrs.posts[0]
            while time.monotonic() < first + 6.0:  # events keep flowing for 6 s after it
                n = _send_event(session, proxy, n)
                time.sleep(0.05)
            within = [t for t in lrs.posts if t < first + 6.0]
            session.close()
    assert n > 20
    assert len(within) <= 3, (
        f"the LRS answered 429 with Retry-After: 5 and got {len(within)} POSTs in the 6 s "
        f"after (gaps {[round(b - a, 2) for a, b in itertools.pairwise(within)][:10]})"
    )


def _send_event(session: requests.Session, proxy: Mitmdump, n: int) -> int:
    body = segment_message(n)
    body["event"] = "Video Playback Resumed" if n % 2 else "Video Playback Paused"
    body["properties"]["session_id"] = "backoff"
    body["properties"]["position"] = n
    response = session.post(
        "https://api.segment.io/v1/t",
        data=render(body),
        headers={"Content-Type": "text/plain"},
        proxies=proxy.proxies,
        verify=str(proxy.ca),
        timeout=30,
    )
    assert response.status_code == 200
    return n + 1


# ---------------------------------------------------------------------------------------------
# 6. One store, one proxy


def test_a_second_proxy_on_the_same_store_refuses_to_start(tmp_path: Path) -> None:
    first = Mitmdump(tmp_path / "first", "--set", "xapi_answer_locally=true")
    with first:
        second = Mitmdump(
            tmp_path / "second",
            "--set",
            f"xapi_store={first.store}",
            "--set",
            "xapi_answer_locally=true",
            set_store=False,
        )
        code = second.run_to_exit()
        assert code != 0
        lines = [line for line in second.lines if str(first.store) in line]
        assert lines, f"no message names the store:\n{second.output}"
        text = second.output.lower()
        assert "another" in text and "proxy" in text, second.output
        # the first goes on capturing
        session = requests.Session()
        session.trust_env = False
        _send_event(session, first, 0)
        session.close()
    assert first.returncode == 0
    with closing(sqlite3.connect(f"file:{first.store}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT COUNT(*) FROM statements").fetchone()[0] >= 1


def test_named_tokens_are_what_they_say() -> None:
    """The hostile tokens, checked without a proxy: a mistake here would test nothing."""
    assert json.loads(SURROGATES[0]) == "\ud800"
    assert json.loads(NULS[0]) == "\x00"
    assert len(NUMBERS[0]) == 5000
    assert DEEP[1].count("[") == 1000
    assert all(0.99 * _HUGE < len(s.encode()) < _HUGE + 8 for s in HUGE_STRINGS)
    d = zlib.decompressobj(31)
    assert d.decompress(bomb("gzip"), 1 << 20) == bytes(1 << 20)
    assert zlib.decompressobj().decompress(bomb("deflate", True), 100).startswith(b'{"type"')
    assert brotli.Decompressor().process(bomb("br")[:64])[:4] == b"\0\0\0\0"
    assert max(len(bomb(e)) for e in ENCODINGS) <= MAX_BODY
    with_surrogate = render(SHAPES[0].body(1), ("properties", "title"), SURROGATES[0])
    assert b'"title":"\\ud800"' in with_surrogate
    assert re.search(rb'"deep":\[{1000}', with_key(SHAPES[0].body(1), (), '"deep"', DEEP[1]))
