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
   reported per run, as medians and as the ratio of medians, with mitmdump's CPU per request
   and the requests' tail latency (p99, p99.9, max).
2. Tail latency at a moderate, paced load (default 200 req/s, well under either proxy's
   capacity, so queueing does not hide the cost of a request): p99, p99.9 and max per
   configuration and traffic, and the added latency of matched requests (xapitap analytics p99
   - bare analytics p99).
3. The event loop's worst stalls, in both proxies: bench/stall_probe.py, loaded into both
   mitmdumps, wakes every 1 ms and records how late each wake-up came, per measured window.
4. The hook's own time per flow, in process (mitmproxy.test.taddons), for matched and for
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
STALL_PROBE = REPO / "bench" / "stall_probe.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
RESULTS_DIR = REPO / "bench" / "results"
HOST = "127.0.0.1"

GOAL_PLAIN_RATIO = 0.97
GOAL_ANALYTICS_RATIO = 0.90
GOAL_HOOK_MEDIAN_US = 50.0
GOAL_STALL_MAX_MS = 5.0
GOAL_ADDED_P99_MS = 5.0

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


def process_tree(pid: int) -> list[int]:
    """The process and its live descendants (xapitap's translator is a child of mitmdump)."""
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live descendants, from /proc/<pid>/stat (all their
    threads). A descendant that ended between two readings drops out of the sum."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            # Fields after the comm: state is index 0, utime index 11, stime index 12.
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
    probe: Path | None  # where its stall probe writes, when loaded
    probe_seq: int = 0
    idle_cpu: float = 0.0  # its CPU share when idle (the probe's timer costs a few %)


def start_mitmdump(
    children: Children, name: str, workdir: Path, core: int | None, addon: bool, probe: bool
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
    probe_file = None
    if probe:  # first, so that its running() starts before xapitap's
        probe_file = workdir / f"stall-{name}.json"
        cmd += ["-s", str(STALL_PROBE), "--set", f"stall_probe_file={probe_file}"]
    store = None
    if addon:
        store = workdir / "bench.sqlite3"
        # The dashboard off: this measures capture (bench/dashboard.py measures the dashboard).
        cmd += ["-s", str(ADDON), "--set", f"xapi_store={store}", "--set", "xapi_dashboard=off"]
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
    if addon and core is not None:
        unpin_translator(proc.pid)
    proxy = Proxy(name, proc, port, log, store, probe_file)
    if probe_file is not None:
        stall_window(proxy)  # waits for the probe to answer: it is running
    return proxy


def unpin_translator(proxy_pid: int, timeout: float = 10) -> None:
    """xapitap's translator is a child of mitmdump, and so inherits its pinning to one core;
    deployed, nothing pins either, and the translator runs on whichever core is free. Unpin
    it, so that the benchmark measures that, not both sharing one core."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in process_tree(proxy_pid)[1:]:
            with contextlib.suppress(OSError):
                if b"xapitap.translator" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.sched_setaffinity(pid, set(range(os.cpu_count() or 1)))
                    return
        time.sleep(0.05)
    raise RuntimeError("xapitap's translator did not start")


def stall_window(proxy: Proxy, timeout: float = 30) -> dict[str, Any] | None:
    """The stall probe's numbers since the last call (SIGUSR1: write them, start over)."""
    if proxy.probe is None:
        return None
    deadline = time.monotonic() + timeout
    while not proxy.probe.exists():  # written once its signal handler is in place
        if time.monotonic() > deadline or proxy.proc.poll() is not None:
            log = proxy.log.read_text()[-3000:]
            raise RuntimeError(f"no stall probe in mitmdump ({proxy.name}):\n{log}")
        time.sleep(0.02)
    proxy.proc.send_signal(signal.SIGUSR1)
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            data: dict[str, Any] = json.loads(proxy.probe.read_text())
            if data["seq"] > proxy.probe_seq:
                proxy.probe_seq = data["seq"]
                return data
        time.sleep(0.01)
    raise RuntimeError(f"the stall probe in mitmdump ({proxy.name}) did not answer")


def measure_idle_cpu(proxy: Proxy, seconds: float = 2.0) -> None:
    pid = proxy.proc.pid
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    proxy.idle_cpu = (cpu_seconds(pid) - cpu0) / seconds


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
    p999_ms: float
    max_ms: float

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
{delay}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d,"
    .. "\\"p50_us\\":%d,\\"p99_us\\":%d,\\"p999_us\\":%d,\\"max_us\\":%d}}\\n",
    summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""
# Paced load: each connection waits this long after an answer before its next request.
_WRK_DELAY = """\
function delay()
  return {ms}
end
"""


class WrkLoad:
    label = "wrk"

    def __init__(self, children: Children, core: int | None, workdir: Path, up: int) -> None:
        self.children = children
        self.core = core
        self.workdir = workdir
        self.up = up
        self.scripts: dict[tuple[str, int], Path] = {}

    def script(self, kind: str, pace_ms: int) -> Path:
        if (kind, pace_ms) not in self.scripts:
            script = self.workdir / f"{kind}-{pace_ms}.lua"
            delay = _WRK_DELAY.format(ms=pace_ms) if pace_ms else ""
            lua = _WRK_LUA.format(
                host=HOST,
                up=self.up,
                path=TRAFFIC[kind],
                head=BODY_HEAD,
                tail=BODY_TAIL,
                delay=delay,
            )
            script.write_text(lua)
            self.scripts[kind, pace_ms] = script
        return self.scripts[kind, pace_ms]

    def run(
        self, proxy_port: int, kind: str, seconds: float, conns: int, tag: str, pace_ms: int = 0
    ) -> Load:
        script = self.script(kind, pace_ms)
        cmd = [
            "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), f"http://{HOST}:{proxy_port}/", "--", tag,
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
                    r["p999_us"] / 1e3,
                    r["max_us"] / 1e3,
                )
        raise RuntimeError(f"wrk failed: {out.decode()}\n{err.decode()}")


class PythonLoad:
    """The fallback: keep-alive connections on raw asyncio streams, in this (pinned) process."""

    label = "python fallback (asyncio keep-alive sockets; install wrk for better numbers)"

    def __init__(self, up: int) -> None:
        self.up = up

    def run(
        self, proxy_port: int, kind: str, seconds: float, conns: int, tag: str, pace_ms: int = 0
    ) -> Load:
        return asyncio.run(self._run(proxy_port, TRAFFIC[kind], seconds, conns, tag, pace_ms))

    async def _run(
        self, port: int, path: str, seconds: float, conns: int, tag: str, pace_ms: int
    ) -> Load:
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
                        if pace_ms:
                            await asyncio.sleep(pace_ms / 1e3)
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
            _pct(latencies, 99.9) * 1e3,
            (latencies[-1] if latencies else 0.0) * 1e3,
        )


