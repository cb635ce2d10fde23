"""Translation's door: what the translator made of the requests, written in one transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import replace

from xapitap.accounting import Tally
from xapitap.privacy import scrub
from xapitap.store.database import Door
from xapitap.store.database import now
from xapitap.store.records import Provenance
from xapitap.store.records import Reject
from xapitap.store.records import Route
from xapitap.store.records import StateChanges
from xapitap.store.records import TranslationState
from xapitap.xapi.storable import Storable

# Accounting lines kept at most: event types come from the traffic, so past this many
# lines new ones are counted under OTHER instead (a page cannot grow the table for ever).
MAX_ACCOUNTING_LINES = 2_000
OTHER = "(other)"
MAX_EVENT_TYPE = 200  # characters of an event type's name that are kept
# Unreadable requests kept at most (each with its reason, and its body when asked for);
# beyond, they are only counted.
MAX_REJECTS = 1_000
MAX_REASON = 500  # characters of a reason that are kept (it may quote a value)


class TranslationWriter(Door):
    """Translation's door. Its commits are durable (fsync), because the journal records
    they translate are deleted once they are committed."""

    durable = True

    def add(
        self,
        items: Iterable[tuple[Storable, Provenance]],
        routes: Iterable[Route] = (),
        rejects: Iterable[Reject] = (),
        counters: Mapping[str, int] | None = None,
        quarantined: Iterable[tuple[str, str, Provenance]] = (),
        translated: Iterable[tuple[str, str]] = (),
        tallies: Mapping[Tally, int] | None = None,
        state: StateChanges | None = None,
    ) -> int:
        """Store statements (an id already stored is kept as it was), queue the new ones for
        each route that takes them, keep the rejects, the quarantined statements, the source
        events translated (platform, event id), the accounting, the counters and the
        translation state, all in one transaction. Returns how many statements were new."""
        routes = list(routes)
        items = list(items)
        quarantined = list(quarantined)
        added = 0
        stamp = now()
        db = self._db
        with db.transaction():
            for statement, prov in items:
                cur = db.execute(
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
                    db.executemany(
                        "INSERT INTO outbox (target, seq) VALUES (?, ?)",
                        [
                            (r.name, seq)
                            for r in routes
                            if r.accepts(prov.platform, statement.verb.id)
                        ],
                    )
            rejects = list(rejects)
            (kept,) = db.execute("SELECT COUNT(*) FROM rejects").fetchone()
            room = max(MAX_REJECTS - kept, 0)
            if len(rejects) > room:
                totals_extra = {"unreadable requests not kept (bound reached)": len(rejects) - room}
                rejects = rejects[:room]
            else:
                totals_extra = {}
            db.executemany(
                "INSERT INTO rejects (at, rule, reason, method, url, content_type,"
                " content_encoding, body, body_size, flow_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        stamp,
                        r.rule,
                        scrub(r.reason)[:MAX_REASON],
                        r.method,
                        r.url,
                        r.content_type,
                        r.content_encoding,
                        r.body,
                        r.body_size,
                        r.flow_id,
                    )
                    for r in rejects
                ],
            )
            db.executemany(
                "INSERT INTO quarantine (at, platform, rule, source_event_id, reason, json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (stamp, p.platform, p.rule, p.source_event_id, scrub(reason)[:MAX_REASON], text)
                    for text, reason, p in quarantined
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO translated (platform, event_id) VALUES (?, ?)",
                list(translated),
            )
            self._tally(tallies or {})
            totals = dict(counters or {})
            for name, value in totals_extra.items():
                totals[name] = totals.get(name, 0) + value
            if quarantined:
                totals["quarantined"] = totals.get("quarantined", 0) + len(quarantined)
            if items:
                totals["statements"] = totals.get("statements", 0) + added
                totals["duplicates"] = totals.get("duplicates", 0) + len(items) - added
            db.executemany(
                "INSERT INTO counters VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(totals.items()),
            )
            if state is not None:
                self._save(state)
        return added

    def _save(self, state: StateChanges) -> None:
        db = self._db
        meta = [("journal_next_seq", str(state.next_seq))]
        if state.config is not None:
            meta.append(("translation_config", state.config))
        if state.counters is not None:
            meta.append(("session_counters", state.counters))
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
        if state.replace:
            db.execute("DELETE FROM open_sessions")
            db.execute("DELETE FROM ended_sessions")
        db.executemany("DELETE FROM open_sessions WHERE key = ?", [(k,) for k in state.closed])
        db.executemany("INSERT OR REPLACE INTO open_sessions VALUES (?, ?)", state.sessions)
        db.executemany("DELETE FROM ended_sessions WHERE key = ?", [(k,) for k in state.forgotten])
        db.executemany("INSERT OR REPLACE INTO ended_sessions VALUES (?, ?)", state.ended)

    def load_state(self) -> TranslationState:
        """The translation state the last commit left."""
        meta = dict(
            self._db.rows(
                "SELECT key, value FROM meta WHERE key IN"
                " ('journal_next_seq', 'translation_config', 'session_counters')"
            )
        )
        return TranslationState(
            next_seq=int(meta.get("journal_next_seq", 1)),
            config=meta.get("translation_config"),
            counters=meta.get("session_counters"),
            sessions=tuple(j for (j,) in self._db.rows("SELECT json FROM open_sessions")),
            ended=tuple(j for (j,) in self._db.rows("SELECT json FROM ended_sessions")),
        )

    def _tally(self, tallies: Mapping[Tally, int]) -> None:
        """Add to the accounting. Event types and reasons come from the traffic: they are
        scrubbed and shortened, and past MAX_ACCOUNTING_LINES new ones count as OTHER."""
        if not tallies:
            return
        (lines,) = self._db.execute("SELECT COUNT(*) FROM accounting").fetchone()
        rows: Counter[Tally] = Counter()
        for t, count in tallies.items():
            t = replace(t, event_type=scrub(t.event_type[:MAX_EVENT_TYPE]), reason=scrub(t.reason))
            if lines >= MAX_ACCOUNTING_LINES and not self._known(t):
                t = replace(t, event_type=OTHER)
            rows[t] += count
        at = now()
        self._db.executemany(
            "INSERT INTO accounting VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(platform, rule, event_type, outcome, reason)"
            " DO UPDATE SET count = count + excluded.count, last_seen = excluded.last_seen",
            [
                (t.platform, t.rule, t.event_type, str(t.fate), t.reason, n, at, at)
                for t, n in rows.items()
            ],
        )

    def _known(self, t: Tally) -> bool:
        found = self._db.execute(
            "SELECT 1 FROM accounting WHERE platform = ? AND rule = ? AND event_type = ?"
            " AND outcome = ? AND reason = ?",
            (t.platform, t.rule, t.event_type, str(t.fate), t.reason),
        ).fetchone()
        return found is not None

    def was_translated(self, platform: str, event_id: str) -> bool:
        """Whether a source event was translated before (a resend, after a restart)."""
        found = self._db.execute(
            "SELECT 1 FROM translated WHERE platform = ? AND event_id = ?", (platform, event_id)
        ).fetchone()
        return found is not None
