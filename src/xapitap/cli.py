"""`xapitap`: run the proxy, and look at what it captured.

xapitap run [--listen-host H] [--port P] [--confdir DIR] [--store FILE] [mitmdump options]
xapitap export [--store FILE] [--output FILE] [--format jsonl|csv] [--sessions] [filters]
xapitap status [--store FILE] [--participant ID]
xapitap replay FILE... [--store FILE] [--dry-run] [LRS options] [translation options]
xapitap dashboard [--store FILE] [--listen HOST:PORT] [--token-env VAR]
xapitap check-mapping FILE [HAR_OR_FLOW] [--json]

The read commands import neither mitmproxy nor the addon: they open the store's read model.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from xapitap import exports
from xapitap import paths
from xapitap.accounting import Fate
from xapitap.dashboard.address import DEFAULT as DASHBOARD_DEFAULT
from xapitap.dashboard.address import parse_listen
from xapitap.dashboard.auth import check_token_option
from xapitap.journal.segments import backlog
from xapitap.journal.segments import journal_dir
from xapitap.mappings import MappingError
from xapitap.mappings import load as load_mapping
from xapitap.mappings import platforms_of
from xapitap.mappings import read_files
from xapitap.platforms import NAMES
from xapitap.pseudonym import key_path_for
from xapitap.settings import OPTIONS
from xapitap.settings import Settings
from xapitap.settings import parse
from xapitap.sinks import Control
from xapitap.sinks.lrs import LrsSink
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store.reads import ReadModel
from xapitap.store.reads import StatementFilter
from xapitap.store.records import TargetStatus
from xapitap.targets import Target
from xapitap.validation import describe

# The addon as a mitmproxy script (script.py), found without importing it (and mitmproxy).
SCRIPT = Path(__file__).with_name("script.py")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xapitap", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start mitmdump with the xapitap addon")
    run.add_argument("--listen-host", default="127.0.0.1")
    run.add_argument("-p", "--port", type=int, default=8080)
    run.add_argument("--confdir", type=Path, default=None, help="mitmproxy confdir (CA)")
    run.add_argument("--store", type=Path, default=None)

    export = sub.add_parser(
        "export", help="write stored statements (or video sessions) as JSON lines or CSV"
    )
    export.add_argument("--store", type=Path, default=None)
    export.add_argument("-o", "--output", type=Path, default=None, help="default: stdout")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument(
        "--sessions", action="store_true", help="one row per video session, not per statement"
    )
    export.add_argument("--platform", default="", help="only this platform's")
    export.add_argument("--verb", default="", help="only this verb (IRI or last part: paused)")
    export.add_argument("--actor", default="", help="only actors whose id starts so")
    export.add_argument("--participant", default="", help="only this actor id (participant)")
    export.add_argument("--video", default="", help="only this object id")
    export.add_argument("--since", default="", help="statements from this time (ISO 8601)")
    export.add_argument("--until", default="", help="statements before this time (ISO 8601)")

    status = sub.add_parser("status", help="what was captured and delivered")
    status.add_argument("--store", type=Path, default=None)
    status.add_argument("--participant", default="", help="only this participant's counts")

    retry = sub.add_parser("retry", help="re-queue dead-lettered statements")
    retry.add_argument("--store", type=Path, default=None)
    retry.add_argument("--target", default=None, help="only this target's (default: all)")

    push = sub.add_parser("push", help="send the stored statements to an LRS")
    push.add_argument("--store", type=Path, default=None)
    push.add_argument("--to", required=True, metavar="URL", help="the LRS's xAPI base URL")
    push.add_argument("--name", default=None, help="target name in the store (default: host)")
    push.add_argument("--username", default="")
    push.add_argument(
        "--password-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the password",
    )
    push.add_argument("--platform", action="append", default=None, help="only this platform")
    push.add_argument("--verb", action="append", default=None, help="only this verb")
    push.add_argument("--version", default="auto", choices=["auto", "1.0.3", "2.0.0"])

    replay = sub.add_parser(
        "replay", help="translate recorded traffic (mitmproxy flow files, HAR) into the store"
    )
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    replay.add_argument("--store", type=Path, default=None)
    replay.add_argument(
        "--dry-run", action="store_true", help="translate and report, but change no store"
    )
    replay.add_argument("--targets-file", default="", help="LRSs to forward the statements to")
    replay.add_argument("--lrs-endpoint", default="", help="an LRS to forward them to")
    replay.add_argument("--lrs-username", default="")
    replay.add_argument("--lrs-password-env", default="", metavar="VAR")
    replay.add_argument("--key-file", default="", help="study key (default: the store's)")
    replay.add_argument("--actor", default="pseudonym")
    replay.add_argument("--participant", default="")
    replay.add_argument("--completion-threshold", default="0.95")
    replay.add_argument("--xapi-version", default="1.0.3")
    replay.add_argument("--host", action="append", default=[], metavar="PLATFORM=HOST-GLOB")
    replay.add_argument(
        "--mapping",
        action="append",
        default=[],
        metavar="FILE",
        help="a mapping file (xapi_mappings)",
    )

    check = sub.add_parser(
        "check-mapping",
        help="check a mapping file, and show what it makes of a recording (a dry run)",
    )
    check.add_argument("mapping", type=Path, metavar="FILE")
    check.add_argument("recording", type=Path, nargs="?", metavar="HAR_OR_FLOW")
    check.add_argument("--json", action="store_true", help="the statements as JSON lines")

    dashboard = sub.add_parser(
        "dashboard", help="serve the dashboard over a store (read-only; no proxy needed)"
    )
    dashboard.add_argument("--store", type=Path, default=None)
    dashboard.add_argument("--listen", default=DASHBOARD_DEFAULT, metavar="HOST:PORT")
    dashboard.add_argument(
        "--token-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the token (default: a random one)",
    )

    args, passthrough = parser.parse_known_args(argv)
    if args.command != "run" and passthrough:
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    if args.command == "check-mapping":  # no store: a dry run in memory
        return _check_mapping(args)
    store_path = (args.store or paths.default_store()).expanduser()
    if args.command == "run":
        return _run(args, store_path, passthrough)
    if args.command == "replay":
        return _replay(args, store_path)
    if not store_path.exists():
        print(f"xapitap: no store at {store_path} yet", file=sys.stderr)
        return 1
    store = StoreFile(store_path)
    try:
        if args.command == "retry":
            return _retry(store, args.target)
        if args.command == "push":
            return _push(store, args)
        if args.command == "dashboard":
            return _dashboard(store, args)
        if args.command == "export":
            return _export(store, args)
        return _status(store, args.participant)
    except BrokenPipeError:  # the reader left early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except StoreError as e:
        print(f"xapitap: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, store: Path, passthrough: list[str]) -> int:
    mitmdump = Path(sys.executable).with_name("mitmdump")
    found = str(mitmdump) if mitmdump.exists() else shutil.which("mitmdump")
    if found is None:
        print("xapitap: mitmdump not found; install mitmproxy", file=sys.stderr)
        return 1
    confdir = (args.confdir or paths.default_confdir()).expanduser().resolve()
    confdir.mkdir(parents=True, exist_ok=True)
    ca = confdir / "mitmproxy-ca-cert.pem"
    proxy = f"http://{args.listen_host}:{args.port}"
    print(
        f"xapitap: proxy {proxy}, statements in {store}\n"
        f"xapitap: CA certificate {ca}{'' if ca.exists() else ' (made at first start)'}\n"
        f"xapitap: trust it, e.g. curl -x {proxy} --cacert {ca} https://…\n"
        "xapitap: browsers and the OS: see certs.example/README.md",
        flush=True,
    )
    argv = [
        found,
        "--listen-host",
        args.listen_host,
        "-p",
        str(args.port),
        "--set",
        f"confdir={confdir}",
        # Connect upstream only when a request needs it, so that local answers work offline.
        "--set",
        "connection_strategy=lazy",
        # mitmdump prints every request's URL (user ids in paths, tokens in queries): not
        # unless asked for (`--set flow_detail=1`).
        "--set",
        "flow_detail=0",
        "-s",
        str(SCRIPT.resolve()),
        "--set",
        f"xapi_store={store}",
        *passthrough,
    ]
    os.execv(found, argv)
    return 1  # not reached


def _replay(args: argparse.Namespace, store_path: Path) -> int:
    """Translate recordings into the store (which no proxy may be using meanwhile), and
    forward the new statements to the LRSs given, as a proxy would."""
    # Here, not at the top: the other commands import neither translation nor mitmproxy.
    from xapitap.pipeline import matcher
    from xapitap.replay import replay
    from xapitap.translator.config import TranslationConfig

    values = {name: default for name, (_, default, _) in OPTIONS.items()}
    values.update(
        xapi_store=str(store_path),
        xapi_key_file=args.key_file,
        xapi_actor=args.actor,
        xapi_participant=args.participant,
        xapi_completion_threshold=args.completion_threshold,
        xapi_version=args.xapi_version,
        xapi_hosts=args.host,
        xapi_mappings=args.mapping,
        xapi_targets_file=args.targets_file,
        xapi_lrs_endpoint=args.lrs_endpoint,
        xapi_lrs_username=args.lrs_username,
        xapi_lrs_password_env=args.lrs_password_env,
    )
    try:
        settings = parse(values, NAMES)
    except ValueError as e:
        print(f"xapitap replay: {e}", file=sys.stderr)
        return 2
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        print(f"xapitap replay: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.dry_run:
        return _dry_run(args, settings, store_path)
    store = StoreFile(store_path)
    try:
        store.create()
        lock = store.lock()
    except StoreError as e:
        print(f"xapitap replay: {e}", file=sys.stderr)
        return 1
    try:
        config = TranslationConfig.of(settings)
        rules = matcher(settings.extra_hosts, platforms_of(settings.mappings))
        summary = replay(args.files, store, config, rules)
        for line in summary.lines():
            print(f"xapitap replay: {line}" if not line.startswith(" ") else line)
        print(f"xapitap replay: store {store_path}")
        delivered = all(_deliver(store, target) for target in settings.targets)
    finally:
        lock.release()
    if not settings.targets:
        print("xapitap replay: `xapitap push --to URL` sends them to an LRS")
    return 0 if delivered else 1


def _dry_run(args: argparse.Namespace, settings: Settings, store_path: Path) -> int:
    """Translate into a scratch store, with the store's study key (so the ids are the ones
    a replay would make), and say what a replay would add."""
    from xapitap.pipeline import matcher
    from xapitap.replay import replay
    from xapitap.translator.config import TranslationConfig

    key = settings.key_file or key_path_for(store_path)
    with tempfile.TemporaryDirectory(prefix="xapitap-dry-run-") as scratch:
        scratch_store = StoreFile(Path(scratch) / "dry-run.sqlite3")
        # The store's key, so that the ids are the ones a replay would make; without one yet,
        # a scratch key (the real one is made by the first replay or proxy).
        key_file = key if key.exists() else Path(scratch) / "dry-run.key"
        settings = dataclasses.replace(settings, key_file=key_file)
        config = TranslationConfig.of(settings).model_copy(update={"routes": ()})
        rules = matcher(settings.extra_hosts, platforms_of(settings.mappings))
        summary = replay(args.files, scratch_store, config, rules)
        new = summary.statements
        if store_path.exists() and key.exists():
            new = _not_in(StoreFile(store_path), scratch_store)
    for line in summary.lines():
        print(f"xapitap replay (dry run): {line}" if not line.startswith(" ") else line)
    print(f"xapitap replay (dry run): {new} of them are not in {store_path}; nothing was changed")
    return 0


def _check_mapping(args: argparse.Namespace) -> int:
    """Check a mapping file; with a recording, say what it would make of it (a dry run)."""
    from xapitap.replay.check import describe_mapping
    from xapitap.replay.check import dry_run
    from xapitap.replay.check import statement_lines

    try:
        (file,) = read_files([str(args.mapping)])
        mapping = load_mapping(file)
    except MappingError as e:
        print(f"xapitap check-mapping: {args.mapping} cannot be used:\n{e}", file=sys.stderr)
        return 1
    if not args.json:
        print("\n".join(describe_mapping(mapping)))
    if args.recording is None:
        return 0
    if not args.recording.is_file():
        print(f"xapitap check-mapping: no such file: {args.recording}", file=sys.stderr)
        return 2
    run = dry_run(mapping, [args.recording])
    if args.json:
        for line in statement_lines(run):
            print(line)
        return 0
    print(f"dry run of {args.recording} (nothing is stored or sent):")
    print("\n".join([*run.lines, *run.summary()]))
    return 0


def _not_in(store: StoreFile, scratch: StoreFile) -> int:
    """How many of the scratch store's statements the store does not hold."""
    ours, theirs = store.reader(), scratch.reader()
    try:
        return sum(
            not ours.has_statement(json.loads(text)["id"]) for text in theirs.statements_json()
        )
    finally:
        ours.close()
        theirs.close()