def _pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p / 100))]


# ---------------------------------------------------------------------------------------------
# Proxy throughput


@dataclass
class Run:
    phase: str  # "load": as fast as the proxy goes; "paced": a moderate fixed pace
    traffic: str
    config: str
    rep: int
    rps: float
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    cpu_ms_per_req: float  # mitmdump CPU during the measured window / requests
    cpu_busy: float  # mitmdump CPU during the window / wall time (1.0 = one core saturated)
    others_busy: float  # other processes' share of mitmdump's core during the window
    drain_s: float  # how long mitmdump stayed busy after the load stopped
    cpu_ms_per_req_drained: float  # the same, counting CPU spent after the load stopped
    # The event loop's lateness over the window and the drain (stall_probe.py); -1: no probe.
    stall_max_ms: float = -1.0
    stall_p99_ms: float = -1.0
    stall_p999_ms: float = -1.0
    stall_over_5ms: int = -1


def wait_idle(proxy: Proxy, limit: float = 60.0) -> tuple[float, float]:
    """Wait until mitmdump (with its child processes) is idle: within 5 % of a core of its
    idle CPU share for 0.6 s. Returns its busy time and its CPU meanwhile."""
    pid = proxy.proc.pid
    step = 0.2
    # One clock tick of grace: CPU time comes in ticks (10 ms), the probe's timer costs a few %.
    threshold = step * (proxy.idle_cpu + 0.05) + 1.01 / os.sysconf("SC_CLK_TCK")
    start = time.monotonic()
    cpu0 = last = cpu_seconds(pid)
    idle_since: float | None = None
    busy_until = start
    while time.monotonic() - start < limit:
        time.sleep(step)
        now, cpu = time.monotonic(), cpu_seconds(pid)
        if cpu - last < threshold:
            idle_since = idle_since or now
            if now - idle_since >= 0.4:
                break
        else:
            idle_since, busy_until = None, now
        last = cpu
    return busy_until - start, cpu_seconds(pid) - cpu0


_RUN_HEADER = (
    f"{'phase':<6} {'traffic':<10} {'config':<8} {'rep':>3} {'req/s':>7} {'err':>4} "
    f"{'p50 ms':>7} {'p99':>7} {'p99.9':>7} {'max':>7} {'stall max':>9} {'p99.9':>6} "
    f"{'cpu%':>5} {'other%':>6} {'cpu ms/req':>10} {'drain s':>7}"
)


