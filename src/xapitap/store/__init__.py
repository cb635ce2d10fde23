"""The embedded statement store: SQLite, one file, safe to read while the proxy writes.

It holds every statement with where it came from, an outbox per sink (a statement is
committed here before any send, and leaves the outbox only when the sink took it), the
requests that could not be read, the accounting of what the proxy saw, and which source
events were translated. Each role has its own door, opened from a `StoreFile`:
- `TranslationWriter` (store/writer.py): what translation made of the requests;
- `Outbox` (store/outbox.py): what a sink sends, and what became of it;
- `ReadModel` (store/reads.py): what the CLI and a dashboard show.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from xapitap.store.database import Database
from xapitap.store.database import StoreError
from xapitap.store.outbox import Outbox
from xapitap.store.reads import ReadModel
from xapitap.store.writer import TranslationWriter

__all__ = ["Outbox", "ReadModel", "StoreError", "StoreFile", "StoreLock", "TranslationWriter"]


@dataclass(frozen=True)
class StoreFile:
    """Where the store is, and the doors to it: a worker is handed this, and opens the door
    of its role on its own thread."""

    path: Path

    def create(self) -> None:
        """Make the file and its schema (or migrate it), failing early if it can't."""
        Database(self.path).close()

    def writer(self) -> TranslationWriter:
        return TranslationWriter(self.path)

    def outbox(self) -> Outbox:
        return Outbox(self.path)

    def reader(self) -> ReadModel:
        return ReadModel(self.path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> StoreLock:
        """Claim the store for one proxy: StoreError if another process holds it."""
        return StoreLock(self.lock_path)

    def in_use(self) -> bool:
        """Whether a proxy holds the store now."""
        try:
            StoreLock(self.lock_path).release()
        except StoreError:
            return True
        return False


class StoreLock:
    """An exclusive lock on `<store>.lock`, held while a proxy runs (released when its
    process ends, however it ends)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self._fd, 32).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise StoreError(
                f"another xapitap proxy (pid {holder}) uses the store {path.with_suffix('')}; "
                "stop it, or give this one another xapi_store"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, str(os.getpid()).encode())

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock
            self._fd = -1