def _deliver(store: StoreFile, target: Target) -> bool:
    """Send what the replay queued for `target`, as the proxy's sink would."""
    print(f"xapitap replay: forwarding to {target.name} ({target.endpoint})")
    status = _send_queued(store, target)
    return status.queued == 0 and status.dead == 0


def _send_queued(store: StoreFile, target: Target) -> TargetStatus:
    """Send what is queued for `target` with a progress bar, until nothing is left (or the
    LRS stops taking it); print and return what became of it."""
    outbox = store.outbox()
    try:
        bar = _ProgressBar(outbox.queued(target.name))
        sink = LrsSink(target, progress=bar.advance, until_empty=True)
        sink.run(outbox, Control())
        bar.done()
    finally:
        outbox.close()
    reader = store.reader()
    try:
        (status,) = (t for t in reader.target_status() if t.target == target.name)
    finally:
        reader.close()
    print(
        f"{target.name}: {status.delivered} delivered, {status.queued} still queued, "
        f"{status.dead} dead-lettered"
    )
    if sink.halted is not None:
        print(f"stopped: {sink.halted.auth_failed or sink.halted.error}", file=sys.stderr)
    return status


def _export(store: StoreFile, args: argparse.Namespace) -> int:
    try:
        wanted = StatementFilter(
            platform=args.platform,
            verb=args.verb,
            actor=args.actor,
            participant=args.participant,
            video=args.video,
            since=exports.utc(args.since) if args.since else "",
            until=exports.utc(args.until) if args.until else "",
        )
    except ValueError as e:
        print(f"xapitap: --since/--until: {e}", file=sys.stderr)
        return 2
    reader = store.reader()
    try:
        out = args.output.open("w", encoding="utf-8", newline="") if args.output else sys.stdout
        try:
            if args.sessions:
                exports.write_sessions(reader, wanted, out, args.format)
            elif args.format == "csv":
                exports.write_statements_csv(reader, wanted, out)
            else:
                exports.write_json_lines(reader, wanted, out)
        finally:
            if args.output:
                out.close()
    finally:
        reader.close()
    return 0


