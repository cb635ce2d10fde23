"""`xapitap replay`: translate recorded traffic into a store, the way live capture does.

Entries are read one at a time from mitmproxy flow files and HAR files (sources.py), in time
order across the files, matched with the same rules as the proxy's hook and translated by the
same core as the translator process, with each request's own time: session timeouts and
timestamps are as they were live, and the statements are the live ones, byte for byte (same
key and options), so replaying into the live store, or twice, adds nothing."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TextIO

from xapitap.accounting import Fate
from xapitap.capture import Capture
from xapitap.flows import body_reader
from xapitap.matching import Matcher
from xapitap.replay.progress import Progress
from xapitap.replay.sources import Source
from xapitap.replay.sources import Unreadable
from xapitap.replay.sources import in_time_order
from xapitap.store import StoreFile
from xapitap.translator.config import TranslationConfig
from xapitap.translator.local import LocalTranslation

MAX_LISTED = 20  # unreadable entries listed one by one in the summary


@dataclass
class Summary:
    files: int = 0
    entries: int = 0  # requests read (and entries that could not be read)
    unreadable: list[Unreadable] = field(default_factory=list)
    matched: int = 0  # analytics requests
    statements: int = 0  # new to the store
    # What translation made of them (the store's accounting, this replay's share of it).
    accounting: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        out = [
            f"{self.files} files, {self.entries} entries read, {len(self.unreadable)} unreadable, "
            f"{self.matched} analytics requests, {self.statements} new statements"
        ]
        for item in self.unreadable[:MAX_LISTED]:
            out.append(f"  unreadable: {item.where}: {item.reason}")
        if len(self.unreadable) > MAX_LISTED:
            out.append(f"  … and {len(self.unreadable) - MAX_LISTED} more unreadable entries")
        for (fate, platform, reason), n in sorted(self.accounting.items()):
            what = f"{fate}: {reason}" if reason else fate
            out.append(f"  {n:>8}  {platform:<9} {what}")
        return out


def replay(
    paths: Iterable[Path],
    store: StoreFile,
    config: TranslationConfig,
    matcher: Matcher,
    progress_to: TextIO = sys.stderr,
) -> Summary:
    """Translate the analytics requests of the files into the store. Every session open at
    the end is ended then, as when a proxy stops."""
    sources = [Source(p) for p in paths]
    summary = Summary(files=len(sources))
    progress = Progress(progress_to, sum(s.size for s in sources))
    before = _accounting(store)
    local = LocalTranslation(store, config)
    last_time: float | None = None
    try:
        for item in in_time_order(sources):
            summary.entries += 1
            if isinstance(item, Unreadable):
                summary.unreadable.append(item)
            elif _matched(item, matcher, config, local):
                summary.matched += 1
                last_time = item.received_at.timestamp()
            progress.show(
                sum(s.position for s in sources), summary.entries, summary.matched, local.added
            )
    finally:
        local.close(at=last_time)
        progress.done()
    summary.statements = local.added
    summary.accounting = _accounting(store) - before
    return summary


def _matched(
    capture: Capture, matcher: Matcher, config: TranslationConfig, local: LocalTranslation
) -> bool:
    body = body_reader(capture.body, capture.header("content-encoding"), config.max_body_bytes)
    match = matcher.match(capture.method, capture.host, capture.path, capture.header, body)
    if match is None:
        return False
    local.add(match, capture.cut(config.max_body_bytes))
    return True


def _accounting(store: StoreFile) -> Counter[tuple[str, str, str]]:
    """Events translated, ignored, rejected (with reasons), requests unreadable, per
    platform."""
    reader = store.reader()
    try:
        found: Counter[tuple[str, str, str]] = Counter()
        for row in reader.accounting():
            if row.fate is not Fate.REQUEST:
                found[(str(row.fate), row.platform, row.reason)] += row.count
        return found
    finally:
        reader.close()
