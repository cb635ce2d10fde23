"""The LRS sink: stored statements to one LRS target, from its own thread, never a hook.

It reads what to send from the store's outbox, so memory stays flat however long the LRS is
away, and it settles each batch in the store as delivery.py judges the LRS's answer.
Transient failures back off exponentially with jitter (or as Retry-After says, and new
statements do not cut that wait short); refused credentials stop the target until the next
start, with the queue kept.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import requests

from xapitap.delivery import Item
from xapitap.delivery import Outcome
from xapitap.delivery import deliver
from xapitap.lrs import LrsClient
from xapitap.sinks import Control
from xapitap.store import Outbox
from xapitap.targets import Target

log = logging.getLogger(__name__)

_IDLE_POLL = 5.0
_FIRST_BACKOFF = 0.5
_PUSH_ATTEMPTS = 8  # a one-off push gives up after this many failures in a row

Progress = Callable[[int, int], None]  # settled in this batch, still queued


class LrsSink:
    def __init__(
        self, target: Target, progress: Progress | None = None, until_empty: bool = False
    ) -> None:
        """`until_empty`: a one-off push, which ends when nothing is queued (or after
        _PUSH_ATTEMPTS failures in a row) instead of waiting for more."""
        self.target = target
        self._progress = progress
        self._until_empty = until_empty
        self.halted: Outcome | None = None  # the outcome that stopped delivery, if any

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def endpoint(self) -> str:
        return self.target.endpoint

    def accepts(self, platform: str, verb_iri: str) -> bool:
        return self.target.accepts(platform, verb_iri)

    def run(self, outbox: Outbox, control: Control) -> None:
        client = LrsClient(self.target)
        try:
            self.halted = self._deliver(outbox, control, client)
        finally:
            client.close()

    def _deliver(self, outbox: Outbox, control: Control, client: LrsClient) -> Outcome | None:
        target = self.target
        outbox.set_target(target.name, target.endpoint, state="sending")
        failures = 0
        negotiated = False

        def give_up() -> bool:
            return control.stop.is_set() or (self._until_empty and failures >= _PUSH_ATTEMPTS)

        def back_off(reason: str, retry_after: float | None = None) -> None:
            nonlocal failures
            failures += 1
            pause = min(target.max_backoff, _FIRST_BACKOFF * 2 ** min(failures, 16))
            pause = retry_after if retry_after is not None else pause * random.uniform(0.5, 1.0)
            log.warning("LRS %s: %s; retrying in %.1f s", target.name, reason, pause)
            control.back_off(pause)

        while not control.stopping:
            if not negotiated:
                try:
                    outbox.set_target(target.name, target.endpoint, version=client.negotiate())
                    negotiated = True
                except requests.RequestException as e:
                    error = f"GET {target.about_url}: {type(e).__name__}: {e}"
                    outbox.settle(target.name, error=error)
                    if give_up():
                        return None
                    back_off(error)
                    continue
            rows = outbox.pending(target.name, target.batch_size, target.batch_bytes)
            if not rows:
                if control.stop.is_set() or self._until_empty:
                    return None
                control.idle(_IDLE_POLL)
                continue
            outcome = deliver(client, [Item(r.seq, r.id, r.json) for r in rows])
            outbox.settle(
                target.name,
                outcome.delivered,
                [(d.seq, d.reason, d.diff) for d in outcome.dead],
                outcome.unsent,
                outcome.error or outcome.auth_failed,
            )
            for letter in outcome.dead:
                log.error("LRS %s refused a statement for good: %s", target.name, letter.reason)
            if self._progress:
                self._progress(len(outcome.delivered) + len(outcome.dead), len(outcome.unsent))
            if outcome.auth_failed:
                outbox.set_target(
                    target.name, target.endpoint, state="stopped: credentials refused"
                )
                log.error(
                    "LRS %s refused our credentials (%s): sending stopped, %d+ statements stay "
                    "queued; fix the credentials and restart",
                    target.name,
                    outcome.auth_failed,
                    len(outcome.unsent),
                )
                return outcome
            if outcome.error:
                if give_up():
                    return outcome  # shutting down or giving up: what failed stays queued
                back_off(outcome.error, outcome.retry_after)
                continue
            failures = 0
        return None