def _run_line(run: Run) -> str:
    stall = (
        f"{run.stall_max_ms:>9.2f} {run.stall_p999_ms:>6.2f}"
        if run.stall_max_ms >= 0
        else f"{'-':>9} {'-':>6}"
    )
    return (
        f"{run.phase:<6} {run.traffic:<10} {run.config:<8} {run.rep:>3} {run.rps:>7.0f} "
        f"{run.errors:>4} {run.p50_ms:>7.2f} {run.p99_ms:>7.2f} {run.p999_ms:>7.2f} "
        f"{run.max_ms:>7.1f} {stall} {run.cpu_busy * 100:>5.0f} {run.others_busy * 100:>6.0f} "
        f"{run.cpu_ms_per_req:>10.3f} {run.drain_s:>7.1f}"
    )


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
    probe = not args.no_stall_probe
    proxies = {
        name: start_mitmdump(
            children, name, workdir, proxy_core, addon=name == "xapitap", probe=probe
        )
        for name in CONFIGS
    }
    for proxy in proxies.values():
        sanity_check(proxy, up)
    for proxy in proxies.values():
        wait_idle(proxy)
        measure_idle_cpu(proxy)
    print(
        "idle CPU (the stall probe's 1 ms timer, xapitap's idle work): "
        + ", ".join(f"{p.name} {p.idle_cpu * 100:.1f} %" for p in proxies.values())
    )
    # Paced: each connection waits after every answer, for about `paced_rate` req/s in all.
    pace_ms = max(1, round(args.connections * 1000 / args.paced_rate)) if args.paced_rate else 0
    phases = [("load", args.warmup, args.duration, 0)]
    if pace_ms and args.paced_duration > 0:
        phases.append(("paced", 1.0, args.paced_duration, pace_ms))
    runs: list[Run] = []
    n_runs = args.reps * len(TRAFFIC) * len(CONFIGS)
    print(
        f"per phase {n_runs} runs, {args.connections} connections: load = {args.warmup:g} s "
        f"warm-up + {args.duration:g} s as fast as it goes"
        + (
            f"; paced = 1 s warm-up + {args.paced_duration:g} s, {pace_ms} ms between an answer "
            f"and the next request on each connection (~{args.paced_rate:g} req/s)"
            if len(phases) > 1
            else ""
        )
    )
    print("latency from the load generator; stall = how late the proxy's event loop woke a")
    print("1 ms timer (stall_probe.py) during the window and the drain, ms\n")
    print(_RUN_HEADER)
    for rep in range(1, args.reps + 1):
        for phase, warmup, duration, pace in phases:
            for kind in TRAFFIC:
                for name in CONFIGS:
                    proxy = proxies[name]
                    run = _one_run(
                        loadgen, proxy, proxy_core, phase, kind, rep, warmup, duration, pace, args
                    )
                    runs.append(run)
                    print(_run_line(run), flush=True)
    for name in reversed(CONFIGS):
        children.stop(proxies[name].proc)
    store = proxies["xapitap"].store
    stored = _store_counts(store) if store else {}
    return {
        "loadgen": loadgen.label,
        "pinning": pinning,
        "upstream_port": up,
        "stall_probe": probe,
        "idle_cpu": {p.name: p.idle_cpu for p in proxies.values()},
        "paced": {"pace_ms": pace_ms, "rate": args.paced_rate, "seconds": args.paced_duration}
        if len(phases) > 1
        else None,
        "runs": [asdict(r) for r in runs],
        "summary": _summarize([r for r in runs if r.phase == "load"]),
        "latency": {phase: _summarize_latency(runs, phase) for phase, *_ in phases},
        "store": stored,
    }


