"""How far a replay is: a bar on a terminal, a line now and then otherwise."""

from __future__ import annotations

import time
from typing import TextIO

LINE_EVERY = 10_000  # entries between two lines when not on a terminal
REDRAW_SECONDS = 0.1


class Progress:
    def __init__(self, out: TextIO, total_bytes: int) -> None:
        self._out = out
        self._total = max(total_bytes, 1)
        self._tty = out.isatty()
        self._drawn = 0.0

    def show(self, read_bytes: int, entries: int, matched: int, statements: int) -> None:
        if self._tty:
            now = time.monotonic()
            if now - self._drawn < REDRAW_SECONDS:
                return
            self._drawn = now
            share = min(read_bytes / self._total, 1.0)
            bar = "#" * int(30 * share)
            self._out.write(
                f"\r[{bar:.<30}] {share:4.0%}  {entries} entries, {matched} analytics, "
                f"{statements} statements"
            )
            self._out.flush()
        elif entries and entries % LINE_EVERY == 0:
            self._out.write(
                f"xapitap replay: {entries} entries read, {matched} analytics, "
                f"{statements} statements\n"
            )

    def done(self) -> None:
        if self._tty:
            self._out.write("\n")
            self._out.flush()
