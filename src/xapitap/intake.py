"""The queue between the proxy hook and the pipeline, and the thread that empties it.

The hook only copies the request and queues it; decoding, translation and the SQLite write
happen here, in arrival order. The queue is bounded by bytes: when it is full, the hook waits
(asynchronously, delaying only that request) instead of dropping anything.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

from xapitap.capture import Capture
from xapitap.matching import RuleMatch
from xapitap.pipeline import Pipeline
from xapitap.store import Provenance
from xapitap.store import Reject
from xapitap.store import Store

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUED_BYTES = 32 * 1024 * 1024
_BATCH = 200
_STOP = None


class Intake:
    def __init__(
        self,
        pipeline: Pipeline,
        store_path: Path,
        targets: Sequence[str],
        max_body_bytes: int,
        on_stored: Callable[[], None] = lambda: None,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
    ) -> None:
        self._pipeline = pipeline
        self._store_path = store_path
        self._targets = list(targets)
        self._max_body_bytes = max_body_bytes
        self._on_stored = on_stored
        self._max_queued_bytes = max_queued_bytes
        self._queue: queue.SimpleQueue[tuple[RuleMatch, Capture] | None] = queue.SimpleQueue()
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="xapitap-intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def has_room(self) -> bool:
        return self._queued_bytes < self._max_queued_bytes

    def submit(self, match: RuleMatch, capture: Capture) -> None:
        with self._lock:
            self._queued_bytes += len(capture.body)
        self._queue.put((match, capture))

    def stop(self, timeout: float) -> None:
        """Process everything queued so far, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("intake did not finish within %.0f s; queued requests are lost", timeout)

    def _run(self) -> None:
        store = Store(self._store_path)
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while item is not _STOP and len(batch) < _BATCH:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                work = [i for i in batch if i is not None]
                if work:
                    self._process(store, work)
                if len(work) < len(batch):
                    return
        finally:
            store.close()

    def _process(self, store: Store, work: list[tuple[RuleMatch, Capture]]) -> None:
        stored = []
        counters: Counter[str] = Counter()
        for match, capture in work:
            counters[f"requests {match.rule.name}"] += 1
            try:
                outcome = self._pipeline.process(match, capture)
            except Exception as e:  # a bug must cost one request, never the proxy
                log.exception("could not process %s request", match.rule.name)
                reason = f"{match.rule.name}: internal error: {type(e).__name__}: {e}"
                self._reject(store, match, capture, reason)
                counters["errors"] += 1
                continue
            for reason in outcome.ignored:
                counters[f"ignored {reason}"] += 1
            for error in outcome.errors:
                log.warning("unreadable %s request: %s", match.rule.name, error)
                self._reject(store, match, capture, error)
                counters["errors"] += 1
            for statement, event in outcome.statements:
                prov = Provenance(
                    event.platform, event.rule, event.source_event_id, capture.flow_id
                )
                stored.append((statement, prov))
        added = store.add(stored, self._targets)
        counters["statements"] += added
        counters["duplicates"] += len(stored) - added
        store.bump(dict(counters))
        with self._lock:
            self._queued_bytes -= sum(len(c.body) for _, c in work)
        if added:
            self._on_stored()

    def _reject(self, store: Store, match: RuleMatch, capture: Capture, reason: str) -> None:
        keep = len(capture.body) <= self._max_body_bytes
        store.add_reject(
            Reject(
                rule=match.rule.name,
                reason=reason,
                method=capture.method,
                url=f"{capture.origin}{capture.path}",
                content_type=capture.header("content-type"),
                content_encoding=capture.header("content-encoding"),
                body=capture.body if keep else None,
                body_size=len(capture.body),
                flow_id=capture.flow_id,
            )
        )
