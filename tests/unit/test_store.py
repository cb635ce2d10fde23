from __future__ import annotations

import stat
from pathlib import Path

import pytest

import golden
from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.pseudonym import load_or_create_key
from xapitap.store import Outbox
from xapitap.store import ReadModel
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store import TranslationWriter
from xapitap.store.records import Provenance
from xapitap.store.records import Reject
from xapitap.store.writer import OTHER
from xapitap.targets import Target
from xapitap.xapi.models import Statement
from xapitap.xapi.vocab import VERBS


def statements() -> list[Statement]:
    case = next(c for c in golden.cases() if c.name == "udemy/whole-session")
    return [
        Statement.model_validate(s) for r in golden.expected(case) for s in r.get("statements", [])
    ]


def doors(tmp_path: Path) -> tuple[TranslationWriter, Outbox, ReadModel]:
    store = StoreFile(tmp_path / "s.sqlite3")
    return store.writer(), store.outbox(), store.reader()


def prov(s: Statement) -> Provenance:
    return Provenance("segment", "segment.api", s.id, "flow-1")


LRS_A = Target(name="lrs-a", endpoint="http://127.0.0.1:1/xAPI/")
ONLY_COMPLETED = Target(name="lrs-b", endpoint="http://127.0.0.1:2/xAPI/", verbs={"completed"})


def test_statements_round_trip_byte_identical_and_once(tmp_path: Path) -> None:
    writer, outbox, reader = doors(tmp_path)
    items = [(s, prov(s)) for s in statements()]
    assert writer.add(items, routes=[LRS_A, ONLY_COMPLETED]) == len(items)
    assert writer.add(items, routes=[LRS_A]) == 0  # a replay adds nothing
    assert list(reader.statements_json()) == [s.to_json() for s, _ in items]
    queued = [q.json for q in outbox.pending("lrs-a", 100, 1 << 20)]
    assert queued == [s.to_json() for s, _ in items]
    (completed,) = outbox.pending("lrs-b", 100, 1 << 20)
    assert '"completed"' in completed.json
    assert reader.counters() == {"duplicates": len(items), "statements": len(items)}


def test_batches_are_capped_by_count_and_bytes(tmp_path: Path) -> None:
    writer, outbox, _ = doors(tmp_path)
    items = [(s, prov(s)) for s in statements()]
    writer.add(items, routes=[LRS_A])
    assert len(outbox.pending("lrs-a", 2, 1 << 20)) == 2
    two = len(items[0][0].to_json()) + len(items[1][0].to_json()) + 2  # with separators
    assert len(outbox.pending("lrs-a", 100, two)) == 2
    assert len(outbox.pending("lrs-a", 100, 1)) == 1  # never an empty batch


def test_outbox_settles_delivered_dead_and_unsent(tmp_path: Path) -> None:
    writer, outbox, _ = doors(tmp_path)
    writer.add([(s, prov(s)) for s in statements()], routes=[LRS_A])
    outbox.set_target("lrs-a", LRS_A.endpoint)
    seqs = [q.seq for q in outbox.pending("lrs-a", 100, 1 << 20)]
    outbox.settle("lrs-a", delivered=seqs[:2], dead=[(seqs[2], "HTTP 400: bad", None)])
    outbox.settle("lrs-a", unsent=seqs[3:], error="HTTP 503: busy")
    outbox.close()
    reader, reopened = StoreFile(tmp_path / "s.sqlite3").reader(), Outbox(tmp_path / "s.sqlite3")
    (status,) = reader.target_status()
    assert (status.delivered, status.queued, status.dead) == (2, len(seqs) - 3, 1)
    assert status.last_error == "HTTP 503: busy" and status.last_success_at
    assert [q.seq for q in reopened.pending("lrs-a", 100, 1 << 20)] == seqs[3:]
    (letter,) = reader.dead_letters()
    assert (letter.target, letter.reason) == ("lrs-a", "HTTP 400: bad")
    assert reopened.retry_dead("lrs-a") == 1
    assert reopened.pending("lrs-a", 100, 1 << 20)[0].seq == seqs[2]


