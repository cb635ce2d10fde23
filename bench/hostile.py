"""Plain-request latency through mitmdump with xapitap, with and without a hostile page.

Everything runs on this machine, on 127.0.0.1 only:
- the loopback upstream of bench.py (an asyncio HTTP/1.1 keep-alive server, a process of its
  own, answering `200 {"ok":true}`);
- a fresh `mitmdump -s addons/xapitap.py` (its own store and confdir) for every run;
- the plain client, in this process: one keep-alive connection sending
  `GET http://127.0.0.1:<up>/plain/N` (which matches no rule) through the proxy, one request
  every --interval ms, each timed from the first byte sent to the last byte received;
- in the "hostile" and "bare" runs, the hostile client, a process of its own with
  --hostile-connections keep-alive connections, each sending hostile analytics bodies one
  after the other, in absolute form with the Host header of the platform they claim:
    - 1 GiB compression bombs, in gzip, deflate, br and zstd: zeros to api.segment.io/v1/t,
      and a Segment/Udemy-looking JSON prefix then 1 GiB of "A" to a first-party Segment host
      and to www.udemy.com (where the rules' body checks decode the body while matching);
    - JSON nested 1,000 and 50,000 levels deep;
    - a 500 KB title, and a 500 KB content_asset_id of words;
    - a Segment batch of 10,000 sessions (the same ones each time).
  The single-event bodies get a new messageId and session each time they are sent.
Three kinds of run: "baseline" (xapitap, the plain client alone), "hostile" (xapitap, plain
and hostile clients), "bare" (the same two clients through mitmdump without xapitap: what
proxying such bodies costs anyway). They alternate (baseline, hostile, bare, baseline, ...),
each --duration seconds and at most --max-hostile hostile requests. Reported per run: plain
requests, errors, latency p50/p99/max, hostile requests sent, mitmdump's peak resident memory
(VmHWM), its CPU, the time it took to stop, and what the store kept; then the medians per kind
and the ratios hostile ÷ baseline and hostile ÷ bare of p50, p99 and max.

On 2+ cores, mitmdump runs on the second core; the clients and the upstream on the first.

Usage: .venv/bin/python bench/hostile.py [--duration S] [--reps N] [--interval MS]
       [--hostile-connections N] [--max-hostile N]
It prints a table and the ratios, and always exits 0 (it is no test; the e2e test
tests/e2e/test_hostile_input.py asserts a loose bound on the same latency).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli

from bench import HOST
from bench import Children
from bench import _pct
from bench import _store_counts
from bench import _versions
from bench import cpu_seconds
from bench import start_mitmdump
from bench import start_upstream

GiB = 1 << 30
_CHUNK = 16 << 20
_COUNTER = b"@@COUNTER@@"  # replaced by a fixed-width counter on every send
WRITE_KEY = "bench-hostile-write-key"
KINDS = ("baseline", "hostile", "bare")  # bare: the hostile load, mitmdump without xapitap


# ---------------------------------------------------------------------------------------------
# Hostile bodies


def _deflate_bomb(prefix: bytes, fill: int, wbits: int) -> bytes:
    """prefix + 1 GiB of `fill`, compressed: after a full flush the compressor starts afresh,
    so each further 16 MiB compresses to the same bytes (built in under a second)."""
    chunk = bytes([fill]) * _CHUNK
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = raw.compress(prefix + chunk) + raw.flush(zlib.Z_FULL_FLUSH)
    block = raw.compress(chunk) + raw.flush(zlib.Z_FULL_FLUSH)
    tail = raw.compress(chunk) + raw.flush()
    stream = head + block * (GiB // _CHUNK - 2) + tail
    crc, adler = zlib.crc32(prefix), zlib.adler32(prefix)
    for _ in range(GiB // _CHUNK):
        crc, adler = zlib.crc32(chunk, crc), zlib.adler32(chunk, adler)
    if wbits == 31:  # gzip
        size = (len(prefix) + GiB) & 0xFFFFFFFF
        header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
        return header + stream + crc.to_bytes(4, "little") + size.to_bytes(4, "little")
    return b"\x78\xda" + stream + adler.to_bytes(4, "big")  # zlib-wrapped "deflate"


def _zstd(chunks: Any) -> bytes:
    """With the zstd module mitmproxy brought: compression.zstd / backports.zstd (mitmproxy 12),
    else zstandard (mitmproxy 11)."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = __import__(name, fromlist=["ZstdCompressor"])
        except ImportError:
            continue
        c = module.ZstdCompressor()
        return b"".join(c.compress(x) for x in chunks) + c.flush()  # type: ignore[no-any-return]
    import zstandard

    obj = zstandard.ZstdCompressor().compressobj()
    return b"".join(obj.compress(x) for x in chunks) + obj.flush()