def _status(store: StoreFile, participant: str = "") -> int:
    reader = store.reader()
    try:
        if participant:
            print(_participants(reader, participant) or f"no statements of {participant}")
            return 0
        print(render_status(reader))
    finally:
        reader.close()
    return 0


def render_status(reader: ReadModel) -> str:
    """What the store holds, as `xapitap status` prints it."""
    lines = [f"store: {reader.path}", f"statements: {reader.count_statements()}"]
    lines.append(_translation(reader))
    for t in reader.target_status():
        lines.append(
            f"LRS {t.target} ({t.endpoint}): {t.delivered} delivered, {t.queued} queued, "
            f"{t.dead} dead-lettered; xAPI {t.version or '?'}; {t.state}"
        )
        if t.last_success_at:
            lines.append(f"  last success {t.last_success_at}")
        if t.last_error:
            lines.append(f"  last error {t.last_error_at}: {t.last_error}")
        if t.crashes:
            lines.append(f"  crashed {t.crashes} times, last at {t.last_crash_at}: {t.last_crash}")
    letters = reader.dead_letters()
    if letters:
        lines.append(f"dead letters: {len(letters)} (xapitap retry re-queues them)")
        for letter in letters[-5:]:
            lines.append(f"  {letter.target} {letter.statement_id}: {letter.reason}")
            lines += [f"    {line}" for line in (letter.diff or "").splitlines()[:5]]
    quarantined = reader.quarantined()
    lines.append(f"quarantined statements (refused by the xAPI models): {len(quarantined)}")
    lines += [f"  {q.reason}" for q in quarantined[-5:]]
    rejects = reader.rejects()
    lines.append(f"unreadable requests: {len(rejects)}")
    lines += [f"  {reject.rule}: {reject.reason}" for reject in rejects[-5:]]
    lines += _accounting(reader)
    if found := _participants(reader):
        lines.append(found)
    return "\n".join(lines)


