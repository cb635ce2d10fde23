"""Reading what xapitap left behind: its store, and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xapitap.journal.segments import backlog
from xapitap.journal.segments import journal_dir
from xapitap.store import ReadModel


def translated(path: Path, timeout: float = 30) -> bool:
    """Wait until everything journaled for the store at `path` is translated (a request is
    acknowledged once journaled; its statements come a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        reader = ReadModel(path)
        try:
            behind = backlog(journal_dir(path), reader.journal_next_seq()).records
        finally:
            reader.close()
        if behind == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@contextmanager
def reading(path: Path, settled: bool = True) -> Iterator[ReadModel]:
    """The read model of the store at `path`, once what was journaled is translated
    (`settled`), or as it is now."""
    if settled:
        translated(path)
    reader = ReadModel(path)
    try:
        yield reader
    finally:
        reader.close()


def stored(path: Path) -> list[dict[str, Any]]:
    """Every statement in the store at `path`, in the order stored."""
    with reading(path) as reader:
        return [json.loads(text) for text in reader.statements_json()]


def cli(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `xapitap ARGS` with this Python."""
    return subprocess.run(
        [sys.executable, "-m", "xapitap", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=check,
    )
