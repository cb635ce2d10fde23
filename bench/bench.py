"""xapitap's overhead, measured: proxy throughput with the addon vs bare mitmdump, and the hook.

Everything runs on this machine, on 127.0.0.1 only:

1. Proxy throughput. A loopback upstream (an asyncio HTTP/1.1 keep-alive server answering
   `200 {"ok":true}`), a bare `mitmdump` and a `mitmdump -s addons/xapitap.py`, and a load
   generator (wrk, else a Python fallback) that sends absolute-form requests to the proxy, so
   every request reaches the loopback upstream in both configurations:
     - plain:     POST http://127.0.0.1:<up>/events  (matches no rule)
     - analytics: POST http://127.0.0.1:<up>/v1/t    (a Segment Video Spec track call that the
                  first-party Segment rule matches: the addon captures and stores it)
   Runs are interleaved (bare, xapitap, bare, xapitap, ...), each after its own warm-up, and
   reported per run, as medians and as the ratio of medians, with mitmdump's CPU per request.
2. The hook's own time per flow, in process (mitmproxy.test.taddons), for matched and for
   non-matching requests.

Usage: .venv/bin/python bench/bench.py [--duration S] [--reps N] [--connections N]
It prints a table and one PASS/MISS line per goal, and always exits 0 (it is no test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "addons" / "xapitap.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
RESULTS_DIR = REPO / "bench" / "results"
HOST = "127.0.0.1"

GOAL_PLAIN_RATIO = 0.97
GOAL_ANALYTICS_RATIO = 0.90
GOAL_HOOK_MEDIAN_US = 50.0

CONFIGS = ("bare", "xapitap")
TRAFFIC = {"plain": "/events", "analytics": "/v1/t"}
UPSTREAM_BODY = b'{"ok":true}'
UPSTREAM_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(UPSTREAM_BODY), UPSTREAM_BODY)
)
_ID = "@@ID@@"
# A Segment Video Spec track call as analytics.js sends it; `_ID` becomes a unique messageId.
BODY_TEMPLATE = json.dumps(
    {
        "type": "track",
        "event": "Video Playback Paused",
        "messageId": f"ajs-{_ID}",
        "userId": "u1",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "properties": {
            "session_id": "s1",
            "position": 12,
            "total_length": 60,
            "content_asset_id": "a1",
        },
        "context": {"page": {"url": "https://learn.example.org/course/1"}},
        "writeKey": "WK",
    },
    separators=(",", ":"),
)
BODY_HEAD, BODY_TAIL = BODY_TEMPLATE.split(_ID)


def body_for(message_id: str) -> bytes:
    return f"{BODY_HEAD}{message_id}{BODY_TAIL}".encode()


# ---------------------------------------------------------------------------------------------
# Child processes: pinned to a core, always stopped.


class Children:
    """Every process the benchmark starts, so that all of them are stopped on any exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, cmd: list[str], core: int | None, **kw: Any) -> subprocess.Popen[bytes]:
        if core is not None and shutil.which("taskset"):
            cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: the pid stays the same
            core = None
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        proc = subprocess.Popen(
            cmd,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
            preexec_fn=_child_setup(core),
            **kw,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=15)


def _child_setup(core: int | None) -> Callable[[], None]:
    def setup() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})
        # Should this script die without cleaning up, the child gets SIGTERM (Linux).
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return setup


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields after the comm: state is index 0, utime index 11, stime index 12.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int | None) -> float:
    """Time a CPU core spent on anything but idling, from /proc/stat (0 when not pinned)."""
    if core is None:
        return 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:]]
            idle = ticks[3] + ticks[4]  # idle + iowait
            return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The loopback upstream (run as `bench.py --serve-upstream`, a process of its own).