def _participants(reader: ReadModel, only: str = "") -> str:
    rows = reader.participants(only)
    if not rows:
        return ""
    lines = ["participants (statements, video sessions, last statement):"]
    lines += [f"  {who}: {n}, {sessions}, {last}" for who, n, sessions, last in rows]
    return "\n".join(lines)


def _translation(reader: ReadModel) -> str:
    """How far translation is behind what the proxy journaled."""
    behind = backlog(journal_dir(reader.path), reader.journal_next_seq())
    size = f"journal {behind.bytes / 2**20:.1f} MB"
    if not behind.records:
        return f"translation: caught up ({size})"
    since = "" if behind.oldest is None else f", the oldest captured {_ago(behind.oldest)} ago"
    return f"translation: {behind.records} journal records behind{since} ({size})"


def _ago(at: float) -> str:
    seconds = max(time.time() - at, 0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _accounting(reader: ReadModel) -> list[str]:
    """Per rule the requests, per platform and event type what became of the events."""
    rows = reader.accounting()
    if not rows:
        return []
    requests = [r for r in rows if r.fate in (Fate.REQUEST, Fate.UNREADABLE)]
    events = [r for r in rows if r not in requests]
    lines = ["requests (per rule):"]
    for r in requests:
        what = "matched" if r.fate is Fate.REQUEST else f"unreadable: {r.reason}"
        lines.append(f"  {r.count:>8}  {r.rule}  {what}")
    lines.append("events (per platform and event type):")
    width = max((len(r.event_type) for r in events), default=0)
    for r in events:
        fate = f"{r.fate}: {r.reason}" if r.reason else str(r.fate)
        lines.append(f"  {r.count:>8}  {r.platform:<9} {r.event_type:<{width}}  {fate}")
    return lines


def _dashboard(store: StoreFile, args: argparse.Namespace) -> int:
    try:
        listen = parse_listen(args.listen)
        token = ""
        if args.token_env:
            if args.token_env not in os.environ:
                raise ValueError(f"--token-env: {args.token_env} is not set")
            token = check_token_option(os.environ[args.token_env])
    except ValueError as e:
        print(f"xapitap: {e}", file=sys.stderr)
        return 2
    if listen is None:
        print("xapitap: --listen takes HOST:PORT", file=sys.stderr)
        return 2
    from xapitap.dashboard.server import serve_store  # tornado, only for this command

    return asyncio.run(serve_store(store.path, listen, token))


def _retry(store: StoreFile, target: str | None) -> int:
    outbox = store.outbox()
    try:
        count = outbox.retry_dead(target)
    finally:
        outbox.close()
    print(f"re-queued {count} dead-lettered statements; a running proxy sends them shortly")
    return 0


def _push(store: StoreFile, args: argparse.Namespace) -> int:
    name = args.name or re.sub(r"[^A-Za-z0-9_.-]", "-", urlsplit(args.to).netloc)[:64] or "push"
    password = os.environ.get(args.password_env, "") if args.password_env else ""
    if args.password_env and not password:
        print(f"xapitap: {args.password_env} is not set", file=sys.stderr)
        return 2
    try:
        target = Target.checked(
            NAMES,
            name=name,
            endpoint=args.to,
            username=args.username,
            password=password,
            platforms=args.platform,
            verbs=args.verb,
            version=args.version,
        )
    except ValidationError as e:
        print(f"xapitap: {describe(e)}", file=sys.stderr)
        return 2
    if store.in_use() and _known_target(store, target.name):
        print(
            f"xapitap: a running proxy sends to {target.name!r}; push under another --name",
            file=sys.stderr,
        )
        return 2
    outbox = store.outbox()
    try:
        outbox.set_target(target.name, target.endpoint)
        added = outbox.enqueue_all(target)
        total = outbox.queued(target.name)
        print(f"pushing {total} statements to {target.endpoint} ({added} newly queued)")
    finally:
        outbox.close()
    status = _send_queued(store, target)
    return 0 if status.queued == 0 and status.dead == 0 else 1


def _known_target(store: StoreFile, name: str) -> bool:
    reader = store.reader()
    try:
        return any(t.target == name for t in reader.target_status())
    finally:
        reader.close()


class _ProgressBar:
    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.settled = 0

    def advance(self, settled: int, unsent: int) -> None:
        self.settled += settled
        filled = int(30 * self.settled / self.total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.settled}/{self.total}")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")


if __name__ == "__main__":
    sys.exit(main())
