"""The embedded statement store: SQLite, one file, safe to read while the proxy writes.

It holds every statement with where it came from, an outbox per LRS target (a statement is
committed here before any send, and leaves the outbox only when the LRS took it), the requests
that could not be read (with their bodies, so they can be looked at and re-read later), and
counters of what the proxy saw.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path

from xapitap.xapi.models import Statement

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS statements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    verb TEXT NOT NULL,
    object_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    rule TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    target TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES statements(seq),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (target, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivered (
    target TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES statements(seq),
    delivered_at TEXT NOT NULL,
    PRIMARY KEY (target, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    rule TEXT NOT NULL,
    reason TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    content_type TEXT,
    content_encoding TEXT,
    body BLOB,
    body_size INTEGER NOT NULL,
    flow_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Provenance:
    platform: str
    rule: str
    source_event_id: str
    flow_id: str


@dataclass(frozen=True)
class Reject:
    rule: str
    reason: str
    method: str
    url: str  # scheme, host and path: query strings can carry tokens
    content_type: str | None
    content_encoding: str | None
    body: bytes | None  # None when it was over the size cap
    body_size: int
    flow_id: str


@dataclass(frozen=True)
class TargetStatus:
    target: str
    queued: int
    delivered: int
    last_error: str | None


class Store:
    """One connection; use one Store per thread (SQLite connections are not shared)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            for ddl in _SCHEMA.split(";"):
                if ddl.strip():  # executescript() would commit on its own
                    self._db.execute(ddl)
            found = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if found is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(found[0]) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"{path} has store schema {found[0]}; this xapitap reads {SCHEMA_VERSION}"
                )

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def add(
        self,
        items: Iterable[tuple[Statement, Provenance]],
        targets: Iterable[str] = (),
        rejects: Iterable[Reject] = (),
        counters: dict[str, int] | None = None,
    ) -> int:
        """Store statements (an id already stored is kept as it was), queue the new ones for
        each target, keep the rejects and count, all in one transaction. Returns how many
        statements were new."""
        targets = list(targets)
        items = list(items)
        added = 0
        stamp = now()
        with self._tx():
            for statement, prov in items:
                cur = self._db.execute(
                    "INSERT OR IGNORE INTO statements (id, platform, verb, object_id, timestamp,"
                    " rule, source_event_id, flow_id, stored_at, json)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        statement.id,
                        prov.platform,
                        statement.verb.id,
                        statement.object.id,
                        statement.timestamp,
                        prov.rule,
                        prov.source_event_id,
                        prov.flow_id,
                        stamp,
                        statement.to_json(),
                    ),
                )
                if cur.rowcount:
                    added += 1
                    seq = cur.lastrowid
                    self._db.executemany(
                        "INSERT INTO outbox (target, seq) VALUES (?, ?)",
                        [(t, seq) for t in targets],
                    )
            for reject in rejects:
                self._db.execute(
                    "INSERT INTO rejects (at, rule, reason, method, url, content_type,"
                    " content_encoding, body, body_size, flow_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        stamp,
                        reject.rule,
                        reject.reason,
                        reject.method,
                        reject.url,
                        reject.content_type,
                        reject.content_encoding,
                        reject.body,
                        reject.body_size,
                        reject.flow_id,
                    ),
                )
            totals = dict(counters or {})
            if items:
                totals["statements"] = totals.get("statements", 0) + added
                totals["duplicates"] = totals.get("duplicates", 0) + len(items) - added
            self._bump(totals)
        return added

    def _bump(self, counters: dict[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO counters VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            list(counters.items()),
        )

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters ORDER BY name"))

    def pending(self, target: str, limit: int) -> list[tuple[int, str]]:
        return self._db.execute(
            "SELECT s.seq, s.json FROM outbox o JOIN statements s ON s.seq = o.seq"
            " WHERE o.target = ? ORDER BY o.seq LIMIT ?",
            (target, limit),
        ).fetchall()

    def mark_delivered(self, target: str, seqs: Iterable[int]) -> None:
        stamp = now()
        rows = [(target, seq) for seq in seqs]
        with self._tx():
            self._db.executemany("DELETE FROM outbox WHERE target = ? AND seq = ?", rows)
            self._db.executemany(
                "INSERT OR REPLACE INTO delivered VALUES (?, ?, ?)",
                [(t, s, stamp) for t, s in rows],
            )

    def mark_failed(self, target: str, seqs: Iterable[int], error: str) -> None:
        with self._tx():
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?"
                " WHERE target = ? AND seq = ?",
                [(error, target, seq) for seq in seqs],
            )

    def target_status(self) -> list[TargetStatus]:
        rows = self._db.execute(
            "SELECT target, SUM(q), SUM(d), MAX(err) FROM ("
            " SELECT target, 1 AS q, 0 AS d, last_error AS err FROM outbox"
            " UNION ALL SELECT target, 0, 1, NULL FROM delivered)"
            " GROUP BY target ORDER BY target"
        ).fetchall()
        return [TargetStatus(t, int(q), int(d), e) for t, q, d, e in rows]

    def count_statements(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM statements").fetchone()[0])

    def statements_json(self, after_seq: int = 0) -> Iterator[str]:
        """Every stored statement's JSON, in the order they were stored."""
        cursor = self._db.execute(
            "SELECT json FROM statements WHERE seq > ? ORDER BY seq", (after_seq,)
        )
        for (text,) in cursor:
            yield text

    def rejects(self) -> list[Reject]:
        rows = self._db.execute(
            "SELECT rule, reason, method, url, content_type, content_encoding, body, body_size,"
            " flow_id FROM rejects ORDER BY id"
        ).fetchall()
        return [Reject(*row) for row in rows]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
