"""Udemy's ECL and lecture APIs and Coursera's non-player events: what each event is counted
as, and that no statement says more than the event does (wire-formats.md §3.3-3.4, §4.2-4.3)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

import golden
from support.fidelity import COURSERA_EVENTING
from support.fidelity import UDEMY
from support.fidelity import UDEMY_COOKIE
from support.fidelity import UDEMY_LOG
from support.fidelity import VISIT
from support.fidelity import Run
from support.fidelity import at
from support.fidelity import coursera_item
from support.fidelity import eventing
from support.fidelity import progress_log
from xapitap.accounting import Fate
from xapitap.accounting import Tally
from xapitap.pipeline import Outcome
from xapitap.pipeline import Pipeline
from xapitap.privacy import Privacy
from xapitap.pseudonym import Pseudonymizer

ECL = "https://www.udemy.com/api-2.0/ecl?client_key=js&client_version=abc"
LECTURE = "https://www.udemy.com/api-2.0/courses/4242/lectures/9002"
SESSION_ID = "https://w3id.org/xapi/video/extensions/session-id"
SOURCE = "https://xapitap.github.io/xapi/extensions/source"
SUPPLEMENT = "https://www.coursera.org/api/onDemandSupplementCompletions.v1"


def ecl(event_type: str, t: float, n: int, lecture: int | None = 9002, **fields: Any) -> Any:
    """One ECL event as Udemy's tracker sends it, `t` s after the fidelity base time."""
    data: dict[str, Any] = {
        "_type": event_type,
        "eventId": f"ev-{n}",
        "createTime": int(at(t).timestamp() * 1000),
        "clientHeader": {"appKey": "web_main", "userId": 7654321, "sessionId": "s-1"},
        "courseTakingHeader": {"courseId": 4242, "userMode": "student"},
        **fields,
    }
    if lecture is not None:
        data["curriculum"] = {"curriculumType": "lecture", "curriculumId": lecture}
    return {"eventType": event_type, "eventData": data}


def video_view(t: float, n: int, resource: str = "lecture video-view") -> Any:
    return ecl("CourseTakingVideoViewEvent", t, n, resource=resource)


def verbs(statements: list[dict[str, Any]]) -> list[str]:
    return [s["verb"]["display"]["en-US"] for s in statements]


def process(url: str, body: bytes, received: datetime, **headers: str) -> Outcome:
    pipeline = Pipeline(Privacy("pseudonym", Pseudonymizer(golden.TEST_KEY)), golden.MAX_BODY)
    capture = golden.Request("POST", url, headers, body, received).capture()
    match = pipeline.matcher().match(
        capture.method, capture.host, capture.path, capture.header, lambda: capture.body
    )
    assert match is not None
    return pipeline.process(match, capture)


def test_an_ecl_batch_is_accounted_for_event_by_event() -> None:
    batch = [
        video_view(0, 1),
        ecl("CourseTakingSearchEvent", 1, 2, query="loss function"),
        ecl("CourseTakingTranscriptActionEvent", 2, 3, action="cue_click"),
        ecl("CourseTakingContentViewEvent", 3, 4),
        ecl("CourseTakingItemProgressUpdateEvent", 4, 5, progress="mark_complete"),
        ecl("CourseTakingVideoAutoplayToggleEvent", 5, 6, autoplay=True),
        ecl("SomeFutureEvent", 6, 7),
        ecl("CourseTakingLectureDownloadEvent", 7, 8, lecture=None),  # no curriculum
        {"eventData": {}},  # no eventType
    ]
    outcome = process(ECL, json.dumps(batch).encode(), at(10), **UDEMY_COOKIE)

    def tally(event_type: str, fate: Fate, reason: str = "") -> Tally:
        return Tally("udemy", "udemy.ecl", event_type, fate, reason)

    assert outcome.tallies == Counter(
        {
            tally("", Fate.REQUEST): 1,
            tally("CourseTakingVideoViewEvent", Fate.TRANSLATED): 1,
            tally("CourseTakingSearchEvent", Fate.TRANSLATED): 1,
            tally("CourseTakingTranscriptActionEvent", Fate.TRANSLATED): 1,
            tally(
                "CourseTakingContentViewEvent",
                Fate.IGNORED,
                "names the item open before the click, not the one opened",
            ): 1,
            tally(
                "CourseTakingItemProgressUpdateEvent",
                Fate.IGNORED,
                "a completion checkbox: names the open item, not the one ticked, "
                "and no progress value",
            ): 1,
            tally("CourseTakingVideoAutoplayToggleEvent", Fate.IGNORED, "a player preference"): 1,
            tally("SomeFutureEvent", Fate.IGNORED, "no xAPI mapping"): 1,
            tally("CourseTakingLectureDownloadEvent", Fate.REJECTED, "no curriculum lecture"): 1,
            tally("(ECL item)", Fate.REJECTED, "no eventType"): 1,
        }
    )
    statements = [json.loads(s.to_json()) for s, _ in outcome.statements]
    assert verbs(statements) == ["initialized", "searched", "interacted"]


