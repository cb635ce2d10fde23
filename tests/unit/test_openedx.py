"""The Open edX adapter: what it matches, whom it attributes events to, what it refuses."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest

import golden
from support.openedx_browser import COURSE
from support.openedx_browser import LMS
from support.openedx_browser import PAGE
from support.openedx_browser import VIDEO_BLOCK
from support.openedx_browser import logger_log
from support.openedx_browser import publish_completion
from support.openedx_browser import tracking_log_event
from xapitap.matching import Matcher
from xapitap.platforms import all_rules
from xapitap.platforms.openedx_keys import course_of_page
from xapitap.platforms.openedx_keys import usage_key

T = datetime(2024, 9, 2, 10, 0, tzinfo=UTC)
VIDEO = {"id": VIDEO_BLOCK, "code": "html5", "duration": 195}
VIDEO_IRI = f"{LMS}/xblock/block-v1:edX+DemoX+Demo_Course+type@video+block@{VIDEO_BLOCK}"
TIME = "https://w3id.org/xapi/video/extensions/time"


def matched(method: str, url: str, body: bytes, headers: dict[str, str]) -> str | None:
    request = golden.Request(method, url, headers, body, T)
    capture = request.capture()
    found = Matcher(all_rules()).match(
        capture.method, capture.host, capture.path, capture.header, lambda: body
    )
    return found.rule.name if found else None


def run(*requests: golden.Request) -> list[dict[str, Any]]:
    return golden.run_requests(list(requests))


def statements(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for r in results for s in r.get("statements", [])]


# --- Matching: by path and shape, on any host -------------------------------------------------


def test_the_lms_browser_event_matches_on_any_host() -> None:
    request = logger_log(
        "play_video", {**VIDEO, "currentTime": 1}, T, lms="https://courses.uni.example"
    )
    assert matched("POST", request.url, request.body, request.headers) == "openedx.event"


@pytest.mark.parametrize(
    "body",
    [
        b"event_type=click&event=button&page=https%3A%2F%2Fshop.example%2F",  # event not JSON
        b"event_type=play_video&event=%7B%7D",  # no page
        b"event=%7B%7D&page=https%3A%2F%2Fx.example%2F",  # no event_type
        b'{"event_type": "play_video", "event": {}, "page": "https://x.example/"}',  # JSON
        b"event_type=%3Cscript%3E&event=%7B%7D&page=https%3A%2F%2Fx.example%2F",  # no event name
    ],
)
def test_another_sites_event_endpoint_is_not_read_as_open_edx(body: bytes) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert matched("POST", "https://shop.example/event", body, headers) is None


def test_a_get_to_event_needs_the_lms_login_cookies() -> None:
    url = "https://shop.example/event?" + urlencode({"event_type": "page_close", "page": PAGE})
    assert matched("GET", url, b"", {}) is None
    assert matched("GET", url, b"", {"Cookie": "edxloggedin=true"}) == "openedx.event-get"


def test_the_completion_handler_matches_by_its_path_and_body() -> None:
    request = publish_completion(f"block-v1:{COURSE[10:]}+type@video+block@x", T)
    assert matched("POST", request.url, request.body, {}) == "openedx.publish-completion"
    assert matched("POST", request.url, b"{}", {}) is None
    other = "https://x.example/xblock/abc/handler/publish_completion"
    assert matched("POST", other, request.body, {}) is None


# --- Keys -------------------------------------------------------------------------------------


def test_usage_and_course_keys_as_erb_builds_them() -> None:
    ccx = usage_key("ccx-block-v1:edX+DemoX+Demo+ccx@3+type@video+block@abc")
    assert ccx is not None and str(ccx.course) == "ccx-v1:edX+DemoX+Demo+ccx@3"
    assert ccx.course.usage("video", "abc") == ccx.key
    encoded = usage_key("block-v1%3AedX%2BDemoX%2BDemo%2Btype%40video%2Bblock%40abc")
    assert encoded is not None and encoded.key == "block-v1:edX+DemoX+Demo+type@video+block@abc"
    assert usage_key("block-v1:edX+DemoX+type@video+block@abc") is None  # no run
    assert usage_key("block-v1:a+b+c+type@video+block@a/b") is None


@pytest.mark.parametrize(
    ("page", "course"),
    [
        (PAGE, COURSE),
        (
            "https://apps.x/learning/course/course-v1:A+B+C/block-v1:A+B+C+type@sequential+block@s",
            "course-v1:A+B+C",
        ),
        (
            "https://lms.x/xblock/block-v1:A+B+C+type@vertical+block@v?show_title=0",
            "course-v1:A+B+C",
        ),
        ("https://lms.x/dashboard", None),
        ("https://lms.x/courses/A/B/C/courseware", None),  # deprecated keys are not read
    ],
)
def test_the_course_a_page_names(page: str, course: str | None) -> None:
    found = course_of_page(page)
    assert (str(found) if found else None) == course


# --- The learner -----------------------------------------------------------------------------


def test_the_learner_is_the_user_info_cookies_username_and_no_email_leaks() -> None:
    request = logger_log("load_video", VIDEO, T)
    assert "verified@example.com" in request.headers["Cookie"]
    other = logger_log("load_video", VIDEO, T, username="someone")
    ours, theirs = statements(run(request)), statements(run(other))
    assert ours[0]["actor"]["account"]["name"] != theirs[0]["actor"]["account"]["name"]
    assert "example.com" not in json.dumps(ours).replace("lms.example.org", "")


def test_the_jwt_cookie_names_the_same_learner() -> None:
    with_info = logger_log("load_video", VIDEO, T)
    payload = base64.urlsafe_b64encode(
        json.dumps({"preferred_username": "verified", "user_id": 7}).encode()
    ).rstrip(b"=")
    with_jwt = logger_log("load_video", VIDEO, T)
    with_jwt.headers["Cookie"] = (
        f"edx-jwt-cookie-header-payload=eyJhbGciOiJSUzUxMiJ9.{payload.decode()}"
    )
    a, b = statements(run(with_info)), statements(run(with_jwt))
    assert a[0]["actor"] == b[0]["actor"]


def test_without_login_cookies_nobody_is_guessed() -> None:
    request = logger_log("play_video", {**VIDEO, "currentTime": 0}, T)
    request.headers["Cookie"] = "csrftoken=x; sessionid=secret"
    (result,) = run(request)
    assert result["statements"] == []
    assert result["ignored"] == ["play_video: no learner identity (no edx-user-info cookie)"]


# --- Reading events --------------------------------------------------------------------------


def test_camel_and_snake_case_keys_say_the_same() -> None:
    page = "https://apps.x/learning/course/course-v1:edX+DemoX+Demo_Course/u"
    legacy = logger_log("pause_video", {**VIDEO, "currentTime": 12.5}, T)
    mfe = tracking_log_event("edx.video.paused", {**VIDEO, "current_time": 12.5}, T, page=page)
    a, b = statements(run(legacy)), statements(run(mfe))
    assert [s["verb"]["display"]["en-US"] for s in a] == ["initialized", "paused", "terminated"]
    assert [s["verb"]["id"] for s in a] == [s["verb"]["id"] for s in b]
    assert a[1]["object"]["id"] == b[1]["object"]["id"] == VIDEO_IRI
    assert a[1]["result"]["extensions"][TIME] == b[1]["result"]["extensions"][TIME] == 12.5


def test_a_full_usage_key_is_used_as_it_is() -> None:
    usage = "block-v1:Other+X+Y+type@video+block@v1"
    request = logger_log("load_video", {**VIDEO, "id": usage}, T)
    (statement,) = statements(run(request))[:1]
    assert statement["object"]["id"] == f"{LMS}/xblock/{usage}"
    assert statement["context"]["contextActivities"]["parent"][0]["id"] == (
        f"{LMS}/course/course-v1:Other+X+Y"
    )


@pytest.mark.parametrize(
    ("event_type", "data", "course", "reason"),
    [
        ("play_video", {"currentTime": 3}, COURSE, "names no video block"),
        ("play_video", {**VIDEO, "id": "a+b@c"}, COURSE, "names no video block"),
        ("play_video", {**VIDEO, "currentTime": 3}, None, "no course key to place the video in"),
        ("seek_video", {**VIDEO, "old_time": 3}, COURSE, "seek without new_time"),
        ("edx.ui.lms.sequence.next_selected", {"id": "seq"}, COURSE, "names no sequence block"),
        (
            "problem_check",
            "input_a_2_1=x&input_b_2_1=y",
            COURSE,
            "answers name no single problem block",
        ),
        ("problem_check", {"a": 1}, COURSE, "problem_check answers are not a query string"),
        ("problem_show", {}, COURSE, "names no problem block"),
        (
            "edx.ui.lms.link_clicked",
            {"target_url": "javascript:x"},
            COURSE,
            "target_url is not an http(s) URL",
        ),
    ],
)
def test_an_event_that_cannot_be_read_is_rejected_with_a_fixed_reason(
    event_type: str, data: Any, course: str | None, reason: str
) -> None:
    page = "https://lms.example.org/dashboard"
    (result,) = run(logger_log(event_type, data, T, course=course, page=page))
    assert result["statements"] == []
    assert result["errors"] == [f"openedx.event: {event_type}: {reason}"]


def test_problem_inputs_name_their_block_even_with_underscores_in_its_id() -> None:
    answers = (
        "input_Sample_Algebraic_Problem_2_1=x%2By&input_Sample_Algebraic_Problem_3_1%5B%5D=choice_1"
    )
    (statement,) = statements(run(logger_log("problem_check", answers, T)))
    assert statement["object"]["id"] == (
        f"{LMS}/xblock/block-v1:edX+DemoX+Demo_Course+type@problem+block@Sample_Algebraic_Problem"
    )
    assert statement["result"]["response"] == answers


def test_a_partial_completion_is_progress_and_a_full_one_completes() -> None:
    html = "block-v1:edX+DemoX+Demo_Course+type@html+block@intro"
    half = publish_completion(html, T, body={"completion": 0.5})
    full = publish_completion(html, T, body={"completion": 1.0})
    (a,) = statements(run(half))
    (b,) = statements(run(full))
    assert (a["verb"]["display"]["en-US"], a["result"]) == (
        "progressed",
        {"extensions": {"https://w3id.org/xapi/cmi5/result/extensions/progress": 50}},
    )
    assert (b["verb"]["display"]["en-US"], b["result"]) == ("completed", {"completion": True})
    (bad,) = run(publish_completion(html, T, body={"completion": 2}))
    assert bad["errors"] == [
        "openedx.publish-completion: completion body without a completion from 0 to 1"
    ]


def test_a_videos_completion_handler_repeats_complete_video() -> None:
    usage = f"block-v1:edX+DemoX+Demo_Course+type@video+block@{VIDEO_BLOCK}"
    (result,) = run(publish_completion(usage, T))
    assert result["statements"] == []
    assert result["ignored"] == ["publish_completion: repeats complete_video"]


def test_transcript_toggles_are_no_captions() -> None:
    shown = logger_log("show_transcript", {**VIDEO, "current_time": 4}, T)
    captions = logger_log("edx.video.closed_captions.shown", {**VIDEO, "current_time": 4}, T)
    (transcript,) = [s for s in statements(run(shown)) if "interacted" in s["verb"]["id"]]
    (cc,) = [s for s in statements(run(captions)) if "interacted" in s["verb"]["id"]]
    assert transcript["verb"]["display"]["en-US"] == cc["verb"]["display"]["en-US"] == "interacted"
    assert "https://w3id.org/xapi/video/extensions/cc-enabled" not in json.dumps(transcript)
    assert cc["result"]["extensions"]["https://w3id.org/xapi/video/extensions/cc-enabled"] is True


def test_unmapped_and_menu_events_are_ignored_with_their_reason() -> None:
    (menu,) = run(logger_log("edx.video.language_menu.hidden", {**VIDEO, "language": "en"}, T))
    (other,) = run(logger_log("edx.bookmark.added", {"component_usage_id": "x"}, T))
    assert menu["ignored"] == [
        "edx.video.language_menu.hidden: closes a menu; the language may be unchanged"
    ]
    assert other["ignored"] == ["edx.bookmark.added: no xAPI mapping"]
