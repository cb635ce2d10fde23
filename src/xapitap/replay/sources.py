"""What a recording holds, as captured requests in time order: mitmproxy flow files and HAR
files (Chrome/Chromium DevTools, Firefox, Playwright's `recordHar`, mitmweb's export), read
one entry at a time so that memory does not grow with a file's size.

An entry that cannot be read is reported, with where it is and why, and the rest go on; a
file damaged part-way (a torn flow file, broken JSON) is read up to the damage."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xapitap.capture import Capture
from xapitap.replay import flowfile
from xapitap.replay import har


@dataclass(frozen=True)
class Unreadable:
    where: str  # file and entry
    reason: str


Item = Capture | Unreadable


class Source:
    """One file's entries, with how far into the file reading is (for progress)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self._reader: har.HarReader | flowfile.FlowFileReader = (
            har.HarReader(path) if _looks_like_har(path) else flowfile.FlowFileReader(path)
        )

    @property
    def position(self) -> int:
        return self._reader.position

    def __iter__(self) -> Iterator[Item]:
        for index, entry in enumerate(self._reader, 1):
            if isinstance(entry, Exception):
                yield Unreadable(f"{self.path} entry {index}", str(entry))
            elif entry is not None:
                yield entry
        if self._reader.damage:
            yield Unreadable(f"{self.path} after entry {self._reader.read}", self._reader.damage)


def _looks_like_har(path: Path) -> bool:
    with path.open("rb") as file:
        start = file.read(64).lstrip()
    return start.startswith(b"{")


def in_time_order(sources: Iterable[Source]) -> Iterator[Item]:
    """Every source's items, merged by the time each request was made (each file is read in
    its own order; an unreadable entry comes where it was found)."""
    last: dict[int, float] = {}

    def keyed(n: int, source: Source) -> Iterator[tuple[float, int, Item]]:
        for item in source:
            if isinstance(item, Capture):
                last[n] = item.received_at.timestamp()
            yield last.get(n, 0.0), n, item

    merged = heapq.merge(*(keyed(n, s) for n, s in enumerate(sources)), key=lambda x: x[:2])
    for _, _, item in merged:
        yield item
