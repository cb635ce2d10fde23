from __future__ import annotations

import time
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import golden
from xapitap.capture import Capture
from xapitap.intake import Intake
from xapitap.matching import RuleMatch
from xapitap.pipeline import Pipeline
from xapitap.platforms.segment import RULES
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.store import IntakeWriter
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store.reads import ReadModel

MATCH = RuleMatch(RULES[0], {})


def capture(body: bytes) -> Capture:
    return Capture(
        "POST", "https", "api.segment.io", 443, "/v1/t", "", (), body, datetime.now(UTC), "f1"
    )


class Exploding(Pipeline):
    def process(self, match: RuleMatch, capture: Capture) -> Any:
        raise KeyError("a bug")


def test_a_bug_in_translation_costs_one_request_and_is_recorded(tmp_path: Path) -> None:
    intake = Intake(
        Exploding(Privacy("pseudonym", Pseudonymizer(b"k" * 32)), 1000),
        StoreFile(tmp_path / "s.sqlite3"),
        [],
        1000,
        keep_unreadable=True,
    )
    intake.start()
    intake.submit(MATCH, capture(b'{"writeKey":"WK-1","userId":"jane@uni.edu"}'))
    intake.stop(timeout=10)
    store = ReadModel(tmp_path / "s.sqlite3")
    (reject,) = store.rejects()
    assert "internal error: KeyError" in reject.reason
    # Kept when asked for, but scrubbed even then.
    assert reject.body == b'{"writeKey":"redacted","userId":"redacted-email"}'
    assert store.counters()["errors"] == 1


def test_unreadable_bodies_are_not_kept_unless_asked_for(tmp_path: Path) -> None:
    intake = Intake(
        Exploding(Privacy("pseudonym", Pseudonymizer(b"k" * 32)), 1000),
        StoreFile(tmp_path / "s.sqlite3"),
        [],
        1000,
    )
    intake.start()
    intake.submit(MATCH, capture(b'{"writeKey":"WK-1"}'))
    intake.stop(timeout=10)
    (reject,) = ReadModel(tmp_path / "s.sqlite3").rejects()
    assert reject.body is None and reject.body_size == 19


def test_queue_is_bounded_by_bytes(tmp_path: Path) -> None:
    pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(b"k" * 32)), 1000)
    intake = Intake(pipeline, StoreFile(tmp_path / "s.sqlite3"), [], 1000, max_queued_bytes=10)
    assert intake.has_room()
    intake.submit(MATCH, capture(b"x" * 11))  # not started: nothing drains the queue
    assert not intake.has_room()
    intake.start()
    intake.stop(timeout=10)
    assert intake.has_room()


def test_store_errors_are_retried_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("xapitap.intake.time.sleep", lambda _: None)
    calls = []

    class Flaky(IntakeWriter):
        def add(self, *args: Any, **kwargs: Any) -> int:
            calls.append(1)
            if len(calls) < 3:
                raise StoreError("database or disk is full")
            return super().add(*args, **kwargs)

    intake = Intake(
        Pipeline(Privacy("pseudonym", Pseudonymizer(b"k" * 32)), 1000),
        StoreFile(tmp_path / "s.sqlite3"),
        [],
        1000,
    )
    store = Flaky(tmp_path / "s.sqlite3")
    assert intake._write(store, [], [], {"requests x": 1}, [], [], {}) == 0
    assert len(calls) == 3 and ReadModel(tmp_path / "s.sqlite3").counters() == {"requests x": 1}


def test_a_batch_that_cannot_be_stored_costs_that_batch_and_capture_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the store cannot take (today's example: a lone surrogate) must not stop the
    intake: that batch is kept as unreadable, the next request is stored."""
    real_add = IntakeWriter.add
    calls = []

    def add_once_refusing(self: IntakeWriter, items: Any, *args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real_add(self, items, *args, **kwargs)

    monkeypatch.setattr(IntakeWriter, "add", add_once_refusing)
    seed = (golden.SEED / "udacity-course-video-watched.json").read_bytes()
    intake = Intake(
        Pipeline(Privacy("pseudonym", Pseudonymizer(b"k" * 32)), 1 << 20),
        StoreFile(tmp_path / "s.sqlite3"),
        [],
        1 << 20,
    )
    released = []
    intake.submit(MATCH, capture(seed), lambda: released.append(1))
    intake.start()
    deadline = time.monotonic() + 10
    while not released and time.monotonic() < deadline:
        time.sleep(0.01)
    intake.submit(MATCH, capture(seed.replace(b"ajs-", b"ajs-2-")), lambda: released.append(2))
    intake.stop(timeout=10)
    assert released == [1, 2]  # neither request was held for ever
    reader = ReadModel(tmp_path / "s.sqlite3")
    (reject,) = reader.rejects()
    assert "internal error while storing: UnicodeEncodeError" in reject.reason
    assert reader.count_statements() > 0  # the next request was translated and stored
