"""Messages a person can act on: pydantic validation errors in one line, "did you mean"."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from pydantic import ValidationError


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ " (did you mean X?)" when a known word is close to `word`, else ""."""
    close = difflib.get_close_matches(word, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def describe(e: ValidationError) -> str:
    """Every problem of a validation error, located, in one line."""
    problems = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
