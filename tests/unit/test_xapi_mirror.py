"""Mirrored statements through the pipeline: who the copy names in each privacy mode, its id,
its times, its provenance, and what is refused or passed over."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import UTC
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest

import golden
from xapitap.capture import Capture
from xapitap.matching import Matcher
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.platforms import all_rules
from xapitap.privacy import PARTICIPANT_HOME
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer
from xapitap.xapi import vocab as v
from xapitap.xapi.mirror import MIRRORED_HOME

KEY = b"k" * 32
LRS = "https://lrs.vendor.example/xapi/statements"
HEADERS = {
    "X-Experience-API-Version": "1.0.3",
    "Content-Type": "application/json",
    "Origin": "https://course.example",
}
WHEN = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
V = "http://adlnet.gov/expapi/verbs/"
JANE_MBOX = "mailto:Jane.Doe@University.EXAMPLE"
JANE = {"objectType": "Agent", "name": "Jane Doe", "mbox": JANE_MBOX}
SMITH = {"name": "Prof. Smith", "account": {"homePage": "https://lms.example", "name": "t-7"}}
FIRST = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"


def statement(**parts: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": FIRST,
        "actor": JANE,
        "verb": {"id": V + "attempted"},
        "object": {"id": "https://course.example/labs/titration"},
        "timestamp": "2024-05-06T09:59:00.000Z",
    }
    out.update(parts)
    return {k: val for k, val in out.items() if val is not None}


def request(body: Any, url: str = LRS, method: str = "POST", **headers: str) -> golden.Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return golden.Request(method, url, {**HEADERS, **headers}, raw, WHEN)


def run(
    *requests: golden.Request, privacy: Privacy | None = None, login: str = ""
) -> list[Outcome]:
    privacy = privacy or Privacy("pseudonym", Pseudonymizer(KEY))
    pipeline = Pipeline(privacy, 1 << 20)
    matcher = Matcher(all_rules())
    outcomes = []
    for r in requests:
        capture = r.capture()
        capture = dataclasses.replace(capture, participant=login)
        match = matcher.match(
            capture.method, capture.host, capture.path, capture.header, partial(_body, capture)
        )
        assert match is not None, r.url
        outcomes.append(pipeline.process(match, capture))
    return outcomes


def _body(capture: Capture) -> bytes:
    return capture.body


def copies(*requests: golden.Request, **kwargs: Any) -> list[dict[str, Any]]:
    return [json.loads(s.to_json()) for o in run(*requests, **kwargs) for s, _ in o.statements]


def pseudonym(kind: str, value: str, key: bytes = KEY) -> str:
    """Worked out here, not by the code under test: HMAC-SHA256(key, platform, kind, id)."""
    return hmac.new(key, f"xapi\x1f{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def sha1(mbox: str) -> str:
    return hashlib.sha1(mbox.encode()).hexdigest()


JANE_SHA1 = sha1("mailto:Jane.Doe@university.example")  # the domain in lower case
JANE_PSEUDONYM = {
    "objectType": "Agent",
    "account": {"homePage": MIRRORED_HOME, "name": pseudonym("mbox_sha1sum", JANE_SHA1)},
}


def test_pseudonym_mode_replaces_every_agent_by_the_pseudonym_of_its_identifier() -> None:
    team = {"objectType": "Group", "name": "Blue", "member": [{"mbox_sha1sum": JANE_SHA1}, SMITH]}
    (copy,) = copies(request(statement(context={"instructor": SMITH, "team": team})))
    assert copy["actor"] == JANE_PSEUDONYM
    smith = {"homePage": MIRRORED_HOME, "name": pseudonym("account", "https://lms.example\x1ft-7")}
    assert copy["context"]["instructor"] == {"account": smith}
    assert copy["context"]["team"] == {
        "objectType": "Group",
        "member": [{"account": JANE_PSEUDONYM["account"]}, {"account": smith}],
    }
    text = json.dumps(copy)
    for original in ("Jane", "University", "Smith", "t-7", "lms.example", "Blue"):
        assert original not in text, original


def test_one_learner_keeps_one_pseudonym_however_named_and_wherever_seen() -> None:
    named = [
        {"mbox": JANE_MBOX},
        {"mbox": "mailto:Jane.Doe@university.example", "name": "J. Doe"},
        {"objectType": "Agent", "mbox_sha1sum": JANE_SHA1.upper()},
    ]
    out = copies(
        *(
            request(statement(id=None, actor=actor), url=url, Origin=origin)
            for actor, (url, origin) in zip(
                named,
                [(LRS, "https://a.example"), ("https://other.example/lrs/statements", "")] * 2,
                strict=False,
            )
        )
    )
    assert {c["actor"]["account"]["name"] for c in out} == {JANE_PSEUDONYM["account"]["name"]}
    # An address differs from another in its local part: another learner.
    (other,) = copies(request(statement(actor={"mbox": "mailto:jane.doe@university.example"})))
    assert other["actor"]["account"] != JANE_PSEUDONYM["account"]


def test_participant_mode_names_the_participant_and_pseudonymises_the_others() -> None:
    privacy = Privacy("participant", Pseudonymizer(KEY), participant="P-017")
    mentored = statement(
        id="6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
        actor=SMITH,
        object={"objectType": "Agent", "mbox": JANE_MBOX},
    )
    first, second = copies(
        request([statement(context={"instructor": SMITH}), mentored]), privacy=privacy
    )
    participant = {
        "objectType": "Agent",
        "account": {"homePage": PARTICIPANT_HOME, "name": "P-017"},
    }
    assert first["actor"] == participant
    smith = {"homePage": MIRRORED_HOME, "name": pseudonym("account", "https://lms.example\x1ft-7")}
    assert first["context"]["instructor"] == {"account": smith}
    # The second statement's actor is the participant, as the mode says; Jane, its object, is
    # only a pseudonym there: who is the participant is said by each statement's actor.
    assert second["actor"] == participant
    assert second["object"] == JANE_PSEUDONYM
    assert first["context"]["extensions"][v.SOURCE]["privacy"] == "participant/1"


def test_participant_mode_names_the_actor_wherever_it_appears_in_its_statement() -> None:
    privacy = Privacy("participant", Pseudonymizer(KEY), participant="P-017")
    team = {"objectType": "Group", "member": [{"mbox_sha1sum": JANE_SHA1}, SMITH]}
    (copy,) = copies(request(statement(context={"team": team})), privacy=privacy)
    assert copy["context"]["team"]["member"][0]["account"]["name"] == "P-017"
    assert copy["context"]["team"]["member"][1]["account"]["homePage"] == MIRRORED_HOME


def test_a_request_without_the_proxy_login_that_names_participants_is_attributed_to_no_one() -> (
    None
):
    privacy = Privacy("participant", Pseudonymizer(KEY), participant="proxyauth")
    (outcome,) = run(request(statement()), privacy=privacy)
    assert outcome.statements == [] and "not attributed" in outcome.ignored[0]
    (named,) = copies(request(statement()), privacy=privacy, login="P-020")
    assert named["actor"]["account"]["name"] == "P-020"


def test_platform_mode_keeps_agents_but_never_an_email_address() -> None:
    privacy = Privacy("platform", Pseudonymizer(KEY))
    (copy,) = copies(
        request(statement(context={"instructor": SMITH}, result={"response": "mail me@x.example"})),
        privacy=privacy,
    )
    assert copy["actor"] == {"objectType": "Agent", "name": "Jane Doe", "mbox_sha1sum": JANE_SHA1}
    assert copy["context"]["instructor"] == SMITH
    assert copy["result"]["response"] == "mail redacted-email"
    assert "@" not in json.dumps(copy)


def test_the_copy_keeps_the_content_and_drops_what_an_lrs_sets() -> None:
    original = statement(
        result={"score": {"raw": 3, "max": 4, "scaled": 0.75}, "duration": "PT2M0.5S"},
        context={
            "registration": "0b1e2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
            "contextActivities": {
                "category": {"id": "https://w3id.org/xapi/cmi5/context/categories/cmi5"}
            },
            "extensions": {"https://w3id.org/xapi/cmi5/context/extensions/sessionid": "s-1"},
            "language": "en-GB",
        },
        authority={"objectType": "Agent", "account": {"homePage": "https://lrs.x", "name": "k"}},
        stored="2024-05-06T09:59:01.000Z",
        version="1.0.0",
    )
    (copy,) = copies(request(original))
    assert "authority" not in copy and "stored" not in copy
    kept = {k: original[k] for k in ("verb", "object", "result", "version", "timestamp")}
    assert {k: copy[k] for k in kept} == kept
    context = dict(copy["context"])
    source = context["extensions"].pop(v.SOURCE)
    assert context == original["context"]
    assert source == {
        "platform": "xapi",
        "rule": "xapi.statements",
        "eventId": FIRST,
        "mapping": "2",
        "privacy": "pseudonym/1",
        "seenOn": "https://course.example",
        "sentTo": "lrs.vendor.example",
    }


def test_provenance_takes_the_pages_origin_from_the_referer_and_never_its_path() -> None:
    referer = "https://course.example:8443/story.html?actor=jane%40x.example"
    (copy,) = copies(request(statement(), Origin="null", Referer=referer))
    assert copy["context"]["extensions"][v.SOURCE]["seenOn"] == "https://course.example:8443"
    (unknown,) = copies(
        golden.Request(
            "POST",
            LRS,
            {"X-Experience-API-Version": "1.0.3"},
            json.dumps(statement()).encode(),
            WHEN,
        )
    )
    assert "seenOn" not in unknown["context"]["extensions"][v.SOURCE]


def test_a_page_cannot_forge_our_provenance() -> None:
    forged = {"extensions": {v.SOURCE: {"platform": "udemy", "privacy": "none"}}}
    (copy,) = copies(request(statement(context=forged)))
    assert copy["context"]["extensions"][v.SOURCE]["platform"] == "xapi"


def test_the_copy_has_its_own_id_derived_from_theirs_with_the_study_key_and_policy() -> None:
    (copy,) = copies(request(statement()))
    assert copy["id"] != FIRST
    assert copy["context"]["extensions"][v.SOURCE]["eventId"] == FIRST
    assert copies(request(statement())) == [copy]  # deterministic: a replay adds nothing
    assert copies(request(statement(id=FIRST.upper())))[0]["id"] == copy["id"]
    other_study = Privacy("pseudonym", Pseudonymizer(b"o" * 32))
    assert copies(request(statement()), privacy=other_study)[0]["id"] != copy["id"]
    other_mode = Privacy("platform", Pseudonymizer(KEY))
    assert copies(request(statement()), privacy=other_mode)[0]["id"] != copy["id"]


def test_a_statement_ref_names_our_copy_of_the_statement_it_names() -> None:
    """Voiding a statement voids our copy of it: else our copy would still claim it."""
    voiding = statement(
        id="7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f",
        verb={"id": V + "voided"},
        object={"objectType": "StatementRef", "id": FIRST},
        timestamp="2024-05-06T09:59:30.000Z",
    )
    answering = statement(
        id="8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a",
        context={"statement": {"objectType": "StatementRef", "id": FIRST.upper()}},
        actor=SMITH,  # whoever refers to it
        timestamp="2024-05-06T09:59:40.000Z",
    )
    first, void, refers = copies(request([statement(), voiding, answering]))
    assert void["object"] == {"objectType": "StatementRef", "id": first["id"]}
    assert refers["context"]["statement"]["id"] == first["id"]


def test_a_statement_without_id_gets_one_from_its_content() -> None:
    timed = statement(id=None)
    (a,), (b,) = copies(request(timed)), copies(request(timed))
    assert a["id"] == b["id"]
    assert a["context"]["extensions"][v.SOURCE]["eventId"].startswith("hmac:")
    # The same content, timestamp and all, sent again: the same statement, not a second.
    first, again = run(request(timed), request(timed))
    assert len(first.statements) == 1 and again.statements == []
    assert again.ignored == [f"xapi {V}attempted: resent (same event id)"]


def test_a_statement_without_timestamp_gets_the_time_the_proxy_saw_it() -> None:
    untimed = statement(id=None, timestamp=None)
    later = golden.Request(
        "POST", LRS, HEADERS, json.dumps(untimed).encode(), datetime(2024, 5, 6, 10, 5, tzinfo=UTC)
    )
    first, second = copies(request([untimed, untimed]))
    (third,) = copies(later)
    assert first["timestamp"] == second["timestamp"] == "2024-05-06T10:00:00.000Z"
    assert third["timestamp"] == "2024-05-06T10:05:00.000Z"
    assert first["context"]["extensions"][v.SOURCE]["estimated"] == ["timestamp"]
    # Nothing tells these apart from one statement sent again: each is a statement of its own.
    assert len({first["id"], second["id"], third["id"]}) == 3


def test_timestamps_keep_their_instant_in_utc() -> None:
    sub = {
        "objectType": "SubStatement",
        "actor": {"mbox": JANE_MBOX},
        "verb": {"id": V + "attended"},
        "object": {"id": "https://course.example/labs/titration"},
        "timestamp": "2024-05-13T15:00:00+02:00",
    }
    (copy,) = copies(request(statement(timestamp="2024-05-06T11:59:00.1234+02:00", object=sub)))
    assert copy["timestamp"] == "2024-05-06T09:59:00.123Z"
    assert copy["object"]["timestamp"] == "2024-05-13T13:00:00.000Z"
    assert "estimated" not in copy["context"]["extensions"][v.SOURCE]


def test_attachments_whose_data_we_do_not_have_are_dropped_and_said_so() -> None:
    def attachment(**more: str) -> dict[str, Any]:
        return {
            "usageType": "http://id.tincanapi.com/attachment/certificate",
            "display": {"en-US": "certificate"},
            "contentType": "application/pdf",
            "length": 10,
            "sha2": "ab" * 32,
            **more,
        }

    linked = attachment(fileUrl="https://x.example/c.pdf")
    (copy,) = copies(request(statement(attachments=[attachment(), linked])))
    assert copy["attachments"] == [linked]
    assert copy["context"]["extensions"][v.SOURCE]["dropped"] == ["attachments"]
    (kept,) = copies(request(statement(attachments=[linked])))
    assert "dropped" not in kept["context"]["extensions"][v.SOURCE]


def test_an_invalid_statement_is_rejected_and_the_others_still_count() -> None:
    bad = statement(id="1e2f3a4b-5c6d-4e7f-9a8b-0c1d2e3f4a5b", verb={"id": "answered"})
    good = statement(id="2f3a4b5c-6d7e-4f8a-ab9c-1d2e3f4a5b6c")
    (outcome,) = run(request([statement(), bad, 7, good]))
    assert len(outcome.statements) == 2
    assert outcome.errors == [
        "xapi.statements: statement: verb.id: not an absolute IRI",
        "xapi.statements: statement: not a JSON object",
    ]
    fates = {(t.fate.value, t.reason): n for t, n in outcome.tallies.items()}
    assert fates[("rejected", "verb.id: not an absolute IRI")] == 1
    assert fates[("translated", "")] == 2


@pytest.mark.parametrize(
    ("url", "body", "why"),
    [
        (LRS, b'"a statement"', "neither JSON nor form data"),
        (LRS + "?statementId=nope", statement(id=None), "statementId is not a UUID"),
        (LRS, statement(), "names no statementId"),
        (LRS + f"?statementId={FIRST}", [statement()], "one statement, a JSON object"),
    ],
)
def test_a_body_of_the_wrong_shape_is_unreadable_with_its_reason(
    url: str, body: Any, why: str
) -> None:
    method = "PUT" if "statementId" in url or why.startswith("names") else "POST"
    (outcome,) = run(request(body, url=url, method=method))
    assert outcome.statements == [] and why in outcome.errors[0]


def test_a_put_stores_under_its_statement_id_and_refuses_another_id() -> None:
    put = f"{LRS}?statementId={FIRST}"
    (copy,) = copies(request(statement(id=None), url=put, method="PUT"))
    assert copy["context"]["extensions"][v.SOURCE]["eventId"] == FIRST
    assert copy["id"] == copies(request(statement()))[0]["id"]
    other = statement(id="6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e")
    (outcome,) = run(request(other, url=put, method="PUT"))
    assert outcome.statements == [] and "not the statementId" in outcome.errors[0]


def test_the_alternate_syntax_is_read_from_its_form_fields() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://course.example"}
    body = urlencode(
        {
            "statementId": FIRST,
            "X-Experience-API-Version": "1.0.3",
            "content": json.dumps(statement(id=None)),
        }
    ).encode()
    alternate = golden.Request("POST", LRS + "?method=PUT", form, body, WHEN)
    assert copies(alternate) == copies(request(statement()))
    broken = urlencode({"X-Experience-API-Version": "1.0.3", "content": "{nope"}).encode()
    (outcome,) = run(golden.Request("POST", LRS + "?method=POST", form, broken, WHEN))
    assert "content is not JSON" in outcome.errors[0]


def test_moodle_statements_longer_than_a_decoded_string_are_read_whole() -> None:
    """`requestjson` is one string; the decoder cuts strings at 8192 characters."""
    many = [
        statement(id=None, timestamp=f"2024-05-06T09:{m:02d}:00.000Z", actor={"mbox": JANE_MBOX})
        for m in range(60)
    ]
    text = json.dumps(many)
    assert len(text) > 9000
    body = [
        {
            "index": 0,
            "methodname": "core_xapi_statement_post",
            "args": {"component": "mod_h5pactivity", "requestjson": text},
        }
    ]
    url = "https://moodle.example/lib/ajax/service.php?sesskey=x&info=core_xapi_statement_post"
    (outcome,) = run(
        golden.Request(
            "POST", url, {"Content-Type": "application/json"}, json.dumps(body).encode(), WHEN
        )
    )
    assert outcome.errors == [] and len(outcome.statements) == 60


def test_moodle_calls_that_carry_no_statement_are_counted() -> None:
    body = [
        {"index": 0, "methodname": "core_xapi_statement_post", "args": {"requestjson": 5}},
        {"index": 1, "methodname": "core_xapi_statement_post", "args": {"requestjson": "{x"}},
        {"index": 2, "methodname": "core_fetch_notifications", "args": {}},
        "junk",
    ]
    url = "https://moodle.example/lib/ajax/service.php"
    (outcome,) = run(golden.Request("POST", url, {}, json.dumps(body).encode(), WHEN))
    assert outcome.statements == []
    assert outcome.ignored == [
        "core_fetch_notifications: another Moodle web service call: passed through"
    ]
    assert [e.split(": ", 2)[-1] for e in outcome.errors] == [
        "args.requestjson is not a string",
        "args.requestjson is not JSON",
        "not a JSON object",
    ]
