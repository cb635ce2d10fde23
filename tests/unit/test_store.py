from __future__ import annotations

import stat
from pathlib import Path

import pytest

import golden
from xapitap.pseudonym import load_or_create_key
from xapitap.store import Provenance
from xapitap.store import Reject
from xapitap.store import Store
from xapitap.xapi.models import Statement


def statements() -> list[Statement]:
    case = next(c for c in golden.cases() if c.name == "segment/video-spec-session")
    return [
        Statement.model_validate(s) for r in golden.expected(case) for s in r.get("statements", [])
    ]


def prov(s: Statement) -> Provenance:
    return Provenance("segment", "segment.api", s.id, "flow-1")


def test_statements_round_trip_byte_identical_and_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    items = [(s, prov(s)) for s in statements()]
    assert store.add(items, targets=["lrs-a"]) == len(items)
    assert store.add(items, targets=["lrs-a"]) == 0  # a replay adds nothing
    assert list(store.statements_json()) == [s.to_json() for s, _ in items]
    assert [text for _, text in store.pending("lrs-a", 100)] == [s.to_json() for s, _ in items]


def test_outbox_keeps_what_was_not_delivered(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.add([(s, prov(s)) for s in statements()], targets=["lrs-a"])
    batch = store.pending("lrs-a", 2)
    store.mark_delivered("lrs-a", [seq for seq, _ in batch])
    rest = store.pending("lrs-a", 100)
    store.mark_failed("lrs-a", [seq for seq, _ in rest], "HTTP 503: busy")
    store.close()
    reopened = Store(tmp_path / "s.sqlite3")
    (status,) = reopened.target_status()
    assert (status.delivered, status.queued, status.last_error) == (2, len(rest), "HTTP 503: busy")
    assert reopened.pending("lrs-a", 100) == rest


def test_rejects_keep_the_body_and_reason(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    reject = Reject(
        "udemy.ecl",
        "invalid JSON",
        "POST",
        "https://www.udemy.com/api-2.0/ecl",
        "text/plain",
        None,
        b"[{",
        2,
        "f1",
    )
    store.add([], rejects=[reject], counters={"errors": 1})
    assert store.rejects() == [reject]
    assert store.counters() == {"errors": 1}


def test_a_store_from_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(RuntimeError, match="schema 99"):
        Store(path)


def test_pseudonym_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "xapitap.sqlite3.key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
