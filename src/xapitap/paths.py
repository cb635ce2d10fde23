"""Where xapitap keeps its data: `$XAPITAP_HOME`, else `$XDG_DATA_HOME/xapitap`, else
`~/.local/share/xapitap`."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    if home := os.environ.get("XAPITAP_HOME"):
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    return Path(xdg).expanduser() / "xapitap"


def default_store() -> Path:
    return data_dir() / "xapitap.sqlite3"


def default_confdir() -> Path:
    return data_dir() / "mitmproxy"
