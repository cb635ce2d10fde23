"""The read model's queries the dashboard is built on: filters, pages that resume, the newest
statements, statements per minute, and when each accounting line was first seen."""

from __future__ import annotations

import json
from pathlib import Path

import golden
from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.store import StoreFile
from xapitap.store.reads import StatementFilter
from xapitap.store.records import Provenance
from xapitap.xapi.models import Statement

EXT = "https://w3id.org/xapi/video/extensions/"


def case_statements(name: str) -> list[Statement]:
    case = next(c for c in golden.cases() if c.name == name)
    return [
        Statement.model_validate(s) for r in golden.expected(case) for s in r.get("statements", [])
    ]


def filled(tmp_path: Path) -> tuple[StoreFile, list[dict[str, object]]]:
    """A store with a Segment session, then a Udemy one."""
    store = StoreFile(tmp_path / "s.sqlite3")
    writer = store.writer()
    stored: list[dict[str, object]] = []
    for platform, name in (("segment", "segment/whole-session"), ("udemy", "udemy/whole-session")):
        items = case_statements(name)
        writer.add((s, Provenance(platform, f"{platform}.rule", s.id, "f")) for s in items)
        stored += [json.loads(s.model_dump_json(exclude_none=True)) for s in items]
    writer.close()
    return store, stored


def ids(rows: list[tuple[int, str]]) -> list[str]:
    return [json.loads(text)["id"] for _, text in rows]


def test_filters_take_what_they_name(tmp_path: Path) -> None:
    store, stored = filled(tmp_path)
    reader = store.reader()

    def page(**wanted: str) -> list[str]:
        rows, _ = reader.statements_page(0, 1000, StatementFilter(**wanted))
        return ids(rows)

    assert page() == [s["id"] for s in stored]
    paused = [s["id"] for s in stored if s["verb"]["id"].endswith("/paused")]  # type: ignore[index]
    assert paused and page(verb="paused") == paused
    assert page(verb="https://w3id.org/xapi/video/verbs/paused") == paused
    assert page(verb="pause") == []  # the whole last part, not a prefix
    udemy = page(platform="udemy")
    assert udemy == [s["id"] for s in stored[len(stored) - len(udemy) :]] and udemy
    video = stored[0]["object"]["id"]  # type: ignore[index]
    assert page(video=video) == [s["id"] for s in stored if s["object"]["id"] == video]  # type: ignore[index]
    name = stored[-1]["actor"]["account"]["name"]  # type: ignore[index]
    by_actor = [s["id"] for s in stored if s["actor"]["account"]["name"] == name]  # type: ignore[index]
    assert page(actor=name[:8]) == by_actor
    assert page(actor="%") == [] and page(actor="_") == []  # LIKE's wildcards are literal
    reader.close()


def test_a_filtered_page_goes_on_past_what_it_left_out(tmp_path: Path) -> None:
    store, stored = filled(tmp_path)
    reader = store.reader()
    wanted = StatementFilter(verb="initialized")
    ended = [n for n, s in enumerate(stored, 1) if s["verb"]["id"].endswith("/initialized")]  # type: ignore[index]
    assert len(ended) >= 2 and ended[-1] < len(stored)
    rows, last = reader.statements_page(0, len(ended) - 1, wanted)
    assert [seq for seq, _ in rows] == ended[:-1] and last == ended[-2]  # full: from the last
    rows, last = reader.statements_page(last, len(ended), wanted)
    assert [seq for seq, _ in rows] == ended[-1:]
    assert last == len(stored)  # not full: past everything looked at, matching or not
    assert reader.statements_page(last, 5, wanted) == ([], len(stored))
    assert reader.statements_page(last, 5) == ([], len(stored))
    reader.close()


def test_the_tail_is_the_newest_oldest_first(tmp_path: Path) -> None:
    store, stored = filled(tmp_path)
    reader = store.reader()
    rows, last = reader.statements_tail(3)
    assert ids(rows) == [s["id"] for s in stored[-3:]] and last == reader.last_seq() == len(stored)
    rows, _ = reader.statements_tail(2, StatementFilter(platform="segment"))
    segment = [
        s["id"]
        for s in stored
        if s["context"]["extensions"]["https://xapitap.github.io/xapi/extensions/source"][  # type: ignore[index]
            "platform"
        ]
        == "segment"
    ]
    assert ids(rows) == segment[-2:]
    reader.close()


