"""A sink's door: what is queued for it, and what became of what it sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xapitap.privacy import scrub
from xapitap.store.database import Door
from xapitap.store.database import now
from xapitap.store.records import Route


@dataclass(frozen=True)
class Queued:
    seq: int
    id: str
    json: str


class Outbox(Door):
    def pending(self, target: str, limit: int, max_bytes: int) -> list[Queued]:
        """The oldest queued statements: at most `limit` of them and about `max_bytes` of
        JSON, but always at least one."""
        rows = self._db.rows(
            "SELECT s.seq, s.id, s.json FROM outbox o JOIN statements s ON s.seq = o.seq"
            " WHERE o.target = ? ORDER BY o.seq LIMIT ?",
            (target, limit),
        )
        batch: list[Queued] = []
        size = 0
        for seq, statement_id, text in rows:
            size += len(text) + 1
            if batch and size > max_bytes:
                break
            batch.append(Queued(seq, statement_id, text))
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
        delivered, unsent = list(delivered), list(unsent)
        # Reasons come from outside (an LRS's answer): no e-mails in the store.
        dead = [(seq, scrub(reason), diff and scrub(diff)) for seq, reason, diff in dead]
        error = error and scrub(error)
        db = self._db
        with db.transaction():
            gone = [(target, seq) for seq in delivered] + [(target, d[0]) for d in dead]
            db.executemany("DELETE FROM outbox WHERE target = ? AND seq = ?", gone)
            db.executemany(
                "INSERT OR REPLACE INTO delivered VALUES (?, ?, ?)",
                [(target, seq, stamp) for seq in delivered],
            )
            db.executemany(
                "INSERT OR REPLACE INTO dead VALUES (?, ?, ?, ?, ?)",
                [(target, seq, reason, diff, stamp) for seq, reason, diff in dead],
            )
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?"
                " WHERE target = ? AND seq = ?",
                [(error, target, seq) for seq in unsent],
            )
            if delivered:
                db.execute(
                    "UPDATE targets SET last_success_at = ? WHERE target = ?", (stamp, target)
                )
            if error or dead:
                message = error or dead[-1][1]
                db.execute(
                    "UPDATE targets SET last_error = ?, last_error_at = ? WHERE target = ?",
                    (message, stamp, target),
                )

    def set_target(
        self, target: str, endpoint: str, version: str | None = None, state: str | None = None
    ) -> None:
        with self._db.transaction():
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

    def report_crash(self, target: str, endpoint: str, reason: str) -> None:
        """A sink stopped on an error of its own: count it, and say when and why."""
        stamp = now()
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO targets (target, endpoint) VALUES (?, ?)"
                " ON CONFLICT(target) DO NOTHING",
                (target, endpoint),
            )
            self._db.execute(
                "UPDATE targets SET state = 'crashed; restarting', crashes = crashes + 1,"
                " last_crash = ?, last_crash_at = ? WHERE target = ?",
                (reason, stamp, target),
            )

    def retry_dead(self, target: str | None = None) -> int:
        """Put dead letters back in the outbox (all targets', or one's)."""
        where, args = ("WHERE target = ?", (target,)) if target else ("", ())
        with self._db.transaction():
            self._db.execute(
                f"INSERT OR IGNORE INTO outbox (target, seq) SELECT target, seq FROM dead {where}",
                args,
            )
            return self._db.execute(f"DELETE FROM dead {where}", args).rowcount

    def enqueue_all(self, route: Route) -> int:
        """Queue, for `route`, every stored statement it takes and has not had yet."""
        rows = self._db.rows(
            "SELECT seq, platform, verb FROM statements"
            " WHERE seq NOT IN (SELECT seq FROM delivered WHERE target = ?)"
            " AND seq NOT IN (SELECT seq FROM outbox WHERE target = ?)"
            " AND seq NOT IN (SELECT seq FROM dead WHERE target = ?)",
            (route.name, route.name, route.name),
        )
        chosen = [
            (route.name, seq) for seq, platform, verb in rows if route.accepts(platform, verb)
        ]
        with self._db.transaction():
            self._db.executemany("INSERT INTO outbox (target, seq) VALUES (?, ?)", chosen)
        return len(chosen)

    def queued(self, target: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE target = ?", (target,)
        ).fetchone()
        return int(count)
