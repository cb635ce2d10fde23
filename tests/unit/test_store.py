from __future__ import annotations

import stat
from pathlib import Path

import pytest

import golden
from xapitap.pseudonym import load_or_create_key
from xapitap.store import Provenance
from xapitap.store import Reject
from xapitap.store import Store
from xapitap.targets import Target
from xapitap.xapi.models import Statement


def statements() -> list[Statement]:
    case = next(c for c in golden.cases() if c.name == "udemy/whole-session")
    return [
        Statement.model_validate(s) for r in golden.expected(case) for s in r.get("statements", [])
    ]


def prov(s: Statement) -> Provenance:
    return Provenance("segment", "segment.api", s.id, "flow-1")


LRS_A = Target(name="lrs-a", endpoint="http://127.0.0.1:1/xAPI/")
ONLY_COMPLETED = Target(name="lrs-b", endpoint="http://127.0.0.1:2/xAPI/", verbs={"completed"})


def test_statements_round_trip_byte_identical_and_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    items = [(s, prov(s)) for s in statements()]
    assert store.add(items, targets=[LRS_A, ONLY_COMPLETED]) == len(items)
    assert store.add(items, targets=[LRS_A]) == 0  # a replay adds nothing
    assert list(store.statements_json()) == [s.to_json() for s, _ in items]
    queued = [text for _, _, text in store.pending("lrs-a", 100, 1 << 20)]
    assert queued == [s.to_json() for s, _ in items]
    (completed,) = store.pending("lrs-b", 100, 1 << 20)
    assert '"completed"' in completed[2]
    assert store.counters() == {"duplicates": len(items), "statements": len(items)}


def test_batches_are_capped_by_count_and_bytes(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    items = [(s, prov(s)) for s in statements()]
    store.add(items, targets=[LRS_A])
    assert len(store.pending("lrs-a", 2, 1 << 20)) == 2
    two = len(items[0][0].to_json()) + len(items[1][0].to_json()) + 2  # with separators
    assert len(store.pending("lrs-a", 100, two)) == 2
    assert len(store.pending("lrs-a", 100, 1)) == 1  # never an empty batch


def test_outbox_settles_delivered_dead_and_unsent(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    store.add([(s, prov(s)) for s in statements()], targets=[LRS_A])
    store.set_target("lrs-a", LRS_A.endpoint)
    seqs = [seq for seq, _, _ in store.pending("lrs-a", 100, 1 << 20)]
    store.settle("lrs-a", delivered=seqs[:2], dead=[(seqs[2], "HTTP 400: bad", None)])
    store.settle("lrs-a", unsent=seqs[3:], error="HTTP 503: busy")
    store.close()
    reopened = Store(tmp_path / "s.sqlite3")
    (status,) = reopened.target_status()
    assert (status.delivered, status.queued, status.dead) == (2, len(seqs) - 3, 1)
    assert status.last_error == "HTTP 503: busy" and status.last_success_at
    assert [seq for seq, _, _ in reopened.pending("lrs-a", 100, 1 << 20)] == seqs[3:]
    ((target, _, reason, _),) = reopened.dead_letters()
    assert (target, reason) == ("lrs-a", "HTTP 400: bad")
    assert reopened.retry_dead("lrs-a") == 1
    assert reopened.pending("lrs-a", 100, 1 << 20)[0][0] == seqs[2]


def test_enqueue_all_queues_only_what_a_target_has_not_had(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    items = [(s, prov(s)) for s in statements()]
    store.add(items, targets=[LRS_A])
    first = [seq for seq, _, _ in store.pending("lrs-a", 2, 1 << 20)]
    store.settle("lrs-a", delivered=first)
    assert store.enqueue_all(LRS_A) == 0  # the rest are queued already
    assert store.enqueue_all(ONLY_COMPLETED) == 1
    assert store.enqueue_all(ONLY_COMPLETED) == 0


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
