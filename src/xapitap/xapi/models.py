"""Pydantic models of the xAPI statements that xapitap writes (xAPI 1.0.3).

They check what a producer must get right: IRIs with a scheme, language-map keys, UUIDs,
UTC timestamps, ISO 8601 durations, extension keys as IRIs, no nulls and no empty objects.
"""

from __future__ import annotations

import json
import re
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import model_validator

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_DURATION = re.compile(r"^PT(?=\d)(\d+H)?(\d+M)?(\d+(\.\d{1,2})?S)?$")


# IRIs already found valid: statements repeat the same verbs, extensions and activities, so
# most checks are a set lookup. Bounded: it is emptied when full.
_VALID_IRIS: set[str] = set()
_MAX_VALID_IRIS = 10_000


def _iri(value: str) -> str:
    if value in _VALID_IRIS:
        return value
    if not _IRI.match(value):
        raise ValueError(f"not an absolute IRI: {value!r}")
    if len(_VALID_IRIS) >= _MAX_VALID_IRIS:
        _VALID_IRIS.clear()
    _VALID_IRIS.add(value)
    return value


def _language_map(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("a language map must not be empty")
    for tag, text in value.items():
        if not _LANG.match(tag):
            raise ValueError(f"not an RFC 5646 language tag: {tag!r}")
        if not text:
            raise ValueError(f"empty text for language {tag!r}")
    return value


def _extensions(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise ValueError("extensions must not be an empty object")
    for key in value:
        _iri(key)
    return value


def _pattern(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"not {what}: {value!r}")
        return value

    return AfterValidator(check)


IRI = Annotated[str, AfterValidator(_iri)]
LanguageMap = Annotated[dict[str, str], AfterValidator(_language_map)]
Extensions = Annotated[dict[str, Any], AfterValidator(_extensions)]
UUID = Annotated[str, _pattern(_UUID, "a lower-case UUID")]
Timestamp = Annotated[str, _pattern(_TIMESTAMP, "a UTC timestamp with milliseconds")]
Duration = Annotated[str, _pattern(_DURATION, "an ISO 8601 duration (PT…H…M…S)")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_min_length=1)


class Account(_Model):
    homePage: IRI
    name: str


class Agent(_Model):
    objectType: Literal["Agent"] = "Agent"
    account: Account


class Verb(_Model):
    id: IRI
    display: LanguageMap


class ActivityDefinition(_Model):
    type: IRI
    name: LanguageMap | None = None


class Activity(_Model):
    objectType: Literal["Activity"] = "Activity"
    id: IRI
    definition: ActivityDefinition


class Score(_Model):
    scaled: float | None = Field(default=None, ge=-1, le=1)
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _raw_within_bounds(self) -> Score:
        check_score_bounds(self.raw, self.min, self.max)
        return self


def check_score_bounds(raw: float | None, low: float | None, high: float | None) -> None:
    """xAPI's score rules: min ≤ raw ≤ max, for those given."""
    if low is not None and high is not None and low > high:
        raise ValueError("score.min is above score.max")
    if raw is not None:
        if low is not None and raw < low:
            raise ValueError("score.raw is below score.min")
        if high is not None and raw > high:
            raise ValueError("score.raw is above score.max")


class Result(_Model):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: Duration | None = None
    extensions: Extensions | None = None


class ContextActivities(_Model):
    parent: list[Activity] | None = Field(default=None, min_length=1)
    grouping: list[Activity] | None = Field(default=None, min_length=1)
    category: list[Activity] | None = Field(default=None, min_length=1)
    other: list[Activity] | None = Field(default=None, min_length=1)


class Context(_Model):
    registration: UUID | None = None
    platform: str | None = None
    contextActivities: ContextActivities | None = None
    extensions: Extensions | None = None


class Statement(_Model):
    id: UUID
    actor: Agent
    verb: Verb
    object: Activity
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp
    # Only for xAPI 2.0 statements: a 1.0.3 producer should not set it.
    version: Annotated[str, _pattern(re.compile(r"^2\.0\.\d+$"), "2.0.x")] | None = None

    @model_validator(mode="after")
    def _completion_only_on_completed(self) -> Statement:
        completed = self.verb.id == "http://adlnet.gov/expapi/verbs/completed"
        if self.result and self.result.completion is not None and not completed:
            raise ValueError("result.completion is only for the completed verb")
        return self

    def to_json(self) -> str:
        """Canonical JSON: the same statement always serialises to the same bytes."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
