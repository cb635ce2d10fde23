"""The translator process: `python -m xapitap.translator --store PATH`.

It follows the store's journal and translates it into the store, on a core of its own. The
proxy that starts it writes a line to its stdin whenever records become durable (a nudge:
the journal itself is what is read), and reads one line from its stdout per commit:
`committed <next seq> <statements added>`. Log lines go to stderr. On SIGTERM it stops after
the batch under way, and what is left of the journal is translated by the next one; when its
stdin closes (the proxy was killed) it first translates what the journal holds. Only one
runs per store (`<store>.translator.lock`).
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from xapitap.journal.segments import JournalReader
from xapitap.journal.segments import delete_translated
from xapitap.journal.segments import journal_dir
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.translator.core import Translator

log = logging.getLogger("xapitap.translator")

BATCH_RECORDS = 500
BATCH_BYTES = 4 * 1024 * 1024
# How often the journal (and a stop signal) is looked at without a nudge.
IDLE_POLL_SECONDS = 0.2


def lock_path(store: Path) -> Path:
    return store.with_name(store.name + ".translator.lock")


class _Signals:
    def __init__(self) -> None:
        self.more = threading.Event()  # a nudge, or a reason to look again
        self.stopping = False  # stop after the batch under way
        self.orphaned = False  # the proxy is gone: stop once the journal is translated

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: a handler runs on the main thread between any two bytecodes, maybe
        # while that thread holds the event's lock, and taking it here would deadlock.
        self.stopping = True


def _watch_stdin(signals: _Signals) -> None:
    """Anything read is a nudge; the end of input means the proxy is gone (killed: a proxy
    that stops sends SIGTERM). Unbuffered: a buffered reader's lock, held by this daemon
    thread, would abort the interpreter's exit."""
    while os.read(0, 4096):
        signals.more.set()
    signals.orphaned = True
    signals.more.set()


def run(store_path: Path, batch: int = BATCH_RECORDS, skip: int | None = None) -> int:
    """Translate the journal as it grows, until stopped. `batch`: records per transaction at
    most; `skip`: a record not to translate (see Translator.apply)."""
    store = StoreFile(store_path)
    lock_fd = os.open(lock_path(store_path), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("waiting for the previous translator of this store to finish")
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
    signals = _Signals()
    signal.signal(signal.SIGTERM, signals.on_signal)
    signal.signal(signal.SIGINT, signals.on_signal)
    threading.Thread(target=_watch_stdin, args=(signals,), daemon=True).start()
    writer = store.writer()
    translator = Translator(writer)
    directory = journal_dir(store_path)
    reader = JournalReader(directory, translator.next_seq)
    log.info("started (pid %d) at journal record %d", os.getpid(), translator.next_seq)
    try:
        while not signals.stopping:
            records = reader.read(batch, BATCH_BYTES)
            if not records:
                if signals.orphaned:
                    break  # what the dead proxy journaled is in the store
                signals.more.wait(IDLE_POLL_SECONDS)
                signals.more.clear()
                continue
            added = translator.apply(records, skip)
            try:
                print(f"committed {translator.next_seq} {added}", flush=True)
            except BrokenPipeError:  # the proxy is gone: finish what it journaled
                signals.orphaned = True
            delete_translated(directory, translator.next_seq)
    finally:
        reader.close()
        writer.close()
        os.close(lock_fd)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xapitap.translator")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=BATCH_RECORDS, help="records per commit")
    parser.add_argument("--skip", type=int, default=None, help="a record not to translate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        return run(args.store, batch=args.batch, skip=args.skip)
    except StoreError as e:
        log.error("%s", e)
        return 1
