"""Sends stored statements to one LRS target, from a thread of its own, never from a hook.

It reads what to send from the store's outbox, so memory stays flat however long the LRS is
away, and it settles each batch in the store as delivery.py judges the LRS's answer.
Transient failures back off exponentially with jitter (or as Retry-After says); refused
credentials stop the target until the next start, with the queue kept.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from xapitap.delivery import Item
from xapitap.delivery import Outcome
from xapitap.delivery import deliver
from xapitap.lrs import LrsClient
from xapitap.store import Store
from xapitap.targets import Target

log = logging.getLogger(__name__)

_IDLE_POLL = 5.0
_FIRST_BACKOFF = 0.5
_PUSH_ATTEMPTS = 8  # a one-off push gives up after this many failures in a row

Progress = Callable[[int, int], None]  # settled in this batch, still queued


class Forwarder:
    def __init__(self, store_path: Path, target: Target) -> None:
        self.target = target
        self._store_path = store_path
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(
            target=self._run, name=f"xapitap-forwarder-{target.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """New statements are in the store."""
        self._wake.set()

    def stop(self, flush_seconds: float) -> None:
        """Send what can be sent within `flush_seconds`, then stop; the rest stays queued."""
        self._deadline = time.monotonic() + flush_seconds
        self._stop.set()
        self._wake.set()
        self._thread.join(flush_seconds + self.target.timeout + 1)

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(timeout=seconds)
        self._wake.clear()

    def _run(self) -> None:
        store = Store(self._store_path)
        try:
            run(store, self.target, self._stop, self._sleep, lambda: self._deadline)
        except Exception:
            log.exception(
                "LRS %s: forwarder stopped; what is queued stays queued", self.target.name
            )
        finally:
            store.close()


def run(
    store: Store,
    target: Target,
    stop: threading.Event,
    sleep: Callable[[float], None],
    deadline: Callable[[], float] = lambda: float("inf"),
    progress: Progress | None = None,
    until_empty: bool = False,
) -> Outcome | None:
    """Deliver the target's outbox until `stop` is set (and `deadline` passed), or, with
    `until_empty`, until nothing is queued. Returns the last outcome that halted delivery."""
    client = LrsClient(target)
    store.set_target(target.name, target.endpoint, state="sending")
    failures = 0
    negotiated = False

    def back_off(reason: str, retry_after: float | None = None) -> None:
        nonlocal failures
        failures += 1
        pause = min(target.max_backoff, _FIRST_BACKOFF * 2 ** min(failures, 16))
        pause = retry_after if retry_after is not None else pause * random.uniform(0.5, 1.0)
        log.warning("LRS %s: %s; retrying in %.1f s", target.name, reason, pause)
        sleep(pause)

    try:
        while not (stop.is_set() and time.monotonic() >= deadline()):
            if not negotiated:
                try:
                    store.set_target(target.name, target.endpoint, version=client.negotiate())
                    negotiated = True
                except requests.RequestException as e:
                    error = f"GET {target.about_url}: {type(e).__name__}: {e}"
                    store.settle(target.name, error=error)
                    if stop.is_set() or (until_empty and failures >= _PUSH_ATTEMPTS):
                        return None
                    back_off(error)
                    continue
            rows = store.pending(target.name, target.batch_size, target.batch_bytes)
            if not rows:
                if stop.is_set() or until_empty:
                    return None
                sleep(_IDLE_POLL)
                continue
            outcome = deliver(client, [Item(*row) for row in rows])
            store.settle(
                target.name,
                outcome.delivered,
                [(d.seq, d.reason, d.diff) for d in outcome.dead],
                outcome.unsent,
                outcome.error or outcome.auth_failed,
            )
            for letter in outcome.dead:
                log.error("LRS %s refused a statement for good: %s", target.name, letter.reason)
            if progress:
                progress(len(outcome.delivered) + len(outcome.dead), len(outcome.unsent))
            if outcome.auth_failed:
                store.set_target(target.name, target.endpoint, state="stopped: credentials refused")
                log.error(
                    "LRS %s refused our credentials (%s): sending stopped, %d+ statements stay "
                    "queued; fix the credentials and restart",
                    target.name,
                    outcome.auth_failed,
                    len(outcome.unsent),
                )
                return outcome
            if outcome.error:
                if stop.is_set() or (until_empty and failures >= _PUSH_ATTEMPTS):
                    return outcome  # shutting down or giving up: what failed stays queued
                back_off(outcome.error, outcome.retry_after)
                continue
            failures = 0
        return None
    finally:
        client.close()