def bomb(encoding: str, prefix: bytes, fill: int) -> bytes:
    if encoding in ("gzip", "deflate"):
        return _deflate_bomb(prefix, fill, 31 if encoding == "gzip" else 15)
    chunks = itertools.chain([prefix], itertools.repeat(bytes([fill]) * _CHUNK, GiB // _CHUNK))
    if encoding == "br":
        c = brotli.Compressor(quality=5)
        return b"".join(c.process(x) for x in chunks) + c.finish()  # type: ignore[no-any-return]
    return _zstd(chunks)


def segment(title: Any = "Intro", **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Video Playback Paused",
        "messageId": f"ajs-{_COUNTER.decode()}",
        "userId": "bench-learner",
        "timestamp": "2024-05-01T10:00:00.000Z",
        "properties": {
            "session_id": f"s-{_COUNTER.decode()}",
            "content_asset_id": "lecture-1",
            "title": title,
            "position": 12,
            "total_length": 60,
            **properties,
        },
        "context": {"page": {"url": "https://learn.example.org/course/1"}},
        "writeKey": WRITE_KEY,
    }


@dataclass(frozen=True)
class Hostile:
    label: str
    host: str
    path: str
    body: bytes
    encoding: str | None = None


def hostile_bodies() -> list[Hostile]:
    segment_host, first_party, udemy = "api.segment.io", "t.learn.example.org", "www.udemy.com"
    prefix = (
        b'{"type":"track","writeKey":"' + WRITE_KEY.encode() + b'","ctVersion":"1",'
        b'"action":"video play","properties":{"title":"'
    )
    out = []
    for encoding in ("gzip", "deflate", "br", "zstd"):
        out += [
            Hostile(f"{encoding} bomb", segment_host, "/v1/t", bomb(encoding, b"", 0), encoding),
            Hostile(f"{encoding} bomb", first_party, "/v1/t", bomb(encoding, prefix, 65), encoding),
            Hostile(f"{encoding} bomb", udemy, "/any/path", bomb(encoding, prefix, 65), encoding),
        ]
    for depth in (1000, 50_000):
        text = json.dumps(segment(title="@@DEEP@@"), separators=(",", ":"))
        deep = text.replace('"@@DEEP@@"', "[" * depth + "]" * depth).encode()
        out.append(Hostile(f"nested {depth}", first_party, "/v1/t", deep))
    title = segment(title="A" * 500_000)
    words = segment(content_asset_id="word " * 100_000)
    starts = [  # compact, to fit the 1 MiB cap: asset_id, short session ids, camelCase
        {
            "type": "track",
            "event": "videoPlaybackStarted",
            "properties": {"session_id": f"{i:x}", "asset_id": "a"},
        }
        for i in range(10_000)
    ]
    batch = {"batch": starts, "writeKey": WRITE_KEY, "messageId": _COUNTER.decode()}
    for label, host, doc in (
        ("500 KB title", segment_host, title),
        ("500 KB content_asset_id", first_party, words),
        ("10,000 sessions", segment_host, batch),
    ):
        path = "/v1/b" if "batch" in doc else "/v1/t"
        out.append(Hostile(label, host, path, json.dumps(doc, separators=(",", ":")).encode()))
    return out


# ---------------------------------------------------------------------------------------------
# Clients


def _read_response(sock: socket.socket, buf: bytearray) -> bytes:
    """One HTTP/1.1 response (Content-Length framed) from a keep-alive socket."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:end])
    length = 0
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            length = int(line[15:])
    while len(buf) < end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    del buf[: end + length]
    return head


def request(target: str, host: str, body: bytes = b"", encoding: str | None = None) -> bytes:
    method = "POST" if body else "GET"
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    if body:
        lines += ["Content-Type: text/plain", f"Content-Length: {len(body)}"]
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Plain:
    latencies: list[float]
    errors: int


def plain_client(proxy: int, up: int, seconds: float, interval: float) -> Plain:
    """One keep-alive connection, one GET every `interval` s (or right after a slow one)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    sock: socket.socket | None = None
    buf = bytearray()
    n = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection((HOST, proxy), timeout=30)
                buf = bytearray()
            n += 1
            sock.sendall(request(f"http://{HOST}:{up}/plain/{n}", f"{HOST}:{up}"))
            head = _read_response(sock, buf)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            else:
                latencies.append(time.perf_counter() - started)
        except OSError:
            errors += 1
            if sock is not None:
                sock.close()
            sock = None
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    if sock is not None:
        sock.close()
    return Plain(latencies, errors)


def hostile_client(
    manifest: Path, proxy: int, up: int, seconds: float, conns: int, cap: int
) -> None:
    """(Its own process.) Send the hostile bodies round robin on `conns` connections until
    `seconds` pass or `cap` were sent; print how many went and how many failed."""
    items = json.loads(manifest.read_text())
    bodies = [(i, base64.b64decode(i["body"])) for i in items]
    counter = itertools.count()
    lock = threading.Lock()
    sent, failed = [0], [0]
    deadline = time.monotonic() + seconds

    def worker(w: int) -> None:
        sock: socket.socket | None = None
        buf = bytearray()
        for k in itertools.count(w):
            with lock:
                if time.monotonic() >= deadline or sent[0] + failed[0] >= cap:
                    break
                n = next(counter)
            item, body = bodies[k % len(bodies)]
            body = body.replace(_COUNTER, b"%011d" % n)  # same length: no re-framing
            try:
                if sock is None:
                    sock = socket.create_connection((HOST, proxy), timeout=120)
                    buf = bytearray()
                sock.sendall(
                    request(f"http://{HOST}:{up}{item['path']}", item["host"], body, item["enc"])
                )
                ok = _read_response(sock, buf).startswith(b"HTTP/1.1 200")
            except OSError:
                ok = False
                if sock is not None:
                    sock.close()
                sock = None
            with lock:
                (sent if ok else failed)[0] += 1
        if sock is not None:
            sock.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"sent": sent[0], "failed": failed[0]}), flush=True)


