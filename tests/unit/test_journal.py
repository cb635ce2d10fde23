"""The raw journal: records are durable before they are acknowledged, read back in order,
and a crash's torn tail costs nothing that was acknowledged."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from xapitap.journal import writer as writer_module
from xapitap.journal.format import HEADER
from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import encode
from xapitap.journal.segments import JournalReader
from xapitap.journal.segments import backlog
from xapitap.journal.segments import delete_translated
from xapitap.journal.segments import segments
from xapitap.journal.writer import JournalWriter
from xapitap.journal.writer import prepare


def write_all(directory: Path, payloads: list[bytes], **kw: Any) -> list[int]:
    """Journal the payloads with a real writer; the seqs its callbacks reported."""
    first = prepare(directory, 1)
    writer = JournalWriter(directory, first, **kw)
    writer.start()
    durable: list[int] = []
    for i, payload in enumerate(payloads):
        writer.append(Kind.REQUEST, 1000.0 + i, lambda p=payload: p, len(payload), durable.append)
    writer.stop()
    return durable


def read_all(directory: Path, next_seq: int = 1) -> list[Record]:
    reader = JournalReader(directory, next_seq)
    try:
        return reader.read(max_records=10**6, max_bytes=1 << 40)
    finally:
        reader.close()


def test_records_come_back_in_order_and_each_was_acknowledged_once(tmp_path: Path) -> None:
    payloads = [f"request {i}".encode() * (i % 7) for i in range(300)]
    durable = write_all(tmp_path / "j", payloads)
    assert durable == list(range(1, 301))
    records = read_all(tmp_path / "j")
    assert [r.payload for r in records] == payloads
    assert [r.time for r in records] == [1000.0 + i for i in range(300)]


def test_the_journal_is_private(tmp_path: Path) -> None:
    write_all(tmp_path / "j", [b"x"])
    assert stat.S_IMODE((tmp_path / "j").stat().st_mode) == 0o700
    (segment,) = segments(tmp_path / "j")
    assert stat.S_IMODE(segment.path.stat().st_mode) == 0o600


def test_requests_arriving_together_share_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(writer_module.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    directory = tmp_path / "j"
    writer = JournalWriter(directory, prepare(directory, 1))
    for _ in range(200):  # queued before the thread runs: one group
        writer.append(Kind.REQUEST, 0.0, lambda: b"body", 4)
    writer.start()
    writer.stop()
    assert len(read_all(directory)) == 200
    assert len(fsyncs) <= 3  # the group, the new segment's directory entry


def test_segments_rotate_and_translated_ones_are_deleted(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    write_all(directory, [b"x" * 1000] * 50, segment_bytes=10_000)
    found = segments(directory)
    assert len(found) >= 5
    assert [r.seq for r in read_all(directory)] == list(range(1, 51))
    middle = found[2].first_seq
    delete_translated(directory, middle)
    assert segments(directory) == found[2:]  # only those wholly before `middle`
    assert [r.seq for r in read_all(directory, middle)] == list(range(middle, 51))
    delete_translated(directory, 51)
    assert segments(directory) == found[-1:]  # never the newest: the writer may append


def test_a_torn_tail_is_cut_at_start_and_nothing_before_it_is_lost(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    write_all(directory, [b"a" * 100, b"b" * 100, b"c" * 100])
    (segment,) = segments(directory)
    whole = encode(Record(4, 0.0, Kind.REQUEST, b"d" * 100))
    with segment.path.open("ab") as f:
        f.write(whole[: HEADER.size + 40])  # the crash came mid-write
    assert [r.seq for r in read_all(directory)] == [1, 2, 3]  # the reader waits at the tear
    assert prepare(directory, 1) == 4  # the next start cuts it and goes on from seq 4
    assert segment.path.stat().st_size == 3 * (HEADER.size + 100)
    write_all(directory, [b"e"])
    assert [r.payload[:1] for r in read_all(directory)] == [b"a", b"b", b"c", b"e"]


def test_a_corrupt_record_ends_its_segment_and_the_reader_moves_on(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    write_all(directory, [b"a" * 100, b"b" * 100])
    (first,) = segments(directory)
    data = bytearray(first.path.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit of the second record's payload
    first.path.write_bytes(bytes(data))
    writer = JournalWriter(directory, 3)  # a later run writes a newer segment
    writer.start()
    writer.append(Kind.REQUEST, 0.0, lambda: b"c", 1)
    writer.stop()
    reader = JournalReader(directory, 1)
    records = reader.read()
    assert [r.payload[:1] for r in records] == [b"a", b"c"]
    assert reader.skipped_bytes == HEADER.size + 100 and reader.missing == 1


def test_a_failed_write_is_retried_and_writes_no_record_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module.time, "sleep", lambda _: None)
    real_write = os.write
    failures = [0]

    def full_once(fd: int, data: Any) -> int:
        if failures[0] == 0 and len(data) > 50:
            failures[0] += 1
            real_write(fd, bytes(data[:30]))  # part of it made it to disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(writer_module.os, "write", full_once)
    durable = write_all(tmp_path / "j", [b"x" * 40, b"y" * 40])
    assert failures[0] == 1 and durable == [1, 2]
    assert [r.payload for r in read_all(tmp_path / "j")] == [b"x" * 40, b"y" * 40]


def test_a_full_journal_holds_requests_until_translation_frees_room(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    write_all(directory, [b"x" * 1000] * 20, segment_bytes=5_000)
    size = sum(s.size() for s in segments(directory))
    writer = JournalWriter(directory, 21, max_bytes=size, segment_bytes=5_000)
    writer.start()
    durable: list[int] = []
    writer.append(Kind.REQUEST, 0.0, lambda: b"held", 4, durable.append)
    time.sleep(0.5)
    assert writer.full and durable == []  # held, not dropped
    delete_translated(directory, 21)  # translation caught up
    deadline = time.monotonic() + 5
    while not durable and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.stop()
    assert durable == [21] and not writer.full
    assert [r.payload for r in read_all(directory, 21)] == [b"held"]


def test_backlog_counts_what_is_not_translated(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    write_all(directory, [b"x"] * 10)
    assert backlog(directory, 1).records == 10
    behind = backlog(directory, 8)
    assert (behind.records, behind.oldest) == (3, 1007.0)  # seqs 8, 9, 10; 8's time
    assert backlog(directory, 11).records == 0


def test_a_reader_follows_a_journal_being_written(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    writer = JournalWriter(directory, prepare(directory, 1), segment_bytes=2_000)
    writer.start()
    reader = JournalReader(directory, 1)
    seen: list[int] = []

    def follow() -> None:
        deadline = time.monotonic() + 10
        while len(seen) < 500 and time.monotonic() < deadline:
            seen.extend(r.seq for r in reader.read(max_records=37))

    thread = threading.Thread(target=follow)
    thread.start()
    for _ in range(500):
        writer.append(Kind.REQUEST, 0.0, lambda: b"y" * 50, 50)
    writer.stop()
    thread.join()
    reader.close()
    assert seen == list(range(1, 501))


def test_a_record_that_cannot_be_encoded_costs_itself_and_holds_nothing(tmp_path: Path) -> None:
    """A bug in copying one request must neither stop the writer nor hold that request."""
    directory = tmp_path / "j"
    writer = JournalWriter(directory, prepare(directory, 1))

    def broken() -> bytes:
        raise TypeError("not serialisable")

    durable: list[int] = []
    writer.append(Kind.REQUEST, 0.0, lambda: b"before", 6, durable.append)
    writer.append(Kind.REQUEST, 0.0, broken, 1, durable.append)
    writer.append(Kind.REQUEST, 0.0, lambda: b"after", 5, durable.append)
    writer.start()
    writer.stop()
    assert sorted(durable) == [-1, 1, 2]  # released; the others journaled, in order
    assert [r.payload for r in read_all(directory)] == [b"before", b"after"]
    assert writer.has_room()
