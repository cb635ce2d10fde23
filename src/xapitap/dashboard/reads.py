"""What the dashboard's API answers, read from the store's read model off the event loop.

Every read runs in the dashboard's own threads (two), each with its own connection to the
store, and returns the response body already serialized: the event loop only passes bytes
on, and the proxy's own worker threads are never taken by a dashboard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from typing import TypeVar
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from xapitap.dashboard import videos
from xapitap.journal.segments import Backlog
from xapitap.journal.segments import backlog
from xapitap.journal.segments import journal_dir
from xapitap.journal.segments import segments
from xapitap.store import ReadModel
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store.reads import StatementFilter

T = TypeVar("T")
MAX_DEAD_LETTERS = 100


@dataclass(frozen=True)
class About:
    """What the page says about where it runs (nothing secret: no token, no password)."""

    mode: str  # "live" (in the proxy) or "store" (xapitap dashboard)
    store: str
    proxy: str | None = None  # the proxy's address, for "point the browser at …"
    ca: str | None = None  # where the proxy's CA certificate is
    actions: bool = False  # whether retrying dead letters is offered


class Reads:
    """The read model, on threads of the dashboard's own, each with its own connection
    (SQLite connections stay on the thread that opened them, and close there)."""

    def __init__(self, store: Path, threads: int = 2) -> None:
        self._store = StoreFile(store)
        self._jobs: queue.SimpleQueue[Callable[[ReadModel | StoreError], None] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name="xapitap-dashboard", daemon=True)
            for _ in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        reader: ReadModel | StoreError | None = None
        try:
            while (job := self._jobs.get()) is not None:
                if not isinstance(reader, ReadModel):
                    try:
                        reader = self._store.reader()
                    except StoreError as e:  # the job gets the error; the next one retries
                        reader = e
                job(reader)
        finally:
            if isinstance(reader, ReadModel):
                reader.close()

    async def __call__(self, read: Callable[[ReadModel], T]) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()

        def job(reader: ReadModel | StoreError) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                try:
                    if isinstance(reader, StoreError):
                        raise reader
                    result = read(reader)
                except Exception as e:
                    loop.call_soon_threadsafe(_fail, done, e)
                else:
                    loop.call_soon_threadsafe(_succeed, done, result)

        self._jobs.put(job)
        return await done

    async def write(self, change: Callable[[StoreFile], T]) -> T:
        """An action (retrying dead letters) on the same threads, through its own door."""
        return await self(lambda _: change(self._store))

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


def _succeed(future: asyncio.Future[T], result: T) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def statements(reader: ReadModel, after: int | None, limit: int, wanted: StatementFilter) -> bytes:
    """`{"statements": [...], "last": SEQ}`: after `after`, or the newest when None."""
    if after is None:
        rows, last = reader.statements_tail(limit, wanted)
    else:
        rows, last = reader.statements_page(after, limit, wanted)
    listed = ",".join(text for _, text in rows)
    return f'{{"statements":[{listed}],"last":{last}}}'.encode()


def status(reader: ReadModel, about: About, journal_end: Callable[[], int] | None = None) -> bytes:
    """`journal_end`: the proxy's next journal record, where the proxy serves the dashboard
    (then the backlog is known without reading the journal, which a status every second
    would otherwise scan)."""
    if journal_end is not None:
        size = sum(found.size() for found in segments(journal_dir(reader.path)))
        behind = Backlog(max(journal_end() - reader.journal_next_seq(), 0), size, None)
    else:
        behind = backlog(journal_dir(reader.path), reader.journal_next_seq())
    targets = [
        asdict(t) | {"endpoint": _without_credentials(t.endpoint)} for t in reader.target_status()
    ]
    return dumps(
        {
            "about": asdict(about),
            "statements": reader.count_statements(),
            "last_seq": reader.last_seq(),
            "last_stored_at": reader.last_stored_at(),
            "translation": {
                "behind": behind.records,
                "oldest_behind": behind.oldest,
                "journal_bytes": behind.bytes,
            },
            "open_sessions": reader.open_session_count(),
            "accounting": [asdict(row) for row in reader.accounting()],
            "targets": targets,
            "dead_letters": [
                {"target": d.target, "statement_id": d.statement_id, "reason": d.reason}
                for d in reader.dead_letters()[-MAX_DEAD_LETTERS:]
            ],
            "quarantine": [
                {"platform": p, "reason": why, "count": n}
                for p, why, n in reader.quarantine_summary()
            ],
        }
    )


def activity(reader: ReadModel, minutes: int) -> bytes:
    """Statements stored per minute over the last `minutes` of activity: up to now while
    statements arrive, else up to the last one (a store looked at after its study)."""
    last = reader.last_stored_at()
    now = datetime.now(UTC)
    until = now
    if last is not None and datetime.fromisoformat(last) < now - timedelta(minutes=minutes):
        until = datetime.fromisoformat(last)
    since = (until - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    counts = dict(reader.stored_per_minute(since.isoformat(timespec="milliseconds")))
    series = []
    minute = since
    while minute <= until:
        key = minute.isoformat(timespec="minutes").removesuffix("+00:00")
        series.append([key, counts.get(key, 0)])
        minute += timedelta(minutes=1)
    return dumps({"per_minute": series})


def video_list(reader: ReadModel, index: videos.VideoIndex) -> list[dict[str, Any]]:
    """The index brought up to the newest statement, and its summaries."""
    upto = reader.last_seq()
    index.add(reader.video_statements(after=index.seq, upto=upto))
    index.seq = upto
    return index.summaries()


def video_detail(reader: ReadModel, object_id: str) -> bytes | None:
    found = videos.detail(reader.video_statements(object_id))
    return None if found is None else dumps(found)


def _without_credentials(url: str) -> str:
    """An endpoint as shown: never with a user name or password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
