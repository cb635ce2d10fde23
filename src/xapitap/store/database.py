"""The store's database: one SQLite file, its schema and migrations, and transactions.

Every door of the store (store/__init__.py) opens its own `Database`: SQLite connections are
not shared between threads. WAL mode lets the CLI and a dashboard read while the proxy
writes. Callers never see `sqlite3.Error`: every failure is a `StoreError`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from contextlib import suppress
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 5
# 1 lacks the dead-letter and target tables, 2 the translated and accounting tables and
# the sinks' crash columns, 3 the translator's state, 4 when each accounting line was first
# and last seen: all are added when such a store is opened.
READABLE_SCHEMAS = (1, 2, 3, 4, 5)

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
CREATE TABLE IF NOT EXISTS accounting (
    platform TEXT NOT NULL,
    rule TEXT NOT NULL,
    event_type TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT,
    last_seen TEXT,
    PRIMARY KEY (platform, rule, event_type, outcome, reason)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_sessions (key TEXT PRIMARY KEY, json TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ended_sessions (key TEXT PRIMARY KEY, json TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS targets (
    target TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    version TEXT,
    state TEXT NOT NULL DEFAULT 'sending',
    last_error TEXT,
    last_error_at TEXT,
    last_success_at TEXT,
    crashes INTEGER NOT NULL DEFAULT 0,
    last_crash TEXT,
    last_crash_at TEXT
);
"""
# Columns added to tables of older schemas (CREATE TABLE IF NOT EXISTS leaves those as
# they were).
_ADDED_COLUMNS = {
    "accounting": (("first_seen", "TEXT"), ("last_seen", "TEXT")),
    "targets": (
        ("crashes", "INTEGER NOT NULL DEFAULT 0"),
        ("last_crash", "TEXT"),
        ("last_crash_at", "TEXT"),
    ),
}


class StoreError(Exception):
    """The store cannot be opened, read or written; the message says which file and why."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _private(path: Path) -> None:
    """The store holds learner data: owner-only (SQLite gives its -wal and -shm files the
    database file's mode).

    An existing file is never opened here: closing any descriptor of a database file drops
    every POSIX lock this process holds on it, under the other connections' feet."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            with suppress(PermissionError):  # another user's store, opened to read
                os.chmod(path, 0o600)


class Database:
    """One connection to the store file, with its schema up to date."""

    def __init__(self, path: Path, durable: bool = False) -> None:
        """`durable`: each commit is on disk when it returns (fsync), not only in order."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _private(path)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"cannot open the store {path}: {e}") from e

    def _current(self) -> bool:
        """Whether the schema is this version's already (then opening writes nothing, so a
        reader never waits for the proxy's writes)."""
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if not has_meta:
            return False
        found = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        return found is not None and found[0] == str(SCHEMA_VERSION)

    def _migrate(self) -> None:
        if self._current():
            return
        with self.transaction():
            for ddl in _SCHEMA.split(";"):
                if ddl.strip():  # executescript() would commit on its own
                    self._db.execute(ddl)
            for table, columns in _ADDED_COLUMNS.items():
                have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns:
                    if name not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
            found = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if found is not None and int(found[0]) not in READABLE_SCHEMAS:
                raise StoreError(
                    f"{self.path} has store schema {found[0]}; this xapitap reads "
                    f"{READABLE_SCHEMAS}"
                )
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: BEGIN IMMEDIATE, so a writer waits for another instead of failing
        half-way."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the store {self.path}: {e}") from e
        try:
            yield
        except BaseException:
            with suppress(sqlite3.Error):  # a connection that is gone committed nothing
                self._db.execute("ROLLBACK")
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StoreError(f"cannot write to the store {self.path}: {e}") from e

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path}: {e}") from e

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        try:
            return self._db.executemany(sql, rows)
        except sqlite3.Error as e:
            raise StoreError(f"store {self.path}: {e}") from e

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, args).fetchall()

    def close(self) -> None:
        self._db.close()


class Door:
    """One role's way into the store: its own connection (one per thread)."""

    durable = False  # whether its commits must be on disk when they return

    def __init__(self, path: Path) -> None:
        self._db = Database(path, durable=self.durable)
        self.path = path

    def close(self) -> None:
        self._db.close()
