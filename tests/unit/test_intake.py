from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

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
    )
    intake.start()
    intake.submit(MATCH, capture(b"{}"))
    intake.stop(timeout=10)
    store = ReadModel(tmp_path / "s.sqlite3")
    (reject,) = store.rejects()
    assert "internal error: KeyError" in reject.reason and reject.body == b"{}"
    assert store.counters()["errors"] == 1


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
