"""The journal's writer: appends records with group commit, and says when each is durable.

One thread takes everything queued, encodes it, writes it with one `write` and one `fsync`,
then calls each record's callback: however many requests arrive together, they share one
fsync. A write that fails (a full disk, an I/O error) is cut back to the last durable byte and
retried with backoff; the requests wait meanwhile, and nothing is dropped. So does a journal
that reached its size bound, until translation deletes what it has finished with.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import encode
from xapitap.journal.segments import Segment
from xapitap.journal.segments import delete_translated
from xapitap.journal.segments import intact_end
from xapitap.journal.segments import segments
from xapitap.journal.segments import total_bytes

log = logging.getLogger(__name__)

SEGMENT_BYTES = 16 * 1024 * 1024
# A segment is closed this long after it was opened, so that raw learner data is deleted
# soon after it is translated, even when traffic is light.
SEGMENT_SECONDS = 300.0
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
# Bytes queued in memory for the writer at most: past this, the proxy holds new requests.
MAX_QUEUED_BYTES = 32 * 1024 * 1024
_RECHECK_SECONDS = 0.2  # how often a full journal looks again for room

Durable = Callable[[int], None]  # called with the record's seq once it is on disk


@dataclass(frozen=True)
class _Item:
    kind: Kind
    time: float
    payload: Callable[[], bytes]  # encoded on the writer's thread, not the caller's
    size: int  # an estimate, for the in-memory bound
    durable: Durable | None


def prepare(directory: Path, next_seq: int) -> int:
    """Make the directory ready for a new writer and return the seq to go on from.

    The newest segment is cut back to its last intact record (a crash may have torn it), an
    empty one is removed, and the next seq is never below `next_seq` (where translation
    stands: the journal may have been emptied by it)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    delete_translated(directory, next_seq, newest_too=True)
    after = next_seq
    for segment in reversed(segments(directory)):
        end, last = intact_end(segment.path)
        size = segment.size()
        if last is None:
            log.warning("journal: %s holds no intact record; removed", segment.path.name)
            segment.path.unlink()
            continue
        if size > end:
            log.warning(
                "journal: %d bytes at the end of %s were torn by a crash; cut",
                size - end,
                segment.path.name,
            )
            os.truncate(segment.path, end)
        after = max(after, last + 1)
        break
    return after


class JournalWriter:
    def __init__(
        self,
        directory: Path,
        next_seq: int,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = SEGMENT_BYTES,
        on_durable: Callable[[int], None] = lambda seq: None,
    ) -> None:
        self.directory = directory
        self._seq = next_seq
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._on_durable = on_durable
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._queued = 0
        self._lock = threading.Lock()
        self._fd = -1
        self._written = 0  # bytes in the open segment
        self._opened = 0.0  # when it was opened (monotonic)
        self._bytes = total_bytes(directory)
        self.full = False  # the size bound is reached: requests wait
        self._thread = threading.Thread(target=self._run, name="xapitap-journal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def has_room(self) -> bool:
        return self._queued < MAX_QUEUED_BYTES

    def append(
        self,
        kind: Kind,
        at: float,
        payload: Callable[[], bytes],
        size: int = 0,
        durable: Durable | None = None,
    ) -> None:
        """Queue a record; `durable(seq)` is called from the writer's thread once it is on
        disk."""
        with self._lock:
            self._queued += size
        self._queue.put(_Item(kind, at, payload, size, durable))

    def stop(self, timeout: float = 30) -> None:
        """Write everything queued so far, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("the journal could not write what was queued within %.0f s", timeout)

    def _run(self) -> None:
        try:
            while True:
                items: list[_Item | None] = [self._queue.get()]
                while items[-1] is not None:
                    try:
                        items.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                work = [i for i in items if i is not None]
                if work:
                    self._commit(work)
                if len(work) < len(items):
                    return
        finally:
            if self._fd >= 0:
                os.close(self._fd)

    def _commit(self, work: list[_Item]) -> None:
        records = []
        unencodable = []
        for item in work:
            try:
                payload = item.payload()
            except Exception as e:  # a bug: it costs that request only, loudly
                log.error("journal: a record could not be encoded: %s: %s", type(e).__name__, e)
                unencodable.append(item)
                continue
            records.append((Record(self._seq, item.time, item.kind, payload), item))
            self._seq += 1
        self._wait_for_room()
        chunks = [encode(r) for r, _ in records]
        done, delay = 0, 0.1
        while done < len(chunks):
            try:
                done = self._write(chunks, done)
            except OSError as e:
                log.error(
                    "journal: cannot write (%s: %s); retrying in %.1f s", type(e).__name__, e, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        with self._lock:
            self._queued -= sum(item.size for item in work)
        for record, item in records:
            if item.durable is not None:
                item.durable(record.seq)
        for item in unencodable:  # never journaled, but never held for ever either
            if item.durable is not None:
                item.durable(-1)
        if records:
            self._on_durable(records[-1][0].seq)

    def _wait_for_room(self) -> None:
        if self._bytes < self._max_bytes:
            return
        self._bytes = total_bytes(self.directory)
        while self._bytes >= self._max_bytes:
            if not self.full:
                self.full = True
                log.warning(
                    "journal: %d MB, its bound: analytics requests are held until translation "
                    "catches up",
                    self._bytes // 2**20,
                )
            time.sleep(_RECHECK_SECONDS)
            self._bytes = total_bytes(self.directory)
        if self.full:
            self.full = False
            log.warning("journal: below its bound again; held requests go on")

    def _write(self, chunks: list[bytes], start: int) -> int:
        """Append records from `start` on, as many as the open segment takes, with one write
        and one fsync; returns where the next write starts. On failure the segment is cut
        back to where it was, so a retry writes no record twice."""
        if (
            self._fd < 0
            or self._written + len(chunks[start]) > self._segment_bytes
            or time.monotonic() - self._opened > SEGMENT_SECONDS
        ):
            self._rotate(first_seq=_seq_of(chunks[start]))
        end, size = start, self._written
        while end < len(chunks) and (
            end == start or size + len(chunks[end]) <= self._segment_bytes
        ):
            size += len(chunks[end])
            end += 1
        data = memoryview(b"".join(chunks[start:end]))
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self._written)
            raise
        self._bytes += size - self._written
        self._written = size
        return end

    def _rotate(self, first_seq: int) -> None:
        """Close the open segment (durable already) and start a new one."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        path = self.directory / Segment.name_for(first_seq)
        self._fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._written = os.fstat(self._fd).st_size
        self._opened = time.monotonic()
        # The new file's name must be durable too, or a crash could lose the whole segment.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _seq_of(chunk: bytes) -> int:
    return int.from_bytes(chunk[8:16], "little")
