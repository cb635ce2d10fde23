"""The journal on disk: a directory of segment files, each named by its first record's seq.

Records are read back in seq order across segments. A record that is cut short or fails its
checksum ends what is read of its segment: in the newest segment it may be a write still under
way (the reader waits for it); in an older one it is a tail torn by a crash, and the reader
moves on to the next segment, saying how many bytes it passed over.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from xapitap.journal.format import HEADER
from xapitap.journal.format import Corrupt
from xapitap.journal.format import Record
from xapitap.journal.format import decode
from xapitap.journal.format import read_header

log = logging.getLogger(__name__)

SUFFIX = ".xj"


def journal_dir(store: Path) -> Path:
    """Where the journal of a store lives: beside it."""
    return store.with_name(store.name + ".journal")


@dataclass(frozen=True, order=True)
class Segment:
    first_seq: int
    path: Path

    @staticmethod
    def name_for(first_seq: int) -> str:
        return f"{first_seq:020d}{SUFFIX}"

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:  # deleted since it was listed
            return 0


def segments(directory: Path) -> list[Segment]:
    """The segments in the directory, oldest first."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        stem, suffix = os.path.splitext(entry.name)
        if suffix == SUFFIX and stem.isdigit():
            found.append(Segment(int(stem), Path(entry.path)))
    return sorted(found)


def total_bytes(directory: Path) -> int:
    return sum(s.size() for s in segments(directory))


def scan(file: BinaryIO) -> Iterator[tuple[int, Record]]:
    """Each intact record from the file's position on, with the offset after it; stops at
    the end or at the first record that is cut short or corrupt."""
    offset = file.tell()
    while True:
        header = file.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        try:
            length, _ = read_header(header)
            payload = file.read(length)
            record = decode(header, payload)
        except Corrupt:
            return
        offset += record.size
        yield offset, record


def intact_end(path: Path) -> tuple[int, int | None]:
    """The offset after the segment's last intact record, and that record's seq."""
    end, last = 0, None
    with path.open("rb") as file:
        for after, record in scan(file):
            end, last = after, record.seq
    return end, last


class JournalReader:
    """The records from `next_seq` on, in order, following the journal as it grows."""

    def __init__(self, directory: Path, next_seq: int) -> None:
        self.directory = directory
        self.next_seq = next_seq
        self._segment: Segment | None = None
        self._file: BinaryIO | None = None
        self.skipped_bytes = 0  # passed over in torn or corrupt segment tails
        self.missing = 0  # records whose seq never turned up (a segment lost or cut)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, max_records: int = 1000, max_bytes: int = 8 * 1024 * 1024) -> list[Record]:
        """What is journaled now from `next_seq` on, at most this much; [] when caught up."""
        records: list[Record] = []
        size = 0
        while len(records) < max_records and size < max_bytes:
            record = self._next()
            if record is None:
                break
            records.append(record)
            size += record.size
        return records

    def _next(self) -> Record | None:
        while True:
            if self._file is None and not self._open():
                return None
            assert self._file is not None and self._segment is not None
            start = self._file.tell()
            record = next(scan(self._file), None)
            if record is not None:
                _, rec = record
                if rec.seq < self.next_seq:
                    continue  # before where we resume
                if rec.seq > self.next_seq:
                    self.missing += rec.seq - self.next_seq
                    log.error("journal: records %d to %d are missing", self.next_seq, rec.seq - 1)
                self.next_seq = rec.seq + 1
                return rec
            self._file.seek(start)
            later = [s for s in segments(self.directory) if s > self._segment]
            if not later:
                return None  # the newest segment: more may be on its way
            # A newer segment exists, so nothing more will be written here; but records may
            # have been written since the read above: look once more before calling what
            # is left a torn or corrupt tail.
            if next(scan(self._file), None) is not None:
                self._file.seek(start)
                continue
            self._file.seek(start)
            left = self._segment.size() - start
            if left > 0:
                self.skipped_bytes += left
                log.error(
                    "journal: %d bytes at the end of %s are not an intact record; skipped",
                    left,
                    self._segment.path.name,
                )
            self.close()
            self._segment = later[0]

    def _open(self) -> bool:
        """Open the segment to read next: the one that holds `next_seq`, else the next."""
        found = segments(self.directory)
        if self._segment is None:
            holding = [s for s in found if s.first_seq <= self.next_seq]
            self._segment = holding[-1] if holding else (found[0] if found else None)
        elif self._segment not in found:
            later = [s for s in found if s > self._segment]
            self._segment = later[0] if later else None
        if self._segment is None:
            return False
        try:
            self._file = self._segment.path.open("rb")
        except FileNotFoundError:
            self._segment = None
            return False
        return True


def delete_translated(directory: Path, next_seq: int, newest_too: bool = False) -> int:
    """Delete the segments whose every record is before `next_seq`: they hold raw learner
    data that is in the store now. The newest is kept (the writer may be appending to it)
    unless `newest_too`, when no writer runs. Returns how many were deleted."""
    found = segments(directory)
    done = [s for s, following in itertools.pairwise(found) if following.first_seq <= next_seq]
    if newest_too and found:
        _, last = intact_end(found[-1].path)
        if last is None or last < next_seq:
            done.append(found[-1])
    for segment in done:
        segment.path.unlink(missing_ok=True)
    return len(done)


@dataclass(frozen=True)
class Backlog:
    records: int  # journaled and not yet translated
    bytes: int  # the journal's size on disk
    oldest: float | None  # proxy time of the oldest untranslated record


def backlog(directory: Path, next_seq: int) -> Backlog:
    """How far translation is behind the journal (read from the files: no process asked)."""
    found = segments(directory)
    size = sum(s.size() for s in found)
    if not found:
        return Backlog(0, 0, None)
    last = None
    for segment in reversed(found):
        _, last = intact_end(segment.path)
        if last is not None:
            break
    if last is None or last < next_seq:
        return Backlog(0, size, None)
    reader = JournalReader(directory, next_seq)
    try:
        first = reader.read(max_records=1)
    finally:
        reader.close()
    oldest = first[0].time if first else None
    return Backlog(last + 1 - next_seq, size, oldest)
