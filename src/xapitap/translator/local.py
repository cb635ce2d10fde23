"""Translation in this process, as the translator process does it: the same records through
the same core. For replays and tests; it never touches a journal, nor the state a proxy's
translator keeps in the store."""

from __future__ import annotations

import time

from xapitap.capture import Capture
from xapitap.journal.format import Kind
from xapitap.journal.format import Record
from xapitap.journal.format import request_payload
from xapitap.matching import RuleMatch
from xapitap.store import StoreFile
from xapitap.translator.config import TranslationConfig
from xapitap.translator.core import Translator

BATCH_RECORDS = 500


class LocalTranslation:
    def __init__(self, store: StoreFile, config: TranslationConfig) -> None:
        self._writer = store.writer()
        self._translator = Translator(self._writer, resume=False)
        self._pending: list[Record] = []
        self._seq = 1
        self.added = 0  # statements new to the store
        self._append(Kind.CONFIG, time.time(), config.model_dump_json().encode())

    def add(self, match: RuleMatch, capture: Capture) -> None:
        payload = request_payload(match, capture)
        self._append(Kind.REQUEST, capture.received_at.timestamp(), payload)

    def _append(self, kind: Kind, at: float, payload: bytes) -> None:
        self._pending.append(Record(self._seq, at, kind, payload))
        self._seq += 1
        if len(self._pending) >= BATCH_RECORDS:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.added += self._translator.apply(self._pending)
            self._pending = []

    def close(self, at: float | None = None) -> None:
        """End every session open (at `at`, the last request's time), store, and close."""
        self._append(Kind.STOP, at if at is not None else time.time(), b"")
        self.flush()
        self._writer.close()
