"""Every golden case: its requests through the pure pipeline give exactly the expected output."""

from __future__ import annotations

import pytest

import golden


@pytest.mark.parametrize("case", golden.cases(), ids=lambda c: c.name)
def test_golden_case(case: golden.Case) -> None:
    results = golden.run(case)
    if golden.UPDATE:
        golden.write_expected(case, results)
    assert results == golden.expected(case)


@pytest.mark.parametrize("case", golden.cases(), ids=lambda c: c.name)
def test_replaying_a_case_gives_byte_identical_statements(case: golden.Case) -> None:
    first, again = golden.run(case), golden.run(case)
    assert first == again


def test_every_platform_has_golden_cases() -> None:
    platforms = {case.name.split("/")[0] for case in golden.cases()}
    assert {"udemy", "udacity", "segment", "coursera"} <= platforms
