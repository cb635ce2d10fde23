"""A mitmproxy addon that measures how late the event loop wakes up: its worst stalls.

Loaded with `-s bench/stall_probe.py` into a mitmdump (bench.py loads it into the bare one and
the xapitap one alike, so that the numbers are side by side). From `running()` on, a task
sleeps 1 ms at a time and records, for every wake-up, how late it came: the time between when
the loop should have woken it and when it did. A wake-up is late while the loop runs other
callbacks (mitmproxy's own work, an addon's hook) or waits for the GIL (a thread of an addon).

The lateness goes into a fixed-size histogram (10 µs buckets below 100 ms, 1 ms buckets up to
10 s, above that the last bucket; the exact maximum is kept too), so memory stays constant
however long it runs.

Reading it: SIGUSR1 makes the probe write what it recorded since the last SIGUSR1 (or since it
started) as JSON to the file given by `--set stall_probe_file=PATH` (else the environment
variable STALL_PROBE_FILE), and start over. The file is replaced atomically and carries a
sequence number `seq` that grows by one per write, so the reader knows that its signal was
handled: send SIGUSR1, wait for the next `seq`. It first writes the file (seq 0, empty) once
its signal handler is in place, so wait for the file before the first signal (SIGUSR1's
default action ends the process). It writes a last time when mitmdump stops (`done`).

Fields: seq, count (wake-ups), seconds (the window), max_ms, p50_ms, p99_ms, p999_ms, mean_ms,
over_5ms (wake-ups more than 5 ms late), interval_ms (the nominal sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

INTERVAL = 0.001  # seconds between wake-ups
FINE = 10e-6  # bucket width below FINE_LIMIT
FINE_LIMIT = 0.1
COARSE = 1e-3  # bucket width from FINE_LIMIT to COARSE_LIMIT
COARSE_LIMIT = 10.0
N_FINE = round(FINE_LIMIT / FINE)
N_BUCKETS = N_FINE + round((COARSE_LIMIT - FINE_LIMIT) / COARSE) + 1


class Histogram:
    """Lateness in seconds, in fixed buckets; percentiles are the buckets' upper edges."""

    def __init__(self) -> None:
        self.counts = [0] * N_BUCKETS
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.over_5ms = 0
        self.started = time.monotonic()

    def add(self, late: float) -> None:
        late = max(late, 0.0)
        if late < FINE_LIMIT:
            i = int(late / FINE)
        else:
            i = min(N_BUCKETS - 1, N_FINE + int((late - FINE_LIMIT) / COARSE))
        self.counts[i] += 1
        self.count += 1
        self.total += late
        if late > self.max:
            self.max = late
        if late > 0.005:
            self.over_5ms += 1

    def percentile(self, p: float) -> float:
        if not self.count:
            return 0.0
        rank = self.count * p / 100
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if n and seen >= rank:
                edge = (i + 1) * FINE if i < N_FINE else FINE_LIMIT + (i - N_FINE + 1) * COARSE
                return min(edge, self.max)
        return self.max

    def summary(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "seconds": round(time.monotonic() - self.started, 3),
            "max_ms": round(self.max * 1e3, 3),
            "p50_ms": round(self.percentile(50) * 1e3, 3),
            "p99_ms": round(self.percentile(99) * 1e3, 3),
            "p999_ms": round(self.percentile(99.9) * 1e3, 3),
            "mean_ms": round(self.total / self.count * 1e3, 3) if self.count else 0.0,
            "over_5ms": self.over_5ms,
            "interval_ms": INTERVAL * 1e3,
        }


class StallProbe:
    def __init__(self) -> None:
        self.histogram = Histogram()
        self.seq = 0
        self.task: asyncio.Task[None] | None = None
        self.path = ""

    def load(self, loader: Any) -> None:
        loader.add_option(
            "stall_probe_file",
            str,
            "",
            "Where the stall probe writes its JSON on SIGUSR1 (else $STALL_PROBE_FILE).",
        )

    def configure(self, updated: set[str]) -> None:
        from mitmproxy import ctx

        self.path = ctx.options.stall_probe_file or os.environ.get("STALL_PROBE_FILE", "")

    def running(self) -> None:
        if self.task is not None:
            return
        loop = asyncio.get_running_loop()
        self.task = loop.create_task(self._tick())
        self.histogram = Histogram()
        try:
            loop.add_signal_handler(signal.SIGUSR1, self.dump_and_reset)
        except (NotImplementedError, RuntimeError, ValueError) as e:
            # No file then: a reader waits for it and never sends the signal that would kill.
            logging.warning(f"stall probe: no SIGUSR1 handler ({e}); it writes only at exit")
            return
        self.write({"seq": 0, **Histogram().summary()})  # ready: signals are handled now

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        clock = loop.time
        while True:
            due = clock() + INTERVAL
            await asyncio.sleep(INTERVAL)
            self.histogram.add(clock() - due)

    def dump_and_reset(self) -> None:
        self.seq += 1
        summary = {"seq": self.seq, **self.histogram.summary()}
        self.histogram = Histogram()
        self.write(summary)

    def write(self, summary: dict[str, Any]) -> None:
        if not self.path:
            return
        target = Path(self.path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(summary) + "\n")
        tmp.replace(target)

    def done(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        with contextlib.suppress(OSError):
            self.dump_and_reset()


addons = [StallProbe()]
