"""Delivery to a real Ralph LRS, measured against raw batched POSTs, and memory while a million
statements wait for an LRS that cannot be reached.

1. Throughput: the same N statements go to a fresh Ralph twice, side by side in one run:
   raw (requests.Session, batches of 50, one after the other) and through xapitap's
   forwarder (store → outbox → delivery rules). Repeated, interleaved, fresh Ralph each time.
2. Memory: a real `mitmdump -s addons/xapitap.py` with a target at an unreachable address,
   started on an empty store and on a store with 1,000,000 statements queued for it; its
   resident memory after it has been retrying for a while, and the difference.

Usage: .venv/bin/python bench/delivery.py [--statements N] [--reps N] [--queued N]
Everything runs on 127.0.0.1. It prints numbers and ratios and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

from support.ralph import RalphLRS  # noqa: E402
from xapitap.capture import Capture  # noqa: E402
from xapitap.pipeline import Pipeline  # noqa: E402
from xapitap.privacy import Privacy  # noqa: E402
from xapitap.pseudonym import Pseudonymizer  # noqa: E402
from xapitap.sinks import Control  # noqa: E402
from xapitap.sinks.lrs import LrsSink  # noqa: E402
from xapitap.store import StoreFile  # noqa: E402
from xapitap.store.records import Provenance  # noqa: E402
from xapitap.targets import Target  # noqa: E402

MITMDUMP = Path(sys.executable).with_name("mitmdump")
ADDON = REPO / "addons" / "xapitap.py"
GOAL_THROUGHPUT_RATIO = 0.9
GOAL_MEMORY_GROWTH_MB = 50.0
BATCH = 50


def make_statements(count: int) -> list[Any]:
    """`count` distinct statements, made by the real pipeline from Segment Video Spec events."""
    pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(b"b" * 32)), 1 << 20)
    match = next(
        m
        for m in [pipeline.matcher().match("POST", "api.segment.io", "/v1/t", {}.get, lambda: b"")]
        if m is not None
    )
    start = datetime(2024, 5, 1, 10, tzinfo=UTC)
    out: list[Any] = []
    for n in range(count):
        when = start + timedelta(seconds=n)
        body = {
            "type": "track",
            "event": "Video Playback Paused" if n % 2 else "Video Playback Resumed",
            "messageId": f"ajs-bench-{n}",
            "userId": f"learner-{n // 100}",
            "timestamp": when.isoformat(),
            "properties": {
                "session_id": f"s{n // 100}",
                "position": n % 100 * 5,
                "total_length": 600,
                "content_asset_id": f"video-{n // 100}",
            },
            "context": {"page": {"url": "https://learn.example.org/course/1"}},
        }
        capture = Capture(
            "POST",
            "https",
            "api.segment.io",
            443,
            "/v1/t",
            "",
            (),
            json.dumps(body).encode(),
            when,
            "bench",
        )
        out += [s for s, _ in pipeline.process(match, capture).statements]
    return out


def raw_post(lrs: RalphLRS, texts: list[str]) -> float:
    session = requests.Session()
    session.trust_env = False
    session.auth = lrs.auth
    headers = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
    started = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        body = "[" + ",".join(texts[i : i + BATCH]) + "]"
        response = session.post(lrs.url + "statements", data=body.encode(), headers=headers)
        response.raise_for_status()
    return time.perf_counter() - started


class _All:
    def __init__(self, name: str) -> None:
        self.name = name

    def accepts(self, platform: str, verb: str) -> bool:
        return True


def via_forwarder(lrs: RalphLRS, statements: list[Any], workdir: Path) -> float:
    store = StoreFile(workdir / "bench.sqlite3")
    target = Target(
        name="bench",
        endpoint=lrs.url,
        username=lrs.username,
        password=lrs.password,
        batch_size=BATCH,
        version="1.0.3",
    )
    writer = store.writer()
    writer.add([(s, Provenance("segment", "bench", s.id, "bench")) for s in statements], [target])
    writer.close()
    sink, outbox = LrsSink(target, until_empty=True), store.outbox()
    started = time.perf_counter()
    sink.run(outbox, Control())
    took = time.perf_counter() - started
    outbox.close()
    reader = store.reader()
    status = next(t for t in reader.target_status() if t.target == "bench")
    reader.close()
    if sink.halted is not None or status.delivered != len(statements):
        raise RuntimeError(f"forwarder did not deliver everything: {status}")
    return took


def throughput(count: int, reps: int) -> dict[str, Any]:
    statements = make_statements(count)
    texts = [s.to_json() for s in statements]
    raw, ours = [], []
    for rep in range(reps):
        for kind in ("raw", "xapitap") if rep % 2 == 0 else ("xapitap", "raw"):
            with RalphLRS() as lrs, tempfile.TemporaryDirectory() as tmp:
                if kind == "raw":
                    raw.append(count / raw_post(lrs, texts))
                else:
                    ours.append(count / via_forwarder(lrs, statements, Path(tmp)))
            print(f"  rep {rep + 1} {kind:8} {(raw if kind == 'raw' else ours)[-1]:8.0f} st/s")
    ratio = statistics.median(ours) / statistics.median(raw)
    return {"raw": raw, "xapitap": ours, "ratio": ratio}


def fill_store(path: Path, count: int, target: Target) -> None:
    """`count` queued statements, quickly: copies of one real statement with fresh ids."""
    template = make_statements(1)[0]
    store = StoreFile(path).writer()
    chunk = 20_000
    for start in range(0, count, chunk):
        items = []
        for n in range(start, min(start + chunk, count)):
            statement = template.model_copy(update={"id": f"00000000-0000-4000-8000-{n:012d}"})
            items.append((statement, Provenance("segment", "bench", str(n), "bench")))
        store.add(items, [target])
    store.close()


def rss_of_proxy(workdir: Path, store: Path, targets: Path, settle: float) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB of mitmdump with the addon after `settle` seconds."""
    proc = subprocess.Popen(
        [
            str(MITMDUMP),
            "-q",
            "--listen-host",
            "127.0.0.1",
            "-p",
            "0",
            "--set",
            f"confdir={workdir / 'confdir'}",
            "-s",
            str(ADDON),
            "--set",
            f"xapi_store={store}",
            "--set",
            "xapi_dashboard=off",
            "--set",
            f"xapi_targets_file={targets}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(settle)
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        )
        return (
            int(fields["VmRSS"].split()[0]) / 1024,
            int(fields["VmHWM"].split()[0]) / 1024,
        )
    finally:
        proc.terminate()
        proc.wait(30)


def memory(queued: int, settle: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        target = Target(name="away", endpoint="http://127.0.0.1:9/xAPI/", max_backoff=2)
        targets = workdir / "targets.toml"
        targets.write_text(
            '[[target]]\nname = "away"\nendpoint = "http://127.0.0.1:9/xAPI/"\nmax_backoff = 2\n'
        )
        empty, full = workdir / "empty.sqlite3", workdir / "full.sqlite3"
        StoreFile(empty).create()
        started = time.perf_counter()
        fill_store(full, queued, target)
        print(
            f"  filled a store with {queued:,} queued statements in "
            f"{time.perf_counter() - started:.0f} s ({full.stat().st_size / 2**30:.2f} GiB)"
        )
        base = rss_of_proxy(workdir, empty, targets, settle)
        loaded = rss_of_proxy(workdir, full, targets, settle)
    return {"empty_mb": base, "queued_mb": loaded, "growth_mb": loaded[0] - base[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--statements", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--queued", type=int, default=1_000_000)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds before reading RSS")
    args = parser.parse_args()

    print(f"1. delivery of {args.statements} statements to a fresh Ralph LRS, batches of {BATCH}")
    t = throughput(args.statements, args.reps)
    print(f"   raw POSTs  median {statistics.median(t['raw']):8.0f} statements/s")
    print(f"   xapitap    median {statistics.median(t['xapitap']):8.0f} statements/s")
    verdict = "PASS" if t["ratio"] >= GOAL_THROUGHPUT_RATIO else "MISS"
    print(f"   ratio {t['ratio']:.2f} (goal >= {GOAL_THROUGHPUT_RATIO}) {verdict}")

    print(f"2. mitmdump + xapitap, LRS unreachable, {args.queued:,} statements queued")
    m = memory(args.queued, args.settle)
    print(f"   RSS with an empty store   {m['empty_mb'][0]:7.1f} MB (peak {m['empty_mb'][1]:.1f})")
    print(
        f"   RSS with the queue        {m['queued_mb'][0]:7.1f} MB (peak {m['queued_mb'][1]:.1f})"
    )
    verdict = "PASS" if m["growth_mb"] < GOAL_MEMORY_GROWTH_MB else "MISS"
    print(f"   growth {m['growth_mb']:.1f} MB (goal < {GOAL_MEMORY_GROWTH_MB:.0f} MB) {verdict}")


if __name__ == "__main__":
    main()