def _one_run(
    loadgen: WrkLoad | PythonLoad,
    proxy: Proxy,
    proxy_core: int | None,
    phase: str,
    kind: str,
    rep: int,
    warmup: float,
    duration: float,
    pace_ms: int,
    args: argparse.Namespace,
) -> Run:
    pid = proxy.proc.pid
    tag = f"{phase}-{kind}-{proxy.name}-{rep}"
    loadgen.run(proxy.port, kind, warmup, args.connections, f"w-{tag}", pace_ms)
    wait_idle(proxy)
    stall_window(proxy)  # start the probe's window afresh
    cpu0, core0 = cpu_seconds(pid), core_busy_seconds(proxy_core)
    load = loadgen.run(proxy.port, kind, duration, args.connections, f"m-{tag}", pace_ms)
    cpu1, core1 = cpu_seconds(pid), core_busy_seconds(proxy_core)
    drain_s, drain_cpu = wait_idle(proxy)
    stall = stall_window(proxy)
    if proxy.proc.poll() is not None:
        raise RuntimeError(f"mitmdump ({proxy.name}) died:\n{proxy.log.read_text()}")
    n = max(load.requests, 1)
    return Run(
        phase=phase,
        traffic=kind,
        config=proxy.name,
        rep=rep,
        rps=load.rps,
        requests=load.requests,
        seconds=load.seconds,
        errors=load.errors,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        p999_ms=load.p999_ms,
        max_ms=load.max_ms,
        cpu_ms_per_req=(cpu1 - cpu0) * 1e3 / n,
        cpu_busy=(cpu1 - cpu0) / load.seconds if load.seconds else 0.0,
        others_busy=max(0.0, (core1 - core0) - (cpu1 - cpu0)) / load.seconds
        if load.seconds and proxy_core is not None
        else 0.0,
        drain_s=drain_s,
        cpu_ms_per_req_drained=(cpu1 - cpu0 + drain_cpu) * 1e3 / n,
        stall_max_ms=stall["max_ms"] if stall else -1.0,
        stall_p99_ms=stall["p99_ms"] if stall else -1.0,
        stall_p999_ms=stall["p999_ms"] if stall else -1.0,
        stall_over_5ms=stall["over_5ms"] if stall else -1,
    )


def _store_counts(store: Path) -> dict[str, int]:
    """What the xapitap proxy kept: proof that the analytics traffic was really matched."""
    if not store.exists():
        return {}
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
    except sqlite3.Error as e:  # another layout: say so rather than fail the whole run
        return {f"unreadable: {e}": -1}
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


def _summarize_latency(runs: list[Run], phase: str) -> dict[str, Any]:
    """Per traffic and configuration: the median over the runs of each latency percentile,
    the worst single request, and the event loop's stalls; then xapitap - bare."""
    summary: dict[str, Any] = {}
    for kind in TRAFFIC:
        per: dict[str, Any] = {}
        for name in CONFIGS:
            mine = [r for r in runs if r.phase == phase and r.traffic == kind and r.config == name]
            probed = [r for r in mine if r.stall_max_ms >= 0]
            per[name] = {
                "rps_median": statistics.median(r.rps for r in mine),
                "p50_ms": statistics.median(r.p50_ms for r in mine),
                "p99_ms": statistics.median(r.p99_ms for r in mine),
                "p999_ms": statistics.median(r.p999_ms for r in mine),
                "max_ms": max(r.max_ms for r in mine),
                "p99_ms_runs": [round(r.p99_ms, 3) for r in mine],
                "errors": sum(r.errors for r in mine),
            }
            if probed:
                per[name] |= {
                    "stall_max_ms": max(r.stall_max_ms for r in probed),
                    "stall_max_ms_runs": [r.stall_max_ms for r in probed],
                    "stall_p99_ms": statistics.median(r.stall_p99_ms for r in probed),
                    "stall_p999_ms": statistics.median(r.stall_p999_ms for r in probed),
                    "stall_over_5ms": sum(r.stall_over_5ms for r in probed),
                }
        bare, tap = per["bare"], per["xapitap"]
        per["added_p99_ms"] = tap["p99_ms"] - bare["p99_ms"]
        per["added_p999_ms"] = tap["p999_ms"] - bare["p999_ms"]
        pairs = [t - b for t, b in zip(tap["p99_ms_runs"], bare["p99_ms_runs"], strict=True)]
        per["added_p99_ms_per_rep"] = [round(d, 3) for d in pairs]
        per["added_p99_ms_paired"] = statistics.median(pairs)
        summary[kind] = per
    return summary


# ---------------------------------------------------------------------------------------------
# The hook, in process


