"""Which requests are a page's own xAPI traffic: the version header (or its form field) on an
xAPI resource, or Moodle's statement service; nothing else."""

from __future__ import annotations

import pytest

from xapitap.matching import Matcher
from xapitap.platforms import all_rules

XAPI = {"x-experience-api-version": "1.0.3"}
FORM = b"X-Experience-API-Version=1.0.3&content=%7B%7D"
MOODLE = b'[{"index":0,"methodname":"core_xapi_statement_post","args":{}}]'


def rule_for(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> str | None:
    found = Matcher(all_rules()).match(
        method, "lrs.example.org", path, (headers or {}).get, lambda: body
    )
    return found.rule.name if found else None


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "rule"),
    [
        ("POST", "/xapi/statements", b"[]", XAPI, "xapi.statements"),
        ("POST", "/data/xAPI/statements/", b"{}", XAPI, "xapi.statements"),
        ("PUT", "/xapi/statements", b"{}", XAPI, "xapi.statements"),
        ("POST", "/xapi/statements", FORM, None, "xapi.statements"),  # the alternate syntax
        ("POST", "/xapi/statements", b"[]", None, None),  # no version: not xAPI
        ("POST", "/api/statements", b'{"a":"&x-experience-api-version="}', None, None),
        ("GET", "/xapi/statements", b"", XAPI, "xapi.resources"),
        ("HEAD", "/xapi/statements", b"", XAPI, "xapi.resources"),
        ("GET", "/xapi/statements", b"", None, None),
        ("PUT", "/xapi/activities/state", b"resume-data", XAPI, "xapi.resources"),
        ("POST", "/xapi/activities/state", FORM, None, "xapi.resources"),
        ("DELETE", "/xapi/activities/state", b"", XAPI, "xapi.resources"),
        ("GET", "/xapi/activities/profile", b"", XAPI, "xapi.resources"),
        ("GET", "/xapi/agents/profile", b"", XAPI, "xapi.resources"),
        ("GET", "/xapi/about", b"", XAPI, "xapi.resources"),
        ("GET", "/about", b"", None, None),  # a site's about page
        ("POST", "/xapi/statements/extra", b"[]", XAPI, None),
        ("POST", "/lib/ajax/service.php", MOODLE, None, "xapi.moodle"),
        (
            "POST",
            "/lib/ajax/service.php",
            b'[{"methodname":"core_fetch_notifications"}]',
            None,
            None,
        ),
    ],
)
def test_rules(
    method: str, path: str, body: bytes, headers: dict[str, str] | None, rule: str | None
) -> None:
    assert rule_for(method, path, body, headers) == rule


def test_no_xapi_request_may_be_answered_by_the_proxy() -> None:
    rules = [r for r in all_rules() if r.platform == "xapi"]
    assert len(rules) == 3 and not any(r.answerable for r in rules)
    # ... and a user-added host keeps it so.
    added = Matcher(rules, {"xapi": ["lrs.example.org"]})
    found = added.match("POST", "lrs.example.org", "/x/statements", {}.get, lambda: b"[]")
    assert found is not None and not found.rule.answerable