# ---------------------------------------------------------------------------------------------
# Runs


@dataclass
class Run:
    kind: str
    rep: int
    plain: int
    errors: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    hostile_sent: int
    hostile_failed: int
    peak_rss_mb: float
    cpu_s: float
    stop_s: float
    died: bool
    store: dict[str, int]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_run(
    args: argparse.Namespace,
    children: Children,
    workdir: Path,
    manifest: Path,
    up: int,
    cores: tuple[int | None, int | None],
    kind: str,
    rep: int,
) -> Run:
    load_core, proxy_core = cores
    rundir = workdir / f"{kind}-{rep}"
    rundir.mkdir()
    proxy = start_mitmdump(children, kind, rundir, proxy_core, addon=kind != "bare")
    pid = proxy.proc.pid
    cpu0 = cpu_seconds(pid)
    hostile: subprocess.Popen[bytes] | None = None
    if kind != "baseline":
        cmd = [
            sys.executable, "-u", str(Path(__file__).resolve()), "--hostile-client",
            str(manifest), str(proxy.port), str(up), str(args.duration),
            str(args.hostile_connections), str(args.max_hostile),
        ]  # fmt: skip
        hostile = children.start(cmd, load_core, stdout=subprocess.PIPE)
    plain = plain_client(proxy.port, up, args.duration, args.interval / 1000)
    sent = failed = 0
    if hostile is not None:
        out, _ = hostile.communicate(timeout=args.duration + 300)
        children.stop(hostile)
        with contextlib.suppress(ValueError, IndexError):
            result = json.loads(out.decode().strip().splitlines()[-1])
            sent, failed = result["sent"], result["failed"]
    died = proxy.proc.poll() is not None
    peak = 0.0 if died else peak_rss_mb(pid)
    cpu = 0.0 if died else cpu_seconds(pid) - cpu0
    started = time.monotonic()
    children.stop(proxy.proc, timeout=120)
    stop_s = time.monotonic() - started
    lat = sorted(plain.latencies)
    store = {}
    if proxy.store is not None and proxy.store.exists():
        with contextlib.suppress(Exception):
            store = _store_counts(proxy.store)
    return Run(
        kind=kind,
        rep=rep,
        plain=len(lat),
        errors=plain.errors,
        p50_ms=_pct(lat, 50) * 1e3,
        p99_ms=_pct(lat, 99) * 1e3,
        max_ms=(lat[-1] if lat else 0.0) * 1e3,
        hostile_sent=sent,
        hostile_failed=failed,
        peak_rss_mb=peak,
        cpu_s=cpu,
        stop_s=stop_s,
        died=died,
        store=store,
    )


