"""The read model: what the store holds, as typed data for the CLI today and a dashboard
tomorrow. It only reads, so it may run while a proxy writes the same store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xapitap.accounting import Fate
from xapitap.store.database import Door
from xapitap.store.records import AccountRow
from xapitap.store.records import DeadLetter
from xapitap.store.records import Quarantined
from xapitap.store.records import Reject
from xapitap.store.records import StoredStatement
from xapitap.store.records import TargetStatus

_EXT = "https://w3id.org/xapi/video/extensions/"


@dataclass(frozen=True)
class SessionSummary:
    session_id: str
    platform: str
    object_id: str
    statements: int
    first: str  # timestamp of its first statement
    last: str  # ... and of its last
    last_verb: str  # IRI
    progress: float | None  # the latest progress it reported
    played_segments: str | None


class ReadModel(Door):
    def journal_next_seq(self) -> int:
        """The next journal record translation will read (1 before any)."""
        found = self._db.execute("SELECT value FROM meta WHERE key = 'journal_next_seq'").fetchone()
        return int(found[0]) if found else 1

    def count_statements(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM statements").fetchone()[0])

    def statements_json(self, after_seq: int = 0) -> Iterator[str]:
        """Every stored statement's JSON, in the order they were stored."""
        cursor = self._db.execute(
            "SELECT json FROM statements WHERE seq > ? ORDER BY seq", (after_seq,)
        )
        for (text,) in cursor:
            yield text

    def statements_after(self, seq: int, limit: int = 100) -> list[StoredStatement]:
        """The next statements stored after sequence number `seq`, oldest first."""
        rows = self._db.rows(
            "SELECT seq, id, platform, verb, object_id, timestamp, json FROM statements"
            " WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        )
        return [StoredStatement(*row) for row in rows]

    def target_status(self) -> list[TargetStatus]:
        counts = {
            (table, target): n
            for table in ("outbox", "delivered", "dead")
            for target, n in self._db.rows(f"SELECT target, COUNT(*) FROM {table} GROUP BY target")
        }
        rows = self._db.rows(
            "SELECT target, endpoint, state, version, last_error, last_error_at, last_success_at,"
            " crashes, last_crash, last_crash_at FROM targets ORDER BY target"
        )
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
                crashes=crashes,
                last_crash=crash,
                last_crash_at=crash_at,
            )
            for (
                t,
                endpoint,
                state,
                version,
                error,
                error_at,
                success_at,
                crashes,
                crash,
                crash_at,
            ) in rows
        ]

    def dead_letters(self, target: str | None = None) -> list[DeadLetter]:
        where, args = ("WHERE d.target = ?", (target,)) if target else ("", ())
        rows = self._db.rows(
            "SELECT d.target, s.id, d.reason, d.diff FROM dead d"
            f" JOIN statements s ON s.seq = d.seq {where} ORDER BY d.target, d.seq",
            args,
        )
        return [DeadLetter(*row) for row in rows]

    def quarantined(self) -> list[Quarantined]:
        """Every statement our models refused, with the reason."""
        return [
            Quarantined(*row)
            for row in self._db.rows("SELECT reason, json FROM quarantine ORDER BY id")
        ]

    def rejects(self) -> list[Reject]:
        rows = self._db.rows(
            "SELECT rule, reason, method, url, content_type, content_encoding, body, body_size,"
            " flow_id FROM rejects ORDER BY id"
        )
        return [Reject(*row) for row in rows]

    def counters(self) -> dict[str, int]:
        return dict(self._db.rows("SELECT name, value FROM counters ORDER BY name"))

    def accounting(self) -> list[AccountRow]:
        """Per platform, rule and event type: requests matched and unreadable, events
        translated, ignored and rejected (with the reason), statements quarantined."""
        rows = self._db.rows(
            "SELECT platform, rule, event_type, outcome, reason, count FROM accounting"
            " ORDER BY platform, rule, event_type, outcome, reason"
        )
        return [AccountRow(p, r, e, Fate(o), why, n) for p, r, e, o, why, n in rows]

    def sessions(self, limit: int = 100) -> list[SessionSummary]:
        """The most recent video sessions, newest first, with what they last reported."""
        rows = self._db.rows(
            "WITH s AS (SELECT seq, platform, verb, object_id, timestamp,"
            f" json_extract(json, '$.context.extensions.\"{_EXT}session-id\"') AS sid,"
            f" json_extract(json, '$.result.extensions.\"{_EXT}progress\"') AS progress,"
            f" json_extract(json, '$.result.extensions.\"{_EXT}played-segments\"') AS segments"
            " FROM statements)"
            " SELECT sid, platform, object_id, COUNT(*), MIN(timestamp), MAX(timestamp),"
            " (SELECT verb FROM s AS l WHERE l.sid = s.sid ORDER BY l.seq DESC LIMIT 1),"
            " (SELECT progress FROM s AS l WHERE l.sid = s.sid AND l.progress IS NOT NULL"
            "  ORDER BY l.seq DESC LIMIT 1),"
            " (SELECT segments FROM s AS l WHERE l.sid = s.sid AND l.segments IS NOT NULL"
            "  ORDER BY l.seq DESC LIMIT 1)"
            " FROM s WHERE sid IS NOT NULL GROUP BY sid ORDER BY MAX(seq) DESC LIMIT ?",
            (limit,),
        )
        return [SessionSummary(*row) for row in rows]
