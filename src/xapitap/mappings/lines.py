"""Where each key of a TOML file is written, so that a message can name its line.

`tomllib` gives values, not positions. This scanner reads the lines the way TOML writes keys
(table headers, `key = value`, dotted keys) and remembers the line of each key path; a problem
inside an inline table or an array points at the line of the key that holds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

Path = tuple[str | int, ...]

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*(?P<key>{_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*(?P<key>{_DOTTED})\s*=")
_PART = re.compile(_KEY)


class Lines:
    """Key paths of one TOML text and the (1-based) line each is written on."""

    def __init__(self, text: str) -> None:
        self._at: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string: str | None = None  # the delimiter of a multi-line string being read
        for number, line in enumerate(text.splitlines(), 1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header:
                table = _keys(header["key"])
                self._at.setdefault(table, number)
                continue
            assign = _ASSIGN.match(line)
            if assign:
                self._at.setdefault((*table, *_keys(assign["key"])), number)
                rest = line[assign.end() :]
                for quotes in ('"""', "'''"):
                    if rest.count(quotes) % 2 == 1:
                        in_string = quotes

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of the nearest key that holds it; None if none is known."""
        keys = [str(p) for p in path if not isinstance(p, int)]
        while keys:
            found = self._at.get(tuple(keys))
            if found is not None:
                return found
            keys.pop()
        return None


def _keys(dotted: str) -> tuple[str, ...]:
    parts = []
    for match in _PART.finditer(dotted):
        part = match.group(0)
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def where(path: Sequence[str | int]) -> str:
    """A key path as a message names it: `endpoint.collect.fields.user[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)
            out += f".{text}" if out else text
    return out
