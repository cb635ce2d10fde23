"""Problems found in a mapping file, each naming its line."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence

from xapitap.mappings.lines import Lines
from xapitap.mappings.lines import where


class MappingError(ValueError):
    """A mapping file that cannot be used: one line per problem, `file.toml:12: key: why`."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


class Problems:
    """Problems collected while a file is checked: every mistake is told, not the first."""

    def __init__(self, source: str, lines: Lines) -> None:
        self._source = source
        self._lines = lines
        self._found: dict[str, tuple[int, int]] = {}  # message: (line, order found)
        self.added = 0  # problems told, a shared one each time

    def add(self, path: Sequence[str | int], message: str) -> None:
        self.added += 1
        line = self._lines.line(path)
        at = f"{self._source}:{line}" if line is not None else self._source
        text = f"{at}: {where(path)}: {message}" if path else f"{at}: {message}"
        # A problem of a shared table is found once per event type that uses it: told once.
        self._found.setdefault(text, (line or 0, len(self._found)))

    def __bool__(self) -> bool:
        return bool(self._found)

    def error(self) -> MappingError:
        return MappingError(sorted(self._found, key=self._found.__getitem__))


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def syntax_error(source: str, error: tomllib.TOMLDecodeError) -> MappingError:
    """A TOML syntax error as the other messages are written: `file.toml:3: ...`."""
    message = str(error)
    found = _AT.search(message)
    if found is None:
        return MappingError([f"{source}: TOML: {message}"])
    text = message[: found.start()]
    return MappingError([f"{source}:{found[1]}: TOML: {text} (column {found[2]})"])
