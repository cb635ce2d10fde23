"""Every statement the golden cases produce passes Ralph's xAPI models.

Video Profile statements pass Ralph's video models. Other statements (learning events,
mirrored statements) pass the model Ralph selects for them where it has one (a page viewed),
and otherwise Ralph's base xAPI statement model, which the test tells apart.

Two honest exceptions for video statements, each checked rather than skipped:
- a statement whose source extension lists `missing` values (the traffic did not give them,
  and xapitap never invents them) must pass once placeholders fill exactly those values,
  which proves that nothing else is wrong with it;
- `interacted` statements that Ralph 5.1.0 has no model for (see RALPH_GAPS) must be refused
  by Ralph, so that this test notices the day Ralph models them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import golden
from support.ralph import validate_with_ralph
from xapitap.xapi import vocab as v

pytestmark = pytest.mark.e2e  # Ralph's own models, in Ralph's virtualenv

PLACEHOLDERS = {
    "time": ("result", v.TIME, 0.0),
    "time-from": ("result", v.TIME_FROM, 0.0),
    "time-to": ("result", v.TIME_TO, 0.0),
    "progress": ("result", v.PROGRESS, 0.0),
    "played-segments": ("result", v.PLAYED_SEGMENTS, "0.000[.]0.000"),
    "length": ("context", v.LENGTH, 1.0),
}


def ralph_gap(statement: dict[str, Any]) -> str | None:
    """Why Ralph 5.1.0 cannot accept this statement although it follows the profile."""
    context = statement["context"].get("extensions", {})
    result = statement.get("result", {}).get("extensions", {})
    if v.VOLUME in context and not float(context[v.VOLUME]).is_integer():
        return "Ralph models volume as an integer; the profile says a number from 0 to 1"
    if statement["verb"]["id"] != v.VERBS["interacted"]:
        return None
    if (
        v.QUALITY in context
        or v.SPEED in context
        or not (v.CC_ENABLED in result or v.VOLUME in context or v.FULL_SCREEN in context)
    ):  # a speed, a quality, or a transcript shown (Open edX): no setting Ralph models
        return "Ralph models only captions, volume and screen interactions"
    if v.CC_ENABLED in result and v.CC_LANG not in context:
        return "Ralph requires cc-subtitle-lang with captions on or off (Open edX never says)"
    if v.FULL_SCREEN in context and v.SCREEN_SIZE not in context:
        return "Ralph requires screen-size and video-playback-size with full-screen"
    return None


def with_placeholders(statement: dict[str, Any]) -> dict[str, Any]:
    filled = copy.deepcopy(statement)
    source = filled["context"]["extensions"][v.SOURCE]
    for name in source.pop("missing", []):
        if name == "duration":
            filled.setdefault("result", {})["duration"] = "PT0S"
            continue
        where, key, value = PLACEHOLDERS[name]
        part = filled.setdefault(where, {})
        part.setdefault("extensions", {})[key] = value
    return filled


def golden_statements(video: bool = True) -> list[dict[str, Any]]:
    """The golden statements of the Video Profile, or (`video=False`) all the others."""
    return [
        statement
        for case in golden.cases()
        for result in golden.expected(case)
        for statement in result.get("statements", [])
        if is_video_profile(statement) == video
    ]


def is_video_profile(statement: dict[str, Any]) -> bool:
    categories = statement.get("context", {}).get("contextActivities", {}).get("category", [])
    return any(c.get("id") == v.VIDEO_PROFILE for c in categories)


# (verb, object type) pairs Ralph 5.1.0 has a specific model for, among the non-video ones.
RALPH_MODELS = {
    (v.LEARNING_VERBS["viewed"].id, v.PAGE_TYPE): "PageViewed",
    (v.LEARNING_VERBS["terminated"].id, v.PAGE_TYPE): "PageTerminated",
}


def test_other_statements_pass_ralph_models_or_its_base_statement_model() -> None:
    statements = golden_statements(video=False)
    assert len(statements) > 5
    verdicts = validate_with_ralph(statements)
    problems = []
    specific = 0
    for statement, verdict in zip(statements, verdicts, strict=True):
        kind = (statement["verb"]["id"], statement["object"].get("definition", {}).get("type"))
        if kind in RALPH_MODELS:
            specific += 1
            if verdict.get("model") != RALPH_MODELS[kind]:
                problems.append(f"{kind}: {verdict}")
        elif not verdict["ok"] and not verdict.get("base"):
            problems.append(f"{kind}: {verdict['error']}")
    assert not problems, "\n".join(problems)
    assert specific > 0  # a page viewed is among them, and meets Ralph's own model


def test_golden_statements_pass_ralph_video_models() -> None:
    statements = golden_statements()
    assert len(statements) > 20
    verdicts = validate_with_ralph([with_placeholders(s) for s in statements])
    problems = []
    gaps = 0
    for statement, verdict in zip(statements, verdicts, strict=True):
        gap = ralph_gap(statement)
        if gap:
            gaps += 1
            if verdict["ok"]:
                problems.append(f"Ralph now accepts a statement we thought it could not ({gap})")
        elif not verdict["ok"]:
            problems.append(f"{statement['verb']['display']['en-US']}: {verdict['error']}")
    assert not problems, "\n".join(problems)
    assert gaps < len(statements) // 4


def test_missing_values_really_are_missing() -> None:
    """A statement flagged as missing values fails Ralph without the placeholders."""
    flagged = [
        s
        for s in golden_statements()
        if "length" in s["context"]["extensions"][v.SOURCE].get("missing", [])
    ]
    assert flagged
    verdicts = validate_with_ralph(flagged)
    assert not any(verdict["ok"] for verdict in verdicts)
