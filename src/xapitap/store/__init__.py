"""The embedded statement store: SQLite, one file, safe to read while the proxy writes.

It holds every statement with where it came from, an outbox per sink (a statement is
committed here before any send, and leaves the outbox only when the sink took it), the
requests that could not be read, the accounting of what the proxy saw, and which source
events were translated. Each role has its own door, opened from a `StoreFile`:
- `IntakeWriter` (store/writer.py): what translation made of the requests;
- `Outbox` (store/outbox.py): what a sink sends, and what became of it;
- `ReadModel` (store/reads.py): what the CLI and a dashboard show.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xapitap.store.database import Database
from xapitap.store.database import StoreError
from xapitap.store.outbox import Outbox
from xapitap.store.reads import ReadModel
from xapitap.store.writer import IntakeWriter

__all__ = ["IntakeWriter", "Outbox", "ReadModel", "StoreError", "StoreFile"]


@dataclass(frozen=True)
class StoreFile:
    """Where the store is, and the doors to it: a worker is handed this, and opens the door
    of its role on its own thread."""

    path: Path

    def create(self) -> None:
        """Make the file and its schema (or migrate it), failing early if it can't."""
        Database(self.path).close()

    def writer(self) -> IntakeWriter:
        return IntakeWriter(self.path)

    def outbox(self) -> Outbox:
        return Outbox(self.path)

    def reader(self) -> ReadModel:
        return ReadModel(self.path)