def test_statements_per_minute_reads_the_window(tmp_path: Path) -> None:
    store, stored = filled(tmp_path)
    writer = store.writer()
    # Stored at 10:00 (3), 10:01 (the rest but one) and 10:05 (the last one).
    times = ["2026-01-01T10:00:30.000+00:00"] * 3
    times += ["2026-01-01T10:01:59.999+00:00"] * (len(stored) - 4) + [
        "2026-01-01T10:05:00.000+00:00"
    ]
    for seq, at in enumerate(times, 1):
        writer._db.execute("UPDATE statements SET stored_at = ? WHERE seq = ?", (at, seq))
    writer.close()
    reader = store.reader()
    assert reader.stored_per_minute("2026-01-01T10:00:00.000+00:00") == [
        ("2026-01-01T10:00", 3),
        ("2026-01-01T10:01", len(stored) - 4),
        ("2026-01-01T10:05", 1),
    ]
    assert reader.stored_per_minute("2026-01-01T10:01:00.000+00:00")[0] == (
        "2026-01-01T10:01",
        len(stored) - 4,
    )
    assert reader.stored_per_minute("2026-01-01T10:06:00.000+00:00") == []
    assert reader.last_stored_at() == "2026-01-01T10:05:00.000+00:00"
    reader.close()


def test_accounting_lines_keep_when_they_were_first_and_last_seen(tmp_path: Path) -> None:
    store = StoreFile(tmp_path / "s.sqlite3")
    writer = store.writer()
    line = Tally("coursera", "coursera.eventing", "pageview", Fate.IGNORED, "not a player event")
    writer.add([], tallies={line: 1})
    reader = store.reader()
    (first,) = reader.accounting()
    writer.add([], tallies={line: 2})
    (later,) = reader.accounting()
    assert later.count == 3
    assert first.first_seen is not None and later.first_seen == first.first_seen
    assert later.last_seen is not None and later.last_seen >= first.last_seen  # type: ignore[operator]
    writer.close()
    reader.close()


def test_video_statements_carry_what_the_views_need(tmp_path: Path) -> None:
    store, stored = filled(tmp_path)
    reader = store.reader()
    found = list(reader.video_statements())
    assert len(found) == len(stored)  # all of them are Video Profile statements
    paused = next(v for v in found if v.verb.endswith("/paused") and v.played_segments)
    assert paused.progress is not None and paused.length and paused.session_id
    assert paused.name  # the object's name, from its language map
    one = found[0].object_id
    assert {v.object_id for v in reader.video_statements(one)} == {one}
    reader.close()


def test_a_schema_4_store_gains_the_seen_columns(tmp_path: Path) -> None:
    store = StoreFile(tmp_path / "s.sqlite3")
    line = Tally("udemy", "udemy.api", "ecl", Fate.IGNORED, "not a player event")
    writer = store.writer()
    writer.add([], tallies={line: 1})
    for column in ("first_seen", "last_seen"):
        writer._db.execute(f"ALTER TABLE accounting DROP COLUMN {column}")
    writer._db.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    writer.close()
    writer = store.writer()  # migrates
    writer.add([], tallies={line: 1})
    reader = store.reader()
    (row,) = reader.accounting()
    assert row.count == 2 and row.first_seen is None and row.last_seen is not None
    writer.close()
    reader.close()


def test_a_learning_statement_about_a_video_is_not_part_of_its_viewing(tmp_path: Path) -> None:
    """A platform's "lecture completed" carries the video's session-id, but says nothing about
    what was played: the views and the session rows read Video Profile statements only."""
    store, stored = filled(tmp_path)
    paused = next(s for s in stored if str(s["verb"]["id"]).endswith("/paused"))  # type: ignore[index]
    completed = {
        "id": "5b0f3c1e-8a2d-4c3b-9e1f-2a3b4c5d6e7f",
        "actor": paused["actor"],
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/completed",
            "display": {"en-US": "completed"},
        },
        "object": paused["object"],
        "result": {"completion": True},
        "context": {
            "extensions": {EXT + "session-id": paused["context"]["extensions"][EXT + "session-id"]}
        },  # type: ignore[index]
        "timestamp": paused["timestamp"],
    }
    writer = store.writer()
    statement = Statement.model_validate(completed)
    writer.add([(statement, Provenance("udemy", "udemy.ecl", "e", "f"))])
    writer.close()
    reader = store.reader()
    assert len(list(reader.video_statements())) == len(stored)
    sid = completed["context"]["extensions"][EXT + "session-id"]  # type: ignore[index]
    row = next(r for r in reader.sessions() if r.session_id == sid)
    same = [s for s in stored if s["context"]["extensions"][EXT + "session-id"] == sid]  # type: ignore[index]
    assert row.statements == len(same)
    assert row.last_verb == same[-1]["verb"]["id"]  # type: ignore[index]
    reader.close()
