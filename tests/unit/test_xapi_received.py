"""The models of received xAPI statements: what the standard allows passes, what an LRS must
refuse is refused, and a refusal's reason never quotes the statement."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from xapitap.xapi.received import Statement
from xapitap.xapi.received import parse_timestamp
from xapitap.xapi.received import reason

V = "http://adlnet.gov/expapi/verbs/"
MINIMAL: dict[str, Any] = {
    "actor": {"mbox": "mailto:xapi@adlnet.gov"},
    "verb": {"id": V + "created"},
    "object": {"id": "http://example.adlnet.gov/xapi/example/activity"},
}


def with_(path: str, value: Any, base: dict[str, Any] = MINIMAL) -> dict[str, Any]:
    """`base` with the value at a dotted path set (None: removed)."""
    out = copy.deepcopy(base)
    *parents, last = path.split(".")
    here = out
    for key in parents:
        here = here.setdefault(key, {})
    if value is None:
        here.pop(last, None)
    else:
        here[last] = value
    return out


ACCEPTED = {
    "the standard's simplest statement": MINIMAL,
    "an account actor": with_("actor", {"account": {"homePage": "https://lms.x", "name": "42"}}),
    "an openid actor": with_("actor", {"openid": "http://openid.example.org/12345"}),
    "an identified group": with_(
        "actor", {"objectType": "Group", "mbox_sha1sum": "a" * 40, "member": []}
    ),
    "an anonymous group": with_(
        "actor", {"objectType": "Group", "member": [{"mbox": "mailto:a@b.example"}]}
    ),
    "an Agent object": with_("object", {"objectType": "Agent", "mbox": "mailto:a@b.example"}),
    "a voiding statement": with_(
        "object", {"objectType": "StatementRef", "id": "e05aa883-acaf-40ad-bf54-02c8ce485fb0"}
    ),
    "a SubStatement": with_(
        "object",
        {
            "objectType": "SubStatement",
            "actor": {"mbox": "mailto:a@b.example"},
            "verb": {"id": V + "attended"},
            "object": {"id": "http://x.example/a"},
            "timestamp": "2031-01-01T00:00:00+01:00",
        },
    ),
    "a timestamp with an offset, no milliseconds": with_("timestamp", "2024-05-06T12:00:00+02:00"),
    "a timestamp without a zone": with_("timestamp", "2024-05-06T12:00:00.5"),
    "one Activity as a context activity": with_(
        "context", {"contextActivities": {"parent": {"id": "http://x.example/p"}}}
    ),
    "a full result": with_(
        "result",
        {
            "score": {"scaled": -0.5, "raw": -5, "min": -10, "max": 10},
            "success": False,
            "completion": True,
            "response": "",
            "duration": "P1DT2H3M4.5S",
            "extensions": {"http://x.example/e": None},
        },
    ),
    "a week duration": with_("result", {"duration": "P4W"}),
    "attachments": with_(
        "attachments",
        [
            {
                "usageType": "http://id.tincanapi.com/attachment/certificate",
                "display": {"en-US": "certificate"},
                "contentType": "application/pdf",
                "length": 1024,
                "sha2": "ab" * 32,
                "fileUrl": "https://x.example/c.pdf",
            }
        ],
    ),
    "xAPI 2.0 context agents": with_(
        "context",
        {
            "contextAgents": [
                {
                    "objectType": "contextAgent",
                    "agent": {"mbox": "mailto:t@x.example"},
                    "relevantTypes": ["http://x.example/instructor"],
                }
            ]
        },
    ),
    "an interaction definition": with_(
        "object.definition",
        {
            "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
            "interactionType": "choice",
            "correctResponsesPattern": ["b"],
            "choices": [{"id": "a"}, {"id": "b", "description": {"en-US": "B"}}],
        },
    ),
}


@pytest.mark.parametrize("statement", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_the_standard_allows_is_accepted(statement: dict[str, Any]) -> None:
    Statement.model_validate(statement)


REFUSED = {
    "two identifiers": (
        with_("actor.account", {"homePage": "https://lms.x", "name": "42"}),
        "actor.Agent: an Agent has exactly one of",
    ),
    "no identifier": (with_("actor", {"name": "Jane"}), "exactly one of"),
    "an anonymous group without members": (
        with_("actor", {"objectType": "Group"}),
        "an anonymous Group lists its members",
    ),
    "a group of groups": (
        with_("actor", {"objectType": "Group", "member": [{"objectType": "Group"}]}),
        "actor.Group.member[0].objectType",
    ),
    "an unknown objectType": (with_("object.objectType", "Person"), "object: objectType is not"),
    "a verb that is no IRI": (with_("verb.id", "completed"), "verb.id: not an absolute IRI"),
    "a null": (with_("result", {"success": None}), "result: success is null"),
    "a number as text": (with_("result", {"score": {"raw": "1"}}), "result.score.raw"),
    "a boolean as text": (with_("result", {"success": "true"}), "result.success"),
    "an unknown property": (with_("secret", 1), "not an xAPI property"),
    "wrong case": (with_("Verb", {"id": V + "x"}), "not an xAPI property"),
    "a raw score above max": (
        with_("result", {"score": {"raw": 11, "max": 10}}),
        "score.raw is above score.max",
    ),
    "a scaled score beyond 1": (with_("result", {"score": {"scaled": 1.5}}), "result.score"),
    "weeks with days": (with_("result", {"duration": "P4W1D"}), "not an ISO 8601 duration"),
    "a bad timestamp": (with_("timestamp", "2024-13-45T00:00:00Z"), "not an ISO 8601 timestamp"),
    "a bad UUID": (with_("id", "not-a-uuid"), "id: not a UUID"),
    "a bad language tag": (with_("verb.display", {"en US": "x"}), "RFC 5646"),
    "an extension key that is no IRI": (
        with_("result", {"extensions": {"progress": 1}}),
        "a key is not an absolute IRI",
    ),
    "platform about a StatementRef": (
        with_(
            "context",
            {"platform": "x"},
            with_(
                "object",
                {"objectType": "StatementRef", "id": "e05aa883-acaf-40ad-bf54-02c8ce485fb0"},
            ),
        ),
        "need an Activity object",
    ),
    "a SubStatement in a SubStatement": (
        with_(
            "object",
            {
                "objectType": "SubStatement",
                "actor": {"mbox": "mailto:a@b.example"},
                "verb": {"id": V + "x"},
                "object": {"objectType": "SubStatement"},
            },
        ),
        "object.SubStatement.object: objectType is not",
    ),
    "an xAPI 3 version": (with_("version", "3.0.0"), "version: not an xAPI version"),
}


@pytest.mark.parametrize(("statement", "why"), REFUSED.values(), ids=REFUSED.keys())
def test_what_an_lrs_must_refuse_is_refused_with_a_located_reason(
    statement: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Statement.model_validate(statement)
    assert why in reason(caught.value)


LEAKS = {
    "an unknown property": with_("secret@leak.example", "secret"),
    "an unknown property inside": with_("verb.secret@leak.example", "secret"),
    "a verb id": with_("verb.id", "secret"),
    "a language tag": with_("verb.display", {"secret@leak.example": "secret"}),
    "an objectType": with_("object", {"objectType": "secret"}),
    "an actor's objectType": with_("actor", {"objectType": "secret", "mbox": "mailto:a@b.c"}),
    "a number": with_("result", {"score": {"raw": "secret"}}),
    "a timestamp": with_("timestamp", "secret"),
    "an extension key": with_("result", {"extensions": {"secret": 1}}),
    "an mbox": with_("actor", {"mbox": "secret@leak.example"}),
    "a UUID": with_("id", "secret"),
}


@pytest.mark.parametrize("statement", LEAKS.values(), ids=LEAKS.keys())
def test_a_reason_never_quotes_the_statement(statement: dict[str, Any]) -> None:
    """Rejections are counted by their reason: it must not carry what a page wrote."""
    with pytest.raises(ValidationError) as caught:
        Statement.model_validate(statement)
    text = reason(caught.value)
    assert "secret" not in text and "leak" not in text, text


def test_a_reason_stays_short() -> None:
    statement: dict[str, Any] = {"actor": {}, "verb": {}, "object": {}, "a": 1, "b": 2}
    with pytest.raises(ValidationError) as caught:
        Statement.model_validate(statement)
    assert reason(caught.value).endswith("; and 1 more")  # the two unknown ones are one


def test_timestamps_are_read_as_instants() -> None:
    assert parse_timestamp("2024-05-06T12:16:41.850+02:00").isoformat() == (
        "2024-05-06T10:16:41.850000+00:00"
    )
    assert parse_timestamp("2024-05-06T10:16:41Z") == parse_timestamp("2024-05-06T11:16:41+01")
    assert parse_timestamp("2024-05-06T10:16:41") == parse_timestamp("2024-05-06t10:16:41z")
    for bad in ("yesterday", "2024-05-06", "9999-12-31T23:59:59-23:59", "2024-02-30T00:00:00Z"):
        with pytest.raises(ValueError):
            parse_timestamp(bad)
