"""The read model: what the store holds, as typed data for the CLI today and a dashboard
tomorrow. It only reads, so it may run while a proxy writes the same store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from xapitap.accounting import Fate
from xapitap.privacy import PARTICIPANT_HOME
from xapitap.store.database import Door
from xapitap.store.records import AccountRow
from xapitap.store.records import DeadLetter
from xapitap.store.records import Quarantined
from xapitap.store.records import Reject
from xapitap.store.records import StoredStatement
from xapitap.store.records import TargetStatus

_EXT = "https://w3id.org/xapi/video/extensions/"
_VIDEO_TYPE = "https://w3id.org/xapi/video/activity-type/video"
_COURSE_TYPE = "http://adlnet.gov/expapi/activities/course"
# A Video Profile statement names the profile in its category. Learning statements about a
# video carry its session-id too (a transcript shown), but say nothing about playback.
_IN_VIDEO_PROFILE = (
    "EXISTS (SELECT 1 FROM json_each(statements.json, '$.context.contextActivities.category')"
    " WHERE json_extract(value, '$.id') = 'https://w3id.org/xapi/video')"
)
# Who a statement is about, whichever inverse functional identifier it carries.
_ACTOR = (
    "COALESCE(json_extract(json, '$.actor.account.name'),"
    " json_extract(json, '$.actor.mbox_sha1sum'), json_extract(json, '$.actor.mbox'),"
    " json_extract(json, '$.actor.openid'), '')"
)


@dataclass(frozen=True)
class StatementFilter:
    """Which statements a reader wants; an empty field takes any."""

    platform: str = ""
    verb: str = ""  # an IRI, or its last part ("played")
    actor: str = ""  # the start of the actor's identifier (a shortened pseudonym will do)
    video: str = ""  # an object id
    participant: str = ""  # the whole of the actor's identifier
    since: str = ""  # statement timestamps from (ISO 8601 UTC, as stored: ...Z) ...
    until: str = ""  # ... and before

    def sql(self) -> tuple[str, list[object]]:
        """An SQL condition (always true when the filter is empty) and its arguments."""
        terms, args = ["1"], list[object]()
        if self.platform:
            terms.append("platform = ?")
            args.append(self.platform)
        if self.verb:
            terms.append("(verb = ? OR verb LIKE ? ESCAPE '\\')")
            args += [self.verb, "%/" + _like(self.verb)]
        if self.actor:
            terms.append(f"{_ACTOR} LIKE ? ESCAPE '\\'")
            args.append(_like(self.actor) + "%")
        if self.video:
            terms.append("object_id = ?")
            args.append(self.video)
        if self.participant:
            terms.append(f"{_ACTOR} = ?")
            args.append(self.participant)
        if self.since:
            terms.append("timestamp >= ?")
            args.append(self.since)
        if self.until:
            terms.append("timestamp < ?")
            args.append(self.until)
        return " AND ".join(terms), args


def _like(text: str) -> str:
    """`text` matched literally in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class VideoStatement:
    """What the video views need of one Video Profile statement."""

    seq: int
    session_id: str
    object_id: str
    platform: str
    name: str | None  # the object's name, in the first language it has
    actor: str
    verb: str  # IRI
    timestamp: str
    length: float | None
    time: float | None
    time_from: float | None
    time_to: float | None
    progress: float | None
    played_segments: str | None
    course: str | None = None  # the grouping activity of type course


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


def _first_name(language_map: str | None) -> str | None:
    """The first name of a language map's JSON."""
    if not language_map:
        return None
    try:
        names = json.loads(language_map)
    except ValueError:
        return None
    if isinstance(names, dict):
        return next((str(v) for v in names.values()), None)
    return None


