"""Reading recordings: HAR entries one at a time (a broken one reported, the rest read), form
bodies given only as params, time order across files, and flow files read up to damage."""

from __future__ import annotations

import io as io_module
import json
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import io
from mitmproxy.test import tflow

from support.fidelity import watched
from support.local import cli
from support.local import stored
from xapitap.capture import Capture
from xapitap.replay import har
from xapitap.replay import progress
from xapitap.replay.sources import Source
from xapitap.replay.sources import Unreadable
from xapitap.replay.sources import in_time_order


def entry(
    url: str,
    at: str,
    text: str | None = None,
    params: list[dict[str, str]] | None = None,
    headers: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    post: dict[str, Any] = {"mimeType": "text/plain"}
    if text is not None:
        post["text"] = text
    if params is not None:
        post = {"mimeType": "application/x-www-form-urlencoded", "params": params}
    return {
        "startedDateTime": at,
        "request": {
            "method": "POST",
            "url": url,
            "httpVersion": "HTTP/2",
            "headers": headers or [],
            "postData": post,
        },
        "response": {"status": 200},
    }


def har_file(path: Path, entries: list[Any]) -> Path:
    path.write_text(
        json.dumps({"log": {"version": "1.2", "pages": [], "entries": entries}}, indent=1)
    )
    return path


def test_entries_are_read_one_by_one_and_a_broken_one_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(har, "CHUNK", 64)  # entries straddle every window
    body = json.dumps(watched(10, 0, 10))
    path = har_file(
        tmp_path / "a.har",
        [
            entry(
                "https://api.segment.io/v1/t",
                "2024-06-01T09:00:10.000Z",
                body,
                headers=[
                    {"name": ":authority", "value": "api.segment.io"},
                    {"name": "Content-Type", "value": "text/plain"},
                    {"name": "Content-Encoding", "value": "gzip"},
                ],
            ),
            {"startedDateTime": "2024-06-01T09:00:11.000Z", "request": {"method": "POST"}},
            entry(
                "https://example.org/form?x=1",
                "2024-06-01T11:00:12+02:00",
                params=[{"name": "a", "value": "1 2"}, {"name": "b", "value": "é&"}],
            ),
        ],
    )
    items = list(Source(path))
    first, broken, form = items
    assert isinstance(first, Capture) and first.body == body.encode()
    assert first.host == "api.segment.io" and first.path == "/v1/t" and first.port == 443
    # The text is the body as the page made it: its encoding headers no longer apply.
    assert first.headers == (("content-type", "text/plain"),)
    assert first.received_at == datetime(2024, 6, 1, 9, 0, 10, tzinfo=UTC)
    assert isinstance(broken, Unreadable) and broken.where.endswith("entry 2")
    assert "url" in broken.reason
    assert isinstance(form, Capture) and form.body == b"a=1+2&b=%C3%A9%26"
    assert form.query == "x=1" and form.received_at == datetime(2024, 6, 1, 9, 0, 12, tzinfo=UTC)


def test_a_har_broken_part_way_is_read_up_to_the_damage(tmp_path: Path) -> None:
    good = entry("https://api.segment.io/v1/t", "2024-06-01T09:00:10.000Z", "{}")
    text = json.dumps({"log": {"entries": [good, good]}})
    path = tmp_path / "cut.har"
    path.write_text(text[: len(text) - 40])  # the second entry is cut off
    items = list(Source(path))
    assert isinstance(items[0], Capture)
    assert isinstance(items[-1], Unreadable) and "broken JSON" in items[-1].reason
    (tmp_path / "not.har").write_text('{"log": {}}')
    (nothing,) = list(Source(tmp_path / "not.har"))
    assert isinstance(nothing, Unreadable) and "no log.entries" in nothing.reason


def test_files_are_merged_in_time_order(tmp_path: Path) -> None:
    def at(second: int) -> str:
        return f"2024-06-01T09:00:{second:02d}.000Z"

    one = har_file(tmp_path / "1.har", [entry(f"https://h/{s}", at(s), "x") for s in (1, 4, 6)])
    two = har_file(tmp_path / "2.har", [entry(f"https://h/{s}", at(s), "x") for s in (2, 3, 5)])
    paths = [c.path for c in in_time_order([Source(one), Source(two)]) if isinstance(c, Capture)]
    assert paths == ["/1", "/2", "/3", "/4", "/5", "/6"]


def test_a_flow_file_is_read_up_to_its_damage(tmp_path: Path) -> None:
    path = tmp_path / "cut.flows"
    with path.open("wb") as file:
        writer = io.FlowWriter(file)
        for _ in range(3):
            writer.add(tflow.tflow(resp=True))
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    items = list(Source(path))
    assert [type(i) for i in items] == [Capture, Capture, Unreadable]
    assert "ends inside a flow" in items[-1].reason  # type: ignore[union-attr]


def test_replay_reports_the_broken_entry_and_translates_the_rest(tmp_path: Path) -> None:
    path = har_file(
        tmp_path / "session.har",
        [
            entry(
                "https://api.segment.io/v1/t",
                "2024-06-01T09:00:10.000Z",
                json.dumps(watched(10, 0, 10)),
            ),
            {"request": "not an object"},
            entry(
                "https://api.segment.io/v1/t",
                "2024-06-01T09:00:25.000Z",
                json.dumps(watched(25, 10, 20, mid="b")),
            ),
        ],
    )
    store = tmp_path / "s.sqlite3"
    dry = cli("replay", str(path), "--store", str(store), "--dry-run").stdout
    assert "(dry run)" in dry and not store.exists()
    report = cli("replay", str(path), "--store", str(store)).stdout
    assert "3 entries read, 1 unreadable, 2 analytics requests" in report, report
    assert f"unreadable: {path} entry 2:" in report
    verbs = [s["verb"]["id"].rsplit("/", 1)[-1] for s in stored(store)]
    assert verbs[0] == "initialized" and verbs[-1] == "terminated"
    again = cli("replay", str(path), "--store", str(store), "--dry-run").stdout
    assert "0 of them are not in" in again


class _Terminal(io_module.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)
    terminal = _Terminal()
    bar = progress.Progress(terminal, total_bytes=1000)
    bar.show(500, 10, 4, 12)
    bar.done()
    assert (
        terminal.getvalue()
    ) == "\r[###############...............]  50%  10 entries, 4 analytics, 12 statements\n"
    log = io_module.StringIO()
    lines = progress.Progress(log, total_bytes=1000)
    for n in range(1, 2 * progress.LINE_EVERY + 1):
        lines.show(n, n, 0, 0)
    assert log.getvalue().count("\n") == 2 and "\r" not in log.getvalue()
