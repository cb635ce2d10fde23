"""Sinks: whatever receives statements from the store's outbox, each on a thread of its own.

The LRS forwarder (sinks/lrs.py) is the first. A sink is a name, a rule for which statements
it takes (translation queues those for it), and a `run` that drains its outbox until told to
stop; a file export, a dashboard feed or another store kind plugs in the same way, without
touching translation or the LRS code. A `Supervisor` runs each sink: one that crashes is
restarted with backoff, and the store's status shows that it crashed, when and why.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from xapitap.store import Outbox
from xapitap.store import StoreError
from xapitap.store import StoreFile

log = logging.getLogger(__name__)

_FIRST_RESTART = 0.5
_MAX_RESTART = 60.0


class Control:
    """How a sink's loop is told to wait, wake and stop."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._deadline = float("inf")

    def wake(self) -> None:
        """New statements are in the store."""
        self._wake.set()

    def finish(self, flush_seconds: float) -> None:
        """Stop once `flush_seconds` have passed (or sooner, when nothing is left)."""
        self._deadline = time.monotonic() + flush_seconds
        self.stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Told to stop, and the flush time is over."""
        return self.stop.is_set() and time.monotonic() >= self._deadline

    def idle(self, seconds: float) -> None:
        """Wait for new statements (or `seconds`)."""
        self._wake.wait(timeout=seconds)
        self._wake.clear()

    def back_off(self, seconds: float) -> None:
        """Wait `seconds` whatever arrives meanwhile (a Retry-After holds), unless told to
        stop."""
        self.stop.wait(timeout=seconds)


class Sink(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def endpoint(self) -> str:
        """Where it sends, for status and logs."""
        ...

    def accepts(self, platform: str, verb_iri: str) -> bool: ...

    def run(self, outbox: Outbox, control: Control) -> None:
        """Deliver what is queued for this sink until `control.stopping`."""
        ...


class Supervisor:
    """Runs one sink on its own thread, and restarts it (with backoff) if it crashes."""

    def __init__(self, sink: Sink, store: StoreFile) -> None:
        self.sink = sink
        self.crashes = 0
        self._store = store
        self._control = Control()
        self._thread = threading.Thread(
            target=self._run, name=f"xapitap-sink-{sink.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._control.wake()

    def stop(self, flush_seconds: float, grace: float = 1.0) -> None:
        """Send what can be sent within `flush_seconds`, then stop; the rest stays queued."""
        self._control.finish(flush_seconds)
        self._thread.join(flush_seconds + grace)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while True:
            try:
                outbox = self._store.outbox()
            except StoreError as e:
                log.error("sink %s cannot open the store: %s", self.sink.name, e)
                if not self._pause():
                    return
                continue
            try:
                self.sink.run(outbox, self._control)
                return
            except Exception as e:  # a bug must cost a restart, never the queue
                self.crashes += 1
                log.exception("sink %s crashed; restarting (the queue is kept)", self.sink.name)
                try:
                    reason = f"{type(e).__name__}: {e}"
                    outbox.report_crash(self.sink.name, self.sink.endpoint, reason)
                except StoreError:
                    log.exception("sink %s: cannot record the crash", self.sink.name)
            finally:
                outbox.close()
            if not self._pause():
                return

    def _pause(self) -> bool:
        """Wait before a restart; False when told to stop meanwhile."""
        delay = min(_MAX_RESTART, _FIRST_RESTART * 2 ** min(self.crashes, 10))
        self._control.back_off(delay)
        return not self._control.stop.is_set()
