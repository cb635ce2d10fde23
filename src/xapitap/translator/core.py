"""Translation from the journal: records in, one store transaction out.

A batch of journal records is translated and committed in one transaction together with
where translation stands (the next record's seq) and what changed in the open sessions: a
translator that dies at any moment resumes exactly where its last commit left off, with the
same sessions, and makes the same statements an uninterrupted one would have made.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from pydantic import ValidationError

from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.capture import Capture
from xapitap.events import AnyEvent
from xapitap.journal.format import Corrupt
from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import read_request
from xapitap.matching import EndpointRule
from xapitap.matching import RuleMatch
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.platforms import all_rules
from xapitap.platforms import registry
from xapitap.platforms.base import Platform
from xapitap.privacy import scrub
from xapitap.privacy import scrub_body
from xapitap.session import VideoSessions
from xapitap.store import StoreError
from xapitap.store import TranslationWriter
from xapitap.store.records import Provenance
from xapitap.store.records import Reject
from xapitap.store.records import Route
from xapitap.store.records import StateChanges
from xapitap.store.records import TranslationState
from xapitap.translator import state as session_state
from xapitap.translator.config import TranslationConfig
from xapitap.xapi.models import canonical_json
from xapitap.xapi.storable import Storable

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    """What one transaction writes."""

    statements: list[tuple[Storable, Provenance]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    quarantined: list[tuple[str, str, Provenance]] = field(default_factory=list)
    translated: list[tuple[str, str]] = field(default_factory=list)
    tallies: Counter[Tally] = field(default_factory=Counter)
    # The requests translated, to keep as rejects if the store refuses the batch.
    requests: list[tuple[RuleMatch, Capture]] = field(default_factory=list)

    def take(self, outcome: Outcome, flow_id: str) -> None:
        self.translated += outcome.translated
        self.tallies.update(outcome.tallies)
        for statement, event in outcome.statements:
            self.statements.append((statement, _provenance(event, flow_id)))
        for item, event in outcome.quarantined:
            log.error("statement refused by the xAPI models: %s", scrub(item.reason))
            self.quarantined.append(
                (canonical_json(item.draft), item.reason, _provenance(event, flow_id))
            )


class Translator:
    """Applies journal records to the pipeline and commits them, a batch at a time."""

    def __init__(self, writer: TranslationWriter, resume: bool = True) -> None:
        """`resume`: go on from the state the store keeps, and keep it there (the journal's
        translator). Without it (a replay), start afresh and leave that state alone."""
        self._writer = writer
        self._resume = resume
        self._rules = _rules_by_name(())
        saved = writer.load_state() if resume else TranslationState()
        self.next_seq = saved.next_seq
        self._config = _config(saved)
        restored = session_state.restore(saved, track_changes=resume)
        # Sessions that could not be restored are replaced in the store by the first commit.
        self._replace_sessions = restored is None
        self._sessions = restored if restored is not None else VideoSessions(track_changes=resume)
        self._pipeline: Pipeline | None = None
        if self._config is not None:
            self._pipeline = self._build(self._config)

    def _build(self, config: TranslationConfig) -> Pipeline:
        # The settings' mapping files bring rules of their own: the journal names them.
        platforms = config.platforms()
        self._rules = _rules_by_name(platforms)
        pipeline = config.pipeline(self._sessions, platforms)
        # Resent events are recognised across restarts too (only this thread asks).
        pipeline.seen_before = self._writer.was_translated
        return pipeline

    def apply(self, records: Sequence[Record], skip: int | None = None) -> int:
        """Translate the records and commit them in one transaction; how many statements were
        new. The record numbered `skip` is not translated but counted: the translator died on
        it, again and again (a crash no exception handler sees)."""
        batch = _Batch()
        new_config: str | None = None
        for record in records:
            if record.seq == skip:
                log.error("journal record %d killed the translator; passed over", record.seq)
                tally = Tally("", "", "", Fate.UNREADABLE, "the translator died on it")
                batch.tallies[tally] += 1
            elif record.kind is Kind.CONFIG:
                try:
                    config = TranslationConfig.model_validate_json(record.payload)
                except ValidationError as e:
                    log.error("journal record %d: settings unreadable: %s", record.seq, e)
                    continue
                self._config, self._pipeline = config, self._build(config)
                new_config = record.payload.decode()
            elif self._pipeline is None or self._config is None:
                log.error("journal record %d comes before any settings; skipped", record.seq)
            elif record.kind is Kind.REQUEST:
                self._request(record, self._pipeline, self._config, batch)
            elif record.kind is Kind.TICK:
                self._ending(batch, functools.partial(self._pipeline.sweep, record.at))
            elif record.kind is Kind.STOP:
                self._ending(batch, self._pipeline.finish)
        self.next_seq = records[-1].seq + 1 if records else self.next_seq
        changes = None
        if self._resume:
            changes = session_state.changes(
                self._sessions, self.next_seq, new_config, replace=self._replace_sessions
            )
            self._replace_sessions = False
        added = self._commit(batch, changes)
        if self._pipeline is not None:
            self._pipeline.forget_seen()  # the store knows them now
        return added

    def _request(
        self, record: Record, pipeline: Pipeline, config: TranslationConfig, batch: _Batch
    ) -> None:
        try:
            match, capture = read_request(record, self._rules)
        except Corrupt as e:
            log.error("journal: %s", e)
            batch.tallies[Tally("", "", "", Fate.UNREADABLE, "journal record unreadable")] += 1
            return
        batch.requests.append((match, capture))
        try:
            outcome = pipeline.process(match, capture)
        except Exception as e:  # a bug must cost one request, never translation
            log.error(
                "could not process a %s request: %s",
                match.rule.name,
                scrub(f"{type(e).__name__}: {e}"),
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            reason = f"{match.rule.name}: internal error: {type(e).__name__}: {e}"[:500]
            batch.rejects.append(_reject(match, capture, reason, config))
            rule = match.rule
            batch.tallies[
                Tally(rule.platform, rule.name, "", Fate.UNREADABLE, "internal error")
            ] += 1
            return
        if outcome.errors:  # the request is kept once, with what could not be read
            log.warning(
                "unreadable in a %s request: %s", match.rule.name, scrub(str(outcome.errors))
            )
            batch.rejects.append(_reject(match, capture, "; ".join(outcome.errors[:5]), config))
        batch.take(outcome, capture.flow_id)

    @staticmethod
    def _ending(batch: _Batch, end: Callable[[], Outcome]) -> None:
        """Sessions that end without a request (idle, or the proxy stopped)."""
        try:
            outcome = end()
        except Exception as e:
            log.error("ending sessions failed: %s", scrub(f"{type(e).__name__}: {e}"))
            return
        batch.take(outcome, "")

    def _commit(self, batch: _Batch, changes: StateChanges | None) -> int:
        """Write, retrying until the store takes it: what was translated is never dropped.
        A batch the store refuses for a reason of its own (a bug) is kept as rejects."""
        counters = {"errors": len(batch.rejects)} if batch.rejects else {}
        delay = 0.5
        while True:
            try:
                return self._writer.add(
                    batch.statements,
                    self._routes(),
                    batch.rejects,
                    counters,
                    batch.quarantined,
                    batch.translated,
                    batch.tallies,
                    state=changes,
                )
            except StoreError as e:
                log.error(
                    "cannot write to %s (%s); retrying in %.0f s", self._writer.path, e, delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 30)
            except Exception as e:  # a value the store cannot take: the batch costs itself
                batch, counters = self._refused(batch, e), {"errors": len(batch.requests)}

    def _refused(self, batch: _Batch, error: Exception) -> _Batch:
        """A batch the store refused for a reason of its own: each request is kept as
        unreadable, with the reason, and translation goes on."""
        reason = scrub(f"internal error while storing: {type(error).__name__}: {error}")[:500]
        log.error("%d analytics requests could not be stored: %s", len(batch.requests), reason)
        refused = _Batch()
        for match, capture in batch.requests:
            assert self._config is not None  # requests are only translated with settings
            refused.rejects.append(_reject(match, capture, reason, self._config))
            rule = match.rule
            refused.tallies[Tally(rule.platform, rule.name, "", Fate.UNREADABLE, "store")] += 1
        return refused

    def _routes(self) -> Sequence[Route]:
        return self._config.routes if self._config is not None else ()


def _rules_by_name(platforms: Iterable[Platform]) -> dict[str, EndpointRule]:
    """The rules a journal record may name: the built-in platforms' and `platforms`'."""
    rules: dict[str, EndpointRule] = {}
    for rule in all_rules(registry(platforms).values()):
        rules.setdefault(rule.name, rule)
    return rules


def _config(saved: TranslationState) -> TranslationConfig | None:
    """The settings in force at the last commit; None before any (or if they cannot be read:
    the proxy journals its settings at every start)."""
    if saved.config is None:
        return None
    try:
        return TranslationConfig.model_validate_json(saved.config)
    except ValidationError as e:
        log.error("the settings kept in the store cannot be read: %s", e)
        return None


def _reject(match: RuleMatch, capture: Capture, reason: str, config: TranslationConfig) -> Reject:
    """What is kept of a request that could not be read: the reason and where it went; its
    body only when asked for (it holds raw learner data), scrubbed."""
    path = capture.path
    for name, value in match.params.items():
        if name == "user" and value:  # a raw user id in the path (Coursera's lecture APIs)
            path = path.replace(value, "redacted-user")
    body = None
    if config.keep_unreadable and capture.size <= config.max_body_bytes:
        body = scrub_body(capture.body)
    return Reject(
        rule=match.rule.name,
        reason=scrub(reason),
        method=capture.method,
        url=scrub(f"{capture.origin}{path}"),
        content_type=capture.header("content-type"),
        content_encoding=capture.header("content-encoding"),
        body=body,
        body_size=capture.size,
        flow_id=capture.flow_id,
    )


def _provenance(event: AnyEvent, flow_id: str) -> Provenance:
    return Provenance(event.platform, event.rule, event.source_event_id, flow_id)
