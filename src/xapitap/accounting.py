"""Accounting: what became of each request and event, counted by platform, rule, event type
and reason, so that a researcher can see what was captured, and what was not and why (a
platform that changed its wire format shows up as ignored or rejected events)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Fate(StrEnum):
    """What became of a request or of one event in it (the accounting's columns)."""

    REQUEST = "request"  # a request matched a rule
    UNREADABLE = "unreadable"  # the request could not be read at all
    TRANSLATED = "translated"  # an event was applied to its session
    IGNORED = "ignored"  # an event understood, with no statement to make
    REJECTED = "rejected"  # an event (a batch item) that could not be read
    QUARANTINED = "quarantined"  # a statement our xAPI models refused


@dataclass(frozen=True)
class Tally:
    """One line of the accounting."""

    platform: str
    rule: str
    event_type: str  # the platform's own name for the event ("" for a whole request)
    fate: Fate
    reason: str = ""
