from __future__ import annotations

import pytest

from xapitap.matching import Matcher
from xapitap.platforms import all_rules

SEGMENT_BODY = b'{"type":"track","event":"x","writeKey":"k"}'


def matcher(extra: dict[str, list[str]] | None = None) -> Matcher:
    return Matcher(all_rules(), extra)


def rule_for(
    method: str,
    host: str,
    path: str,
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    extra: dict[str, list[str]] | None = None,
) -> str | None:
    found = matcher(extra).match(method, host, path, (headers or {}).get, lambda: body)
    return found.rule.name if found else None


@pytest.mark.parametrize(
    ("method", "host", "path", "body", "rule"),
    [
        ("POST", "api.segment.io", "/v1/t", b"{}", "segment.api"),
        ("POST", "api.segment.io", "/v1/batch", b"{}", "segment.api"),
        ("POST", "events.eu1.segmentapis.com", "/v1/b", b"{}", "segment.api"),
        ("POST", "t.example.org", "/connections/api/v1/t", SEGMENT_BODY, "segment.first-party"),
        ("POST", "t.example.org", "/v1/t", b'{"type":"track"}', None),  # no writeKey, no auth
        ("GET", "api.segment.io", "/v1/t", b"", None),
        ("POST", "www.coursera.org", "/api/rest/v1/eventing/infobatch", b"{}", "coursera.eventing"),
        ("POST", "www.coursera.org", "/eventing/infoBatch.v2", b"{}", "coursera.eventing"),
        ("POST", "www.coursera.org", "/EVENTING/INFOBATCH", b"{}", "coursera.eventing"),
        ("POST", "www.coursera.org", "/eventing/info.v2", b"{}", "coursera.eventing"),
        ("POST", "evil-coursera.org", "/eventing/info.v2", b"{}", None),
        (
            "PUT",
            "www.coursera.org",
            "/api/onDemandVideoProgresses.v1/1~c~t",
            b"{}",
            "coursera.video-progress",
        ),
        ("POST", "www.udemy.com", "/api-2.0/ecl", b"[]", "udemy.ecl"),
        ("POST", "acme.udemy.com", "/api-2.0/ecl/", b"[]", "udemy.ecl"),
        (
            "POST",
            "www.udemy.com",
            "/api-2.0/users/me/subscribed-courses/1/lectures/2/progress-logs/",
            b"{}",
            "udemy.progress-log",
        ),
        (
            "POST",
            "www.udemy.com",
            "/api-2.0/users/me/subscribed-courses/1/completed-lectures/",
            b"{}",
            "udemy.completed-lecture",
        ),
        (
            "POST",
            "www.udemy.com",
            "/anything",
            b'{"ctVersion":"1","action":"video play"}',
            "udemy.video-controls",
        ),
        ("POST", "www.udemy.com", "/anything", b'{"cart":1}', None),
        ("POST", "example.org", "/api/x", b"{}", None),
    ],
)
def test_rules(method: str, host: str, path: str, body: bytes, rule: str | None) -> None:
    assert rule_for(method, host, path, body) == rule


def test_basic_auth_stands_in_for_a_write_key_on_first_party_hosts() -> None:
    headers = {"authorization": "Basic V0s6"}
    assert rule_for("POST", "t.example.org", "/v1/t", b'{"type":"track"}', headers) == (
        "segment.first-party"
    )


def test_user_added_hosts_skip_the_body_check() -> None:
    extra = {"segment": ["*.collector.example"]}
    assert rule_for("POST", "a.collector.example", "/v1/t", b"", extra=extra) == "segment.api"
    extra = {"coursera": ["coursera.example.edu"]}
    found = rule_for("POST", "coursera.example.edu", "/eventing/info.v2", extra=extra)
    assert found == "coursera.eventing"


def test_body_is_not_read_for_requests_that_cannot_match() -> None:
    def body() -> bytes:
        raise AssertionError("body read")

    m = matcher()
    assert m.match("GET", "www.udemy.com", "/x", {}.get, body) is None
    assert m.match("POST", "example.org", "/api/x", {}.get, body) is None
