"""Sends stored statements to an LRS, from a thread of its own, never from a proxy hook.

It reads what to send from the store's outbox, POSTs batches to `…/statements`, and takes a
statement off the outbox only when the LRS answered 2xx. Anything else leaves it queued, with
the error, for the next attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urljoin

import requests

from xapitap.store import Store

log = logging.getLogger(__name__)

XAPI_VERSION = "1.0.3"


@dataclass(frozen=True)
class LrsTarget:
    endpoint: str  # the LRS's xAPI base, ending in "/", e.g. http://127.0.0.1:8100/xAPI/
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def statements_url(self) -> str:
        return urljoin(self.endpoint, "statements")

    @property
    def key(self) -> str:
        """How the store's outbox names this target."""
        return self.endpoint


class Forwarder:
    def __init__(
        self,
        store_path: Path,
        target: LrsTarget,
        batch_size: int = 50,
        timeout: float = 10.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.target = target
        self._store_path = store_path
        self._batch_size = batch_size
        self._timeout = timeout
        self._max_backoff = max_backoff
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="xapitap-forwarder", daemon=True)
        self._session = requests.Session()
        self._session.trust_env = False  # never route LRS traffic back through our own proxy
        if target.username or target.password:
            self._session.auth = (target.username, target.password)
        self._session.headers.update(
            {"X-Experience-API-Version": XAPI_VERSION, "Content-Type": "application/json"}
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
        self._thread.join(flush_seconds + 1)

    def _run(self) -> None:
        store = Store(self._store_path)
        failures = 0
        try:
            while True:
                if self._stop.is_set() and time.monotonic() >= self._deadline:
                    return
                batch = store.pending(self.target.key, self._batch_size)
                if not batch:
                    if self._stop.is_set():
                        return
                    self._wake.wait(timeout=5)
                    self._wake.clear()
                    continue
                error = self._send([text for _, text in batch])
                seqs = [seq for seq, _ in batch]
                if error is None:
                    store.mark_delivered(self.target.key, seqs)
                    failures = 0
                    continue
                store.mark_failed(self.target.key, seqs, error)
                failures += 1
                log.warning(
                    "LRS %s: %s; %d statements stay queued", self.target.endpoint, error, len(seqs)
                )
                if self._stop.is_set():
                    return  # shutting down: no point retrying what just failed
                self._wake.wait(timeout=min(self._max_backoff, 2.0 ** min(failures, 6)))
                self._wake.clear()
        except Exception:
            log.exception("LRS forwarder stopped; undelivered statements stay in the store")
        finally:
            store.close()

    def _send(self, statements_json: list[str]) -> str | None:
        body = "[" + ",".join(statements_json) + "]"
        try:
            response = self._session.post(
                self.target.statements_url, data=body.encode("utf-8"), timeout=self._timeout
            )
        except requests.RequestException as e:
            return f"{type(e).__name__}: {e}"
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"
