"""What the store needs of a statement: ours (models.Statement) and mirrored ones
(mirror.Mirrored) both have it."""

from __future__ import annotations

from typing import Protocol


class Keyed(Protocol):
    @property
    def id(self) -> str: ...


class Storable(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def timestamp(self) -> str: ...  # UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`: the store orders by it

    @property
    def verb(self) -> Keyed: ...

    @property
    def object(self) -> Keyed: ...  # its id: an Activity's, a StatementRef's, or ""

    def to_json(self) -> str: ...  # canonical: the same statement, the same bytes
