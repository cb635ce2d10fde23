"""Pydantic validation errors as one line a person can act on."""

from __future__ import annotations

from pydantic import ValidationError


def describe(e: ValidationError) -> str:
    """Every problem of a validation error, located, in one line."""
    problems = []
    for err in e.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
