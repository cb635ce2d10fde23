"""Truth test: a real HTML5 <video> in headless Chromium, driven through a scripted pattern,
reporting the Segment Video Spec over HTTPS through the real proxy into a real Ralph LRS.
What xapitap reconstructs (played-segments, progress) must match what the browser itself
recorded as played (`video.played`), within 0.5 s and 1 %."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import sync_playwright

from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.ralph import validate_with_ralph
from test_ralph_models import ralph_gap
from test_ralph_models import with_placeholders
from xapitap.store import Store
from xapitap.xapi import vocab as v

pytestmark = pytest.mark.e2e

PAGE = Path(__file__).with_name("page.html")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-second test clip (VP8 WebM), made here with ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg, "ffmpeg is missing: `make test` installs it (Debian package ffmpeg)"
    path = tmp_path_factory.mktemp("clip") / "clip.webm"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=10:size=160x120:rate=10",
            "-c:v",
            "libvpx",
            "-b:v",
            "50k",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="module")
def site(clip: Path) -> Iterator[str]:
    """The course page and its clip, on loopback (byte ranges, so the player can seek)."""
    files = {"/": (PAGE.read_bytes(), "text/html"), "/clip.webm": (clip.read_bytes(), "video/webm")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path)
            if found is None:
                self.send_error(404)
                return
            data, kind = found
            start, end = 0, len(data) - 1
            ranged = self.headers.get("Range", "").removeprefix("bytes=")
            if ranged:
                first, _, last = ranged.partition("-")
                start, end = int(first or 0), int(last) if last else len(data) - 1
            self.send_response(206 if ranged else 200)
            self.send_header("Content-Type", kind)
            self.send_header("Accept-Ranges", "bytes")
            if ranged:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            self.wfile.write(data[start : end + 1])

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def spki_hash(ca: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list wants for our CA."""
    cert = x509.load_pem_x509_certificate(ca.read_bytes())
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def union(ranges: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for a, b in sorted(ranges):
        if merged and a <= merged[-1][1] + 0.5:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def test_reconstructed_session_matches_what_the_browser_played(
    site: str, ralph: RalphLRS, tmp_path: Path
) -> None:
    proxy = Mitmdump(
        tmp_path,
        "--set",
        "xapi_answer_locally=true",
        "--set",
        f"xapi_lrs_endpoint={ralph.url}",
        "--set",
        f"xapi_lrs_username={ralph.username}",
        "--set",
        f"xapi_lrs_password={ralph.password}",
    )
    with proxy, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *CHROMIUM_FLAGS,
                f"--proxy-server=http://127.0.0.1:{proxy.port}",
                "--proxy-bypass-list=<-loopback>",  # send the loopback site through it too
                f"--ignore-certificate-errors-spki-list={spki_hash(proxy.ca)}",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(site)
            truth: dict[str, Any] = page.evaluate("runPattern()")
        finally:
            browser.close()

    store = Store(proxy.store)
    statements = [json.loads(text) for text in store.statements_json()]
    store.close()
    verbs = [s["verb"]["display"]["en-US"] for s in statements]
    assert verbs[0] == "initialized" and verbs[-1] == "terminated"
    assert verbs.count("seeked") == 2 and verbs.count("completed") == 1
    final = statements[-1]["result"]["extensions"]
    ours = [
        (float(a), float(b))
        for a, b in (seg.split("[.]") for seg in final[v.PLAYED_SEGMENTS].split("[,]"))
    ]
    expected = union([(a, b) for a, b in truth["played"]])
    got = union(ours)
    assert len(got) == len(expected), (got, expected)
    for (a, b), (x, y) in zip(got, expected, strict=True):
        assert abs(a - x) <= 0.5 and abs(b - y) <= 0.5, (got, expected)
    true_progress = sum(b - a for a, b in expected) / truth["duration"]
    assert abs(final[v.PROGRESS] - true_progress) <= 0.01, (final[v.PROGRESS], true_progress)

    # Everything reached the LRS as stored, and passes Ralph's Video Profile models.
    in_lrs = [ralph.get(s["id"]) for s in statements]
    assert [
        {k: x for k, x in s.items() if k not in ("stored", "authority")} for s in in_lrs if s
    ] == statements
    verdicts = validate_with_ralph([with_placeholders(s) for s in statements])
    for statement, verdict in zip(statements, verdicts, strict=True):
        assert verdict["ok"] != bool(ralph_gap(statement)), verdict
