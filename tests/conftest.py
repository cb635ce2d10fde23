from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.ralph import RalphLRS


@pytest.fixture(scope="session")
def ralph() -> Iterator[RalphLRS]:
    """One real Ralph LRS for the whole run; tests tell their statements apart by id."""
    with RalphLRS() as lrs:
        yield lrs
