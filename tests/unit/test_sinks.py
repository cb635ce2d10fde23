"""Sinks as a seam: supervised, restarted after a crash (and reported), and pluggable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from typing import ClassVar

import pytest

import golden
from support.loopback import LoopbackServer
from xapitap.sinks import Control
from xapitap.sinks import Supervisor
from xapitap.sinks import lrs as lrs_sink
from xapitap.sinks.lrs import LrsSink
from xapitap.store import Outbox
from xapitap.store import ReadModel
from xapitap.store import StoreFile
from xapitap.store.records import Provenance
from xapitap.targets import Target
from xapitap.xapi.models import Statement


def statements() -> list[Statement]:
    case = next(c for c in golden.cases() if c.name == "udemy/whole-session")
    return [
        Statement.model_validate(s) for r in golden.expected(case) for s in r.get("statements", [])
    ]


class _Lrs(BaseHTTPRequestHandler):
    """Takes every batch (200 with its ids); has no /about."""

    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ids = [s["id"] for s in body]
        type(self).received += ids
        data = json.dumps(ids).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def delivered(reader: ReadModel) -> int:
    return sum(t.delivered for t in reader.target_status())


def test_a_crashed_sink_is_restarted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_deliver = lrs_sink.deliver
    calls = []

    def crash_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom in the sink")
        return real_deliver(*args, **kwargs)

    monkeypatch.setattr(lrs_sink, "deliver", crash_once)
    monkeypatch.setattr("xapitap.sinks._FIRST_RESTART", 0.05)
    store = StoreFile(tmp_path / "s.sqlite3")
    items = statements()
    _Lrs.received = []
    with LoopbackServer(_Lrs) as server:
        target = Target(name="lrs", endpoint=f"http://127.0.0.1:{server.port}/xAPI/")
        sink = LrsSink(target)
        writer = store.writer()
        writer.add([(s, Provenance("udemy", "r", s.id, "f")) for s in items], [sink])
        supervisor = Supervisor(sink, store)
        supervisor.start()
        reader = store.reader()
        wait_for(lambda: delivered(reader) == len(items))
        supervisor.stop(flush_seconds=1)
    assert supervisor.crashes == 1 and not supervisor.alive
    assert sorted(_Lrs.received) == sorted(s.id for s in items)  # nothing lost, once each
    (status,) = reader.target_status()
    assert status.crashes == 1 and status.last_crash == "RuntimeError: boom in the sink"
    assert status.last_crash_at and status.queued == 0


class JsonLinesSink:
    """Another kind of sink, written here without touching translation or the LRS code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return "file"

    @property
    def endpoint(self) -> str:
        return str(self.path)

    def accepts(self, platform: str, verb_iri: str) -> bool:
        return verb_iri.endswith("/completed")

    def run(self, outbox: Outbox, control: Control) -> None:
        outbox.set_target(self.name, self.endpoint, state="writing")
        while not control.stopping:
            batch = outbox.pending(self.name, 100, 1 << 20)
            if not batch:
                if control.stop.is_set():
                    return
                control.idle(0.05)
                continue
            with self.path.open("a") as out:
                out.writelines(q.json + "\n" for q in batch)
            outbox.settle(self.name, delivered=[q.seq for q in batch])


def test_a_sink_of_another_kind_plugs_in(tmp_path: Path) -> None:
    store = StoreFile(tmp_path / "s.sqlite3")
    sink = JsonLinesSink(tmp_path / "completed.jsonl")
    supervisor = Supervisor(sink, store)
    supervisor.start()
    items = statements()
    store.writer().add([(s, Provenance("udemy", "r", s.id, "f")) for s in items], [sink])
    supervisor.wake()
    reader = store.reader()
    wait_for(lambda: delivered(reader) == 1)
    supervisor.stop(flush_seconds=1)
    lines = sink.path.read_text().splitlines()
    assert [json.loads(line)["verb"]["display"]["en-US"] for line in lines] == ["completed"]


def test_a_backoff_is_not_cut_short_by_new_statements() -> None:
    control = Control()
    waker = threading.Thread(target=lambda: [control.wake() or time.sleep(0.01) for _ in range(20)])
    started = time.monotonic()
    waker.start()
    control.back_off(0.3)
    waker.join()
    assert time.monotonic() - started >= 0.3
    finisher = threading.Timer(0.05, control.finish, args=(0,))
    finisher.start()
    started = time.monotonic()
    control.back_off(5)  # ... but stopping ends it
    assert time.monotonic() - started < 2