def measure(args: argparse.Namespace, children: Children, workdir: Path) -> list[Run]:
    cores = sorted(os.sched_getaffinity(0))
    load_core, proxy_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    if load_core is not None:
        os.sched_setaffinity(0, {load_core})
    print("building the hostile bodies (1 GiB bombs, compressed) ...", flush=True)
    items = hostile_bodies()
    manifest = workdir / "hostile.json"
    manifest.write_text(
        json.dumps(
            [
                {
                    "label": h.label,
                    "host": h.host,
                    "path": h.path,
                    "enc": h.encoding,
                    "body": base64.b64encode(h.body).decode(),
                }
                for h in items
            ]
        )
    )
    for h in items:
        print(f"  {h.label:<24} {h.host:<20} {h.path:<10} {len(h.body):>9} bytes")
    _, up = start_upstream(children, load_core)
    pinning = (
        f"mitmdump on core {proxy_core}, clients + upstream on core {load_core}"
        if load_core is not None
        else "not pinned (fewer than 2 cores)"
    )
    print(
        f"\nupstream 127.0.0.1:{up}; {pinning}; {args.reps} x (baseline, hostile, bare) runs of "
        f"{args.duration:g} s; a plain GET every {args.interval:g} ms; "
        f"{args.hostile_connections} hostile connections, at most {args.max_hostile} a run\n"
    )
    print(
        f"{'kind':<9} {'rep':>3} {'plain':>6} {'errors':>6} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'hostile':>7} {'failed':>6} {'peak MB':>8} {'cpu s':>6} {'stop s':>6}"
    )
    runs = []
    for rep in range(1, args.reps + 1):
        for kind in KINDS:
            run = one_run(args, children, workdir, manifest, up, (load_core, proxy_core), kind, rep)
            runs.append(run)
            print(
                f"{run.kind:<9} {run.rep:>3} {run.plain:>6} {run.errors:>6} {run.p50_ms:>8.2f} "
                f"{run.p99_ms:>8.2f} {run.max_ms:>8.1f} {run.hostile_sent:>7} "
                f"{run.hostile_failed:>6} {run.peak_rss_mb:>8.0f} {run.cpu_s:>6.1f} "
                f"{run.stop_s:>6.1f}{'  mitmdump DIED' if run.died else ''}",
                flush=True,
            )
    return runs


def report(runs: list[Run]) -> None:
    print("\n=== summary (medians over the runs) ===")
    v = _versions()
    print(f"Python {v['python']}, mitmproxy {v['mitmproxy']}, {v['cores']} cores ({v['cpu']})")
    med: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        mine = [r for r in runs if r.kind == kind]
        med[kind] = {
            key: statistics.median(getattr(r, key) for r in mine)
            for key in ("p50_ms", "p99_ms", "max_ms", "peak_rss_mb", "stop_s")
        }
    print(f"\n{'':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'peak MB':>8} {'stop s':>7}")
    for kind in KINDS:
        m = med[kind]
        print(
            f"{kind:<10} {m['p50_ms']:>8.2f} {m['p99_ms']:>8.2f} {m['max_ms']:>8.1f} "
            f"{m['peak_rss_mb']:>8.0f} {m['stop_s']:>7.1f}"
        )
    for label, (a, b) in {
        "hostile ÷ baseline": ("hostile", "baseline"),
        "hostile ÷ bare (xapitap's share)": ("hostile", "bare"),
    }.items():
        ratios = "  ".join(
            f"{key[:-3]} {med[a][key] / med[b][key]:.2f}" if med[b][key] else f"{key[:-3]} n/a"
            for key in ("p50_ms", "p99_ms", "max_ms")
        )
        print(f"{label + ':':<34} {ratios}")
    errors = sum(r.errors for r in runs)
    print(f"plain errors: {errors}; mitmdump died in {sum(r.died for r in runs)} runs")
    last = next((r for r in reversed(runs) if r.kind == "hostile"), None)
    if last and last.store:
        print(f"store after the last hostile run: {last.store}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8, help="seconds per run")
    parser.add_argument("--reps", type=int, default=3, help="runs of each kind")
    parser.add_argument("--interval", type=float, default=20, help="ms between plain requests")
    parser.add_argument("--hostile-connections", type=int, default=2)
    parser.add_argument("--max-hostile", type=int, default=10_000, help="hostile requests a run")
    parser.add_argument("--hostile-client", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hostile_client:
        manifest, proxy, up, seconds, conns, cap = args.hostile_client
        hostile_client(Path(manifest), int(proxy), int(up), float(seconds), int(conns), int(cap))
        return

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    children = Children()
    try:
        with tempfile.TemporaryDirectory(prefix="xapitap-hostile-") as tmp:
            try:
                runs = measure(args, children, Path(tmp))
            finally:
                children.stop_all()
    except KeyboardInterrupt:
        children.stop_all()
        print("\ninterrupted: stopped everything it had started", file=sys.stderr)
        return
    report(runs)


if __name__ == "__main__":
    main()
