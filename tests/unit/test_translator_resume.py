"""A translator that stops at any point (after a commit, or mid-batch: its transaction rolled
back) and is started again from the store makes exactly the statements an uninterrupted one
makes: its place in the journal and its open sessions are kept in the same transaction as its
statements."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import golden
from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import request_payload
from xapitap.pipeline import matcher
from xapitap.store import TranslationWriter
from xapitap.store.reads import ReadModel
from xapitap.translator.config import TranslationConfig
from xapitap.translator.core import Translator


def journal(tmp_path: Path) -> list[Record]:
    """Every golden case's requests as journal records, interleaved case by case (so that
    sessions of many actors and videos are open at once), with the proxy's ticks (one 40
    minutes on: idle sessions end) and its stop."""
    key_file = tmp_path / "k.key"
    key_file.write_text(golden.TEST_KEY.hex())
    config = TranslationConfig(key_file=str(key_file), max_body_bytes=golden.MAX_BODY)
    records = [Record(1, 0.0, Kind.CONFIG, config.model_dump_json().encode())]
    rules = matcher()
    queues = [c.requests() for c in golden.cases()]
    last = None
    while any(queues):
        for queue in queues:
            if not queue:
                continue
            capture = queue.pop(0).capture()
            match = rules.match(
                capture.method,
                capture.host,
                capture.path,
                capture.header,
                lambda c=capture: c.body,
            )
            assert match is not None
            at = capture.received_at.timestamp()
            if last is not None and at > last + 60:
                records.append(Record(len(records) + 1, last + 30, Kind.TICK, b""))
            last = max(at, last or at)
            records.append(
                Record(len(records) + 1, at, Kind.REQUEST, request_payload(match, capture))
            )
    assert last is not None
    later = last + timedelta(minutes=40).total_seconds()
    records.append(Record(len(records) + 1, later, Kind.TICK, b""))
    records.append(Record(len(records) + 1, later, Kind.STOP, b""))
    return records


def statements(store: Path) -> list[dict[str, Any]]:
    reader = ReadModel(store)
    try:
        return [json.loads(text) for text in reader.statements_json()]
    finally:
        reader.close()


def uninterrupted(records: list[Record], store: Path) -> list[dict[str, Any]]:
    writer = TranslationWriter(store)
    Translator(writer).apply(records)
    writer.close()
    return statements(store)


class _Crash(BaseException):
    """The process dies (not an error translation could handle)."""


def interrupted(records: list[Record], store: Path, every: int, mid_batch: bool) -> None:
    """Translate in batches of `every` records, starting a new translator from the store
    after each batch; with `mid_batch`, every other batch dies inside its transaction first
    (nothing of it is committed) and is translated again by the next translator."""
    batch = 0
    while True:
        writer = TranslationWriter(store)
        translator = Translator(writer)
        todo = [r for r in records if r.seq >= translator.next_seq][:every]
        if not todo:
            writer.close()
            return
        batch += 1
        if mid_batch and batch % 2:

            def dying(state: Any) -> None:
                raise _Crash  # the statements are written, the commit never comes

            writer._save = dying  # type: ignore[method-assign]
            with pytest.raises(_Crash):
                translator.apply(todo)
        else:
            translator.apply(todo)
        writer.close()


@pytest.mark.parametrize("every", [1, 2, 5, 17])
@pytest.mark.parametrize("mid_batch", [False, True])
def test_a_restarted_translator_makes_the_same_statements(
    tmp_path: Path, every: int, mid_batch: bool
) -> None:
    records = journal(tmp_path)
    expected = uninterrupted(records, tmp_path / "a.sqlite3")
    interrupted(records, tmp_path / "b.sqlite3", every, mid_batch)
    assert len(expected) > 40
    assert statements(tmp_path / "b.sqlite3") == expected


def test_the_comparison_can_fail_without_the_sessions_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above only means something if losing the sessions changes the statements."""
    from xapitap.translator import state

    records = journal(tmp_path)
    expected = uninterrupted(records, tmp_path / "a.sqlite3")
    monkeypatch.setattr(
        state, "restore", lambda saved, track_changes: state.VideoSessions(track_changes=True)
    )
    interrupted(records, tmp_path / "b.sqlite3", 5, False)
    assert statements(tmp_path / "b.sqlite3") != expected
