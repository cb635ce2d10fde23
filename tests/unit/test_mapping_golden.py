"""The example mapping's golden cases: its requests through the pure pipeline, with the
mapping file, give exactly the expected output (written with XAPITAP_UPDATE_GOLDEN=1 and
reviewed by hand, as the built-in platforms' are)."""

from __future__ import annotations

import pytest

import golden
import mapping_cases


@pytest.mark.parametrize("case", mapping_cases.cases(), ids=lambda c: c.name)
def test_mapping_golden_case(case: golden.Case) -> None:
    results = mapping_cases.run(case)
    if golden.UPDATE:
        golden.write_expected(case, results)
    assert results == golden.expected(case)
    assert mapping_cases.run(case) == results, "the same requests give the same statements"


def test_the_example_mapping_has_golden_cases() -> None:
    names = {case.name for case in mapping_cases.cases()}
    assert {"lernwerk/video-session", "lernwerk/learning-events", "lernwerk/malformed"} <= names


def test_without_the_mapping_nothing_matches() -> None:
    """The statements come from the mapping: no built-in platform reads this site."""
    for case in mapping_cases.cases():
        assert golden.run(case) == [{"rule": None}] * len(case.requests())
