"""How one batch of statements is delivered, and what every LRS answer means for it.

- 2xx: delivered (a 200 listing fewer ids means the LRS dropped identical duplicates).
- 400, 413, 422: the LRS must refuse a whole batch for one bad statement, so the batch is halved
  until the offending statements stand alone; those are dead-lettered with the LRS's message.
- 409: each statement is looked up; identical ones count as delivered, differing ones are
  dead-lettered as conflicts with a diff, and the rest are sent again.
- 401, 403: the target stops; nothing is dropped.
- 429, 5xx, other answers, timeouts and connection errors: try again later (Retry-After
  honoured); nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from typing import Protocol

import requests

from xapitap.lrs import Reply
from xapitap.lrs import statement_diff


class Client(Protocol):
    def post(self, statements_json: list[str]) -> Reply: ...
    def get(self, statement_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Item:
    seq: int
    id: str
    json: str


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    reason: str
    diff: str | None = None


@dataclass
class Outcome:
    delivered: list[int] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # Not settled: kept in the outbox, tried again later.
    unsent: list[int] = field(default_factory=list)
    error: str | None = None  # why some are unsent (transient)
    retry_after: float | None = None  # seconds, from the LRS
    auth_failed: str | None = None  # the target must stop

    @property
    def halted(self) -> bool:
        return self.error is not None or self.auth_failed is not None


def deliver(client: Client, batch: Sequence[Item], depth: int = 0) -> Outcome:
    out = Outcome()
    _deliver(client, list(batch), out, depth)
    return out


def _deliver(client: Client, batch: list[Item], out: Outcome, depth: int) -> None:
    if not batch:
        return
    if out.halted:
        out.unsent += [i.seq for i in batch]
        return
    try:
        reply = client.post([i.json for i in batch])
    except requests.RequestException as e:
        out.error = f"{type(e).__name__}: {e}"
        out.unsent += [i.seq for i in batch]
        return
    status = reply.status
    if 200 <= status < 300:
        out.delivered += [i.seq for i in batch]
    elif status in (400, 413, 422):  # 422: FastAPI-based LRSs (Ralph) for invalid statements
        if len(batch) == 1:
            out.dead.append(DeadLetter(batch[0].seq, f"HTTP {status}: {reply.text[:1000]}"))
        else:
            half = len(batch) // 2
            _deliver(client, batch[:half], out, depth)
            _deliver(client, batch[half:], out, depth)
    elif status == 409 and depth < 3:
        _resolve_conflicts(client, batch, out, depth)
    elif status in (401, 403):
        out.auth_failed = f"HTTP {status}: {reply.text[:300]}"
        out.unsent += [i.seq for i in batch]
    else:
        out.error = f"HTTP {status}: {reply.text[:300]}"
        out.retry_after = _retry_after(reply)
        out.unsent += [i.seq for i in batch]


def _resolve_conflicts(client: Client, batch: list[Item], out: Outcome, depth: int) -> None:
    again: list[Item] = []
    for n, item in enumerate(batch):
        try:
            theirs = client.get(item.id)
        except requests.RequestException as e:
            out.error = f"checking a 409: {type(e).__name__}: {e}"
            out.unsent += [i.seq for i in again + batch[n:]]
            return
        if theirs is None:
            again.append(item)
            continue
        diff = statement_diff(json.loads(item.json), theirs)
        if diff:
            reason = "HTTP 409: the LRS holds a different statement with this id"
            out.dead.append(DeadLetter(item.seq, reason, "\n".join(diff)))
        else:
            out.delivered.append(item.seq)
    _deliver(client, again, out, depth + 1)


def _retry_after(reply: Reply) -> float | None:
    value = reply.headers.get("Retry-After") or reply.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
