"""`xapitap`: run the proxy, and look at what it captured.

xapitap run [--listen-host H] [--port P] [--confdir DIR] [--store FILE] [mitmdump options]
xapitap export [--store FILE] [--output FILE]
xapitap status [--store FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from xapitap import paths
from xapitap import script
from xapitap.store import Store


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xapitap", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start mitmdump with the xapitap addon")
    run.add_argument("--listen-host", default="127.0.0.1")
    run.add_argument("-p", "--port", type=int, default=8080)
    run.add_argument("--confdir", type=Path, default=None, help="mitmproxy confdir (CA)")
    run.add_argument("--store", type=Path, default=None)

    export = sub.add_parser("export", help="write stored statements as JSON lines")
    export.add_argument("--store", type=Path, default=None)
    export.add_argument("-o", "--output", type=Path, default=None, help="default: stdout")

    status = sub.add_parser("status", help="what was captured and delivered")
    status.add_argument("--store", type=Path, default=None)

    args, passthrough = parser.parse_known_args(argv)
    if args.command != "run" and passthrough:
        parser.error(f"unrecognized arguments: {' '.join(passthrough)}")
    store_path = (args.store or paths.default_store()).expanduser()
    if args.command == "run":
        return _run(args, store_path, passthrough)
    if not store_path.exists():
        print(f"xapitap: no store at {store_path} yet", file=sys.stderr)
        return 1
    if args.command == "export":
        try:
            return _export(store_path, args.output)
        except BrokenPipeError:  # the reader left early (`| head`): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    return _status(store_path)


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
        "-s",
        str(Path(script.__file__).resolve()),
        "--set",
        f"xapi_store={store}",
        *passthrough,
    ]
    os.execv(found, argv)
    return 1  # not reached


def _export(store_path: Path, output: Path | None) -> int:
    store = Store(store_path)
    try:
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            for text in store.statements_json():
                out.write(text + "\n")
        finally:
            if output:
                out.close()
    finally:
        store.close()
    return 0


def _status(store_path: Path) -> int:
    store = Store(store_path)
    try:
        print(f"store: {store_path}")
        print(f"statements: {store.count_statements()}")
        for target in store.target_status():
            line = f"LRS {target.target}: {target.delivered} delivered, {target.queued} queued"
            print(line + (f"; last error: {target.last_error}" if target.last_error else ""))
        rejects = store.rejects()
        print(f"unreadable requests: {len(rejects)}")
        for reject in rejects[-5:]:
            print(f"  {reject.rule}: {reject.reason}")
        for name, value in store.counters().items():
            print(f"  {value:>8}  {name}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
