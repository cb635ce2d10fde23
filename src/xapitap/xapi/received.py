"""Pydantic models of xAPI statements as a producer sends them: what mirrored statements
(pages that already speak xAPI) are checked against before we keep a copy.

xAPI 1.0.3 Data §2.4, and 2.0's context agents and groups. Permissive where the standard is:
every optional property, an Agent without objectType, a verb without display, a timestamp
with an offset or without milliseconds, contextActivities as one Activity or a list,
durations in years to seconds. Strict where an LRS must refuse a statement: not exactly one
identifier on an Agent, an IRI without a scheme, a malformed UUID or language tag, a null, an
unknown property, a wrong JSON type ("1" for a number), a wrong objectType, a score out of
its bounds, `revision` or `platform` in the context of a statement about no Activity.

`reason` turns a validation error into the text that rejected statements are counted by:
it names properties and problems, never a value from the statement.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import datetime
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Discriminator
from pydantic import Field
from pydantic import Tag
from pydantic import ValidationError
from pydantic import model_validator

from xapitap.xapi.models import check_score_bounds

_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$")
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-8][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
_MBOX = re.compile(r"^mailto:[^@\s/?#]+@[^@\s/?#]+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_VERSION = re.compile(r"^[12]\.0(\.\d+)?$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
)
_N = r"\d+(?:\.\d+)?"
# ISO 8601:2004 §4.4.3.2 (Data §4.6): weeks alone, or years to seconds; never empty.
_DURATION = re.compile(
    rf"^P(?:{_N}W|(?=\d|T\d)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)$"
)
InteractionType = Literal[
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
]


def _checked(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"not {what}")  # never the value: reasons are counted
        return value

    return AfterValidator(check)


def parse_timestamp(value: str) -> datetime:
    """The instant an xAPI timestamp names, in UTC (one without an offset is UTC)."""
    if not _TIMESTAMP.match(value):
        raise ValueError("not an ISO 8601 timestamp")
    text = value.upper().replace("Z", "+00:00")
    if re.search(r"[+-]\d{2}$", text):  # an offset of hours only: fromisoformat wants minutes
        text += ":00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError("not an ISO 8601 timestamp") from None


def _timestamp(value: str) -> str:
    parse_timestamp(value)
    return value


def _language_map(value: dict[str, str]) -> dict[str, str]:
    if any(not _LANG.match(tag) for tag in value):
        raise ValueError("a key is not an RFC 5646 language tag")
    return value


def _extensions(value: dict[str, Any]) -> dict[str, Any]:
    if any(not _IRI.match(key) for key in value):
        raise ValueError("a key is not an absolute IRI")
    return value


IRI = Annotated[str, _checked(_IRI, "an absolute IRI")]
UUID = Annotated[str, _checked(_UUID, "a UUID")]
Mbox = Annotated[str, _checked(_MBOX, "a mailto: IRI")]
Sha1 = Annotated[str, _checked(_SHA1, "a SHA-1 in hex")]
LanguageTag = Annotated[str, _checked(_LANG, "an RFC 5646 language tag")]
LanguageMap = Annotated[dict[str, str], AfterValidator(_language_map)]
Extensions = Annotated[dict[str, Any], AfterValidator(_extensions)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
Duration = Annotated[str, _checked(_DURATION, "an ISO 8601 duration")]
Version = Annotated[str, _checked(_VERSION, "an xAPI version (1.0.x or 2.0.x)")]


class _Model(BaseModel):
    # strict: a JSON type other than the standard's ("1" for a number) is refused, not cast
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        """An LRS must refuse null outside extensions (an unknown key is refused anyway)."""
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None and key in cls.model_fields:
                    raise ValueError(f"{key} is null")
        return data


class Account(_Model):
    homePage: IRI
    name: str = Field(min_length=1)


IFI_NAMES = ("mbox", "mbox_sha1sum", "openid", "account")


class _Identified(_Model):
    name: str | None = None
    mbox: Mbox | None = None
    mbox_sha1sum: Sha1 | None = None
    openid: IRI | None = None
    account: Account | None = None

    @property
    def identifiers(self) -> int:
        return sum(getattr(self, name) is not None for name in IFI_NAMES)


class Agent(_Identified):
    objectType: Literal["Agent"] | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> Agent:
        if self.identifiers != 1:
            raise ValueError("an Agent has exactly one of mbox, mbox_sha1sum, openid, account")
        return self


class Group(_Identified):
    objectType: Literal["Group"]
    member: list[Agent] | None = None

    @model_validator(mode="after")
    def _identified_or_listed(self) -> Group:
        if self.identifiers > 1:
            raise ValueError("a Group has at most one of mbox, mbox_sha1sum, openid, account")
        if self.identifiers == 0 and not self.member:
            raise ValueError("an anonymous Group lists its members")
        return self


def _object_type(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("objectType")
    return getattr(value, "objectType", None)


def _actor_tag(value: Any) -> str | None:
    kind = _object_type(value)
    if kind in (None, "Agent"):
        return "Agent"
    return "Group" if kind == "Group" else None  # None: refused, without quoting it


Actor = Annotated[
    Annotated[Agent, Tag("Agent")] | Annotated[Group, Tag("Group")],
    Discriminator(
        _actor_tag,
        custom_error_type="actor_type",
        custom_error_message="objectType is neither Agent nor Group",
    ),
]


class Verb(_Model):
    id: IRI
    display: LanguageMap | None = None


class InteractionComponent(_Model):
    id: str = Field(min_length=1)
    description: LanguageMap | None = None


class ActivityDefinition(_Model):
    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: IRI | None = None
    moreInfo: IRI | None = None
    extensions: Extensions | None = None
    interactionType: InteractionType | None = None
    correctResponsesPattern: list[str] | None = None
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None


class Activity(_Model):
    objectType: Literal["Activity"] | None = None
    id: IRI
    definition: ActivityDefinition | None = None


class StatementRef(_Model):
    objectType: Literal["StatementRef"]
    id: UUID


def _one_or_many(value: Any) -> str:
    return "many" if isinstance(value, list) else "one"


# The standard lets a producer send one Activity where it means a list of one.
Activities = Annotated[
    Annotated[Activity, Tag("one")] | Annotated[list[Activity], Tag("many")],
    Discriminator(_one_or_many),
]


class ContextActivities(_Model):
    parent: Activities | None = None
    grouping: Activities | None = None
    category: Activities | None = None
    other: Activities | None = None


class ContextAgent(_Model):  # xAPI 2.0
    objectType: Literal["contextAgent"]
    agent: Agent
    relevantTypes: list[IRI] | None = Field(default=None, min_length=1)


class ContextGroup(_Model):  # xAPI 2.0
    objectType: Literal["contextGroup"]
    group: Group
    relevantTypes: list[IRI] | None = Field(default=None, min_length=1)


class Context(_Model):
    registration: UUID | None = None
    instructor: Actor | None = None
    team: Group | None = None
    contextActivities: ContextActivities | None = None
    contextAgents: list[ContextAgent] | None = None
    contextGroups: list[ContextGroup] | None = None
    revision: str | None = None
    platform: str | None = None
    language: LanguageTag | None = None
    statement: StatementRef | None = None
    extensions: Extensions | None = None


class Score(_Model):
    scaled: float | None = Field(default=None, ge=-1, le=1)
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _within_bounds(self) -> Score:
        check_score_bounds(self.raw, self.min, self.max)
        return self


class Result(_Model):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: Duration | None = None
    extensions: Extensions | None = None


class Attachment(_Model):
    usageType: IRI
    display: LanguageMap
    description: LanguageMap | None = None
    contentType: str = Field(min_length=1)
    length: int = Field(ge=0)
    sha2: str = Field(min_length=1)
    fileUrl: IRI | None = None


def _about_activity(obj: Any, context: Context | None) -> None:
    named = context and (context.revision is not None or context.platform is not None)
    if named and not isinstance(obj, Activity):
        raise ValueError("context.revision and context.platform need an Activity object")


def _sub_object_tag(value: Any) -> str | None:
    kind = _object_type(value)
    if kind is None:
        return "Activity"
    return kind if kind in ("Activity", "Agent", "Group", "StatementRef") else None


class SubStatement(_Model):
    objectType: Literal["SubStatement"]
    actor: Actor
    verb: Verb
    # A SubStatement's object is never another SubStatement.
    object: Annotated[
        Annotated[Activity, Tag("Activity")]
        | Annotated[Agent, Tag("Agent")]
        | Annotated[Group, Tag("Group")]
        | Annotated[StatementRef, Tag("StatementRef")],
        Discriminator(
            _sub_object_tag,
            custom_error_type="object_type",
            custom_error_message="objectType is not Activity, Agent, Group or StatementRef",
        ),
    ]
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _context_fits(self) -> SubStatement:
        _about_activity(self.object, self.context)
        return self


def _object_tag(value: Any) -> str | None:
    kind = _object_type(value)
    return "SubStatement" if kind == "SubStatement" else _sub_object_tag(value)


StatementObject = Annotated[
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
    | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(
        _object_tag,
        custom_error_type="object_type",
        custom_error_message="objectType is not Activity, Agent, Group, StatementRef or "
        "SubStatement",
    ),
]


class Statement(_Model):
    id: UUID | None = None
    actor: Actor
    verb: Verb
    object: StatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    stored: Timestamp | None = None
    authority: Actor | None = None
    version: Version | None = None
    attachments: list[Attachment] | None = None

    @model_validator(mode="after")
    def _context_fits(self) -> Statement:
        _about_activity(self.object, self.context)
        return self


def _field_names() -> frozenset[str]:
    models: list[type[BaseModel]] = [
        Account,
        Agent,
        Group,
        Verb,
        InteractionComponent,
        ActivityDefinition,
        Activity,
        StatementRef,
        ContextActivities,
        ContextAgent,
        ContextGroup,
        Context,
        Score,
        Result,
        Attachment,
        SubStatement,
        Statement,
    ]
    return frozenset(name for model in models for name in model.model_fields)


# Locations may name a property, an array index, or a union's tag; anything else in one (a
# language map's or an extension's key, an unknown property) comes from the statement.
_KNOWN = _field_names() | {
    "Agent",
    "Group",
    "Activity",
    "StatementRef",
    "SubStatement",
}
_SHAPES = ("one", "many")  # tags of one Activity or a list: no help to a reader
MAX_PROBLEMS = 3


def reason(error: ValidationError) -> str:
    """What is wrong with a statement, located, without quoting any of it."""
    problems: list[str] = []
    for err in error.errors(include_url=False, include_input=False):
        where = ".".join(
            f"[{p}]" if isinstance(p, int) else p if p in _KNOWN else "…"
            for p in err["loc"]
            if p not in _SHAPES
        ).replace(".[", "[")
        if err["type"] == "extra_forbidden":
            message = "not an xAPI property"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        problem = f"{where}: {message}" if where else message
        if problem not in problems:
            problems.append(problem)
    more = len(problems) - MAX_PROBLEMS
    shown = "; ".join(problems[:MAX_PROBLEMS])
    return f"{shown}; and {more} more" if more > 0 else shown
