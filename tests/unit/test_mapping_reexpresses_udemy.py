"""Proof of completeness: Udemy's progress logs and completed-lectures, re-expressed as a
mapping file (fixtures/mappings/udemy-progress.toml), give the statements udemy.py gives,
byte for byte, on every one of Udemy's golden inputs.

For the mapping's run, udemy.py's two rules are taken out of the matcher and the mapping's
put in their place (the rest of Udemy, its other endpoints, stays as it is: one session
mixes both), so that the mapping is what reads those requests.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

import golden
from xapitap.mappings import MappingFile
from xapitap.mappings import platforms_of
from xapitap.pipeline import Pipeline
from xapitap.platforms import udemy
from xapitap.platforms.base import Platform
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer

MAPPING = golden.FIXTURES / "mappings" / "udemy-progress.toml"
MAPPED = ("udemy.progress-log", "udemy.completed-lecture")
CASES = [c for c in golden.cases() if c.name.startswith("udemy/")]


def udemy_with_mapping(text: str) -> Platform:
    """Udemy with the mapping's rules and extractors in place of udemy.py's two."""
    (mapped,) = platforms_of([MappingFile(str(MAPPING), text)], reserved=())
    replacing = {rule.name: (rule, read) for rule, read in mapped.extractors.items()}
    assert set(replacing) == set(MAPPED)
    extractors = {}
    for rule, read in udemy.PLATFORM.extractors.items():
        extractors.update([replacing.pop(rule.name)] if rule.name in replacing else [(rule, read)])
    assert not replacing, "every mapped rule replaced one of udemy.py's"
    return Platform("udemy", extractors)


def as_text(results: list[dict[str, Any]]) -> list[str]:
    """Each statement as JSON text, sorted keys: 1 and 1.0 differ here, not in a dict."""
    return [json.dumps(s, sort_keys=True) for r in results for s in r.get("statements", [])]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_mapping_gives_udemy_pys_statements_byte_for_byte(case: golden.Case) -> None:
    python = golden.run(case)
    mapped = golden.run(case, platforms=[udemy_with_mapping(MAPPING.read_text())])
    assert as_text(mapped) == as_text(python)
    assert [r["rule"] for r in mapped] == [r["rule"] for r in python]
    assert [r.get("ignored") for r in mapped] == [r.get("ignored") for r in python]
    # Unreadable requests are unreadable both ways (the reasons are worded apart).
    assert [bool(r.get("errors")) for r in mapped] == [bool(r.get("errors")) for r in python]


def test_the_cases_send_the_mapped_requests_and_the_mapping_reads_them() -> None:
    """Not a vacuous proof: the cases hold progress logs and completions that make
    statements, and the matcher hands them to the mapping's rules, not udemy.py's."""
    platform = udemy_with_mapping(MAPPING.read_text())
    matcher = Pipeline(
        Privacy("pseudonym", Pseudonymizer(golden.TEST_KEY)), golden.MAX_BODY, platforms=[platform]
    ).matcher()
    mapped_rules = {r for r in platform.rules if r.name in MAPPED}
    seen = set()
    for case in CASES:
        for request in case.requests():
            capture = request.capture()
            match = matcher.match(
                capture.method,
                capture.host,
                capture.path,
                capture.header,
                partial(lambda c: c.body, capture),
            )
            if match is not None and match.rule.name in MAPPED:
                assert match.rule in mapped_rules
                assert all(match.rule is not r for r in udemy.PLATFORM.rules)
                seen.add(match.rule.name)
    assert seen == set(MAPPED)
    made = golden.run(
        next(c for c in CASES if c.name == "udemy/progress-then-complete"), platforms=[platform]
    )
    assert len(as_text(made)) >= 4


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            'position = { field = "position", unit = "s" }',
            'position = { field = "position", unit = "ms" }',
        ),
        ("cadence = 15", "cadence = 5"),
        ('time = { field = "time", format = "iso" }', ""),
        (
            'course = "{origin}/api-2.0/courses/{course}"\n\n[endpoint.progress-log.event',
            "\n[endpoint.progress-log.event",
        ),
        ('vars = { lecture = "lecture_id" }', 'vars = { lecture = "lectureId" }'),
    ],
)
def test_a_mapping_that_says_one_thing_otherwise_gives_other_statements(old: str, new: str) -> None:
    """The comparison above can fail: one changed line of the mapping shows in the
    statements of the cases."""
    text = MAPPING.read_text()
    assert old in text
    changed = udemy_with_mapping(text.replace(old, new, 1))
    differ = [
        case.name
        for case in CASES
        if as_text(golden.run(case, platforms=[changed])) != as_text(golden.run(case))
    ]
    assert differ
