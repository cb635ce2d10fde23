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
from typing import Protocol

from xapitap.xapi.models import Statement

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1 lacks the dead-letter and target tables, which are added

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
CREATE TABLE IF NOT EXISTS dead (
    target TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES statements(seq),
    reason TEXT NOT NULL,
    diff TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (target, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    platform TEXT NOT NULL,
    rule TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS translated (
    platform TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (platform, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (
    target TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    version TEXT,
    state TEXT NOT NULL DEFAULT 'sending',
    last_error TEXT,
    last_error_at TEXT,
    last_success_at TEXT
);
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
    endpoint: str
    queued: int
    delivered: int
    dead: int
    state: str
    version: str | None
    last_error: str | None
    last_error_at: str | None
    last_success_at: str | None


class Route(Protocol):
    """A delivery target as the store sees it: a name, and which statements it takes."""

    @property
    def name(self) -> str: ...

    def accepts(self, platform: str, verb: str) -> bool: ...


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
            if found is not None and int(found[0]) not in READABLE_SCHEMAS:
                raise RuntimeError(
                    f"{path} has store schema {found[0]}; this xapitap reads {READABLE_SCHEMAS}"
                )
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def add(
        self,
        items: Iterable[tuple[Statement, Provenance]],
        targets: Iterable[Route] = (),
        rejects: Iterable[Reject] = (),
        counters: dict[str, int] | None = None,
        quarantined: Iterable[tuple[str, str, Provenance]] = (),
        translated: Iterable[tuple[str, str]] = (),
    ) -> int:
        """Store statements (an id already stored is kept as it was), queue the new ones for
        each target, keep the rejects, the source events translated (platform, event id) and
        the counts, all in one transaction. Returns how many statements were new."""
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
                    verb = statement.verb.display.get("en-US", "")
                    self._db.executemany(
                        "INSERT INTO outbox (target, seq) VALUES (?, ?)",
                        [(t.name, seq) for t in targets if t.accepts(prov.platform, verb)],
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
            self._db.executemany(
                "INSERT OR IGNORE INTO translated (platform, event_id) VALUES (?, ?)",
                list(translated),
            )
            quarantined = list(quarantined)
            self._db.executemany(
                "INSERT INTO quarantine (at, platform, rule, source_event_id, reason, json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (stamp, p.platform, p.rule, p.source_event_id, reason, text)
                    for text, reason, p in quarantined
                ],
            )
            totals = dict(counters or {})
            if quarantined:
                totals["quarantined"] = totals.get("quarantined", 0) + len(quarantined)
            if items:
                totals["statements"] = totals.get("statements", 0) + added
                totals["duplicates"] = totals.get("duplicates", 0) + len(items) - added
            self._bump(totals)
        return added

    def was_translated(self, platform: str, event_id: str) -> bool:
        """Whether a source event was translated before (a resend, after a restart)."""
        found = self._db.execute(
            "SELECT 1 FROM translated WHERE platform = ? AND event_id = ?", (platform, event_id)
        ).fetchone()
        return found is not None

    def _bump(self, counters: dict[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO counters VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            list(counters.items()),
        )

    def counters(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT name, value FROM counters ORDER BY name"))

    def pending(self, target: str, limit: int, max_bytes: int) -> list[tuple[int, str, str]]:
        """(seq, id, json) of the oldest queued statements: at most `limit` of them and about
        `max_bytes` of JSON, but always at least one."""
        rows = self._db.execute(
            "SELECT s.seq, s.id, s.json FROM outbox o JOIN statements s ON s.seq = o.seq"
            " WHERE o.target = ? ORDER BY o.seq LIMIT ?",
            (target, limit),
        ).fetchall()
        batch: list[tuple[int, str, str]] = []
        size = 0
        for row in rows:
            size += len(row[2]) + 1
            if batch and size > max_bytes:
                break
            batch.append(row)
        return batch

    def settle(
        self,
        target: str,
        delivered: Iterable[int] = (),
        dead: Iterable[tuple[int, str, str | None]] = (),
        unsent: Iterable[int] = (),
        error: str | None = None,
    ) -> None:
        """Record what became of a batch: delivered and dead-lettered statements leave the
        outbox; unsent ones stay, with the error."""
        stamp = now()
        delivered, dead, unsent = list(delivered), list(dead), list(unsent)
        with self._tx():
            gone = [(target, seq) for seq in delivered] + [(target, d[0]) for d in dead]
            self._db.executemany("DELETE FROM outbox WHERE target = ? AND seq = ?", gone)
            self._db.executemany(
                "INSERT OR REPLACE INTO delivered VALUES (?, ?, ?)",
                [(target, seq, stamp) for seq in delivered],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO dead VALUES (?, ?, ?, ?, ?)",
                [(target, seq, reason, diff, stamp) for seq, reason, diff in dead],
            )
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?"
                " WHERE target = ? AND seq = ?",
                [(error, target, seq) for seq in unsent],
            )
            if delivered:
                self._db.execute(
                    "UPDATE targets SET last_success_at = ? WHERE target = ?", (stamp, target)
                )
            if error or dead:
                message = error or dead[-1][1]
                self._db.execute(
                    "UPDATE targets SET last_error = ?, last_error_at = ? WHERE target = ?",
                    (message, stamp, target),
                )

    def set_target(
        self, target: str, endpoint: str, version: str | None = None, state: str | None = None
    ) -> None:
        with self._tx():
            self._db.execute(
                "INSERT INTO targets (target, endpoint) VALUES (?, ?)"
                " ON CONFLICT(target) DO UPDATE SET endpoint = excluded.endpoint",
                (target, endpoint),
            )
            if version is not None:
                self._db.execute(
                    "UPDATE targets SET version = ? WHERE target = ?", (version, target)
                )
            if state is not None:
                self._db.execute("UPDATE targets SET state = ? WHERE target = ?", (state, target))

    def retry_dead(self, target: str | None = None) -> int:
        """Put dead letters back in the outbox (all targets', or one's)."""
        where, args = ("WHERE target = ?", (target,)) if target else ("", ())
        with self._tx():
            self._db.execute(
                f"INSERT OR IGNORE INTO outbox (target, seq) SELECT target, seq FROM dead {where}",
                args,
            )
            return self._db.execute(f"DELETE FROM dead {where}", args).rowcount

    def enqueue_all(self, route: Route) -> int:
        """Queue, for `route`, every stored statement it takes and has not had yet."""
        rows = self._db.execute(
            "SELECT seq, platform, json_extract(json, '$.verb.display.\"en-US\"') FROM statements"
            " WHERE seq NOT IN (SELECT seq FROM delivered WHERE target = ?)"
            " AND seq NOT IN (SELECT seq FROM outbox WHERE target = ?)"
            " AND seq NOT IN (SELECT seq FROM dead WHERE target = ?)",
            (route.name, route.name, route.name),
        ).fetchall()
        chosen = [
            (route.name, seq) for seq, platform, verb in rows if route.accepts(platform, verb or "")
        ]
        with self._tx():
            self._db.executemany("INSERT INTO outbox (target, seq) VALUES (?, ?)", chosen)
        return len(chosen)

    def target_status(self) -> list[TargetStatus]:
        counts = {
            (table, target): n
            for table in ("outbox", "delivered", "dead")
            for target, n in self._db.execute(
                f"SELECT target, COUNT(*) FROM {table} GROUP BY target"
            )
        }
        rows = self._db.execute(
            "SELECT target, endpoint, state, version, last_error, last_error_at, last_success_at"
            " FROM targets ORDER BY target"
        ).fetchall()
        return [
            TargetStatus(
                target=t,
                endpoint=endpoint,
                queued=counts.get(("outbox", t), 0),
                delivered=counts.get(("delivered", t), 0),
                dead=counts.get(("dead", t), 0),
                state=state,
                version=version,
                last_error=error,
                last_error_at=error_at,
                last_success_at=success_at,
            )
            for t, endpoint, state, version, error, error_at, success_at in rows
        ]

    def quarantined(self) -> list[tuple[str, str]]:
        """(reason, statement JSON) of every statement our models refused."""
        return self._db.execute("SELECT reason, json FROM quarantine ORDER BY id").fetchall()

    def dead_letters(self, target: str | None = None) -> list[tuple[str, str, str, str | None]]:
        """(target, statement id, reason, diff) of every dead letter."""
        where, args = ("WHERE d.target = ?", (target,)) if target else ("", ())
        return self._db.execute(
            "SELECT d.target, s.id, d.reason, d.diff FROM dead d"
            f" JOIN statements s ON s.seq = d.seq {where} ORDER BY d.target, d.seq",
            args,
        ).fetchall()

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
