"""Delivery scenarios' common parts: targets files, a stream of video events, and the
proxy's and the LRS's view of what was delivered."""

from __future__ import annotations

import json
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

import golden
from support.local import reading
from support.proxy import Mitmdump
from support.ralph import RalphLRS


def targets_file(directory: Path, *targets: dict[str, Any]) -> Path:
    lines = []
    for target in targets:
        lines.append("[[target]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in target.items()]
    path = directory / "targets.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def target(name: str, lrs: RalphLRS, url: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "endpoint": url or lrs.url,
        "username": lrs.username,
        "password": lrs.password,
        "max_backoff": 0.5,
        **extra,
    }


def video_events(count: int, session: str) -> list[golden.Request]:
    """Segment Video Spec events that each make exactly one statement: resumed and paused in
    turn, a second apart, the playhead moving 2 s between a resume and its pause. They
    happened in the last `count` seconds (a time after the arrival is a fast clock, which
    the proxy corrects)."""
    start = datetime.now(UTC) - timedelta(seconds=count)
    out = []
    for n in range(count):
        body = {
            "type": "track",
            "event": "Video Playback Resumed" if n % 2 == 0 else "Video Playback Paused",
            "messageId": f"ajs-next-{session}-{n}",
            "userId": f"learner-{session}",
            "timestamp": (start + timedelta(seconds=n)).isoformat(timespec="milliseconds"),
            "properties": {
                "session_id": session,
                "position": 2 * ((n + 1) // 2),
                "total_length": 900,
                "content_asset_id": "lecture-1",
            },
            "context": {"page": {"url": "https://learn.example.org/course/1"}},
            "writeKey": "WK",
        }
        out.append(
            golden.Request(
                "POST",
                "https://api.segment.io/v1/t",
                {"Content-Type": "text/plain"},
                json.dumps(body).encode(),
                start,
            )
        )
    return out


def send_all(proxy: Mitmdump, requests_: list[golden.Request]) -> None:
    for request in requests_:
        response = requests.post(
            request.url,
            data=request.body,
            headers=request.headers,
            proxies=proxy.proxies,
            verify=str(proxy.ca),
            timeout=30,
        )
        assert response.status_code == 200, response.text


def proxy_for(tmp_path: Path, path: Path, *extra: str) -> Mitmdump:
    return Mitmdump(
        tmp_path,
        "--set",
        "xapi_answer_locally=true",
        "--set",
        f"xapi_targets_file={path}",
        *extra,
    )


def status_of(store_path: Path, name: str) -> Any:
    with reading(store_path) as reader:
        return next(t for t in reader.target_status() if t.target == name)


def wait_until_delivered(store_path: Path, name: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status = status_of(store_path, name)
        if status.queued == 0 or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def in_lrs(lrs: RalphLRS, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [lrs.get(s["id"]) for s in statements]
    return [{k: v for k, v in s.items() if k not in ("stored", "authority")} for s in found if s]


def lrs_count_for(lrs: RalphLRS, statement: dict[str, Any]) -> int:
    agent = json.dumps(statement["actor"])
    return len(lrs.statements(agent=agent))


def predicted(events: list[golden.Request], key: bytes) -> list[dict[str, Any]]:
    """What an uninterrupted proxy makes of the events: translated in this process, as
    arriving now (after every event's time: no clock correction), then the proxy stops."""
    now = datetime.now(UTC)
    arriving = [golden.Request(r.method, r.url, r.headers, r.body, now) for r in events]
    return [s for r in golden.run_requests(arriving, key) for s in r.get("statements", [])]