class _UpstreamProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf
        buf += data
        answers = 0
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = bytes(buf[:end]).lower()
            if b"\r\ntransfer-encoding:" in head:  # not needed here: mitmproxy sends lengths
                self.transport.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : stop if stop >= 0 else None])
            total = end + 4 + length
            if len(buf) < total:
                break
            del buf[:total]
            answers += 1
            if b"\r\nconnection: close" in head:
                close = True
                break
        if answers:
            self.transport.write(UPSTREAM_RESPONSE * answers)
        if close:
            self.transport.close()


def serve_upstream() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_UpstreamProtocol, HOST, 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


def start_upstream(children: Children, core: int | None) -> tuple[subprocess.Popen[bytes], int]:
    cmd = [sys.executable, "-u", str(Path(__file__).resolve()), "--serve-upstream"]
    proc = children.start(cmd, core, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("PORT "):
        raise RuntimeError(f"upstream did not start: {line!r}")
    return proc, int(line.split()[1])


# ---------------------------------------------------------------------------------------------
# mitmdump


@dataclass
class Proxy:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    store: Path | None


def start_mitmdump(
    children: Children, name: str, workdir: Path, core: int | None, addon: bool
) -> Proxy:
    port = free_port()
    confdir = workdir / f"confdir-{name}"
    confdir.mkdir()
    cmd = [
        str(MITMDUMP), "-q",
        "--listen-host", HOST, "-p", str(port),
        "--set", "connection_strategy=lazy",
        "--set", f"confdir={confdir}",
    ]  # fmt: skip
    store = None
    if addon:
        store = workdir / "bench.sqlite3"
        cmd += ["-s", str(ADDON), "--set", f"xapi_store={store}"]
    log = workdir / f"mitmdump-{name}.log"
    with log.open("wb") as out:
        proc = children.start(cmd, core, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mitmdump ({name}) did not start:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            # The addon's running() hook opens the store after the proxy listens.
            if store is None or store.exists():
                break
        time.sleep(0.05)
    time.sleep(0.3)
    return Proxy(name, proc, port, log, store)


def raw_request(up_port: int, path: str, message_id: str) -> bytes:
    body = body_for(message_id)
    return (
        f"POST http://{HOST}:{up_port}{path} HTTP/1.1\r\nHost: {HOST}:{up_port}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def sanity_check(proxy: Proxy, up_port: int) -> None:
    """One request of each kind through the proxy, which must reach the upstream."""
    for kind, path in TRAFFIC.items():
        with socket.create_connection((HOST, proxy.port), timeout=10) as s:
            s.sendall(raw_request(up_port, path, f"sanity-{proxy.name}-{kind}"))
            data = b""
            while not data.endswith(UPSTREAM_BODY):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200") or not data.endswith(UPSTREAM_BODY):
            raise RuntimeError(f"{proxy.name} {kind}: unexpected answer {data[:200]!r}")


# ---------------------------------------------------------------------------------------------
# Load generators


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_WRK_LUA = """\
wrk.method = "POST"
wrk.path = "http://{host}:{up}{path}"
wrk.headers["Host"] = "{host}:{up}"
wrk.headers["Content-Type"] = "text/plain"
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local prefix = "x"
local n = 0
local tid = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  prefix = (args[1] or "x") .. "-" .. tostring(tid)
end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. prefix .. "-" .. n .. tail)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,"
    .. "\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class WrkLoad:
    label = "wrk"

    def __init__(self, children: Children, core: int | None, workdir: Path, up: int) -> None:
        self.children = children
        self.core = core
        self.scripts: dict[str, Path] = {}
        for kind, path in TRAFFIC.items():
            script = workdir / f"{kind}.lua"
            lua = _WRK_LUA.format(host=HOST, up=up, path=path, head=BODY_HEAD, tail=BODY_TAIL)
            script.write_text(lua)
            self.scripts[kind] = script

    def run(self, proxy_port: int, kind: str, seconds: float, conns: int, tag: str) -> Load:
        cmd = [
            "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(self.scripts[kind]), f"http://{HOST}:{proxy_port}/", "--", tag,
        ]  # fmt: skip
        proc = self.children.start(cmd, self.core, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate(timeout=seconds + 60)
        self.children.stop(proc)
        for line in out.decode().splitlines():
            if line.startswith("BENCHJSON "):
                r = json.loads(line[len("BENCHJSON ") :])
                return Load(
                    r["requests"],
                    r["duration_us"] / 1e6,
                    r["errors"],
                    r["p50_us"] / 1e3,
                    r["p99_us"] / 1e3,
                )
        raise RuntimeError(f"wrk failed: {out.decode()}\n{err.decode()}")


class PythonLoad:
    """The fallback: keep-alive connections on raw asyncio streams, in this (pinned) process."""

    label = "python fallback (asyncio keep-alive sockets; install wrk for better numbers)"

    def __init__(self, up: int) -> None:
        self.up = up

    def run(self, proxy_port: int, kind: str, seconds: float, conns: int, tag: str) -> Load:
        return asyncio.run(self._run(proxy_port, TRAFFIC[kind], seconds, conns, tag))

    async def _run(self, port: int, path: str, seconds: float, conns: int, tag: str) -> Load:
        latencies: list[float] = []
        errors = [0]
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(w: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                try:
                    reader, writer = await asyncio.open_connection(HOST, port)
                except OSError:
                    errors[0] += 1
                    await asyncio.sleep(0.01)
                    continue
                try:
                    while time.perf_counter() < deadline:
                        n += 1
                        t0 = time.perf_counter()
                        writer.write(raw_request(self.up, path, f"{tag}-{w}-{n}"))
                        head = await reader.readuntil(b"\r\n\r\n")
                        length = 0
                        for line in head.lower().split(b"\r\n"):
                            if line.startswith(b"content-length:"):
                                length = int(line[15:])
                        await reader.readexactly(length)
                        t1 = time.perf_counter()
                        if not head.startswith(b"HTTP/1.1 200"):
                            errors[0] += 1
                        elif t1 <= deadline:
                            latencies.append(t1 - t0)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    errors[0] += 1
                finally:
                    writer.close()
                    with contextlib.suppress(Exception):
                        await writer.wait_closed()

        await asyncio.gather(*(worker(w) for w in range(conns)))
        latencies.sort()
        return Load(
            len(latencies),
            seconds,
            errors[0],
            _pct(latencies, 50) * 1e3,
            _pct(latencies, 99) * 1e3,
        )


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


# ---------------------------------------------------------------------------------------------
# Proxy throughput


@dataclass
class Run:
    traffic: str
    config: str
    rep: int
    rps: float
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_ms_per_req: float  # mitmdump CPU during the measured window / requests
    cpu_busy: float  # mitmdump CPU during the window / wall time (1.0 = one core saturated)
    others_busy: float  # other processes' share of mitmdump's core during the window
    drain_s: float  # how long mitmdump stayed busy after the load stopped
    cpu_ms_per_req_drained: float  # the same, counting CPU spent after the load stopped


def wait_idle(pid: int, limit: float = 60.0) -> tuple[float, float]:
    """Wait until the process is idle (< 5 % of a core for 0.3 s); its busy time and CPU."""
    start = time.monotonic()
    cpu0 = last = cpu_seconds(pid)
    idle_since: float | None = None
    busy_until = start
    while time.monotonic() - start < limit:
        time.sleep(0.1)
        now, cpu = time.monotonic(), cpu_seconds(pid)
        if cpu - last < 0.005:
            idle_since = idle_since or now
            if now - idle_since >= 0.3:
                break
        else:
            idle_since, busy_until = None, now
        last = cpu
    return busy_until - start, cpu_seconds(pid) - cpu0


def measure_proxy(args: argparse.Namespace, workdir: Path, children: Children) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    load_core, proxy_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})  # this process (and a Python load) on the load core
    _, up = start_upstream(children, load_core)
    loadgen: WrkLoad | PythonLoad
    use_wrk = args.loadgen == "wrk" or (args.loadgen == "auto" and shutil.which("wrk"))
    if use_wrk:
        loadgen = WrkLoad(children, load_core, workdir, up)
    else:
        if args.loadgen == "auto":
            print("wrk not found: using the slower Python fallback load generator.")
            print("  for better numbers: apt-get install -y wrk  (Debian/Ubuntu)")
        loadgen = PythonLoad(up)
    pinning = (
        f"mitmdump on core {proxy_core}, load + upstream on core {load_core}"
        f" ({'taskset' if shutil.which('taskset') else 'sched_setaffinity'})"
        if load_core is not None
        else "not pinned (fewer than 2 cores)"
    )
    print(f"load generator: {loadgen.label}; upstream 127.0.0.1:{up}; {pinning}")
    proxies = {
        name: start_mitmdump(children, name, workdir, proxy_core, addon=name == "xapitap")
        for name in CONFIGS
    }
    for proxy in proxies.values():
        sanity_check(proxy, up)
    runs: list[Run] = []
    n_runs = args.reps * len(TRAFFIC) * len(CONFIGS)
    print(
        f"{n_runs} runs of {args.warmup:g} s warm-up + {args.duration:g} s, "
        f"{args.connections} connections\n"
    )
    print(
        f"{'traffic':<10} {'config':<8} {'rep':>3} {'req/s':>8} {'errors':>6} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'cpu%':>5} {'other%':>6} {'cpu ms/req':>10} {'drain s':>7}"
    )
    for rep in range(1, args.reps + 1):
        for kind in TRAFFIC:
            for name in CONFIGS:
                proxy = proxies[name]
                pid = proxy.proc.pid
                tag = f"{kind}-{name}-{rep}"
                loadgen.run(proxy.port, kind, args.warmup, args.connections, f"w-{tag}")
                wait_idle(pid)
                cpu0, core0 = cpu_seconds(pid), core_busy_seconds(proxy_core)
                load = loadgen.run(proxy.port, kind, args.duration, args.connections, f"m-{tag}")
                cpu1, core1 = cpu_seconds(pid), core_busy_seconds(proxy_core)
                drain_s, drain_cpu = wait_idle(pid)
                if proxy.proc.poll() is not None:
                    raise RuntimeError(f"mitmdump ({name}) died:\n{proxy.log.read_text()}")
                n = max(load.requests, 1)
                run = Run(
                    traffic=kind,
                    config=name,
                    rep=rep,
                    rps=load.rps,
                    requests=load.requests,
                    seconds=load.seconds,
                    errors=load.errors,
                    p50_ms=load.p50_ms,
                    p99_ms=load.p99_ms,
                    cpu_ms_per_req=(cpu1 - cpu0) * 1e3 / n,
                    cpu_busy=(cpu1 - cpu0) / load.seconds if load.seconds else 0.0,
                    others_busy=max(0.0, (core1 - core0) - (cpu1 - cpu0)) / load.seconds
                    if load.seconds and proxy_core is not None
                    else 0.0,
                    drain_s=drain_s,
                    cpu_ms_per_req_drained=(cpu1 - cpu0 + drain_cpu) * 1e3 / n,
                )
                runs.append(run)
                print(
                    f"{kind:<10} {name:<8} {rep:>3} {run.rps:>8.0f} {run.errors:>6} "
                    f"{run.p50_ms:>7.2f} {run.p99_ms:>7.2f} {run.cpu_busy * 100:>5.0f} "
                    f"{run.others_busy * 100:>6.0f} "
                    f"{run.cpu_ms_per_req:>10.3f} {run.drain_s:>7.1f}",
                    flush=True,
                )
    for name in reversed(CONFIGS):
        children.stop(proxies[name].proc)
    store = proxies["xapitap"].store
    stored = _store_counts(store) if store else {}
    return {
        "loadgen": loadgen.label,
        "pinning": pinning,
        "upstream_port": up,
        "runs": [asdict(r) for r in runs],
        "summary": _summarize(runs),
        "store": stored,
    }


def _store_counts(store: Path) -> dict[str, int]:
    """What the xapitap proxy kept: proof that the analytics traffic was really matched."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        counts = {
            "statements": db.execute("SELECT count(*) FROM statements").fetchone()[0],
            "rejects": db.execute("SELECT count(*) FROM rejects").fetchone()[0],
        }
        counts.update(
            {f"counter {k}": v for k, v in db.execute("SELECT name, value FROM counters")}
        )
        return counts
    finally:
        db.close()


def _summarize(runs: list[Run]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for kind in TRAFFIC:
        per: dict[str, Any] = {}
        for name in CONFIGS:
            mine = [r for r in runs if r.traffic == kind and r.config == name]
            per[name] = {
                "rps_median": statistics.median(r.rps for r in mine),
                "rps_runs": [round(r.rps, 1) for r in mine],
                "cpu_ms_per_req_median": statistics.median(r.cpu_ms_per_req for r in mine),
                "cpu_ms_per_req_drained_median": statistics.median(
                    r.cpu_ms_per_req_drained for r in mine
                ),
                "errors": sum(r.errors for r in mine),
                "others_busy_max": max(r.others_busy for r in mine),
            }
        bare, tap = per["bare"], per["xapitap"]
        per["ratio_of_medians"] = tap["rps_median"] / bare["rps_median"]
        pairs = [t / b for t, b in zip(tap["rps_runs"], bare["rps_runs"], strict=True) if b]
        per["ratio_per_rep"] = [round(p, 3) for p in pairs]
        per["median_ratio_per_rep"] = statistics.median(pairs) if pairs else 0.0
        # The throughput ratio that the CPU cost alone implies (mitmdump is CPU-bound here);
        # less sensitive to other processes than req/s, not to clock speed or cache effects.
        per["cpu_implied_ratio"] = (
            bare["cpu_ms_per_req_median"] / tap["cpu_ms_per_req_drained_median"]
        )
        summary[kind] = per
    return summary


# ---------------------------------------------------------------------------------------------
# The hook, in process


def measure_hook(n: int, workdir: Path) -> dict[str, Any]:
    """The hook's time per flow, in this process, with the addon's intake thread running."""
    try:
        import xapitap  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
    return asyncio.run(_measure_hook(n, workdir))


async def _measure_hook(n: int, workdir: Path) -> dict[str, Any]:
    # The hook may return a coroutine (for matched flows it holds the request until the store
    # has it), which needs a running event loop: hence all of this runs inside one.
    from mitmproxy import http
    from mitmproxy.test import taddons
    from mitmproxy.test import tflow

    from xapitap.addon import XapiTap

    def flows(url: str, prefix: str, count: int = n) -> list[Any]:
        return [
            tflow.tflow(
                req=http.Request.make(
                    "POST", url, body_for(f"{prefix}-{i}"), http.Headers(content_type="text/plain")
                )
            )
            for i in range(count)
        ]

    async def timed(addon: XapiTap, batch: list[Any]) -> tuple[list[int], int]:
        """Per flow: request() plus, if it returns a coroutine, that coroutine's first step:
        all that runs on the event loop before the request waits (for the store)."""
        ns = []
        held = 0
        clock = time.perf_counter_ns
        for i, flow in enumerate(batch):
            t0 = clock()
            pending = addon.request(flow)
            if pending is not None:
                try:
                    pending.send(None)
                except StopIteration:
                    pending = None
            ns.append(clock() - t0)
            if pending is not None:
                held += 1
                pending.close()  # stop waiting; the intake thread stores the flow all the same
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the loop run what the intake thread calls back
        return ns, held

    def stats(ns: list[int]) -> dict[str, float]:
        ns = sorted(ns)
        return {
            "median_us": statistics.median(ns) / 1e3,
            "p99_us": _pct([float(x) for x in ns], 99) / 1e3,
            "mean_us": statistics.fmean(ns) / 1e3,
            "max_us": ns[-1] / 1e3,
        }

    addon = XapiTap()
    store = workdir / "hook.sqlite3"
    results: dict[str, Any] = {"flows": n}
    with taddons.context(addon) as tctx:  # type: ignore[no-untyped-call]
        tctx.configure(addon, xapi_store=str(store))
        addon.running()
        try:
            warm = flows("https://api.segment.io/v1/t", "warm", 200)
            warm += flows("https://example.org/api/x", "warm-x", 200)
            await timed(addon, warm)
            await asyncio.sleep(0.5)  # let the intake thread store the warm-up flows
            for kind, url in (
                ("non_matching", "https://example.org/api/x"),
                ("matched", "https://api.segment.io/v1/t"),
            ):
                batch = flows(url, kind)
                gc.collect()
                cpu0 = time.process_time()
                ns, held = await timed(addon, batch)
                if kind == "matched":
                    # The intake thread stores everything queued (its CPU counts below).
                    await asyncio.to_thread(addon.stop)
                    await asyncio.sleep(0)
                cpu = time.process_time() - cpu0
                results[kind] = stats(ns) | {
                    "held": held,
                    # The process's CPU for hook + intake (translate, pseudonymize, SQLite),
                    # with the intake working in batches as it does under load.
                    "process_cpu_us_per_flow": cpu * 1e6 / n,
                }
            # One at a time, each awaited to the end: how long a matched request is held.
            addon.running()
            wait_ns = []
            for flow in flows("https://api.segment.io/v1/t", "held", min(n, 1000)):
                t0 = time.perf_counter_ns()
                pending = addon.request(flow)
                if pending is not None:
                    await pending
                wait_ns.append(time.perf_counter_ns() - t0)
            results["held_until_stored"] = stats(wait_ns) | {"flows": len(wait_ns)}
        finally:
            await asyncio.to_thread(addon.stop)
    results["store"] = _store_counts(store)
    return results


# ---------------------------------------------------------------------------------------------
# Report


def _versions() -> dict[str, str]:
    import mitmproxy.version

    wrk = "not installed"
    if shutil.which("wrk"):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        wrk = (out.stdout or out.stderr).split("Copyright")[0].strip()
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "mitmproxy": mitmproxy.version.VERSION,
        "wrk": wrk,
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "kernel": platform.release(),
    }


def report(results: dict[str, Any]) -> None:
    print("\n=== summary ===")
    v = results["versions"]
    print(
        f"{results['date']}  Python {v['python']}, mitmproxy {v['mitmproxy']}, "
        f"{v['cores']} cores ({v['cpu']})"
    )
    goals: list[tuple[str, float, float, bool]] = []
    proxy = results.get("proxy")
    if proxy:
        print(f"load: {proxy['loadgen']}; {proxy['pinning']}")
        print(
            f"\n{'traffic':<10} {'bare req/s':>11} {'xapitap req/s':>14} {'ratio':>6} "
            f"{'paired':>6} {'CPU ms/req bare':>16} {'xapitap':>8} {'+drain':>7} "
            f"{'CPU ratio':>9}"
        )
        for kind, s in proxy["summary"].items():
            print(
                f"{kind:<10} {s['bare']['rps_median']:>11.0f} {s['xapitap']['rps_median']:>14.0f}"
                f" {s['ratio_of_medians']:>6.3f} {s['median_ratio_per_rep']:>6.3f} "
                f"{s['bare']['cpu_ms_per_req_median']:>16.3f} "
                f"{s['xapitap']['cpu_ms_per_req_median']:>8.3f} "
                f"{s['xapitap']['cpu_ms_per_req_drained_median']:>7.3f} "
                f"{s['cpu_implied_ratio']:>9.3f}"
            )
        errors = sum(s[c]["errors"] for s in proxy["summary"].values() for c in CONFIGS)
        others = max(s[c]["others_busy_max"] for s in proxy["summary"].values() for c in CONFIGS)
        print(f"load errors (connect/read/write/timeout/non-2xx): {errors}")
        print(
            f"other processes on mitmdump's core: up to {others * 100:.0f} % of it in a run"
            + ("  <- noisy: rerun on a quiet machine" if others > 0.05 else "")
        )
        print("ratio = of the medians; paired = median of each rep's xapitap/bare ratio")
        print("CPU ratio = bare CPU ms/req / xapitap CPU ms/req incl. drain (a cross-check)")
        for kind, s in proxy["summary"].items():
            print(f"{kind} ratio per rep: {' '.join(f'{p:.3f}' for p in s['ratio_per_rep'])}")
        print(f"xapitap store after the runs: {proxy['store']}")
        s = proxy["summary"]
        ratio = s["plain"]["ratio_of_medians"]
        goals.append(("throughput ratio, plain traffic", ratio, GOAL_PLAIN_RATIO, True))
        ratio = s["analytics"]["ratio_of_medians"]
        goals.append(("throughput ratio, analytics traffic", ratio, GOAL_ANALYTICS_RATIO, True))
    hook = results.get("hook")
    if hook:
        print(f"\nhook time per flow ({hook['flows']} flows each, µs):")
        print(f"{'flows':<13} {'median':>7} {'p99':>7} {'mean':>7} {'max':>8} {'process CPU':>12}")
        for kind in ("matched", "non_matching"):
            h = hook[kind]
            print(
                f"{kind:<13} {h['median_us']:>7.1f} {h['p99_us']:>7.1f} {h['mean_us']:>7.1f} "
                f"{h['max_us']:>8.0f} {h['process_cpu_us_per_flow']:>12.1f}"
            )
        if "held_until_stored" in hook:
            h = hook["held_until_stored"]
            print(
                f"held until stored, {h['flows']} matched flows one at a time (request() and "
                f"its coroutine awaited): median {h['median_us']:.0f} µs, p99 {h['p99_us']:.0f} µs"
            )
        print(
            "hook = request() plus its coroutine's first step (to where it waits for the store);"
            " process CPU includes the intake thread"
        )
        print(f"hook store: {hook['store']}")
        goals.append(
            (
                "hook median, matched flow (µs)",
                hook["matched"]["median_us"],
                GOAL_HOOK_MEDIAN_US,
                False,
            )
        )
    print()
    for label, value, goal, at_least in goals:
        ok = value >= goal if at_least else value <= goal
        sign = "≥" if at_least else "≤"
        print(f"{'PASS' if ok else 'MISS'}  {label}: {value:.3f} (goal {sign} {goal:g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up per run")
    parser.add_argument("--reps", type=int, default=3, help="runs per configuration and traffic")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--hook-flows", type=int, default=10_000, help="flows per hook timing")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--skip-proxy", action="store_true", help="only time the hook")
    parser.add_argument("--skip-hook", action="store_true", help="only measure the proxy")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream()
        return
    if not MITMDUMP.exists() and not args.skip_proxy:
        sys.exit(f"no mitmdump beside {sys.executable}: run this with the project's venv")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background, where SIGINT would be ignored: Ctrl-C must clean up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    children = Children()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "args": {k: v for k, v in vars(args).items() if k != "serve_upstream"},
    }
    try:
        with tempfile.TemporaryDirectory(prefix="xapitap-bench-") as tmp:
            workdir = Path(tmp)
            try:
                if not args.skip_hook:
                    print(f"timing the hook in process ({args.hook_flows} flows each) ...")
                    results["hook"] = measure_hook(args.hook_flows, workdir)
                if not args.skip_proxy:
                    results["proxy"] = measure_proxy(args, workdir, children)
            finally:
                children.stop_all()  # before the temporary directory goes
    except KeyboardInterrupt:
        children.stop_all()
        print("\ninterrupted: stopped everything it had started", file=sys.stderr)
        return
    report(results)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
