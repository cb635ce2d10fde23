"""What the store's doors take and give: plain, typed records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from xapitap.accounting import Fate


@dataclass(frozen=True)
class Provenance:
    platform: str
    rule: str
    source_event_id: str
    flow_id: str


@dataclass(frozen=True)
class Reject:
    rule: str
    reason: str
    method: str
    url: str  # scheme, host and path: query strings can carry tokens
    content_type: str | None
    content_encoding: str | None
    body: bytes | None  # None when it was over the size cap
    body_size: int
    flow_id: str


@dataclass(frozen=True)
class TargetStatus:
    target: str
    endpoint: str
    queued: int
    delivered: int
    dead: int
    state: str
    version: str | None
    last_error: str | None
    last_error_at: str | None
    last_success_at: str | None
    crashes: int = 0
    last_crash: str | None = None
    last_crash_at: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    target: str
    statement_id: str
    reason: str
    diff: str | None


@dataclass(frozen=True)
class Quarantined:
    reason: str
    json: str


@dataclass(frozen=True)
class StoredStatement:
    seq: int
    id: str
    platform: str
    verb: str  # IRI
    object_id: str
    timestamp: str
    json: str


@dataclass(frozen=True)
class AccountRow:
    platform: str
    rule: str
    event_type: str
    fate: Fate
    reason: str
    count: int
    first_seen: str | None = None  # None in stores from before it was kept
    last_seen: str | None = None


@dataclass(frozen=True)
class TranslationState:
    """Where translation stands, as the translator keeps it in the store: the next journal
    record to translate, the settings in force, and the sessions open (and recently ended),
    each a JSON text of the translator's own format."""

    next_seq: int = 1
    config: str | None = None
    counters: str | None = None
    sessions: tuple[str, ...] = ()
    ended: tuple[str, ...] = ()


@dataclass(frozen=True)
class StateChanges:
    """What a transaction changes of the translation state (rows keyed by session key)."""

    next_seq: int
    replace: bool = False  # the sessions below are all there are: drop the others
    config: str | None = None  # when the settings changed
    counters: str | None = None
    sessions: tuple[tuple[str, str], ...] = ()  # upserted
    closed: tuple[str, ...] = ()
    ended: tuple[tuple[str, str], ...] = ()  # upserted
    forgotten: tuple[str, ...] = ()


class Route(Protocol):
    """A sink as the store sees it: a name, and which statements it takes."""

    @property
    def name(self) -> str: ...

    def accepts(self, platform: str, verb_iri: str) -> bool: ...
