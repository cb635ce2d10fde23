"""Mapping files: a site's analytics described in TOML instead of a platform module.

A mapping says which requests are the site's analytics (endpoint rules, matched as the
built-in platforms' are), where the events are in a body or query string, and what each
event type means: a player action (a `VideoEvent`, which feeds the session model) or a
learning event (a `LearningEvent`). It holds data only (paths, templates, constants): it
cannot run code. The format: mappings.example/README.md.

A file is checked whole when the proxy starts, and every mistake stops it with a message
that names the line. Its text travels with the settings in the journal, so that translating
the journal later gives the same statements whatever became of the file.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xapitap.mappings.errors import MappingError
from xapitap.mappings.model import Mapping
from xapitap.mappings.platform import platform_of
from xapitap.mappings.validate import MAX_FILE_CHARS
from xapitap.mappings.validate import load_text
from xapitap.platforms import NAMES
from xapitap.platforms.base import Platform

__all__ = ["MappingError", "MappingFile", "load", "platforms_of", "read_files"]


@dataclass(frozen=True)
class MappingFile:
    """A mapping file as read: its path (as messages name it) and its text."""

    path: str
    text: str


def load(file: MappingFile, reserved: Collection[str] = NAMES) -> Mapping:
    return load_text(file.text, file.path, reserved)


def read_files(paths: Sequence[str], reserved: Collection[str] = NAMES) -> tuple[MappingFile, ...]:
    """The files, each checked; a MappingError names every problem of every file."""
    files: list[MappingFile] = []
    problems: list[str] = []
    names: dict[str, str] = {}
    for path in paths:
        try:
            text = _read(Path(path).expanduser())
            mapping = load_text(text, path, reserved)
        except MappingError as e:
            problems += e.problems
            continue
        if mapping.site.name in names:
            other = names[mapping.site.name]
            problems.append(f"{path}: site.name: {mapping.site.name!r} is also {other}'s")
            continue
        names[mapping.site.name] = path
        files.append(MappingFile(path, text))
    if problems:
        raise MappingError(problems)
    return tuple(files)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_CHARS * 4 + 1)
    except OSError as e:
        raise MappingError([f"{path}: cannot read it ({e.strerror or e})"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MappingError([f"{path}: not UTF-8 text (byte {e.start})"]) from None


def platforms_of(
    files: Iterable[MappingFile], reserved: Collection[str] = NAMES
) -> tuple[Platform, ...]:
    """The platforms the files describe (each file is checked again: MappingError)."""
    return tuple(platform_of(load(f, reserved)) for f in files)
