"""Memory under a translation backlog: the proxy keeps capturing while its translator is held.

A real `mitmdump -s addons/xapitap.py` (answering analytics locally, no LRS) gets N Segment
`track` calls while its translator process is stopped (SIGSTOP), so that all of them wait in
the journal: by default 120 000, ten minutes of a busy study at 200 requests a second. Then the
translator goes on (SIGCONT) and works the backlog off. Reported: the proxy's resident memory
before and after the backlog built up, the journal's size, and the translator's memory and
throughput while it catches up (its peak RSS, VmHWM, against its RSS before).

Usage: .venv/bin/python bench/backlog.py [--requests N] [--connections C]
Everything runs on 127.0.0.1. It prints numbers and always exits 0 (it is no test).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MITMDUMP = Path(sys.executable).with_name("mitmdump")
ADDON = REPO / "addons" / "xapitap.py"
GOAL_GROWTH_MB = 50.0


def body(n: int) -> bytes:
    event = {
        "type": "track",
        "event": "Video Playback Paused" if n % 2 else "Video Playback Resumed",
        "messageId": f"backlog-{n}",
        "userId": f"learner-{n % 50}",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "properties": {
            "session_id": f"s-{n % 50}",
            "position": n % 900,
            "total_length": 900,
            "content_asset_id": f"lecture-{n % 7}",
            "title": "A lecture",
        },
        "context": {"page": {"url": "https://learn.example.org/course/1"}},
        "writeKey": "WK",
    }
    return json.dumps(event).encode()


def status(pid: int, field: str) -> float:
    """A /proc/PID/status memory field, in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def send(port: int, numbers: range) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for n in numbers:
        conn.request(
            "POST",
            "http://api.segment.io/v1/t",
            body(n),
            {"Content-Type": "text/plain", "Host": "api.segment.io"},
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
    conn.close()


def send_all(port: int, first: int, count: int, connections: int) -> float:
    """Send requests first..first+count over `connections` keep-alive connections; seconds."""
    started = time.monotonic()
    step = max(count // connections, 1)
    threads = [
        threading.Thread(
            target=send,
            args=(port, range(first + i * step, min(first + (i + 1) * step, first + count))),
        )
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - started


def translator_pid(log: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.findall(r"translator started \(pid (\d+)\)", log.read_text(errors="replace"))
        if found:
            return int(found[-1])
        time.sleep(0.1)
    raise RuntimeError(f"no translator:\n{log.read_text()[-2000:]}")


def next_seq(store: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'journal_next_seq'").fetchone()
    return int(row[0]) if row else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=120_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xapitap-backlog-") as tmp:
        work = Path(tmp)
        store = work / "backlog.sqlite3"
        log = work / "mitmdump.log"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        cmd = [
            str(MITMDUMP), "--listen-host", "127.0.0.1", "-p", str(port),
            "--set", "flow_detail=0",
            "--set", f"confdir={work / 'confdir'}", "--set", "connection_strategy=lazy",
            "-s", str(ADDON), "--set", f"xapi_store={store}", "--set", "xapi_dashboard=off",
            "--set", "xapi_answer_locally=true",
        ]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            translator = translator_pid(log)
            deadline = time.monotonic() + 30
            while "xapitap: storing statements" not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
            warm = 2_000
            send_all(port, 0, warm, args.connections)  # warm-up, translated as it comes
            while next_seq(store) <= warm:
                time.sleep(0.2)
            time.sleep(2)
            proxy_before = status(proc.pid, "VmRSS")
            translator_before = status(translator, "VmRSS")
            os.kill(translator, signal.SIGSTOP)
            took = send_all(port, warm, args.requests, args.connections)
            time.sleep(2)
            proxy_after = status(proc.pid, "VmRSS")
            proxy_peak = status(proc.pid, "VmHWM")
            journal = sum(p.stat().st_size for p in (work / "backlog.sqlite3.journal").iterdir())
            target = next_seq(store) + args.requests
            os.kill(translator, signal.SIGCONT)
            started = time.monotonic()
            while next_seq(store) < target:
                time.sleep(0.2)
            drained = time.monotonic() - started
            translator_peak = status(translator, "VmHWM")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)

    def verdict(growth: float) -> str:
        return f"(goal < {GOAL_GROWTH_MB:.0f}: {'PASS' if growth < GOAL_GROWTH_MB else 'MISS'})"

    growth = proxy_after - proxy_before
    print(f"backlog: {args.requests} analytics requests in {took:.0f} s "
          f"({args.requests / took:.0f}/s) with the translator stopped; journal "
          f"{journal / 2**20:.0f} MB")  # fmt: skip
    print(f"proxy RSS: {proxy_before:.1f} MB before, {proxy_after:.1f} MB after "
          f"(peak {proxy_peak:.1f}): growth {growth:.1f} MB "
          f"{verdict(growth)}")  # fmt: skip
    tgrowth = translator_peak - translator_before
    print(f"translator: backlog worked off in {drained:.0f} s ({args.requests / drained:.0f} "
          f"requests/s); RSS {translator_before:.1f} MB before, peak {translator_peak:.1f} MB: "
          f"growth {tgrowth:.1f} MB "
          f"{verdict(tgrowth)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