def measure_hook(n: int, workdir: Path) -> dict[str, Any]:
    """The hook's time per flow, in this process, with the addon's journal writer running."""
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
                pending.close()  # stop waiting; the journal writer writes the flow all the same
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the loop run what the journal writer calls back
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
        tctx.configure(addon, xapi_store=str(store), xapi_dashboard="off")
        addon.running()
        try:
            warm = flows("https://api.segment.io/v1/t", "warm", 200)
            warm += flows("https://example.org/api/x", "warm-x", 200)
            await timed(addon, warm)
            await asyncio.sleep(0.5)  # let the journal writer write the warm-up flows
            for kind, url in (
                ("non_matching", "https://example.org/api/x"),
                ("matched", "https://api.segment.io/v1/t"),
            ):
                batch = flows(url, kind)
                gc.collect()
                cpu0 = time.process_time()
                ns, held = await timed(addon, batch)
                if kind == "matched":
                    # The writer journals everything queued (its CPU counts below).
                    await asyncio.to_thread(addon.stop)
                    await asyncio.sleep(0)
                cpu = time.process_time() - cpu0
                results[kind] = stats(ns) | {
                    "held": held,
                    # The process's CPU for hook + journal writer (encode, write, fsync), in
                    # groups as under load; translation is the translator process's.
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
            results["held_until_journaled"] = stats(wait_ns) | {"flows": len(wait_ns)}
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


def _report_latency(proxy: dict[str, Any]) -> list[tuple[str, float, float, bool]]:
    """Tail latency and event-loop stalls per phase; the goals from the paced phase only (the
    load phase's latency is mostly queueing behind a saturated proxy)."""
    probe = proxy.get("stall_probe", False)
    for phase, lat in proxy["latency"].items():
        what = (
            f"paced, ~{proxy['paced']['rate']:g} req/s"
            if phase == "paced"
            else "load, as fast as it goes (latency = mostly queueing)"
        )
        print(f"\nlatency, {what}: medians over the runs of each run's percentile, ms")
        print(
            f"{'traffic':<10} {'config':<8} {'req/s':>6} {'p50':>7} {'p99':>7} {'p99.9':>7} "
            f"{'max':>7}"
            + (f" {'stall max':>9} {'p99':>6} {'p99.9':>6} {'>5ms':>5}" if probe else "")
        )
        for kind, per in lat.items():
            for name in CONFIGS:
                c = per[name]
                line = (
                    f"{kind:<10} {name:<8} {c['rps_median']:>6.0f} {c['p50_ms']:>7.2f} "
                    f"{c['p99_ms']:>7.2f} {c['p999_ms']:>7.2f} {c['max_ms']:>7.1f}"
                )
                if "stall_max_ms" in c:
                    line += (
                        f" {c['stall_max_ms']:>9.2f} {c['stall_p99_ms']:>6.2f} "
                        f"{c['stall_p999_ms']:>6.2f} {c['stall_over_5ms']:>5}"
                    )
                print(line)
        for kind, per in lat.items():
            print(
                f"{kind}: xapitap - bare p99 {per['added_p99_ms']:+.2f} ms (paired "
                f"{per['added_p99_ms_paired']:+.2f}; per rep "
                f"{' '.join(f'{d:+.2f}' for d in per['added_p99_ms_per_rep'])}), "
                f"p99.9 {per['added_p999_ms']:+.2f} ms"
            )
    if probe:
        print("stall max = the worst over the runs; p99, p99.9 = medians over the runs")
    load = proxy["latency"]["load"]
    if probe:
        bare = max(load[k]["bare"]["stall_max_ms"] for k in TRAFFIC)
        tap = max(load[k]["xapitap"]["stall_max_ms"] for k in TRAFFIC)
        print(f"(at full load, stall max: bare {bare:.2f} ms, xapitap {tap:.2f} ms)")
    paced = proxy["latency"].get("paced")
    if paced is None:
        # At full load, latency differences are mostly queueing: no verdict from them.
        print("no paced runs (--paced-rate 0): no verdict on added latency and stalls")
        return []
    goals = [
        (
            "added latency p99, matched requests (paced; ms)",
            paced["analytics"]["added_p99_ms"],
            GOAL_ADDED_P99_MS,
            False,
        )
    ]
    if probe:
        worst = max(paced[k]["xapitap"]["stall_max_ms"] for k in TRAFFIC)
        goals.append(("event-loop stall max, xapitap (paced; ms)", worst, GOAL_STALL_MAX_MS, False))
    return goals


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
        goals += _report_latency(proxy)
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
        if "held_until_journaled" in hook:
            h = hook["held_until_journaled"]
            print(
                f"held until journaled, {h['flows']} matched flows one at a time (request() and "
                f"its coroutine awaited): median {h['median_us']:.0f} µs, p99 {h['p99_us']:.0f} µs"
            )
        print(
            "hook = request() plus its coroutine's first step (to where it waits for the journal);"
            " process CPU includes the journal writer"
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
    print_goals(goals)


def print_goals(goals: list[tuple[str, float, float, bool]]) -> None:
    """One PASS/MISS line per (label, measured, goal, whether the goal is a minimum)."""
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
    parser.add_argument(
        "--paced-rate", type=float, default=200, help="req/s of the paced latency runs (0: none)"
    )
    parser.add_argument(
        "--paced-duration", type=float, default=5, help="seconds per paced run (0: none)"
    )
    parser.add_argument(
        "--no-stall-probe", action="store_true", help="do not load stall_probe.py into mitmdump"
    )
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
