"""Does `xapitap replay` of a HAR stream? Peak RSS of the whole process on a small and on a
ten times larger generated HAR (4 KB bodies; one entry in ten a Segment Video Spec event that
becomes statements, the rest a page's other requests), side by side in one run.

Usage: .venv/bin/python bench/har_memory.py [--entries N]   (default 3000, and ten times that)
It prints a table and one PASS/MISS line (growth < 50 MB), and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

XAPITAP = Path(sys.executable).with_name("xapitap")
FILLER = "x" * 4000


def entry(i: int) -> dict[str, object]:
    at = f"2024-06-01T{9 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
    if i % 10:
        url, text = f"https://example.org/upload/{i}", FILLER
    else:
        url = "https://api.segment.io/v1/t"
        text = json.dumps(
            {
                "type": "track",
                "event": "Video Playback Resumed" if i % 20 else "Video Playback Paused",
                "messageId": f"ajs-{i}",
                "userId": f"learner-{i % 7}",
                "timestamp": at,
                "properties": {
                    "session_id": f"s{i % 7}",
                    "content_asset_id": f"lecture-{i % 7}",
                    "position": i % 600,
                    "total_length": 600,
                },
                "context": {"page": {"url": "https://learn.example.org/course/1"}},
                "writeKey": "WK",
            }
        )
    return {
        "startedDateTime": at,
        "request": {
            "method": "POST",
            "url": url,
            "headers": [{"name": "Content-Type", "value": "text/plain"}],
            "postData": {"mimeType": "text/plain", "text": text},
        },
        "response": {"status": 200},
    }


def write_har(path: Path, count: int) -> None:
    with path.open("w") as file:
        file.write('{"log": {"version": "1.2", "creator": {"name": "bench"}, "entries": [\n')
        for i in range(count):
            file.write(("," if i else "") + json.dumps(entry(i)) + "\n")
        file.write("]}}\n")


def replay(har: Path, store: Path) -> tuple[float, float, str]:
    """Peak RSS (MB), wall time (s) and the summary line of one replay."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(XAPITAP), "replay", str(har), "--store", str(store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    summary = next((line for line in out.splitlines() if "entries read" in line), out[:200])
    return usage.ru_maxrss / 1024, time.monotonic() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xapitap-har-bench-") as tmp:
        rows = []
        for count in (args.entries, 10 * args.entries):
            har = Path(tmp) / f"{count}.har"
            write_har(har, count)
            rss, wall, summary = replay(har, Path(tmp) / f"{count}.sqlite3")
            rows.append((count, har.stat().st_size / 2**20, rss, wall, summary))
    print(f"{'entries':>8} {'HAR MB':>8} {'peak RSS MB':>12} {'wall s':>7}  summary")
    for count, size, rss, wall, summary in rows:
        print(f"{count:>8} {size:>8.1f} {rss:>12.1f} {wall:>7.1f}  {summary}")
    growth = rows[1][2] - rows[0][2]
    verdict = "PASS" if growth < 50 else "MISS"
    entries = f"{rows[0][0]} → {rows[1][0]} entries"
    print(f"{verdict}  peak RSS growth, {entries} (MB): {growth:.1f} (goal < 50)")


if __name__ == "__main__":
    main()