@pytest.mark.parametrize("ecl_first", [True, False])
def test_the_ecl_video_view_and_the_progress_logs_are_one_session(ecl_first: bool) -> None:
    """The progress logs name no platform session, so the ECL events must not either: keyed
    by clientHeader.sessionId, a lecture reopened after the logs began would open a second
    session beside the one they extend."""
    run = Run()
    if ecl_first:
        run.post(ECL, [video_view(0, 1)], 1, UDEMY_COOKIE)
    for t in (15, 30):
        run.post(UDEMY_LOG, progress_log(t, t - 2, 100), t + 0.2, UDEMY_COOKIE)
    reopened = [video_view(31, 2), ecl("CourseTakingTranscriptActionEvent", 31.5, 3)]
    run.post(ECL, reopened, 32, UDEMY_COOKIE)
    run.post(UDEMY_LOG, progress_log(45, 43, 100), 45.2, UDEMY_COOKIE)
    run.finish()
    assert verbs(run.statements) == ["initialized", "played", "interacted", "paused", "terminated"]
    first = run.statements[0]
    assert first["context"]["extensions"][SOURCE]["inferred"] is not ecl_first
    assert {s["context"]["extensions"].get(SESSION_ID) for s in run.statements} == {first["id"]}
    assert len({s["actor"]["account"]["name"] for s in run.statements}) == 1


def test_a_lecture_opened_is_viewed_once_and_only_a_video_initializes_a_player() -> None:
    """The view-log and the ECL view are one opening: one viewed; an article has no player."""
    run = Run()
    for lecture, resource in (("9002", "lecture video-view"), ("9003", "lecture article-view")):
        # (The view-log's body is never read: the golden case sends none.)
        sent = run.post(f"{UDEMY}/lectures/{lecture}/view-logs/", None, 0.5, UDEMY_COOKIE)
        assert sent.rule == "udemy.view-log"
        view = ecl("CourseTakingVideoViewEvent", 0, int(lecture), int(lecture), resource=resource)
        run.post(ECL, [view], 2, UDEMY_COOKIE)
    by_object = Counter((s["object"]["id"].rsplit("/", 1)[-1], v) for s, v in _with_verbs(run))
    assert by_object == Counter(
        {("9002", "viewed"): 1, ("9002", "initialized"): 1, ("9003", "viewed"): 1}
    )
    assert run.sent[-1].ignored == [
        "CourseTakingVideoViewEvent: a lecture that is no video opened: its view-log records it"
    ]


def _with_verbs(run: Run) -> list[tuple[dict[str, Any], str]]:
    return [(s, s["verb"]["display"]["en-US"]) for s in run.statements]