class ReadModel(Door):
    def journal_next_seq(self) -> int:
        """The next journal record translation will read (1 before any)."""
        found = self._db.execute("SELECT value FROM meta WHERE key = 'journal_next_seq'").fetchone()
        return int(found[0]) if found else 1

    def last_seq(self) -> int:
        """The sequence number of the newest statement (0 when there is none)."""
        found = self._db.execute("SELECT seq FROM statements ORDER BY seq DESC LIMIT 1")
        row = found.fetchone()
        return int(row[0]) if row else 0

    def statements_page(
        self, after: int, limit: int, wanted: StatementFilter = StatementFilter()
    ) -> tuple[list[tuple[int, str]], int]:
        """Up to `limit` statements stored after `after` that `wanted` takes, oldest first,
        as (seq, JSON); and the sequence number to go on from, which is past every
        statement looked at, matching or not (so a filtered reader does not look twice)."""
        upto = self.last_seq()
        where, args = wanted.sql()
        rows = self._db.rows(
            f"SELECT seq, json FROM statements WHERE seq > ? AND seq <= ? AND {where}"
            " ORDER BY seq LIMIT ?",
            [after, upto, *args, limit],
        )
        last = rows[-1][0] if len(rows) == limit else max(upto, after)
        return [(int(seq), text) for seq, text in rows], last

    def statements_tail(
        self, limit: int, wanted: StatementFilter = StatementFilter()
    ) -> tuple[list[tuple[int, str]], int]:
        """The newest `limit` statements `wanted` takes, oldest first, and the newest
        statement's sequence number (where a live reader goes on from)."""
        upto = self.last_seq()
        where, args = wanted.sql()
        rows = self._db.rows(
            f"SELECT seq, json FROM statements WHERE seq <= ? AND {where}"
            " ORDER BY seq DESC LIMIT ?",
            [upto, *args, limit],
        )
        return [(int(seq), text) for seq, text in reversed(rows)], upto

    def stored_per_minute(self, since: str) -> list[tuple[str, int]]:
        """Statements stored per minute (`YYYY-MM-DDTHH:MM`) from the ISO time `since`.

        Statements are stored in time order, so the first one in the window is found by
        bisecting sequence numbers, and only the window is read."""
        low, high = 0, self.last_seq()
        while low < high:
            mid = (low + high) // 2
            found = self._db.execute(
                "SELECT stored_at FROM statements WHERE seq > ? ORDER BY seq LIMIT 1", (mid,)
            ).fetchone()
            if found is None or found[0] >= since:
                high = mid
            else:
                low = mid + 1
        rows = self._db.rows(
            "SELECT substr(stored_at, 1, 16), COUNT(*) FROM statements WHERE seq > ?"
            " GROUP BY 1 ORDER BY 1",
            (low,),
        )
        return [(minute, int(n)) for minute, n in rows]

    def last_stored_at(self) -> str | None:
        found = self._db.execute(
            "SELECT stored_at FROM statements ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return str(found[0]) if found else None

    def video_statements(
        self,
        object_id: str | None = None,
        wanted: StatementFilter = StatementFilter(),
        after: int = 0,
        upto: int | None = None,
    ) -> Iterator[VideoStatement]:
        """Every Video Profile statement (of one video, or of all) that `wanted` takes, in
        the order stored; only those stored after `after` and up to `upto`, if given."""
        condition, args = wanted.sql()
        where = f"AND {condition} AND seq > ?"
        args.append(after)
        if upto is not None:
            where += " AND seq <= ?"
            args.append(upto)
        if object_id:
            where += " AND object_id = ?"
            args.append(object_id)

        def ext(part: str, name: str) -> str:
            return f"json_extract(json, '$.{part}.extensions.\"{_EXT}{name}\"')"

        cursor = self._db.execute(
            f"SELECT seq, {ext('context', 'session-id')}, object_id, platform,"
            " json_extract(json, '$.object.definition.name'),"
            f" {_ACTOR}, verb, timestamp, {ext('context', 'length')},"
            f" {ext('result', 'time')}, {ext('result', 'time-from')},"
            f" {ext('result', 'time-to')}, {ext('result', 'progress')},"
            f" {ext('result', 'played-segments')},"
            " (SELECT json_extract(value, '$.id') FROM"
            "  json_each(statements.json, '$.context.contextActivities.grouping')"
            "  WHERE json_extract(value, '$.definition.type') = ? LIMIT 1)"
            " FROM statements WHERE json_extract(json, '$.object.definition.type') = ?"
            f" AND {_IN_VIDEO_PROFILE} {where} ORDER BY seq",
            [_COURSE_TYPE, _VIDEO_TYPE, *args],
        )
        for seq, sid, obj, platform, name, *rest in cursor:
            if sid is not None:
                yield VideoStatement(seq, str(sid), obj, platform, _first_name(name), *rest)

    def has_statement(self, statement_id: str) -> bool:
        found = self._db.execute("SELECT 1 FROM statements WHERE id = ?", (statement_id,))
        return found.fetchone() is not None

    def count_statements(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM statements").fetchone()[0])

    def statements_json(
        self, after_seq: int = 0, wanted: StatementFilter = StatementFilter()
    ) -> Iterator[str]:
        """Every stored statement's JSON that `wanted` takes, in the order they were
        stored."""
        where, args = wanted.sql()
        cursor = self._db.execute(
            f"SELECT json FROM statements WHERE seq > ? AND {where} ORDER BY seq",
            [after_seq, *args],
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

    def quarantine_summary(self) -> list[tuple[str, str, int]]:
        """How many statements our models refused, per platform and reason."""
        rows = self._db.rows(
            "SELECT platform, reason, COUNT(*) FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC"
        )
        return [(p, why, int(n)) for p, why, n in rows]

    def participants(self, only: str = "") -> list[tuple[str, int, int, str]]:
        """Per participant (actors named by xapi_actor=participant): statements, video
        sessions, and the last statement's time."""
        where, args = (
            ("AND json_extract(json, '$.actor.account.name') = ?", [only]) if only else ("", [])
        )
        rows = self._db.rows(
            "SELECT json_extract(json, '$.actor.account.name') AS who, COUNT(*),"
            f" COUNT(DISTINCT json_extract(json, '$.context.extensions.\"{_EXT}session-id\"')),"
            " MAX(timestamp) FROM statements"
            f" WHERE json_extract(json, '$.actor.account.homePage') = ? {where}"
            " GROUP BY who ORDER BY who",
            [PARTICIPANT_HOME, *args],
        )
        return [(str(who), int(n), int(sessions), str(last)) for who, n, sessions, last in rows]

    def open_session_count(self) -> int:
        """Video sessions translation holds open (kept across restarts)."""
        return int(self._db.execute("SELECT COUNT(*) FROM open_sessions").fetchone()[0])

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
            "SELECT platform, rule, event_type, outcome, reason, count, first_seen, last_seen"
            " FROM accounting ORDER BY platform, rule, event_type, outcome, reason"
        )
        return [AccountRow(p, r, e, Fate(o), *rest) for p, r, e, o, *rest in rows]

    def sessions(self, limit: int = 100) -> list[SessionSummary]:
        """The most recent video sessions, newest first, with what they last reported."""
        rows = self._db.rows(
            "WITH s AS (SELECT seq, platform, verb, object_id, timestamp,"
            f" json_extract(json, '$.context.extensions.\"{_EXT}session-id\"') AS sid,"
            f" json_extract(json, '$.result.extensions.\"{_EXT}progress\"') AS progress,"
            f" json_extract(json, '$.result.extensions.\"{_EXT}played-segments\"') AS segments"
            f" FROM statements WHERE {_IN_VIDEO_PROFILE})"
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
