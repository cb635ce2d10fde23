"""Reading what xapitap left behind: its store, and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xapitap.store import ReadModel


@contextmanager
def reading(path: Path) -> Iterator[ReadModel]:
    """The read model of the store at `path`."""
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
