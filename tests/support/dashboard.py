"""A client of the dashboard, as a script or a notebook would use it: the token, the cookie
the page gets, the JSON API and the Server-Sent Events feed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import Self

import requests

from support.proxy import REPO_ROOT

ROUTES = (
    "/",
    "/static/app.js",
    "/static/app.css",
    "/api/statements",
    "/api/stream",
    "/api/status",
    "/api/activity",
    "/api/videos",
    "/api/videos/0123456789abcdef",
    "/no/such/route",
)


@dataclass(frozen=True)
class Event:
    id: str | None
    event: str | None
    data: str | None


class DashboardClient:
    def __init__(self, url_with_token: str) -> None:
        base, _, token = url_with_token.partition("?token=")
        self.base = base.rstrip("/")
        self.token = token
        self.http = requests.Session()
        self.http.trust_env = False  # never through a proxy from the environment

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("headers", self.bearer)
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def json(self, path: str) -> Any:
        answer = self.get(path)
        assert answer.status_code == 200, (path, answer.status_code, answer.text)
        return answer.json()

    def events(
        self,
        after: int | None = None,
        last_event_id: str | None = None,
        until_id: int | None = None,
        query: str = "",
        idle: float = 5.0,
    ) -> list[Event]:
        """Read the feed until the event with id `until_id` (or `idle` s without one)."""
        headers = dict(self.bearer)
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        params = f"?after={after}" if after is not None else "?"
        url = f"{self.base}/api/stream{params}{'&' + query if query else ''}"
        found: list[Event] = []
        fields: dict[str, str] = {}
        with self.http.get(url, headers=headers, stream=True, timeout=(5, idle)) as answer:
            assert answer.status_code == 200, answer.text
            assert answer.headers["Content-Type"].startswith("text/event-stream")
            try:
                for line in answer.iter_lines(decode_unicode=True):
                    if line:
                        name, _, value = line.partition(": ")
                        if name:  # ": keep-alive" comments have none
                            fields[name] = value
                        continue
                    if fields:
                        event = Event(fields.get("id"), fields.get("event"), fields.get("data"))
                        found.append(event)
                        fields = {}
                        if until_id is not None and event.id == str(until_id):
                            break
            except requests.exceptions.ConnectionError:  # the idle read timed out
                pass
        return found


def statement_events(events: list[Event]) -> list[tuple[int, dict[str, Any]]]:
    return [(int(e.id or 0), json.loads(e.data or "")) for e in events if e.event == "statement"]


class StandaloneDashboard:
    """`xapitap dashboard --store PATH`, on a free port."""

    def __init__(self, store: Path, *args: str) -> None:
        self.args = [
            sys.executable,
            "-m",
            "xapitap",
            "dashboard",
            "--store",
            str(store),
            "--listen",
            "127.0.0.1:0",
            *args,
        ]
        self.lines: list[str] = []
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            self.args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
        )
        ready = threading.Event()

        def read() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for line in self._proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if found := re.search(r"dashboard at (http://\S+)", line):
                    self.url = found.group(1)
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while not ready.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._proc.kill()
                raise RuntimeError("xapitap dashboard did not start:\n" + "\n".join(self.lines))
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
