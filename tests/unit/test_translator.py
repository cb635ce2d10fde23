"""The translator's core: journal records in, one store transaction out."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import golden
from xapitap.capture import Capture
from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import request_payload
from xapitap.matching import RuleMatch
from xapitap.pipeline import Pipeline
from xapitap.platforms.segment import RULES
from xapitap.store import StoreError
from xapitap.store import TranslationWriter
from xapitap.store.reads import ReadModel
from xapitap.translator.config import TranslationConfig
from xapitap.translator.core import Translator

MATCH = RuleMatch(RULES[0], {})
SEED = (golden.SEED / "udacity-course-video-watched.json").read_bytes()


def capture(body: bytes) -> Capture:
    return Capture(
        "POST", "https", "api.segment.io", 443, "/v1/t", "", (), body, datetime.now(UTC), "f1"
    )


def config_record(tmp_path: Path, **settings: Any) -> Record:
    config = TranslationConfig(key_file=str(tmp_path / "k.key"), max_body_bytes=1 << 20, **settings)
    return Record(1, 0.0, Kind.CONFIG, config.model_dump_json().encode())


def request(seq: int, body: bytes) -> Record:
    c = capture(body)
    return Record(seq, c.received_at.timestamp(), Kind.REQUEST, request_payload(MATCH, c))


@pytest.fixture
def writer(tmp_path: Path) -> Any:
    w = TranslationWriter(tmp_path / "s.sqlite3")
    yield w
    w.close()


def exploding(monkeypatch: pytest.MonkeyPatch) -> None:
    def process(self: Pipeline, match: RuleMatch, capture: Capture) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(Pipeline, "process", process)


def test_a_bug_in_translation_costs_one_request_and_is_recorded(
    tmp_path: Path, writer: TranslationWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    exploding(monkeypatch)
    body = b'{"writeKey":"WK-1","userId":"jane@uni.edu"}'
    Translator(writer).apply([config_record(tmp_path, keep_unreadable=True), request(2, body)])
    store = ReadModel(tmp_path / "s.sqlite3")
    (reject,) = store.rejects()
    assert "internal error: KeyError" in reject.reason
    # Kept when asked for, but scrubbed even then.
    assert reject.body == b'{"writeKey":"redacted","userId":"redacted-email"}'
    assert store.counters()["errors"] == 1
    assert store.journal_next_seq() == 3  # and translation went past it


def test_unreadable_bodies_are_not_kept_unless_asked_for(
    tmp_path: Path, writer: TranslationWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    exploding(monkeypatch)
    Translator(writer).apply([config_record(tmp_path), request(2, b'{"writeKey":"WK-1"}')])
    (reject,) = ReadModel(tmp_path / "s.sqlite3").rejects()
    assert reject.body is None and reject.body_size == 19


def test_store_errors_are_retried_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("xapitap.translator.core.time.sleep", lambda _: None)
    calls = []

    class Flaky(TranslationWriter):
        def add(self, *args: Any, **kwargs: Any) -> int:
            calls.append(1)
            if len(calls) < 3:
                raise StoreError("database or disk is full")
            return super().add(*args, **kwargs)

    store = Flaky(tmp_path / "s.sqlite3")
    added = Translator(store).apply([config_record(tmp_path), request(2, SEED)])
    assert len(calls) == 3 and added == 3
    assert ReadModel(tmp_path / "s.sqlite3").count_statements() == 3


def test_a_batch_that_cannot_be_stored_costs_that_batch_and_translation_goes_on(
    tmp_path: Path, writer: TranslationWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the store cannot take (once: a lone surrogate) must not stop translation:
    that batch is kept as unreadable, the next one is stored."""
    real_add = TranslationWriter.add
    calls = []

    def add_once_refusing(self: TranslationWriter, items: Any, *args: Any, **kwargs: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real_add(self, items, *args, **kwargs)

    monkeypatch.setattr(TranslationWriter, "add", add_once_refusing)
    translator = Translator(writer)
    translator.apply([config_record(tmp_path), request(2, SEED)])
    translator.apply([request(3, SEED.replace(b"ajs-", b"ajs-2-"))])
    reader = ReadModel(tmp_path / "s.sqlite3")
    (reject,) = reader.rejects()
    assert "internal error while storing: UnicodeEncodeError" in reject.reason
    assert reader.count_statements() > 0  # the next request was translated and stored
    assert reader.journal_next_seq() == 4


def test_a_record_of_an_unknown_rule_is_counted_and_passed(
    tmp_path: Path, writer: TranslationWriter
) -> None:
    """A journal written by another version may name a rule this one lacks."""
    bad = request(2, SEED)
    bad = Record(2, bad.time, Kind.REQUEST, bad.payload.replace(b"segment.api", b"gone.rule"))
    Translator(writer).apply([config_record(tmp_path), bad, request(3, SEED)])
    reader = ReadModel(tmp_path / "s.sqlite3")
    assert reader.count_statements() == 3
    assert any(row.reason == "journal record unreadable" for row in reader.accounting())


def test_sessions_saved_in_a_format_it_cannot_read_are_replaced_not_a_crash_loop(
    tmp_path: Path, writer: TranslationWriter, caplog: pytest.LogCaptureFixture
) -> None:
    """An older xapitap's saved sessions: translation goes on, loudly, and the rows that
    cannot be read are gone after the first commit (or every restart would fail again)."""
    Translator(writer).apply([config_record(tmp_path), request(2, SEED)])
    writer._db.execute("UPDATE open_sessions SET json = '{\"format\": 0}'")
    translator = Translator(writer)
    assert "cannot be resumed" in caplog.text
    translator.apply([request(3, SEED.replace(b"ajs-", b"ajs-2-"))])
    saved = writer.load_state()
    assert saved.next_seq == 4 and len(saved.sessions) == 1
    assert '"format": 0' not in saved.sessions[0]
    Translator(writer)  # and the next start reads what is there


def test_a_record_that_killed_the_translator_is_counted_and_passed(
    tmp_path: Path, writer: TranslationWriter
) -> None:
    translator = Translator(writer)
    translator.apply([config_record(tmp_path), request(2, SEED)], skip=2)
    reader = ReadModel(tmp_path / "s.sqlite3")
    assert reader.count_statements() == 0 and reader.journal_next_seq() == 3
    assert any(row.reason == "the translator died on it" for row in reader.accounting())


def test_a_restart_with_no_session_open_keeps_the_ended_ones_and_their_late_events_open_nothing(
    tmp_path: Path,
) -> None:
    """The ended-session memory outlives a restart even when no session is open (an empty
    set of sessions must not be taken for none saved): a late copy of an ended session's
    events opens nothing, as in a translator that never stopped."""
    late = request(4, SEED.replace(b"ajs-", b"ajs-late-"))
    seen = request(2, SEED)
    idle = Record(3, seen.time + 40 * 60, Kind.TICK, b"")  # the session ends, idle
    first = [config_record(tmp_path), seen, idle]

    def statements(store: Path, restart: bool) -> int:
        writer = TranslationWriter(store)
        translator = Translator(writer)
        translator.apply(first)
        if restart:
            translator = Translator(writer)
        translator.apply([late])
        writer.close()
        return ReadModel(store).count_statements()

    uninterrupted = statements(tmp_path / "a.sqlite3", restart=False)
    assert uninterrupted == 4  # initialized, played, paused, terminated: the late copy adds none
    assert statements(tmp_path / "b.sqlite3", restart=True) == uninterrupted
