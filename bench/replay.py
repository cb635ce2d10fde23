"""Translation throughput: `xapitap replay` vs `ralph convert`, side by side, whole processes.

1. A generator makes N video events twice, with the same actions at the same moments:
   - as a mitmproxy flow file: Segment Video Spec `track` calls (POST
     https://api.segment.io/v1/t, the body analytics.js sends, answered 200), written one flow
     at a time with mitmproxy.io.FlowWriter (memory does not grow with N);
   - as Open edX tracking-log lines (browser events: play_video, pause_video, seek_video,
     stop_video), the input `ralph convert -f edx -t xapi` takes.
   Sessions of 7 actions (start, pause, resume, seek, pause, resume, end of the video), 300
   learners watching at once in waves, 40 videos in 4 courses. Actions and their pairs:
     start   Video Playback Started        play_video  (currentTime 0)
     pause   Video Playback Paused         pause_video (currentTime)
     resume  Video Playback Resumed        play_video  (currentTime)
     seek    Video Playback Seek Started   seek_video  (old_time, new_time)
     end     Video Playback Completed      stop_video  (currentTime = the length)
   This compares Segment events with edX events that carry the same video actions, because
   xapitap has no Open edX adapter yet: the two programs do not read the same bytes, and they
   do not write the same statements (xapitap's session model infers some, Ralph maps one event
   to one statement), so statements are counted and shown for each side.
2. Both commands run as whole processes (start-up included), one after the other, the order
   alternating per repetition (xapitap first, then Ralph first, ...), each repetition with a
   fresh store / output file:
     xapitap replay FLOWS --store TMP/x.sqlite3
     ralph convert -f edx -t xapi --uuid-namespace U --platform-url P < LINES > OUT
   Per run: wall time, CPU (user + sys) and peak RSS of the process (os.wait4's rusage: its own
   and its waited-for children's), events/s = N / wall time. Reported: medians, and the ratio
   xapitap events/s ÷ Ralph events/s (goal ≥ 10).
3. With --memory: peak RSS of `xapitap replay` on 1 000 000 events minus on 1 000 events
   (goal < 50 MB growth), and on 20 000 events (a plateau from there on = no growth per
   event). Generating the million flows takes a few minutes and 2.4 GiB of disk.

Usage: .venv/bin/python bench/replay.py [--n N ...] [--full] [--reps R] [--memory]
It prints a table and PASS/MISS lines, writes the results to bench/results/ (git-ignored), and
always exits 0 (it is no test).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import IO
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
XAPITAP = Path(sys.executable).with_name("xapitap")  # --xapitap to use another
RALPH_VENV = Path(os.environ.get("XAPITAP_RALPH_VENV", REPO / ".venv-ralph"))
RALPH = RALPH_VENV / "bin" / "ralph"
UUID_NAMESPACE = "6f4d7b1e-3c1a-5b0e-9a77-0d5f1b2c3e4a"
PLATFORM_URL = "https://learn.example.org"

GOAL_RATIO = 10.0
GOAL_RSS_GROWTH_MB = 50.0
MEMORY_N = 1_000_000
MEMORY_SMALL_N = 1_000
MEMORY_MID_N = 20_000  # a third point: flat from here on = no growth per event

# The generated data: fixed, so every run (and every machine) replays the same events.
BASE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp()
LEARNERS = 300  # sessions at once, one per learner, in waves
WAVE_SECONDS = 200.0
VIDEOS = 40
COURSES = 4
LENGTH = 120.0  # every video's length, seconds
ARRIVAL_DELAY = 0.3  # seconds from an event to its request's arrival at the proxy
# One session: (seconds after its start, action, playhead position, seek target).
SESSION = (
    (0.0, "start", 0.0, None),
    (20.0, "pause", 20.0, None),
    (25.0, "resume", 20.0, None),
    (40.0, "seek", 35.0, 60.0),
    (80.0, "pause", 100.0, None),
    (90.0, "resume", 100.0, None),
    (110.0, "end", LENGTH, None),
)
SEGMENT_EVENT = {
    "start": "Video Playback Started",
    "pause": "Video Playback Paused",
    "resume": "Video Playback Resumed",
    "seek": "Video Playback Seek Started",
    "end": "Video Playback Completed",
}
EDX_EVENT = {
    "start": "play_video",
    "pause": "pause_video",
    "resume": "play_video",
    "seek": "seek_video",
    "end": "stop_video",
}


@dataclass(frozen=True)
class Action:
    at: float  # epoch seconds, when it happened
    wave: int
    learner: int
    step: int  # index in SESSION
    kind: str
    position: float
    seek_to: float | None

    @property
    def video(self) -> int:
        return (self.learner + 7 * self.wave) % VIDEOS

    @property
    def session(self) -> str:
        return f"w{self.wave:05d}-l{self.learner:03d}"


def video_actions(n: int) -> Iterator[Action]:
    """The first n actions, in time order: waves of LEARNERS sessions, each session starting
    within a minute of its wave's start (so that the sessions' events interleave)."""
    emitted = 0
    wave = 0
    while emitted < n:
        start = BASE + wave * WAVE_SECONDS
        batch = []
        for learner in range(LEARNERS):
            begin = start + (learner * 7919 % 600) / 10
            for step, (offset, kind, position, seek_to) in enumerate(SESSION):
                batch.append(Action(begin + offset, wave, learner, step, kind, position, seek_to))
        batch.sort(key=lambda a: (a.at, a.learner))
        yield from batch[: n - emitted]
        emitted += min(len(batch), n - emitted)
        wave += 1


def _iso(epoch: float, z: bool) -> str:
    text = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if z else text


def segment_body(a: Action) -> bytes:
    properties: dict[str, Any] = {
        "session_id": a.session,
        "content_asset_id": f"video-{a.video:03d}",
        "title": f"Lecture {a.video}",
        "total_length": LENGTH,
        "sound": 80,
        "full_screen": False,
        "quality": "hd720",
        "position": a.position,
    }
    if a.seek_to is not None:
        properties["seek_position"] = a.seek_to
    course = a.video % COURSES
    body = {
        "type": "track",
        "event": SEGMENT_EVENT[a.kind],
        "properties": properties,
        "userId": f"learner-{a.learner}",
        "anonymousId": str(uuid.UUID(int=a.learner + 1)),
        "messageId": f"ajs-next-{a.session}-{a.step}",
        "timestamp": _iso(a.at, z=True),
        "sentAt": _iso(a.at, z=True),
        "writeKey": "WK-bench",
        "context": {
            "page": {
                "url": f"{PLATFORM_URL}/courses/c{course}/lecture-{a.video}",
                "path": f"/courses/c{course}/lecture-{a.video}",
                "title": f"Lecture {a.video}",
            },
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def edx_line(a: Action) -> str:
    course_id = f"course-v1:xapitap+bench{a.video % COURSES}+2024"
    page = f"{PLATFORM_URL}/courses/{course_id}/courseware/week1/lecture{a.video}/"
    event: dict[str, Any] = {"id": f"video-{a.video:03d}", "code": "html5"}
    if a.kind == "seek":
        event |= {"old_time": a.position, "new_time": a.seek_to, "type": "onSlideSeek"}
    else:
        event["currentTime"] = a.position
    name = EDX_EVENT[a.kind]
    line = {
        "username": f"learner{a.learner}",
        "ip": "203.0.113.7",
        "agent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "host": "learn.example.org",
        "referer": page,
        "accept_language": "en-US,en;q=0.9",
        "event_source": "browser",
        "event_type": name,
        "name": name,
        # An object: Ralph's video converter reads event["event"]["id"] from the raw line, so
        # the JSON-string form of `event` (which its model accepts) fails to convert.
        "event": event,
        "time": datetime.fromtimestamp(a.at, UTC).isoformat(timespec="microseconds"),
        "page": page,
        "session": hashlib.md5(a.session.encode()).hexdigest(),
        "context": {
            "course_id": course_id,
            "org_id": "xapitap",
            "path": "/event",
            "user_id": 1000 + a.learner,
            "course_user_tags": {},
        },
    }
    return json.dumps(line, separators=(",", ":"))


def write_segment_flows(path: Path, n: int) -> int:
    """n Segment track calls as a mitmproxy flow file, one flow object reused and written at
    a time: memory stays flat however large n is."""
    from mitmproxy import http
    from mitmproxy import io as mio
    from mitmproxy.test import tflow

    request = http.Request.make(
        "POST",
        "https://api.segment.io/v1/t",
        b"",
        http.Headers(
            [
                (b"Content-Type", b"text/plain"),
                (b"Origin", PLATFORM_URL.encode()),
                (b"Referer", f"{PLATFORM_URL}/".encode()),
                (b"User-Agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Firefox/125.0"),
            ]
        ),
    )
    flow = tflow.tflow(req=request, live=False)
    flow.response = http.Response.make(
        200, b'{"success":true}', {"Content-Type": "application/json"}
    )
    count = 0
    with path.open("wb") as out:
        writer = mio.FlowWriter(out)  # type: ignore[no-untyped-call]
        for i, action in enumerate(video_actions(n)):
            arrival = action.at + ARRIVAL_DELAY
            flow.id = str(uuid.UUID(int=(0xB0 << 120) + i))
            flow.request.content = segment_body(action)
            flow.request.timestamp_start = arrival
            flow.request.timestamp_end = arrival + 0.0005
            flow.response.timestamp_start = arrival + 0.02
            flow.response.timestamp_end = arrival + 0.021
            flow.timestamp_created = arrival
            writer.add(flow)
            count += 1
    return count


def write_edx_lines(path: Path, n: int) -> int:
    count = 0
    with path.open("w") as out:
        for action in video_actions(n):
            out.write(edx_line(action) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Running a whole process and measuring it


@dataclass
class Proc:
    rc: int
    wall_s: float
    cpu_s: float  # user + sys, its own and its waited-for children's
    max_rss_mb: float  # peak resident set (largest of it and its waited-for children)
    stderr_tail: str


def run_measured(
    cmd: list[str], stdin: IO[bytes] | int | None, stdout: IO[bytes], stderr: Path, core: int | None
) -> Proc:
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: same pid, same rusage
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    with stderr.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=err, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    text = stderr.read_text(errors="replace")
    return Proc(
        rc=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
        stderr_tail="\n".join(text.strip().splitlines()[-5:]),
    )


def xapitap_replay_missing(xapitap: Path) -> str | None:
    """Why `xapitap replay` cannot run here, or None when it can."""
    if not xapitap.exists():
        return f"no {xapitap}: run this with the project's venv"
    out = subprocess.run(
        [str(xapitap), "replay", "--help"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:]
        return f"`xapitap replay` is not there (yet): {' '.join(last)}"
    return None


def store_statements(store: Path) -> int | None:
    if not store.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM statements").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


@dataclass
class Run:
    tool: str
    n: int
    rep: int
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    events_per_s: float
    statements: int | None
    rc: int
    note: str = ""


def run_xapitap(flows: Path, n: int, rep: int, work: Path, args: argparse.Namespace) -> Run:
    run_dir = work / f"xapitap-{n}-{rep}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    store = run_dir / "x.sqlite3"
    cmd = [str(args.xapitap), "replay", str(flows), "--store", str(store)]
    with (run_dir / "stdout").open("wb") as out:
        p = run_measured(cmd, subprocess.DEVNULL, out, run_dir / "stderr", args.core)
    statements = store_statements(store)
    said = (run_dir / "stdout").read_text(errors="replace").strip().splitlines()
    # Its summary line (the one that counts statements), else whatever it said last.
    note = next((line for line in said if "statements" in line), said[-1] if said else "")
    if p.rc != 0:
        note = f"exit {p.rc}: {p.stderr_tail}"
    shutil.rmtree(run_dir, ignore_errors=True)  # the store of a large run is large
    return Run(
        "xapitap", n, rep, p.wall_s, p.cpu_s, p.max_rss_mb, n / p.wall_s, statements, p.rc, note
    )


def run_ralph(lines: Path, n: int, rep: int, work: Path, core: int | None) -> Run:
    run_dir = work / f"ralph-{n}-{rep}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir()
    out_path = run_dir / "statements.jsonl"
    cmd = [
        str(RALPH), "convert", "-f", "edx", "-t", "xapi",
        "--uuid-namespace", UUID_NAMESPACE, "--platform-url", PLATFORM_URL,
    ]  # fmt: skip
    with lines.open("rb") as src, out_path.open("wb") as out:
        p = run_measured(cmd, src, out, run_dir / "stderr", core)
    with out_path.open("rb") as f:
        statements = sum(1 for _ in f)
    note = ""
    for line in (run_dir / "stderr").read_text(errors="replace").splitlines():
        if "Total events:" in line:  # Ralph's own count: "Total events: N, Invalid events: M"
            note = line[line.index("Total events:") :]
    if p.rc != 0:
        note = f"exit {p.rc}: {p.stderr_tail}"
    shutil.rmtree(run_dir, ignore_errors=True)
    return Run(
        "ralph", n, rep, p.wall_s, p.cpu_s, p.max_rss_mb, n / p.wall_s, statements, p.rc, note
    )


# ---------------------------------------------------------------------------------------------


def generate(work: Path, n: int, with_edx: bool = True) -> tuple[Path, Path | None]:
    flows = work / f"segment-{n}.flows"
    lines = work / f"edx-{n}.jsonl" if with_edx else None
    if not flows.exists():
        t0 = time.perf_counter()
        write_segment_flows(flows, n)
        size = flows.stat().st_size / 2**20
        print(f"  {flows.name}: {n} flows, {size:.0f} MiB, {time.perf_counter() - t0:.1f} s")
    if lines is not None and not lines.exists():
        t0 = time.perf_counter()
        write_edx_lines(lines, n)
        size = lines.stat().st_size / 2**20
        print(f"  {lines.name}: {n} lines, {size:.0f} MiB, {time.perf_counter() - t0:.1f} s")
    return flows, lines


def _fmt(run: Run) -> str:
    st = "?" if run.statements is None else str(run.statements)
    return (
        f"{run.tool:<8} {run.n:>8} {run.rep:>3} {run.wall_s:>8.2f} {run.cpu_s:>7.2f} "
        f"{run.max_rss_mb:>7.1f} {run.events_per_s:>9.0f} {st:>10}  {run.note[:70]}"
    )


def measure_throughput(args: argparse.Namespace, work: Path, missing: str | None) -> list[Run]:
    runs: list[Run] = []
    if args.reps <= 0:  # e.g. only --memory
        return runs
    for n in args.n:
        print(f"\ngenerating {n} events ...")
        flows, lines = generate(work, n)
        assert lines is not None
        print(
            f"\n{'tool':<8} {'events':>8} {'rep':>3} {'wall s':>8} {'cpu s':>7} {'RSS MB':>7} "
            f"{'events/s':>9} {'statements':>10}  note"
        )
        for rep in range(1, args.reps + 1):
            order = ["xapitap", "ralph"] if rep % 2 else ["ralph", "xapitap"]
            for tool in order:
                if tool == "xapitap":
                    if missing:
                        continue
                    run = run_xapitap(flows, n, rep, work, args)
                else:
                    run = run_ralph(lines, n, rep, work, args.core)
                runs.append(run)
                print(_fmt(run), flush=True)
    return runs


def measure_memory(args: argparse.Namespace, work: Path, missing: str | None) -> dict[str, Any]:
    sizes = {"small": MEMORY_SMALL_N, "mid": MEMORY_MID_N, "large": args.memory_n}
    print(
        f"\nmemory: peak RSS of xapitap replay on {', '.join(map(str, sizes.values()))} events"
        " (generating 1 M flows: a few minutes) ..."
    )
    files = {key: generate(work, n, with_edx=False)[0] for key, n in sizes.items()}
    if missing:
        return {"skipped": missing}
    out: dict[str, Any] = {}
    for key, n in sizes.items():
        run = run_xapitap(files[key], n, 0, work, args)
        print(_fmt(run), flush=True)
        out[key] = asdict(run)
    out["growth_mb"] = out["large"]["max_rss_mb"] - out["small"]["max_rss_mb"]
    out["growth_from_mid_mb"] = out["large"]["max_rss_mb"] - out["mid"]["max_rss_mb"]
    return out


def summarize(runs: list[Run]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for n in sorted({r.n for r in runs}):
        per: dict[str, Any] = {}
        for tool in ("xapitap", "ralph"):
            mine = [r for r in runs if r.n == n and r.tool == tool and r.rc == 0]
            if mine:
                per[tool] = {
                    "runs": len(mine),
                    "events_per_s": statistics.median(r.events_per_s for r in mine),
                    "wall_s": statistics.median(r.wall_s for r in mine),
                    "cpu_s": statistics.median(r.cpu_s for r in mine),
                    "events_per_cpu_s": statistics.median(n / r.cpu_s for r in mine if r.cpu_s),
                    "max_rss_mb": max(r.max_rss_mb for r in mine),
                    # The same in every run, or the output differs between runs.
                    "statements": mine[0].statements,
                    "statements_differ": len({r.statements for r in mine}) > 1,
                }
        if "xapitap" in per and "ralph" in per:
            per["ratio"] = per["xapitap"]["events_per_s"] / per["ralph"]["events_per_s"]
            per["cpu_ratio"] = per["xapitap"]["events_per_cpu_s"] / per["ralph"]["events_per_cpu_s"]
        summary[str(n)] = per
    return summary


def report(results: dict[str, Any]) -> None:
    print("\n=== summary ===")
    print(results["date"], " ".join(f"{k} {v}" for k, v in results["versions"].items()))
    print(
        "NB: xapitap replays Segment Video Spec events, Ralph converts Open edX events carrying "
        "the same video actions\n    (xapitap has no Open edX adapter yet): not the same input "
        "bytes, not the same statements."
    )
    if results.get("xapitap_missing"):
        print(f"xapitap side not measured: {results['xapitap_missing']}")
    goals: list[tuple[str, float, float, bool]] = []
    if results["summary"]:
        print(
            f"\n{'events':>8} {'xapitap ev/s':>12} {'ralph ev/s':>10} {'ratio':>6} "
            f"{'ev/CPU-s ratio':>14} {'RSS MB x/r':>11} {'statements x/r':>15}"
        )
        for n, per in results["summary"].items():
            x, r = per.get("xapitap"), per.get("ralph")
            xs = f"{x['events_per_s']:>12.0f}" if x else f"{'-':>12}"
            rs = f"{r['events_per_s']:>10.0f}" if r else f"{'-':>10}"
            ratio = f"{per['ratio']:>6.2f}" if "ratio" in per else f"{'-':>6}"
            cpu = f"{per['cpu_ratio']:>14.2f}" if "cpu_ratio" in per else f"{'-':>14}"
            rss = f"{x['max_rss_mb'] if x else 0:>5.0f}/{r['max_rss_mb'] if r else 0:<5.0f}"
            st = f"{x['statements'] if x else '-'}/{r['statements'] if r else '-'}"
            print(f"{n:>8} {xs} {rs} {ratio} {cpu} {rss:>11} {st:>15}")
            if "ratio" in per:
                goals.append(
                    (
                        f"translation, xapitap ÷ ralph events/s, {n} events",
                        per["ratio"],
                        GOAL_RATIO,
                        True,
                    )
                )
        print(
            "events/s = events / whole-process wall time (start-up included); medians over the runs"
        )
    memory = results.get("memory")
    if memory and "growth_mb" in memory:
        small, mid, large = memory["small"], memory["mid"], memory["large"]
        print(
            f"\nxapitap replay peak RSS: {small['max_rss_mb']:.1f} MB for {small['n']} events, "
            f"{mid['max_rss_mb']:.1f} MB for {mid['n']}, "
            f"{large['max_rss_mb']:.1f} MB for {large['n']} ({large['wall_s']:.0f} s, "
            f"{large['statements']} statements)"
        )
        print(
            f"growth {small['n']} -> {large['n']}: {memory['growth_mb']:.1f} MB (the goal's), "
            f"{mid['n']} -> {large['n']}: {memory['growth_from_mid_mb']:.1f} MB"
        )
        goals.append(
            (
                f"RSS growth, {large['n']} events replayed (MB)",
                memory["growth_mb"],
                GOAL_RSS_GROWTH_MB,
                False,
            )
        )
    elif memory:
        print(f"\nmemory: not measured: {memory['skipped']}")
    print()
    for label, value, goal, at_least in goals:
        ok = value >= goal if at_least else value <= goal
        sign = "≥" if at_least else "<"
        print(f"{'PASS' if ok else 'MISS'}  {label}: {value:.3f} (goal {sign} {goal:g})")


def _versions() -> dict[str, str]:
    import mitmproxy.version

    ralph = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [
                str(RALPH_VENV / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('ralph-malph'))",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        ralph = out.stdout.strip() or "?"
    return {
        "python": sys.version.split()[0],
        "mitmproxy": mitmproxy.version.VERSION,
        "ralph": ralph,
        "cores": str(os.cpu_count()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, action="append", help="events per file (repeatable)")
    parser.add_argument("--full", action="store_true", help="N = 20 000 and 200 000")
    parser.add_argument("--reps", type=int, default=5, help="runs per tool and N (0: none)")
    parser.add_argument("--memory", action="store_true", help="also the 1 M-event RSS growth")
    parser.add_argument(
        "--memory-n", type=int, default=MEMORY_N, help="events of the large --memory file"
    )
    parser.add_argument("--core", type=int, help="pin both tools to this CPU core (taskset)")
    parser.add_argument("--workdir", type=Path, help="keep the generated files here (reused)")
    parser.add_argument("--xapitap", type=Path, default=XAPITAP, help="the xapitap command")
    parser.add_argument("--generate-only", action="store_true", help="write the files, no runs")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    args = parser.parse_args()
    args.n = args.n or ([20_000, 200_000] if args.full else [20_000])
    if not RALPH.exists():
        sys.exit(f"no Ralph at {RALPH}: make .venv-ralph/.installed (or set XAPITAP_RALPH_VENV)")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    missing = xapitap_replay_missing(args.xapitap)
    if missing:
        print(f"NOTE: {missing}\n      only the generator and the Ralph side run.")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "xapitap_missing": missing,
    }
    try:
        with contextlib.ExitStack() as stack:
            if args.workdir:
                work = args.workdir
                work.mkdir(parents=True, exist_ok=True)
            else:
                work = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="xapitap-replay-"))
                )
            if args.generate_only:
                for n in args.n:
                    generate(work, n)
                print(f"files in {work}")
                return
            runs = measure_throughput(args, work, missing)
            results["runs"] = [asdict(r) for r in runs]
            results["summary"] = summarize(runs)
            if args.memory:
                results["memory"] = measure_memory(args, work, missing)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return
    report(results)
    if not args.no_save:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"replay-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nresults: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