def test_lecture_completed_is_the_platforms_record_never_a_watched_video() -> None:
    run = Run()
    done = [
        {"eventType": "LectureCompleted", "eventData": {**payload, "eventId": f"lc-{n}"}}
        for n, payload in enumerate(
            [
                {"lecture": {"id": 9002, "type": "video"}, "course": {"id": 4242}},
                {"lecture": {"id": 9003, "type": "article"}, "course": {"id": 4242}},
            ]
        )
    ]
    sent = run.post(ECL, done, 1, UDEMY_COOKIE)
    completed = [s for s in run.statements if s["verb"]["display"]["en-US"] == "completed"]
    # The article's completion, as Udemy records it. The video's joins an open session only
    # (it is the platform's rule, no sign of a player): none is open, so it is counted, and
    # no session (no initialized, no view) is made up for it.
    assert [s["object"]["id"] for s in completed] == [LECTURE.replace("9002", "9003")]
    assert completed[0]["result"] == {"completion": True}
    assert "udemy LectureCompleted: joins an open session only, and none is open" in sent.ignored
    run.finish()
    assert not [s for s in run.statements if s["object"]["id"] == LECTURE]


def test_a_search_without_a_query_has_no_response() -> None:
    run = Run()
    run.post(ECL, [ecl("CourseTakingSearchEvent", 0, 1, query="  ")], 1, UDEMY_COOKIE)
    assert verbs(run.statements) == ["searched"]
    assert "result" not in run.statements[0]


def test_the_ecl_learner_is_the_cookie_learner() -> None:
    """clientHeader.userId and the ud_cache_user cookie are the same id: one actor; a user id
    in the cookie wins over a visitor id in the body, as it does for the progress logs; with
    only visitor ids, clientHeader.visitorUuid and the __udmy_2_v57r cookie are one actor."""
    for header, cookie in (
        ({"userId": 7654321}, UDEMY_COOKIE),
        ({"visitorUuid": "a1b2c3d4e5f60718293a4b5c6d7e8f90"}, UDEMY_COOKIE),
        ({"visitorUuid": "v-1"}, {"Cookie": "__udmy_2_v57r=v-1"}),
    ):
        run = Run()
        event = ecl("CourseTakingSearchEvent", 0, 1, query="x")
        event["eventData"]["clientHeader"] = header
        run.post(ECL, [event], 1, cookie)
        run.post(f"{UDEMY}/completed-lectures/", {"lecture_id": 9002}, 2, cookie)
        run.finish()
        assert len({s["actor"]["account"]["name"] for s in run.statements}) == 1, header


def test_coursera_keys_without_a_documented_meaning_make_no_statement() -> None:
    run = Run()
    page = coursera_item("play", 0, 0, "g-0")
    page["key"] = "pageview"
    unknown = coursera_item("play", 1, 0, "g-1")
    unknown["key"] = "open_course.item.complete"  # a guess at a name the research lacks
    run.post(COURSERA_EVENTING, eventing([page, unknown]), 2)
    assert verbs(run.statements) == ["viewed"]
    assert run.statements[0]["object"]["id"] == (
        "https://www.coursera.org/learn/geospatial/lecture/8xwbQ/lesson-1-lecture-1"
    )
    assert run.sent[-1].ignored == ["open_course.item.complete: no documented meaning"]


def test_a_reading_completion_names_the_reading_by_its_course_page() -> None:
    run = Run()
    body = {"userId": 77001122, "courseId": "opaque-id", "itemId": "Tq9xZ"}
    referer = "https://www.coursera.org/learn/geospatial/supplement/Tq9xZ/reading-1?x=1"
    cookie = f"__400v={VISIT}"
    run.post(SUPPLEMENT, body, 1, {"Referer": referer, "Cookie": cookie})
    run.post(SUPPLEMENT, body, 2, {"Cookie": cookie})
    (statement,) = run.statements
    assert statement["object"]["id"] == "https://www.coursera.org/learn/geospatial/supplement/Tq9xZ"
    assert "77001122" not in json.dumps(statement)
    assert run.sent[-1].ignored == [
        "onDemandSupplementCompletions: no referring course page names the course"
    ]
