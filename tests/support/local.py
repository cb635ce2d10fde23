"""Reading what xapitap left behind: its store, and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from xapitap.store import Store


def stored(path: Path) -> list[dict[str, Any]]:
    """Every statement in the store at `path`, in the order stored."""
    store = Store(path)
    try:
        return [json.loads(text) for text in store.statements_json()]
    finally:
        store.close()


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