def test_enqueue_all_queues_only_what_a_target_has_not_had(tmp_path: Path) -> None:
    writer, outbox, _ = doors(tmp_path)
    items = [(s, prov(s)) for s in statements()]
    writer.add(items, routes=[LRS_A])
    first = [q.seq for q in outbox.pending("lrs-a", 2, 1 << 20)]
    outbox.settle("lrs-a", delivered=first)
    assert outbox.enqueue_all(LRS_A) == 0  # the rest are queued already
    assert outbox.enqueue_all(ONLY_COMPLETED) == 1
    assert outbox.enqueue_all(ONLY_COMPLETED) == 0


def test_routing_matches_verb_iris(tmp_path: Path) -> None:
    by_iri = Target(name="by-iri", endpoint="http://127.0.0.1:3/xAPI/", verbs={VERBS["completed"]})
    assert by_iri.verbs == ONLY_COMPLETED.verbs == frozenset({VERBS["completed"]})
    assert ONLY_COMPLETED.accepts("udemy", VERBS["completed"])
    assert not ONLY_COMPLETED.accepts("udemy", VERBS["played"])
    assert not ONLY_COMPLETED.accepts("udemy", "completed")  # a display text is no IRI


def test_rejects_keep_the_body_and_reason(tmp_path: Path) -> None:
    writer, _, reader = doors(tmp_path)
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
    writer.add([], rejects=[reject], counters={"errors": 1})
    assert reader.rejects() == [reject]
    assert reader.counters() == {"errors": 1}


def test_accounting_adds_up_and_folds_new_types_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, _, reader = doors(tmp_path)
    seen = Tally("coursera", "coursera.eventing", "pageview", Fate.IGNORED, "not a player event")
    writer.add([], tallies={seen: 2})
    writer.add([], tallies={seen: 1})
    assert [(r.event_type, r.fate, r.reason, r.count) for r in reader.accounting()] == [
        ("pageview", Fate.IGNORED, "not a player event", 3)
    ]
    monkeypatch.setattr("xapitap.store.writer.MAX_ACCOUNTING_LINES", 1)
    new = Tally("coursera", "coursera.eventing", "x" * 500, Fate.IGNORED, "not a player event")
    writer.add([], tallies={new: 1, seen: 1})
    assert {(r.event_type, r.count) for r in reader.accounting()} == {
        ("pageview", 4),
        (OTHER, 1),
    }


def test_a_store_from_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    StoreFile(path).create()
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(StoreError, match="schema 99"):
        StoreFile(path).create()


def test_a_store_of_an_older_schema_opens_and_migrates(tmp_path: Path) -> None:
    """A schema-2 store (before the translated and accounting tables) keeps what it had."""
    import sqlite3

    path = tmp_path / "s.sqlite3"
    writer, _, _ = doors(tmp_path)
    items = [(s, prov(s)) for s in statements()]
    writer.add(items, routes=[LRS_A])
    writer.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE translated")
        db.execute("DROP TABLE accounting")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
    reader = StoreFile(path).reader()
    assert reader.count_statements() == len(items) and reader.accounting() == []
    assert not StoreFile(path).writer().was_translated("segment", "x")


def test_pseudonym_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "xapitap.sqlite3.key"
    key = load_or_create_key(path)
    assert load_or_create_key(path) == key and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_read_model_gives_recent_statements_and_sessions(tmp_path: Path) -> None:
    writer, _, reader = doors(tmp_path)
    items = [(s, prov(s)) for s in statements()]
    writer.add(items)
    first = reader.statements_after(0, limit=3)
    assert [s.id for s in first] == [s.id for s, _ in items[:3]]
    rest = reader.statements_after(first[-1].seq)
    assert [s.id for s in rest] == [s.id for s, _ in items[3:]]
    # udemy/whole-session: two lectures, the second one started last.
    sessions = reader.sessions()
    assert [s.object_id.rsplit("/", 1)[-1] for s in sessions] == ["9002", "9001"]
    watched = sessions[1]
    assert watched.progress == 1.0 and watched.last_verb == VERBS["terminated"]
    assert watched.played_segments and watched.statements == sum(
        1 for s, _ in items if s.object.id == watched.object_id
    )
