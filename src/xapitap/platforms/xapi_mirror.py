"""Pages that already speak xAPI (wire-formats.md §8): copies of the statements they send.

Content that sends statements to an LRS of its own ("Tin Can" packages such as Articulate
Storyline and Rise, cmi5 assignable units, H5P in Moodle) is left alone: its requests and the
LRS's answers pass through untouched, and the proxy never answers them itself
(`answerable=False`). What it sends is copied; xapi/mirror.py makes the copy. Rules, on any
host:
- `xapi.statements`: PUT `…/statements?statementId=…` (one statement) and POST
  `…/statements` (one, or an array), carrying `X-Experience-API-Version` (§8.1, §8.3); and
  the alternate request syntax (xapi-and-anchors.md §B.6): POST `…/statements?method=PUT|POST`
  with the headers, `statementId` and the statement (`content`) as form fields.
- `xapi.moodle`: Moodle's AJAX service, POST `/lib/ajax/service.php`, with calls of
  `core_xapi_statement_post` whose `args.requestjson` holds a statement or an array as a
  JSON string (§8.4: H5P in Moodle).
- `xapi.resources`: what else an xAPI client asks (GET statements, the state and profile
  documents, `/about`): passed through, counted as ignored.
Each statement is checked by xapi/received.py; one it refuses is rejected with its reason,
and the others of the request still count. A statement is copied whatever the LRS answers:
the proxy keeps a request before its answer comes, and the copy says what the page claimed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from xapitap.capture import Capture
from xapitap.decoding import DecodeError
from xapitap.decoding import decode_body
from xapitap.decoding import decompress
from xapitap.events import Extraction
from xapitap.events import MirroredEvent
from xapitap.events import PayloadError
from xapitap.events import Skip
from xapitap.matching import EndpointRule
from xapitap.matching import HeaderLookup
from xapitap.matching import RuleMatch
from xapitap.platforms.base import Platform
from xapitap.platforms.base import event_time
from xapitap.platforms.base import page_url
from xapitap.platforms.base import raw_event_id
from xapitap.xapi.received import Statement
from xapitap.xapi.received import parse_timestamp
from xapitap.xapi.received import reason

NAME = "xapi"
PLATFORM_NAME = "xAPI"
STATEMENT_POST = "core_xapi_statement_post"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
# The alternate syntax's stand-in for the version header; its body may come as text/plain
# (IE's XDomainRequest could not set a content type), so the form is told by its fields.
_FORM_VERSION = re.compile(rb"(?:^|&)x-experience-api-version=", re.IGNORECASE)
# Moodle's body is re-read as sent: its decoded form cut `requestjson`, one long string, at
# decoding.MAX_STRING_CHARS. The pipeline has decoded this very body within its own cap
# before, so this bound never binds; it keeps the call bounded on its own.
_REREAD_CAP = 1 << 30


def _speaks_xapi(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    """The version header every xAPI request carries (§8.1), or its form field (§B.6)."""
    if header("x-experience-api-version"):
        return True
    data = body().lstrip()
    return data[:1] not in (b"{", b"[") and _FORM_VERSION.search(data) is not None


def _moodle_statements(header: HeaderLookup, body: Callable[[], bytes]) -> bool:
    return STATEMENT_POST.encode() in body()


STATEMENTS = EndpointRule(
    "xapi.statements",
    NAME,
    r"/statements/?$",
    methods=frozenset({"POST", "PUT"}),
    body_check=_speaks_xapi,
    answerable=False,
)
MOODLE = EndpointRule(
    "xapi.moodle",
    NAME,
    r"/lib/ajax/service\.php$",
    body_check=_moodle_statements,
    answerable=False,
)
# After STATEMENTS: a PUT or POST of statements is that rule's.
RESOURCES = EndpointRule(
    "xapi.resources",
    NAME,
    r"/(?P<resource>statements|activities/state|activities/profile|activities"
    r"|agents/profile|agents|about)/?$",
    methods=_METHODS,
    body_check=_speaks_xapi,
    reads_body=False,  # nothing in it is copied
    answerable=False,
)


def _query(capture: Capture) -> dict[str, str]:
    try:
        return dict(parse_qsl(capture.query, keep_blank_values=True, max_num_fields=100))
    except ValueError:
        raise PayloadError("query string of more than 100 fields") from None


def _statements(match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    query = _query(capture)
    if "method" in query:
        return _alternate(match, capture, doc, query)
    if capture.method == "PUT":
        return _put(match, capture, doc, query.get("statementId"))
    if isinstance(doc, list):
        return _mirrored(match, capture, doc)
    if isinstance(doc, dict):
        return _mirrored(match, capture, [doc])
    raise PayloadError("the body is neither a statement nor an array of statements")


def _alternate(match: RuleMatch, capture: Capture, doc: Any, query: dict[str, str]) -> Extraction:
    """POST …/statements?method=X: the request X, its parts as form fields (§B.6)."""
    method = query["method"].upper()
    if method not in ("PUT", "POST"):
        kind = f"{method if method in _METHODS else 'other'} statements"
        return Extraction(ignored=[Skip(kind, "reads statements: passed through")])
    if not isinstance(doc, dict):
        raise PayloadError("an alternate-syntax request (?method=) has no form body")
    content = doc.get("content")
    if content is None:
        raise PayloadError("the form has no content field")
    if isinstance(content, str):  # the decoder read JSON where there was any
        raise PayloadError("the form's content is not JSON")
    if method == "PUT":
        statement_id = doc.get("statementId", query.get("statementId"))
        return _put(match, capture, content, statement_id)
    return _mirrored(match, capture, content if isinstance(content, list) else [content])


def _put(match: RuleMatch, capture: Capture, doc: Any, statement_id: Any) -> Extraction:
    """One statement, stored under statementId (Communication §2.1.1)."""
    if not isinstance(statement_id, str) or not statement_id:
        raise PayloadError("a PUT of a statement names no statementId")
    if not _UUID.match(statement_id):
        raise PayloadError("statementId is not a UUID")
    if not isinstance(doc, dict):
        raise PayloadError("a PUT carries one statement, a JSON object")
    their = doc.get("id")
    if their is None:
        doc = {**doc, "id": statement_id}  # the LRS stores it under statementId
    elif not isinstance(their, str) or their.lower() != statement_id.lower():
        # The LRS refuses it (Communication §2.1.1): it claims nothing.
        return Extraction(rejected=[Skip("statement", "its id is not the statementId")])
    return _mirrored(match, capture, [doc])


def _moodle(match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    calls = _as_sent(capture)
    if not isinstance(calls, list):
        raise PayloadError("a Moodle AJAX body is an array of calls")
    out = Extraction()
    statements: list[Any] = []
    for call in calls:
        if not isinstance(call, dict):
            out.rejected.append(Skip("Moodle call", "not a JSON object"))
            continue
        name = call.get("methodname")
        if name != STATEMENT_POST:
            kind = name if isinstance(name, str) and name else "Moodle call"
            out.ignored.append(Skip(kind, "another Moodle web service call: passed through"))
            continue
        args = call.get("args")
        text = args.get("requestjson") if isinstance(args, dict) else None
        if not isinstance(text, str):
            out.rejected.append(Skip(STATEMENT_POST, "args.requestjson is not a string"))
            continue
        data = text.encode("utf-8", "replace")  # a lone surrogate escaped in the outer JSON
        try:
            found = decode_body(data, "application/json", None, max(len(data), 1))
        except DecodeError:
            out.rejected.append(Skip(STATEMENT_POST, "args.requestjson is not JSON"))
            continue
        statements += found if isinstance(found, list) else [found]
    made = _mirrored(match, capture, statements)
    made.ignored[:0] = out.ignored
    made.rejected[:0] = out.rejected
    return made


def _as_sent(capture: Capture) -> Any:
    try:
        body = decompress(capture.body, capture.header("content-encoding"), _REREAD_CAP)
        return json.loads(body)
    except (DecodeError, ValueError, RecursionError):
        raise PayloadError("the body is not JSON") from None


def _mirrored(match: RuleMatch, capture: Capture, items: list[Any]) -> Extraction:
    out = Extraction()
    seen_on = _page_origin(capture)
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            out.rejected.append(Skip("statement", "not a JSON object"))
            continue
        try:
            checked = Statement.model_validate(raw)
        except ValidationError as error:
            out.rejected.append(Skip("statement", reason(error)))
            continue
        when = None if checked.timestamp is None else parse_timestamp(checked.timestamp)
        timestamp, timed = event_time(when, capture)
        if checked.id is not None:
            event_id = checked.id.lower()
        elif timed:  # its content says when: a resend is the same statement
            event_id = raw_event_id(raw)
        else:  # nothing tells it from the same statement sent again later
            event_id = raw_event_id([raw, capture.received_at.isoformat(), index])
        out.mirrored.append(
            MirroredEvent(
                platform=NAME,
                platform_name=PLATFORM_NAME,
                origin=seen_on or capture.origin,
                rule=match.rule.name,
                event_type=checked.verb.id,
                source_event_id=event_id,
                timestamp=timestamp,
                timed=timed,
                user_ref="",  # the statement's agents are replaced where they stand
                user_ref_kind="",
                statement=raw,
                seen_on=seen_on,
                sent_to=capture.host,
            )
        )
    return out


def _page_origin(capture: Capture) -> str | None:
    """The origin of the page that sent it: Origin, else Referer (never its path)."""
    for name in ("origin", "referer"):
        located = page_url(capture.header(name))
        if located is not None:
            return located[0]
    return None


def _resources(match: RuleMatch, capture: Capture, doc: Any) -> Extraction:
    resource = match.params.get("resource", "").lower()
    method = _query(capture).get("method", capture.method).upper()
    kind = f"{method if method in _METHODS else 'other'} {resource}"
    if resource == "statements":
        why = "reads statements: passed through"
    else:
        why = "not a statement (a document, or the LRS's about): passed through"
    return Extraction(ignored=[Skip(kind, why)])


PLATFORM = Platform(NAME, {STATEMENTS: _statements, MOODLE: _moodle, RESOURCES: _resources})
