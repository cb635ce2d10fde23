"""The live dashboard under a flood: is the page responsive, is the proxy as fast, is memory
bounded, while ~100 statements a second arrive?

Everything runs on this machine, on 127.0.0.1 only, side by side in one run:

- one `mitmdump -s addons/xapitap.py --set xapi_dashboard=127.0.0.1:0` (and bench.py's stall
  probe), its dashboard address and token read from its log; bench.py's loopback upstream;
- a flood: a paced sender (a process of its own) that sends `--rate` Segment Video Spec track
  calls a second through the proxy to the upstream (`POST http://127.0.0.1:UP/v1/t`, which the
  first-party Segment rule matches), over `--sessions` keep-alive connections, one video
  session each, "Video Playback Resumed" and "Paused" in turn with the playhead moving as the
  clock does: one statement per request;
- the dashboard in headless Chromium (Debian's, driven by Playwright; nothing downloaded).

1. Flood, `--duration` seconds with the dashboard open on its live feed. Every `--interval`
   seconds: a requestAnimationFrame round trip (page.evaluate, timed from here), a click on
   the Accounting tab and one back on Live feed (each timed until the tab is
   aria-selected="true"), the feed's rows, the document's elements, the JS heap and node count
   (CDP Performance.getMetrics), how far the page's stream is behind the store, and mitmdump's
   RSS. The page counts the stream's `statement` events itself (an init script wraps
   EventSource), with the delay from the request's sending to the event's arrival (the send
   time is in the request's messageId, which the statement carries), long tasks and the
   Event Timing API's click durations. After the flood: how long until the page has the
   store's newest statement, and whether its stream brought every statement, once each.
2. What the open dashboard costs the proxy, the flood running throughout (Chromium at
   SCHED_IDLE from here on, unless --no-browser-idle: it only gets what the load core leaves).
   a) The flood alone, `--seconds` per page state (closed, feed, accounting, videos, closed):
      mitmdump's CPU share without its translator's, and its event loop's (main thread's):
      the dashboard's own cost, whatever the load side.
   b) Throughput: wrk (bench.py's, 8 connections of plain unmatched traffic) against the
      proxy, interleaved per rep: closed (Chromium on about:blank), feed (the dashboard open
      on its live feed), accounting (open on its Accounting tab: the stream and the status
      polls go on, the feed is not drawn), videos (open on its Videos tab, which re-reads
      every video statement whenever one was added), burn (closed, and a busy loop at
      SCHED_IDLE on the load core: a control for what any work on that core does to the
      numbers, dashboard or not); a last closed run ends the series, so that each open run
      sits between two closed ones: its ratio is to their mean (drift cancels), and
      closed/closed ratios show the noise.
   Every window also reports what other processes used on the machine (`foreign`): this
   machine is shared, and that is noise.

Pinning (2+ cores): mitmdump on the second core; wrk, the upstream, the flood, this script and
Chromium on the first (Chromium inherits this process's affinity), so that the proxy's core
runs only the proxy and what the dashboard costs it. xapitap's translator is unpinned.

Usage: .venv/bin/python bench/dashboard.py [--duration S] [--rate R] [--reps N]
It prints tables and one PASS/MISS line per goal, saves JSON in bench/results/, and always
exits 0 (it is no test). It stops every process it started, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from backlog import status as proc_status
from backlog import translator_pid
from bench import ADDON
from bench import HOST
from bench import MITMDUMP
from bench import REPO
from bench import RESULTS_DIR
from bench import STALL_PROBE
from bench import Children
from bench import Proxy
from bench import PythonLoad
from bench import WrkLoad
from bench import _pct
from bench import _versions
from bench import core_busy_seconds
from bench import cpu_seconds
from bench import free_port
from bench import print_goals
from bench import process_tree
from bench import sanity_check
from bench import stall_window
from bench import start_upstream
from bench import unpin_translator

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_MARK = "--xapitap-bench-browser"  # an unknown switch Chromium ignores: finds its pid
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-proxy-server",  # the dashboard is never opened through the proxy
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--enable-precise-memory-info",
    BROWSER_MARK,
]
TABS = ("accounting", "feed")  # clicked in this order at every sample
# Part 2, per rep in this order, then a last closed run. closed: Chromium on about:blank;
# feed, accounting, videos: the dashboard open on that tab (on accounting, the stream and the
# status polls go on but the feed's rows are not drawn: the server's work without Chromium's
# rendering); burn: closed, and a busy loop at SCHED_IDLE on the load core (a control: what
# any work there, not the dashboard's, does to the numbers).
CONFIGS = ("closed", "feed", "accounting", "videos", "burn")
PAGES = ("closed", "feed", "accounting", "videos")  # the flood-alone cost runs
MAX_FEED_ROWS = 500  # app.js MAX_ROWS

GOAL_TAB_P95_MS = 200.0
GOAL_RAF_MAX_MS = 500.0
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_RSS_GROWTH_MB = 50.0

_DASHBOARD_LINE = re.compile(r"xapitap: dashboard at (http://\S+)")
_ADDON_READY = "xapitap: storing statements in"

# Installed before the page's own script: counts what the live feed's stream brings.
# The delay histogram has 10 ms buckets up to 10 s (the last one: everything above).
_INIT_JS = r"""
(() => {
  const b = {
    events: 0, dups: 0, last: 0, opened: 0, errors: 0, urls: [],
    delays: new Array(1001).fill(0), delayMax: 0, timed: 0,
    longtasks: 0, longtaskMs: 0, longtaskMax: 0, clicks: [], tabs: [],
  };
  window.__bench = b;
  const Native = window.EventSource;
  if (Native) {
    window.EventSource = class extends Native {
      constructor(url, init) {
        super(url, init);
        b.opened += 1;
        b.urls.push(String(url));
        this.addEventListener("statement", (e) => {
          const seq = Number(e.lastEventId);
          if (seq <= b.last) b.dups += 1;
          else { b.events += 1; b.last = seq; }
          const sent = /"eventId":"[^"]*-(\d{13})"/.exec(e.data);
          if (sent) {
            const ms = Date.now() - Number(sent[1]);
            b.timed += 1;
            b.delayMax = Math.max(b.delayMax, ms);
            b.delays[Math.min(1000, Math.max(0, Math.floor(ms / 10)))] += 1;
          }
        });
        this.addEventListener("error", () => { b.errors += 1; });
      }
    };
  }
  // A tab click, as the user sees it: from the input event's creation to the frame after
  // its handler (rAF, then a task: the frame has been produced).
  document.addEventListener("click", (e) => {
    const tab = e.target instanceof Element ? e.target.closest('[role="tab"]') : null;
    if (!tab || !e.isTrusted) return;
    const start = e.timeStamp, handled = performance.now();
    requestAnimationFrame(() => setTimeout(() => {
      b.tabs.push([tab.id, handled - start, performance.now() - start,
                   tab.getAttribute("aria-selected")]);
    }, 0));
  }, true);
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        b.longtasks += 1;
        b.longtaskMs += e.duration;
        b.longtaskMax = Math.max(b.longtaskMax, e.duration);
      }
    }).observe({ type: "longtask", buffered: true });
  } catch (e) {}
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.name === "click") b.clicks.push([e.duration, e.processingStart - e.startTime]);
      }
    }).observe({ type: "event", durationThreshold: 16, buffered: true });
  } catch (e) {}
})();
"""
_RAF_JS = """() => new Promise((resolve) => {
  const t0 = performance.now();
  requestAnimationFrame(() => resolve(performance.now() - t0));
})"""
_STATE_JS = """() => {
  const b = window.__bench || {};
  const first = document.querySelector("#feed-rows tr");
  return {
    rows: document.querySelectorAll("#feed-rows tr").length,
    elements: document.getElementsByTagName("*").length,
    heap: performance.memory ? performance.memory.usedJSHeapSize : -1,
    events: b.events, dups: b.dups, last: b.last, opened: b.opened, errors: b.errors,
    longtasks: b.longtasks, longtask_ms: b.longtaskMs, longtask_max_ms: b.longtaskMax,
    first_row_id: first ? first.dataset.id : null,
    feed_state: (document.getElementById("feed-state") || {}).textContent || "",
  };
}"""


def _p(values: list[float], p: float) -> float:
    return _pct(sorted(values), p)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "median": 0.0, "p95": 0.0, "max": 0.0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 2),
        "p95": round(_p(values, 95), 2),
        "max": round(max(values), 2),
    }


# ---------------------------------------------------------------------------------------------
# The flood (run as `dashboard.py --serve-flood ...`, a process of its own)


def flood_request(up: int, tag: str, session: int, n: int, playing: bool, position: float) -> bytes:
    """One track call of session `session`: it was playing (so now pauses) or not. Its send
    time (ms) ends the messageId, which the statement carries as its source's eventId."""
    now = time.time()
    body = json.dumps(
        {
            "type": "track",
            "event": "Video Playback Paused" if playing else "Video Playback Resumed",
            "messageId": f"ajs-{tag}-{session}-{n}-{int(now * 1000)}",
            "userId": f"learner-{tag}-{session}",
            "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
            "properties": {
                "session_id": f"{tag}-{session}",
                "position": round(position, 3),
                "total_length": 3600,
                "content_asset_id": f"lecture-{session % 3}",
                "title": f"Lecture {session % 3}",
            },
            "context": {"page": {"url": "https://learn.example.org/course/1"}},
            "writeKey": "WK",
        },
        separators=(",", ":"),
    ).encode()
    return (
        f"POST http://{HOST}:{up}/v1/t HTTP/1.1\r\nHost: {HOST}:{up}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def serve_flood(proxy_port: int, up: int, rate: float, sessions: int, tag: str) -> None:
    """Send until SIGTERM/SIGINT, then print what was sent as one JSON line."""
    result = asyncio.run(_flood(proxy_port, up, rate, sessions, tag))
    print("FLOOD " + json.dumps(result), flush=True)


async def _flood(proxy_port: int, up: int, rate: float, sessions: int, tag: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "errors": 0, "late_max_ms": 0.0}
    start = loop.time() + 0.05
    print("READY", flush=True)

    async def session(w: int) -> None:
        interval = sessions / rate
        due = start + w / rate  # the sessions' requests interleave evenly
        playing, position, since, n = False, 0.0, time.time(), 0
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while not stop.is_set():
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                if stop.is_set():
                    break
            else:
                counts["late_max_ms"] = max(counts["late_max_ms"], -wait * 1e3)
            due += interval
            now = time.time()
            if playing:
                position += now - since  # the playhead moves as the clock does
            since = now
            n += 1
            request = flood_request(up, tag, w, n, playing, position)
            playing = not playing
            counts["sent"] += 1
            try:
                if reader is None or writer is None:
                    reader, writer = await asyncio.open_connection(HOST, proxy_port)
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                counts["ok" if head.startswith(b"HTTP/1.1 200") else "errors"] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                counts["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.gather(*(session(w) for w in range(sessions)))
    seconds = loop.time() - start
    latencies.sort()
    return counts | {
        "seconds": round(seconds, 3),
        "rate": round(counts["ok"] / seconds, 2) if seconds > 0 else 0.0,
        "p50_ms": round(_pct(latencies, 50) * 1e3, 2),
        "p99_ms": round(_pct(latencies, 99) * 1e3, 2),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1e3, 2),
    }


class Flood:
    """The flood's process: started, and stopped with its numbers."""

    def __init__(
        self, children: Children, core: int | None, proxy: Proxy, up: int, args: Any, tag: str
    ) -> None:
        cmd = [
            sys.executable, "-u", str(Path(__file__).resolve()), "--serve-flood",
            str(proxy.port), str(up), str(args.rate), str(args.sessions), tag,
        ]  # fmt: skip
        self.children = children
        self.proc = children.start(cmd, core, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY"):
            raise RuntimeError(f"the flood did not start: {line!r}")

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        self.children.stop(self.proc)
        for line in out.decode().splitlines():
            if line.startswith("FLOOD "):
                result: dict[str, Any] = json.loads(line[len("FLOOD ") :])
                return result
        raise RuntimeError(f"the flood said nothing: {out.decode()!r}")


# ---------------------------------------------------------------------------------------------
# mitmdump with the dashboard; the store; the browser's processes


def start_proxy(
    children: Children, workdir: Path, core: int | None, probe: bool
) -> tuple[Proxy, str]:
    """mitmdump + xapitap with its dashboard on any free port: the proxy and the dashboard's
    address with its token (from the log, hence no -q: that line is at info level)."""
    port = free_port()
    confdir = workdir / "confdir"
    confdir.mkdir()
    cmd = [
        str(MITMDUMP),
        "--listen-host", HOST, "-p", str(port),
        "--set", "connection_strategy=lazy",
        "--set", f"confdir={confdir}",
        "--set", "termlog_verbosity=info", "--set", "flow_detail=0",
    ]  # fmt: skip
    probe_file = None
    if probe:
        probe_file = workdir / "stall.json"
        cmd += ["-s", str(STALL_PROBE), "--set", f"stall_probe_file={probe_file}"]
    store = workdir / "dashboard.sqlite3"
    cmd += [
        "-s", str(ADDON),
        "--set", f"xapi_store={store}",
        "--set", "xapi_dashboard=127.0.0.1:0",
    ]  # fmt: skip
    log = workdir / "mitmdump.log"
    with log.open("wb") as out:
        proc = children.start(cmd, core, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mitmdump did not start:\n{log.read_text()[-3000:]}")
        text = log.read_text(errors="replace")
        found = _DASHBOARD_LINE.search(text)
        if found and _ADDON_READY in text and store.exists():
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
                url = found.group(1)
                break
        time.sleep(0.05)
    time.sleep(0.3)
    if core is not None:
        unpin_translator(proc.pid)
    proxy = Proxy("xapitap", proc, port, log, store, probe_file)
    if probe_file is not None:
        stall_window(proxy)  # waits for the probe to answer: it is running
    return proxy, url


class Store:
    """The proxy's store, read here (read-only) without going through the dashboard."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)

    def last_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM statements ORDER BY seq DESC LIMIT 1").fetchone()
        return int(row[0]) if row else 0

    def count_after(self, seq: int) -> int:
        return int(
            self.db.execute("SELECT count(*) FROM statements WHERE seq > ?", (seq,)).fetchone()[0]
        )

    def newest_id(self) -> str | None:
        row = self.db.execute("SELECT id FROM statements ORDER BY seq DESC LIMIT 1").fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        self.db.close()


def thread_cpu(pid: int, tid: int) -> float:
    """CPU seconds of one thread (the main thread of mitmdump runs its event loop)."""
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def rss_mb(pid: int) -> float:
    return proc_status(pid, "VmRSS")


def browser_pid() -> int | None:
    """Chromium's browser process (the one with our mark and no --type): its descendants
    are the renderers, the GPU and utility processes."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if BROWSER_MARK.encode() in argv and not any(a.startswith(b"--type=") for a in argv):
                return int(entry.name)
    return None


def browser_idle(pid: int | None) -> int:
    """Every thread of Chromium's processes at SCHED_IDLE: it runs only when the load core
    has nothing else to run (niceness would not do: Chromium, as root, resets its own).
    Processes and threads it starts later inherit it. Returns the threads changed."""
    changed = 0
    for p in process_tree(pid) if pid else []:
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    os.sched_setscheduler(int(task.name), os.SCHED_IDLE, os.sched_param(0))
                    changed += 1
    return changed


def own_cpu() -> float:
    """CPU seconds of this process, its live descendants and the children it has reaped
    (wrk runs end before they are read)."""
    stat = Path("/proc/self/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return cpu_seconds(os.getpid()) + reaped


def machine_busy() -> float:
    """CPU seconds all cores spent on anything but idling, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


class Foreign:
    """What the rest of the machine (other processes than this benchmark's) used meanwhile,
    as a share of one core: this machine is shared, and that is noise."""

    def __init__(self) -> None:
        self.busy, self.own, self.at = machine_busy(), own_cpu(), time.monotonic()

    def share(self) -> float:
        wall = time.monotonic() - self.at
        other = (machine_busy() - self.busy) - (own_cpu() - self.own)
        return max(0.0, other / wall) if wall > 0 else 0.0


QUIET = 0.10  # other processes' share of a core below which the machine counts as quiet


def wait_quiet(limit: float) -> float:
    """Wait up to `limit` seconds for a second in which other processes used less than
    QUIET of a core (a test suite running beside this benchmark is noise); seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        foreign = Foreign()
        time.sleep(1.0)
        if foreign.share() < QUIET:
            break
    return round(time.monotonic() - started, 1)


class Api:
    """The dashboard's JSON API with the token as a Bearer (timed)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or HOST
        self.port = parts.port or 80
        self.token = parse_qs(parts.query)["token"][0]

    def get(self, path: str) -> tuple[float, int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            t0 = time.perf_counter()
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            body = response.read()
            return (time.perf_counter() - t0) * 1e3, response.status, body
        finally:
            conn.close()

    def timings(self, store: Path) -> dict[str, Any]:
        """How long /api/status (after its 1 s cache has expired) and /api/videos take (the
        server keeps the latter until a statement is added: it may come from its cache), and
        what working out the videos' summaries from the store costs, here, in process."""
        time.sleep(1.1)
        out: dict[str, Any] = {}
        for name, path in (("status", "/api/status"), ("videos", "/api/videos")):
            ms, code, body = self.get(path)
            out[name] = {"ms": round(ms, 1), "status": code, "bytes": len(body)}
        out["video_list_ms"] = round(video_list_ms(store), 1)
        return out


def video_list_ms(path: Path) -> float:
    """One /api/videos computation from nothing (reads.video_list on an empty index: what
    the dashboard's first look costs; later looks read only what was added), in this
    process."""
    try:
        import xapitap  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
    from xapitap.dashboard.reads import video_list
    from xapitap.dashboard.videos import VideoIndex
    from xapitap.store import StoreFile

    reader = StoreFile(path).reader()
    try:
        t0 = time.perf_counter()
        video_list(reader, VideoIndex())
        return (time.perf_counter() - t0) * 1e3
    finally:
        reader.close()


# ---------------------------------------------------------------------------------------------
# The page


class Dashboard:
    """The dashboard in a Chromium page: opened, closed, sampled."""

    def __init__(self, page: Any, cdp: Any, url: str) -> None:
        self.page = page
        self.cdp = cdp
        self.url = url

    def open(self, tab: str = "feed", timeout: float = 60) -> None:
        page = self.page
        page.goto(self.url, wait_until="load", timeout=timeout * 1e3)
        page.wait_for_function(
            "() => window.__bench && window.__bench.opened >= 1"
            " && document.getElementById('g-statements').textContent !== '\u2013'",
            timeout=timeout * 1e3,
        )
        if tab != "feed":
            page.click(f"#tab-{tab}")
            page.wait_for_selector(f"#{tab}:not([hidden])", timeout=timeout * 1e3)
            if tab == "videos":
                page.wait_for_selector("#video-rows tr", timeout=timeout * 1e3)

    def close(self) -> None:
        self.page.goto("about:blank")

    def metrics(self) -> dict[str, float]:
        found = self.cdp.send("Performance.getMetrics")["metrics"]
        return {m["name"]: float(m["value"]) for m in found}

    def gc(self) -> None:
        self.cdp.send("HeapProfiler.collectGarbage")

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.page.evaluate(_STATE_JS)
        return state

    def raf(self) -> tuple[float, float]:
        """A requestAnimationFrame round trip: (ms here, ms in the page)."""
        t0 = time.perf_counter()
        in_page = float(self.page.evaluate(_RAF_JS))
        return (time.perf_counter() - t0) * 1e3, in_page

    def switch(self, tab: str) -> tuple[float, float, float]:
        """Click a tab with real input events (CDP, at the button's centre) and wait until it
        is selected. Returns ms: from here (the click sent → aria-selected seen, with the
        harness's round trips), and in the page: the click's input delay, and the click →
        the frame after its handler (what the user sees)."""
        page = self.page
        box = page.locator(f"#tab-{tab}").bounding_box()
        assert box is not None, f"#tab-{tab} is not shown"
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        seen = int(page.evaluate("() => window.__bench.tabs.length"))
        t0 = time.perf_counter()
        page.mouse.click(x, y)
        page.wait_for_selector(f'#tab-{tab}[aria-selected="true"]', state="attached")
        outside = (time.perf_counter() - t0) * 1e3
        page.wait_for_function(f"() => window.__bench.tabs.length > {seen}")
        record = page.evaluate("() => window.__bench.tabs[window.__bench.tabs.length - 1]")
        if record[0] != f"tab-{tab}" or record[3] != "true":
            raise RuntimeError(f"clicked #tab-{tab}, the page saw {record}")
        return outside, float(record[1]), float(record[2])

    def delays(self) -> dict[str, Any]:
        """The stream's delays, request sent → event in the page, from the histogram."""
        data: dict[str, Any] = self.page.evaluate(
            "() => ({delays: window.__bench.delays, max: window.__bench.delayMax,"
            " timed: window.__bench.timed, clicks: window.__bench.clicks,"
            " url: window.__bench.urls[0] || ''})"
        )
        counts: list[int] = data["delays"]
        total = sum(counts)

        def pct(p: float) -> float:
            if not total:
                return 0.0
            seen = 0
            for i, n in enumerate(counts):
                seen += n
                if n and seen >= total * p / 100:
                    return min((i + 1) * 10.0, float(data["max"]))
            return float(data["max"])

        clicks: list[list[float]] = data["clicks"]
        return {
            "timed": data["timed"],
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": float(data["max"]),
            "event_timing_clicks_over_16ms": len(clicks),
            "event_timing_click_max_ms": max((c[0] for c in clicks), default=0.0),
            "event_timing_input_delay_max_ms": max((c[1] for c in clicks), default=0.0),
            "stream_url": data["url"],
        }


# ---------------------------------------------------------------------------------------------
# 1. The flood, with the dashboard open


def measure_flood(
    args: argparse.Namespace,
    children: Children,
    proxy: Proxy,
    up: int,
    load_core: int | None,
    dash: Dashboard,
    store: Store,
    api: Api,
) -> dict[str, Any]:
    pid = proxy.proc.pid
    dash.open()
    time.sleep(1)
    idle = []  # the same samples with no flood: the harness's own share of the numbers
    for _ in range(3):
        idle.append(_sample(dash, store, pid, 0.0))
        time.sleep(0.5)
    dash.gc()
    before = dash.state()
    metrics0 = dash.metrics()
    api_before = api.timings(store.path)
    seq0 = store.last_seq()
    rss0 = rss_mb(pid)
    chrome = browser_pid()
    chrome_cpu0 = cpu_seconds(chrome) if chrome else 0.0
    proxy_cpu0 = cpu_seconds(pid)
    if proxy.probe is not None:
        stall_window(proxy)
    print(
        f"flood: {args.rate:g} requests/s over {args.sessions} sessions for {args.duration:g} s,"
        f" the dashboard open; a sample every {args.interval:g} s"
    )
    print(
        "tab acc, feed = in the page, click → the frame after its handler; outside = the"
        " slower of the two from here (click sent → aria-selected seen)"
    )
    print(
        f"{'t s':>5} {'rAF ms':>7} {'tab acc':>7} {'feed':>6} {'outside':>7} {'rows':>5} "
        f"{'elems':>6} {'heap MB':>7} {'nodes':>6} {'stored':>7} {'page':>7} {'behind':>6} "
        f"{'RSS MB':>7}"
    )
    for s in idle:
        print(_sample_line(s, "idle"))
    waited = wait_quiet(args.quiet_wait * 3)
    flood = Flood(children, load_core, proxy, up, args, "f1")
    foreign = Foreign()
    started = time.monotonic()
    ends = started + args.duration
    samples: list[dict[str, Any]] = []
    try:
        while (due := started + (len(samples) + 1) * args.interval) < ends:
            time.sleep(max(0.0, due - time.monotonic()))
            samples.append(_sample(dash, store, pid, time.monotonic() - started))
            print(_sample_line(samples[-1]), flush=True)
        time.sleep(max(0.0, ends - time.monotonic()))
    finally:
        sent = flood.stop()
    stopped = time.monotonic()
    foreign_share = foreign.share()
    at_stop = {"store_last": store.last_seq(), "page_last": dash.state()["last"]}
    at_stop["behind"] = at_stop["store_last"] - at_stop["page_last"]
    rss_end = rss_mb(pid)
    chrome_cpu = (cpu_seconds(chrome) - chrome_cpu0) if chrome else 0.0
    proxy_cpu = cpu_seconds(pid) - proxy_cpu0
    flood_seconds = stopped - started
    stall = stall_window(proxy) if proxy.probe is not None else None
    # Translation finishes, then the page takes the rest: until it has the store's newest.
    caught_up: float | None = None
    last, steady_since = -1, time.monotonic()
    while time.monotonic() - stopped < 60:
        newest, page_last = store.last_seq(), dash.state()["last"]
        if newest != last:
            last, steady_since = newest, time.monotonic()
        if page_last >= newest:
            caught_up = caught_up if caught_up is not None else time.monotonic() - stopped
            if time.monotonic() - steady_since > 2:
                break
        else:
            caught_up = None
        time.sleep(0.1)
    dash.raf()  # the last batch rendered
    state = dash.state()
    delays = dash.delays()
    after = int(parse_qs(urlsplit(delays["stream_url"]).query).get("after", ["0"])[0])
    in_store = store.count_after(after)
    newest_id = store.newest_id()
    dash.gc()
    end = dash.state()
    metrics1 = dash.metrics()
    api_after = api.timings(store.path)

    def col(name: str, among: list[dict[str, Any]] = samples) -> list[float]:
        return [float(s[name]) for s in among]

    def tabs(kind: str = "", among: list[dict[str, Any]] = samples) -> list[float]:
        return col(f"tab_accounting{kind}_ms", among) + col(f"tab_feed{kind}_ms", among)

    stored = store.last_seq() - seq0
    return {
        "seconds": round(flood_seconds, 2),
        "flood": sent,
        "statements_stored": stored,
        "statements_per_s": round(stored / flood_seconds, 1),
        "samples": samples,
        "idle_samples": idle,
        "raf_ms": _stats(col("raf_ms")),
        "raf_in_page_ms": _stats(col("raf_in_page_ms")),
        "tab_switch_ms": _stats(tabs()),
        "tab_switch_outside_ms": _stats(tabs("_outside")),
        "tab_input_delay_ms": _stats(tabs("_input_delay")),
        "idle": {
            "raf_ms": _stats(col("raf_ms", idle)),
            "tab_switch_ms": _stats(tabs("", idle)),
            "tab_switch_outside_ms": _stats(tabs("_outside", idle)),
        },
        "rows_max": max(col("rows")),
        "elements": {
            "before": before["elements"],
            "max": max(col("elements")),
            "end": end["elements"],
        },
        "heap_mb": {
            "before_gc": metrics0.get("JSHeapUsedSize", 0) / 2**20,
            "max": max(col("heap_mb")),
            "end_gc": metrics1.get("JSHeapUsedSize", 0) / 2**20,
        },
        "nodes": {
            "before": metrics0.get("Nodes", 0),
            "max": max(col("nodes")),
            "end_gc": metrics1.get("Nodes", 0),
        },
        "listeners": {
            "before": metrics0.get("JSEventListeners", 0),
            "end_gc": metrics1.get("JSEventListeners", 0),
        },
        "longtasks": {
            "count": end["longtasks"],
            "total_ms": end["longtask_ms"],
            "max_ms": end["longtask_max_ms"],
        },
        "page_cpu": {
            k: metrics1.get(k, 0) - metrics0.get(k, 0)
            for k in ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
        },
        "chromium_cpu_share": chrome_cpu / flood_seconds,
        "proxy_cpu_share": proxy_cpu / flood_seconds,
        "foreign_share": foreign_share,
        "waited_for_quiet_s": waited,
        "behind_max": max(col("behind")),
        "behind_at_stop": at_stop,
        "caught_up_s": caught_up,
        "delay": delays,
        "feed": {
            "after": after,
            "in_store": in_store,
            "received": state["events"],
            "duplicates": state["dups"],
            "missed": in_store - state["events"],
            "stream_opened": state["opened"],
            "stream_errors": state["errors"],
            "first_row_is_newest": state["first_row_id"] == newest_id,
            "feed_state": state["feed_state"],
        },
        "rss_mb": {"start": rss0, "end": rss_end, "max": max([rss0, rss_end, *col("rss_mb")])},
        "rss_growth_mb": rss_end - rss0,
        "stall": stall,
        "api_before": api_before,
        "api_after": api_after,
    }


def _sample_line(s: dict[str, Any], t: str = "") -> str:
    outside = max(s["tab_accounting_outside_ms"], s["tab_feed_outside_ms"])
    return (
        f"{t or format(s['t'], '.1f'):>5} {s['raf_ms']:>7.1f} {s['tab_accounting_ms']:>7.1f} "
        f"{s['tab_feed_ms']:>6.1f} {outside:>7.1f} {s['rows']:>5} {s['elements']:>6} "
        f"{s['heap_mb']:>7.1f} {s['nodes']:>6.0f} {s['store_last']:>7} {s['page_last']:>7} "
        f"{s['behind']:>6} {s['rss_mb']:>7.1f}"
    )


def _sample(dash: Dashboard, store: Store, pid: int, t: float) -> dict[str, Any]:
    raf, raf_in_page = dash.raf()
    switched = {tab: dash.switch(tab) for tab in TABS}
    clicks: dict[str, float] = {}
    for tab, (outside, delay, frame) in switched.items():
        clicks |= {
            f"tab_{tab}_ms": round(frame, 2),
            f"tab_{tab}_outside_ms": round(outside, 2),
            f"tab_{tab}_input_delay_ms": round(delay, 2),
        }
    metrics = dash.metrics()
    newest = store.last_seq()  # before the page's: `behind` is not inflated by the read
    state = dash.state()
    return {
        "t": round(t, 2),
        "raf_ms": round(raf, 2),
        "raf_in_page_ms": round(raf_in_page, 2),
        **clicks,
        "rows": state["rows"],
        "elements": state["elements"],
        "heap_mb": round(metrics.get("JSHeapUsedSize", 0) / 2**20, 2),
        "nodes": metrics.get("Nodes", 0),
        "listeners": metrics.get("JSEventListeners", 0),
        "store_last": newest,
        "page_last": state["last"],
        "behind": newest - state["last"],
        "rss_mb": round(rss_mb(pid), 1),
    }


# ---------------------------------------------------------------------------------------------
# 2. Throughput with and without the dashboard open


@dataclass
class Run:
    config: str
    rep: int
    rps: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_ms_per_req: float  # mitmdump (and its translator) CPU / wrk requests
    proxy_busy: float  # mitmdump's CPU (with its translator) / wall time (1.0 = one core)
    mitmdump_busy: float  # mitmdump alone: near 1.0 when it is the bottleneck
    others_busy: float  # other processes' share of mitmdump's core
    load_core_busy: float  # the load core's busy share (wrk, upstream, flood, Chromium)
    chromium_busy: float  # Chromium's (or the burner's) CPU / wall time
    foreign: float  # processes not the benchmark's, anywhere on the machine / wall time
    stored: int  # statements stored during the window
    page_events: int  # statement events the page took during the window
    waited: float  # seconds waited for the machine to be quiet before the warm-up
    stall_max_ms: float = -1.0
    stall_p999_ms: float = -1.0


@dataclass
class Cost:
    """The flood alone (no wrk) with the page closed or open: what serving it costs."""

    config: str
    seconds: float
    mitmdump_busy: float  # mitmdump alone (not its translator) / wall time
    loop_busy: float  # its main thread: the event loop (the rest: its threads)
    translator_busy: float
    chromium_busy: float
    foreign: float
    stored: int
    page_events: int
    waited: float  # seconds waited for the machine to be quiet before the window


def _set_page(dash: Dashboard, config: str, idle: bool) -> None:
    if config in ("closed", "burn"):
        dash.close()
        return
    if idle:
        browser_idle(browser_pid())
    dash.open(config)
    if idle:
        browser_idle(browser_pid())  # a renderer started for the page


def measure_throughput(
    args: argparse.Namespace,
    children: Children,
    proxy: Proxy,
    up: int,
    cores: tuple[int | None, int | None],
    loadgen: WrkLoad | PythonLoad,
    dash: Dashboard,
    store: Store,
) -> dict[str, Any]:
    load_core, proxy_core = cores
    order = [c for _ in range(args.reps) for c in CONFIGS] + [CONFIGS[0]]
    translator = translator_pid(proxy.log)
    if args.browser_idle:
        browser_idle(browser_pid())
    flood = Flood(children, load_core, proxy, up, args, "f2")
    runs: list[Run] = []
    costs: list[Cost] = []
    try:
        time.sleep(2)
        print(
            f"\nwhat the dashboard costs mitmdump: the flood alone, {args.seconds:g} s per page "
            "state (CPU shares, 100 = one core)"
        )
        print(
            f"{'config':<7} {'mitmdump%':>9} {'loop%':>6} {'threads%':>8} {'translator%':>11} "
            f"{'chrome%':>7} {'foreign%':>8} {'wait s':>6} {'stored':>6} {'page':>5}"
        )
        for config in (*PAGES, PAGES[0]):
            cost = _cost_run(args, config, proxy, translator, dash, store)
            costs.append(cost)
            print(
                f"{cost.config:<7} {cost.mitmdump_busy * 100:>9.1f} {cost.loop_busy * 100:>6.1f} "
                f"{(cost.mitmdump_busy - cost.loop_busy) * 100:>8.1f} "
                f"{cost.translator_busy * 100:>11.1f} {cost.chromium_busy * 100:>7.1f} "
                f"{cost.foreign * 100:>8.1f} {cost.waited:>6.0f} {cost.stored:>6} "
                f"{cost.page_events:>5}",
                flush=True,
            )
        print(
            f"\nthroughput: {len(order)} runs, {args.connections} connections of plain traffic, "
            f"{args.warmup:g} s warm-up + {args.seconds:g} s each, the flood running throughout"
        )
        print(
            f"{'config':<7} {'rep':>3} {'req/s':>7} {'err':>4} {'p50 ms':>7} {'p99':>7} "
            f"{'max':>7} {'cpu%':>5} {'mitm%':>5} {'other%':>6} {'load%':>6} {'chrome%':>7} "
            f"{'foreign%':>8} {'wait s':>6} "
            f"{'cpu ms/req':>10} {'stored':>6} {'page':>5} {'stall max':>9}"
        )
        reps = dict.fromkeys(CONFIGS, 0)
        for config in order:
            reps[config] += 1
            run = _one_run(
                args,
                config,
                reps[config],
                (proxy, translator),
                (load_core, proxy_core),
                (children, loadgen),
                dash,
                store,
            )
            runs.append(run)
            print(
                f"{run.config:<7} {run.rep:>3} {run.rps:>7.0f} {run.errors:>4} "
                f"{run.p50_ms:>7.2f} {run.p99_ms:>7.2f} {run.max_ms:>7.1f} "
                f"{run.proxy_busy * 100:>5.0f} {run.mitmdump_busy * 100:>5.0f} "
                f"{run.others_busy * 100:>6.0f} "
                f"{run.load_core_busy * 100:>6.0f} {run.chromium_busy * 100:>7.0f} "
                f"{run.foreign * 100:>8.0f} {run.waited:>6.0f} {run.cpu_ms_per_req:>10.3f} "
                f"{run.stored:>6} "
                f"{run.page_events:>5} "
                + (f"{run.stall_max_ms:>9.2f}" if run.stall_max_ms >= 0 else f"{'-':>9}"),
                flush=True,
            )
    finally:
        dash.close()
        sent = flood.stop()
    return {
        "flood": sent,
        "costs": [asdict(c) for c in costs],
        "cost_summary": _summarize_costs(costs),
        "runs": [asdict(r) for r in runs],
        "summary": _summarize(runs),
    }


def _cost_run(
    args: argparse.Namespace,
    config: str,
    proxy: Proxy,
    translator: int,
    dash: Dashboard,
    store: Store,
) -> Cost:
    _set_page(dash, config, args.browser_idle)
    time.sleep(1)  # the page's first reads (its tail, status, videos) are done
    waited = wait_quiet(args.quiet_wait)
    pid, chrome = proxy.proc.pid, browser_pid()

    def cpu() -> tuple[float, float, float, float]:
        tree, trans = cpu_seconds(pid), cpu_seconds(translator)
        return tree - trans, trans, cpu_seconds(chrome) if chrome else 0.0, thread_cpu(pid, pid)

    events0 = (dash.state().get("events") or 0) if config != "closed" else 0
    seq0, foreign, t0 = store.last_seq(), Foreign(), time.monotonic()
    before = cpu()
    time.sleep(args.seconds)
    after = cpu()
    wall = time.monotonic() - t0
    events = ((dash.state().get("events") or 0) - events0) if config != "closed" else 0
    return Cost(
        config=config,
        seconds=round(wall, 2),
        mitmdump_busy=(after[0] - before[0]) / wall,
        loop_busy=(after[3] - before[3]) / wall,
        translator_busy=(after[1] - before[1]) / wall,
        chromium_busy=(after[2] - before[2]) / wall,
        foreign=foreign.share(),
        stored=store.last_seq() - seq0,
        page_events=events,
        waited=waited,
    )


def _summarize_costs(costs: list[Cost]) -> dict[str, Any]:
    """Each open page state against the mean of the closed ones: mitmdump's added CPU share,
    and how much of it is on the event loop (the rest: the dashboard's read threads)."""

    def mean(config: str, field: str) -> float:
        return statistics.fmean(getattr(c, field) for c in costs if c.config == config)

    out: dict[str, Any] = {
        "closed_mitmdump_busy": mean("closed", "mitmdump_busy"),
        "closed_loop_busy": mean("closed", "loop_busy"),
    }
    for config in PAGES[1:]:
        if any(c.config == config for c in costs):
            out[f"{config}_added_busy"] = mean(config, "mitmdump_busy") - mean(
                "closed", "mitmdump_busy"
            )
            out[f"{config}_added_loop_busy"] = mean(config, "loop_busy") - mean(
                "closed", "loop_busy"
            )
    return out


def _one_run(
    args: argparse.Namespace,
    config: str,
    rep: int,
    proxied: tuple[Proxy, int],
    cores: tuple[int | None, int | None],
    load_by: tuple[Children, WrkLoad | PythonLoad],
    dash: Dashboard,
    store: Store,
) -> Run:
    (proxy, translator), (load_core, proxy_core), (children, loadgen) = proxied, cores, load_by
    _set_page(dash, config, args.browser_idle)
    burner = None
    if config == "burn":
        burner = children.start([sys.executable, "-c", "while True: pass"], load_core)
        os.sched_setscheduler(burner.pid, os.SCHED_IDLE, os.sched_param(0))
    try:
        pid = proxy.proc.pid
        chrome = burner.pid if burner is not None else browser_pid()
        tag = f"{config}-{rep}"
        waited = wait_quiet(args.quiet_wait)
        loadgen.run(proxy.port, "plain", args.warmup, args.connections, f"w-{tag}")
        if proxy.probe is not None:
            stall_window(proxy)  # start the probe's window afresh
        events0 = (dash.state().get("events") or 0) if config in PAGES[1:] else 0
        seq0, foreign = store.last_seq(), Foreign()
        cpu0, core0, trans0 = (
            cpu_seconds(pid),
            core_busy_seconds(proxy_core),
            cpu_seconds(translator),
        )
        load0, chrome0 = core_busy_seconds(load_core), cpu_seconds(chrome) if chrome else 0.0
        load = loadgen.run(proxy.port, "plain", args.seconds, args.connections, f"m-{tag}")
        cpu1, core1, trans1 = (
            cpu_seconds(pid),
            core_busy_seconds(proxy_core),
            cpu_seconds(translator),
        )
        load1, chrome1 = core_busy_seconds(load_core), cpu_seconds(chrome) if chrome else 0.0
        foreign_share = foreign.share()
    finally:
        if burner is not None:
            children.stop(burner)
    stored = store.last_seq() - seq0
    events = ((dash.state().get("events") or 0) - events0) if config in PAGES[1:] else 0
    stall = stall_window(proxy) if proxy.probe is not None else None
    if proxy.proc.poll() is not None:
        raise RuntimeError(f"mitmdump died:\n{proxy.log.read_text()[-3000:]}")
    wall = load.seconds or args.seconds
    return Run(
        config=config,
        rep=rep,
        rps=load.rps,
        requests=load.requests,
        errors=load.errors,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        max_ms=load.max_ms,
        cpu_ms_per_req=(cpu1 - cpu0) * 1e3 / max(load.requests, 1),
        proxy_busy=(cpu1 - cpu0) / wall,
        mitmdump_busy=((cpu1 - cpu0) - (trans1 - trans0)) / wall,
        others_busy=max(0.0, (core1 - core0) - (cpu1 - cpu0)) / wall
        if proxy_core is not None
        else 0.0,
        load_core_busy=(load1 - load0) / wall if load_core is not None else 0.0,
        chromium_busy=(chrome1 - chrome0) / wall,
        foreign=foreign_share,
        stored=stored,
        page_events=events,
        waited=waited,
        stall_max_ms=stall["max_ms"] if stall else -1.0,
        stall_p999_ms=stall["p999_ms"] if stall else -1.0,
    )


def _summarize(runs: list[Run]) -> dict[str, Any]:
    closed = [r for r in runs if r.config == "closed"]
    summary: dict[str, Any] = {
        "closed": {
            "rps_median": statistics.median(r.rps for r in closed),
            "rps_runs": [round(r.rps, 1) for r in closed],
            "cpu_ms_per_req_median": statistics.median(r.cpu_ms_per_req for r in closed),
            "mitmdump_busy_median": statistics.median(r.mitmdump_busy for r in closed),
        },
        # Noise: each closed run against the one before it (nothing differs but time).
        "noise_closed_ratios": [
            round(b.rps / a.rps, 3) for a, b in itertools.pairwise(closed) if a.rps
        ],
    }
    for config in CONFIGS[1:]:
        mine = [r for r in runs if r.config == config]
        if not mine:
            continue
        # Each open run between the closed run before it and the one after it.
        paired = [
            r.rps / ((closed[i].rps + closed[i + 1].rps) / 2)
            for i, r in enumerate(mine)
            if i + 1 < len(closed) and closed[i].rps and closed[i + 1].rps
        ]
        cpu_closed = summary["closed"]["cpu_ms_per_req_median"]
        cpu_open = statistics.median(r.cpu_ms_per_req for r in mine)
        summary[config] = {
            "rps_median": statistics.median(r.rps for r in mine),
            "rps_runs": [round(r.rps, 1) for r in mine],
            "ratio_of_medians": statistics.median(r.rps for r in mine)
            / summary["closed"]["rps_median"],
            "ratio_per_rep": [round(p, 3) for p in paired],
            "ratio_paired_median": statistics.median(paired) if paired else 0.0,
            "cpu_ms_per_req_median": cpu_open,
            "cpu_implied_ratio": cpu_closed / cpu_open if cpu_open else 0.0,
            "stall_max_ms": max(r.stall_max_ms for r in mine),
            "chromium_busy_median": statistics.median(r.chromium_busy for r in mine),
            "mitmdump_busy_median": statistics.median(r.mitmdump_busy for r in mine),
            "load_core_busy_max": max(r.load_core_busy for r in mine),
        }
    feed = [r.rps for r in runs if r.config == "feed"]
    burn = [r.rps for r in runs if r.config == "burn"]
    # The dashboard against the control, rep by rep: beyond what any work on the load core does.
    summary["feed_per_burn"] = [round(f / b, 3) for f, b in zip(feed, burn, strict=False) if b]
    summary["closed"]["stall_max_ms"] = max(r.stall_max_ms for r in closed)
    summary["closed"]["load_core_busy_max"] = max(r.load_core_busy for r in closed)
    summary["others_busy_max"] = max(r.others_busy for r in runs)
    summary["foreign_max"] = max(r.foreign for r in runs)
    summary["errors"] = sum(r.errors for r in runs)
    return summary


# ---------------------------------------------------------------------------------------------
# Report


def report(results: dict[str, Any]) -> None:
    print("\n=== summary ===")
    v = results["versions"]
    print(
        f"{results['date']}  Python {v['python']}, mitmproxy {v['mitmproxy']}, "
        f"{v['cores']} cores ({v['cpu']}), {results['chromium']}"
    )
    print(f"{results['pinning']}")
    goals: list[tuple[str, float, float, bool]] = []
    f = results.get("flood")
    if f:
        fl = f["flood"]
        print(
            f"\n1. flood with the dashboard open, {f['seconds']:.0f} s: {fl['ok']} requests "
            f"({fl['rate']:.1f}/s, {fl['errors']} errors, p99 {fl['p99_ms']:.1f} ms), "
            f"{f['statements_stored']} statements stored ({f['statements_per_s']:.1f}/s)"
        )
        r, t, o = f["raf_ms"], f["tab_switch_ms"], f["tab_switch_outside_ms"]
        idle = f["idle"]

        def ms(x: dict[str, float]) -> str:
            return f"median {x['median']:.1f} ms, p95 {x['p95']:.1f}, max {x['max']:.1f}"

        print(
            f"   rAF round trip from here: {ms(r)} (in the page: max "
            f"{f['raf_in_page_ms']['max']:.1f}; idle page: median {idle['raf_ms']['median']:.1f})"
        )
        print(
            f"   tab switch, {t['n']} clicks, in the page (click → the frame after its handler):"
            f" {ms(t)}; input delay max {f['tab_input_delay_ms']['max']:.1f} ms; idle page: "
            f"median {idle['tab_switch_ms']['median']:.1f}"
        )
        print(
            f"   tab switch from here (click sent → aria-selected seen): {ms(o)}; idle page: "
            f"median {idle['tab_switch_outside_ms']['median']:.1f}"
        )
        d = f["delay"]
        print(
            f"   Event Timing: {d['event_timing_clicks_over_16ms']} clicks ≥ 16 ms, longest "
            f"{d['event_timing_click_max_ms']:.0f} ms (input delay max "
            f"{d['event_timing_input_delay_max_ms']:.0f} ms); long tasks: "
            f"{f['longtasks']['count']}, {f['longtasks']['total_ms']:.0f} ms in all, longest "
            f"{f['longtasks']['max_ms']:.0f} ms"
        )
        pc = f["page_cpu"]
        print(
            f"   page main thread: tasks {pc['TaskDuration']:.1f} s, script "
            f"{pc['ScriptDuration']:.1f} s, layout {pc['LayoutDuration']:.2f} s, style "
            f"{pc['RecalcStyleDuration']:.2f} s; Chromium {f['chromium_cpu_share'] * 100:.0f} %"
            f" of a core, mitmdump + translator {f['proxy_cpu_share'] * 100:.0f} %; other "
            f"processes on the machine {f['foreign_share'] * 100:.0f} % (waited "
            f"{f['waited_for_quiet_s']:.0f} s for quiet first)"
        )
        print(
            f"   feed rows max {f['rows_max']:.0f}; elements {f['elements']['before']} before, "
            f"max {f['elements']['max']:.0f}, {f['elements']['end']} after; DOM nodes "
            f"{f['nodes']['before']:.0f} → {f['nodes']['end_gc']:.0f} (after GC); listeners "
            f"{f['listeners']['before']:.0f} → {f['listeners']['end_gc']:.0f}"
        )
        h = f["heap_mb"]
        print(
            f"   JS heap {h['before_gc']:.1f} MB before (after GC), max {h['max']:.1f}, "
            f"{h['end_gc']:.1f} after (after GC)"
        )
        fd = f["feed"]
        print(
            f"   stream: {fd['received']} statements received of {fd['in_store']} stored after "
            f"seq {fd['after']}: {fd['missed']} missed, {fd['duplicates']} twice; "
            f"{fd['stream_opened']} stream(s) opened, {fd['stream_errors']} errors; newest row "
            f"is the store's newest: {fd['first_row_is_newest']}"
        )
        cu = f["caught_up_s"]
        print(
            f"   behind the store: max {f['behind_max']:.0f} statements at a sample, "
            f"{f['behind_at_stop']['behind']} when the flood stopped; caught up "
            + (f"{cu:.1f} s after it" if cu is not None else "NOT within 60 s")
        )
        print(
            f"   request sent → statement in the page: p50 {d['p50_ms']:.0f} ms, p95 "
            f"{d['p95_ms']:.0f}, p99 {d['p99_ms']:.0f}, max {d['max_ms']:.0f} "
            f"({d['timed']} statements)"
        )
        rs = f["rss_mb"]
        print(
            f"   mitmdump RSS {rs['start']:.1f} MB → {rs['end']:.1f} MB (max {rs['max']:.1f})"
            + (
                f"; event-loop stall max {f['stall']['max_ms']:.1f} ms, p99.9 "
                f"{f['stall']['p999_ms']:.2f}"
                if f.get("stall")
                else ""
            )
        )
        for when in ("api_before", "api_after"):
            a = f[when]
            print(
                f"   API {when[4:]} the flood: /api/status {a['status']['ms']:.0f} ms "
                f"({a['status']['bytes']} B), /api/videos {a['videos']['ms']:.0f} ms "
                f"({a['videos']['bytes']} B; its computation, uncached: "
                f"{a['video_list_ms']:.0f} ms)"
            )
        goals += [
            ("tab switch p95 under the flood, in the page (ms)", t["p95"], GOAL_TAB_P95_MS,
             False),
            ("rAF round trip max under the flood (ms)", r["max"], GOAL_RAF_MAX_MS, False),
            ("feed rows in the DOM, max", f["rows_max"], MAX_FEED_ROWS, False),
            ("statements the feed missed or got twice", fd["missed"] + fd["duplicates"], 0, False),
            ("mitmdump RSS growth over the flood (MB)", f["rss_growth_mb"], GOAL_RSS_GROWTH_MB,
             False),
        ]  # fmt: skip
    tp = results.get("throughput")
    if tp:
        cs = tp["cost_summary"]
        print(
            f"\n2. the flood alone: mitmdump (without its translator) "
            f"{cs['closed_mitmdump_busy'] * 100:.1f} % of a core with the page closed; open "
            + ", ".join(
                f"on {c}: {cs[f'{c}_added_busy'] * 100:+.1f} % (event loop "
                f"{cs[f'{c}_added_loop_busy'] * 100:+.1f})"
                for c in PAGES[1:]
                if f"{c}_added_busy" in cs
            )
        )
        s = tp["summary"]
        print(
            f"   proxy throughput, plain traffic, flood running ({tp['loadgen']}); "
            f"load errors {s['errors']}; other processes on mitmdump's core up to "
            f"{s['others_busy_max'] * 100:.0f} %, on the machine up to "
            f"{s['foreign_max'] * 100:.0f} % of a core"
        )
        print(
            f"{'config':<8} {'req/s median':>12} {'runs':<24} {'ratio':>6} {'paired':>6} "
            f"{'per rep':<20} {'mitm%':>5} {'chrome%':>7} {'stall max':>9}"
        )
        c = s["closed"]
        runs = " ".join(f"{x:.0f}" for x in c["rps_runs"])
        print(
            f"{'closed':<8} {c['rps_median']:>12.0f} {runs:<24} {'':>6} {'':>6} {'':<20} "
            f"{c['mitmdump_busy_median'] * 100:>5.0f} {'':>7} {c['stall_max_ms']:>9.1f}"
        )
        for config in CONFIGS[1:]:
            o = s.get(config)
            if not o:
                continue
            print(
                f"{config:<8} {o['rps_median']:>12.0f} "
                f"{' '.join(f'{x:.0f}' for x in o['rps_runs']):<24} "
                f"{o['ratio_of_medians']:>6.3f} {o['ratio_paired_median']:>6.3f} "
                f"{' '.join(f'{x:.3f}' for x in o['ratio_per_rep']):<20} "
                f"{o['mitmdump_busy_median'] * 100:>5.0f} "
                f"{o['chromium_busy_median'] * 100:>7.0f} {o['stall_max_ms']:>9.1f}"
            )
        print(
            "noise, closed ÷ the closed run before: "
            + " ".join(f"{x:.3f}" for x in s["noise_closed_ratios"])
            + "; feed ÷ burn per rep: "
            + " ".join(f"{x:.3f}" for x in s["feed_per_burn"])
        )
        print(
            "paired = median over reps of open ÷ mean(closed before, closed after); mitm% = "
            "mitmdump's CPU (not its translator's), median; chrome% = Chromium's (burn: the "
            "busy loop's)"
        )
        if "feed" in s:
            goals.append(
                (
                    "throughput ratio, dashboard open ÷ closed (paired)",
                    s["feed"]["ratio_paired_median"],
                    GOAL_THROUGHPUT_RATIO,
                    True,
                )
            )
        rss, a = results.get("rss_end_mb"), results.get("api_end")
        if rss is not None and a is not None:
            print(
                f"at the very end, {results['statements_end']} statements stored: mitmdump RSS "
                f"{rss:.1f} MB; /api/status {a['status']['ms']:.0f} ms, /api/videos "
                f"{a['videos']['ms']:.0f} ms (uncached, in process: {a['video_list_ms']:.0f} ms)"
            )
        if s["foreign_max"] > 0.1:
            print(
                "  <- other processes used up to "
                f"{s['foreign_max'] * 100:.0f} % of a core during a run: noisy, rerun on a quiet "
                "machine (see the foreign% column)"
            )
    print()
    print_goals(goals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of flood (part 1)")
    parser.add_argument("--rate", type=float, default=100, help="flood requests/s")
    parser.add_argument("--sessions", type=int, default=10, help="flood connections/sessions")
    parser.add_argument("--interval", type=float, default=2, help="seconds between samples")
    parser.add_argument("--reps", type=int, default=3, help="throughput runs per configuration")
    parser.add_argument("--seconds", type=float, default=8, help="seconds per throughput run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-stall-probe", action="store_true")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10,
        help="before each window, wait up to this long for other processes to go quiet",
    )
    parser.add_argument(
        "--browser-idle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Chromium at SCHED_IDLE during part 2, so that it cannot starve the load",
    )
    parser.add_argument("--skip-flood", action="store_true", help="only part 2")
    parser.add_argument("--skip-throughput", action="store_true", help="only part 1")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument("--serve-flood", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_flood:
        port, up, rate, sessions, tag = args.serve_flood
        serve_flood(int(port), int(up), float(rate), int(sessions), tag)
        return
    if not MITMDUMP.exists():
        sys.exit(f"no mitmdump beside {sys.executable}: run this with the project's venv")
    if not Path(CHROMIUM).exists():
        sys.exit("no chromium: `make system-deps` installs Debian's")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    children = Children()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "sources": _sources(),
        "args": {k: v for k, v in vars(args).items() if k != "serve_flood"},
        "goals": {
            "tab_switch_p95_ms": GOAL_TAB_P95_MS,
            "raf_max_ms": GOAL_RAF_MAX_MS,
            "throughput_ratio": GOAL_THROUGHPUT_RATIO,
            "feed_rows_max": MAX_FEED_ROWS,
            "rss_growth_mb": GOAL_RSS_GROWTH_MB,
        },
    }
    try:
        with tempfile.TemporaryDirectory(prefix="xapitap-dashboard-bench-") as tmp:
            try:
                _measure(args, Path(tmp), children, results)
            finally:
                children.stop_all()  # before the temporary directory goes
    except KeyboardInterrupt:
        children.stop_all()
        print("\ninterrupted: stopped everything it had started", file=sys.stderr)
        return
    report(results)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"dashboard-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {out.relative_to(REPO)}")


def _sources() -> dict[str, str]:
    """The commit, and a digest of each dashboard source as run (they may be uncommitted)."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    found = {"commit": head or "?"}
    root = REPO / "src" / "xapitap" / "dashboard"
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            found[str(path.relative_to(root))] = digest
    return found


def _measure(
    args: argparse.Namespace, workdir: Path, children: Children, results: dict[str, Any]
) -> None:
    from playwright.sync_api import sync_playwright

    cores = sorted(os.sched_getaffinity(0))
    load_core, proxy_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    if load_core is not None:
        # This process, and so the Playwright driver and Chromium, on the load core.
        os.sched_setaffinity(0, {load_core})
    results["pinning"] = (
        f"mitmdump on core {proxy_core}; wrk, upstream, flood and Chromium on core {load_core}"
        if load_core is not None
        else "not pinned (fewer than 2 cores)"
    ) + ("; Chromium SCHED_IDLE during the throughput runs" if args.browser_idle else "")
    _, up = start_upstream(children, load_core)
    proxy, url = start_proxy(children, workdir, proxy_core, probe=not args.no_stall_probe)
    sanity_check(proxy, up)
    print(f"mitmdump pid {proxy.proc.pid}, proxy port {proxy.port}, upstream {up}")
    print(f"dashboard {url.split('?')[0]}; {results['pinning']}")
    store = Store(proxy.store or workdir / "dashboard.sqlite3")
    api = Api(url)
    loadgen: WrkLoad | PythonLoad
    if args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk")):
        loadgen = WrkLoad(children, load_core, workdir, up)
    else:
        loadgen = PythonLoad(up)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
            )
            results["chromium"] = f"Chromium {browser.version}"
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(_INIT_JS)
                page = context.new_page()
                page.set_default_timeout(60_000)
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                dash = Dashboard(page, cdp, url)
                if not args.skip_flood:
                    results["flood"] = measure_flood(
                        args, children, proxy, up, load_core, dash, store, api
                    )
                if not args.skip_throughput:
                    tp = measure_throughput(
                        args, children, proxy, up, (load_core, proxy_core), loadgen, dash, store
                    )
                    results["throughput"] = tp | {"loadgen": loadgen.label}
                results["rss_end_mb"] = rss_mb(proxy.proc.pid)
                results["api_end"] = api.timings(store.path)
                results["statements_end"] = store.last_seq()
            finally:
                with contextlib.suppress(Exception):
                    browser.close()
    finally:
        store.close()
        children.stop(proxy.proc)
    results["mitmdump_log_warnings"] = [
        line
        for line in proxy.log.read_text(errors="replace").splitlines()
        if "error" in line.lower() or "warn" in line.lower() or "Traceback" in line
    ][:50]


if __name__ == "__main__":
    main()
