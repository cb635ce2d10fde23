"""The queue between the proxy hook and the pipeline, and the thread that empties it.

The hook only copies the request and queues it; decoding, translation and the SQLite write
happen here, in arrival order, and the hook is told when a request's statements are
committed. The queue is bounded by bytes: when it is full, the hook holds the request
(asynchronously, delaying only that request, up to 2 s) instead of dropping anything.
Idle sessions are ended here too, and every open session when the intake stops.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import NamedTuple

from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.capture import Capture
from xapitap.events import VideoEvent
from xapitap.matching import RuleMatch
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.privacy import scrub
from xapitap.privacy import scrub_body
from xapitap.store import IntakeWriter
from xapitap.store import StoreError
from xapitap.store import StoreFile
from xapitap.store.records import Provenance
from xapitap.store.records import Reject
from xapitap.store.records import Route
from xapitap.xapi.models import Statement
from xapitap.xapi.models import canonical_json

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024
_BATCH = 200
SWEEP_SECONDS = 30.0  # how often idle sessions are looked for
_STOP = None


class _Work(NamedTuple):
    match: RuleMatch
    capture: Capture
    stored: Callable[[], None] | None


class Intake:
    def __init__(
        self,
        pipeline: Pipeline,
        store: StoreFile,
        routes: Sequence[Route],
        max_body_bytes: int,
        on_stored: Callable[[], None] = lambda: None,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        keep_unreadable: bool = False,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._routes = list(routes)
        self._max_body_bytes = max_body_bytes
        self._on_stored = on_stored
        self._max_queued_bytes = max_queued_bytes
        self._keep_unreadable = keep_unreadable
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="xapitap-intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def has_room(self) -> bool:
        return self._queued_bytes < self._max_queued_bytes

    def submit(
        self, match: RuleMatch, capture: Capture, stored: Callable[[], None] | None = None
    ) -> None:
        """Queue a request; `stored` is called (from the intake thread) once what it gave
        is committed to the store."""
        with self._lock:
            self._queued_bytes += len(capture.body)
        self._queue.put(_Work(match, capture, stored))

    def stop(self, timeout: float) -> None:
        """Process everything queued so far, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("intake did not finish within %.0f s; queued requests are lost", timeout)

    def _run(self) -> None:
        store = self._store.writer()
        # Resent events are recognised across restarts too (only this thread asks).
        self._pipeline.seen_before = store.was_translated
        try:
            while True:
                try:
                    item = self._queue.get(timeout=SWEEP_SECONDS)
                except queue.Empty:
                    self._guarded(lambda: self._write_ended(store, self._sweep()))
                    continue
                batch = [item]
                while item is not _STOP and len(batch) < _BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                work = [i for i in batch if i is not None]
                if work:
                    try:
                        self._process(store, work)
                    except Exception as e:  # nothing a request holds may stop the intake
                        self._failed(store, work, e)
                if len(work) < len(batch):
                    self._guarded(lambda: self._write_ended(store, self._pipeline.finish()))
                    return
        finally:
            store.close()

    def _sweep(self) -> Outcome:
        return self._pipeline.sweep(datetime.now(UTC))

    @staticmethod
    def _guarded(step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as e:
            log.error("ending idle sessions failed: %s", scrub(f"{type(e).__name__}: {e}"))

    def _failed(self, store: IntakeWriter, work: list[_Work], error: Exception) -> None:
        """A batch that could not be stored for a reason of its own (not the store's): each
        request is kept as unreadable, with the reason, and the intake goes on."""
        reason = scrub(f"internal error while storing: {type(error).__name__}: {error}")[:500]
        log.error("%d analytics requests could not be stored: %s", len(work), reason)
        rejects = [self._reject(w.match, w.capture, reason) for w in work]
        try:
            store.add([], (), rejects, {"errors": len(rejects)})
        except Exception as e:
            log.error("cannot record them either: %s", scrub(f"{type(e).__name__}: {e}"))
        with self._lock:
            self._queued_bytes -= sum(len(w.capture.body) for w in work)
        for w in work:
            if w.stored is not None:
                w.stored()

    def _write_ended(self, store: IntakeWriter, ended: Outcome) -> None:
        """Store the closing statements of sessions that ended without a request."""
        stored = [(s, _provenance(e, "")) for s, e in ended.statements]
        quarantined = [
            (canonical_json(q.draft), q.reason, _provenance(e, "")) for q, e in ended.quarantined
        ]
        if (stored or quarantined) and self._write(store, stored, [], {}, quarantined, [], {}):
            self._on_stored()

    def _process(self, store: IntakeWriter, work: list[_Work]) -> None:
        stored = []
        rejects = []
        quarantined: list[tuple[str, str, Provenance]] = []
        translated: list[tuple[str, str]] = []
        tallies: Counter[Tally] = Counter()
        counters: Counter[str] = Counter()
        for match, capture, _ in work:
            try:
                outcome = self._pipeline.process(match, capture)
            except Exception as e:  # a bug must cost one request, never the proxy
                log.error(
                    "could not process a %s request: %s",
                    match.rule.name,
                    scrub(f"{type(e).__name__}: {e}"),
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                reason = f"{match.rule.name}: internal error: {type(e).__name__}: {e}"[:500]
                rejects.append(self._reject(match, capture, reason))
                rule = match.rule
                tallies[Tally(rule.platform, rule.name, "", Fate.UNREADABLE, "internal error")] += 1
                continue
            translated += outcome.translated
            tallies.update(outcome.tallies)
            if outcome.errors:  # the request is kept once, with what could not be read
                log.warning(
                    "unreadable in a %s request: %s", match.rule.name, scrub(str(outcome.errors))
                )
                rejects.append(self._reject(match, capture, "; ".join(outcome.errors[:5])))
            for statement, event in outcome.statements:
                stored.append((statement, _provenance(event, capture.flow_id)))
            for item, event in outcome.quarantined:
                log.error("statement refused by the xAPI models: %s", scrub(item.reason))
                quarantined.append(
                    (canonical_json(item.draft), item.reason, _provenance(event, capture.flow_id))
                )
        counters["errors"] += len(rejects)
        added = self._write(store, stored, rejects, counters, quarantined, translated, tallies)
        with self._lock:
            self._queued_bytes -= sum(len(w.capture.body) for w in work)
        for w in work:
            if w.stored is not None:
                w.stored()
        if added:
            self._on_stored()

    def _write(
        self,
        store: IntakeWriter,
        stored: list[tuple[Statement, Provenance]],
        rejects: list[Reject],
        counters: dict[str, int],
        quarantined: list[tuple[str, str, Provenance]],
        translated: Sequence[tuple[str, str]],
        tallies: dict[Tally, int],
    ) -> int:
        """Write, retrying until the store takes it: what was translated is never dropped.

        Meanwhile the queue fills, and then the hook holds new analytics requests back.
        """
        delay = 0.5
        while True:
            try:
                return store.add(
                    stored, self._routes, rejects, counters, quarantined, translated, tallies
                )
            except StoreError as e:
                log.error("cannot write to %s (%s); retrying in %.0f s", store.path, e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30)

    def _reject(self, match: RuleMatch, capture: Capture, reason: str) -> Reject:
        """What is kept of a request that could not be read: the reason and where it went;
        its body only when asked for (it holds raw learner data), scrubbed."""
        path = capture.path
        for name, value in match.params.items():
            if name == "user" and value:  # a raw user id in the path (Coursera's lecture APIs)
                path = path.replace(value, "redacted-user")
        body = None
        if self._keep_unreadable and len(capture.body) <= self._max_body_bytes:
            body = scrub_body(capture.body)
        return Reject(
            rule=match.rule.name,
            reason=scrub(reason),
            method=capture.method,
            url=scrub(f"{capture.origin}{path}"),
            content_type=capture.header("content-type"),
            content_encoding=capture.header("content-encoding"),
            body=body,
            body_size=len(capture.body),
            flow_id=capture.flow_id,
        )


def _provenance(event: VideoEvent, flow_id: str) -> Provenance:
    return Provenance(event.platform, event.rule, event.source_event_id, flow_id)
