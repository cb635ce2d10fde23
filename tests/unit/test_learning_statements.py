"""Learning events (not player actions) → statements, against values worked out by hand."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from support.sessions import video_event
from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import LearningEvent
from xapitap.events import LearningResult
from xapitap.session import VideoSessions
from xapitap.xapi import models as m
from xapitap.xapi import vocab as v
from xapitap.xapi.learning import render_learning
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined

WHEN = datetime(2025, 3, 1, 10, 0, 0, 250000, tzinfo=UTC)
PAGE = Activity(id="https://lms.example/courses/c1/page", type=v.PAGE_TYPE, name="Week 1")
COURSE = Activity(id="https://lms.example/courses/c1", type=v.COURSE_TYPE)


def learning(
    verb: str = "viewed", result: LearningResult | None = None, **kw: Any
) -> LearningEvent:
    fields: dict[str, Any] = {
        "platform": "example",
        "platform_name": "Example LMS",
        "origin": "https://lms.example",
        "rule": "example.events",
        "event_type": "page_view",
        "source_event_id": "ev-1",
        "timestamp": WHEN,
        "user_ref": "",
        "user_ref_kind": "userId",
        "verb": v.LEARNING_VERBS[verb],
        "object": PAGE,
        "groupings": (COURSE,),
        "result": result,
    }
    return LearningEvent(**{**fields, **kw})


def actor(name: str = "learner-1") -> m.Agent:
    return m.Agent(account=m.Account(homePage="https://lms.example", name=name))


def rendered(event: LearningEvent, session_id: str | None = None) -> dict[str, Any]:
    statement = render_learning(event, actor(), Policy(), session_id)
    assert isinstance(statement, m.Statement), statement
    return statement.model_dump(mode="json", exclude_none=True)


def test_a_page_view_is_one_viewed_statement_with_its_provenance() -> None:
    s = rendered(learning())
    assert s["verb"] == {
        "id": "http://id.tincanapi.com/verb/viewed",
        "display": {"en-US": "viewed"},
    }
    assert s["object"] == {
        "objectType": "Activity",
        "id": "https://lms.example/courses/c1/page",
        "definition": {
            "type": "http://activitystrea.ms/schema/1.0/page",
            "name": {"und": "Week 1"},
        },
    }
    assert s["timestamp"] == "2025-03-01T10:00:00.250Z"
    assert s["context"]["platform"] == "Example LMS"
    assert s["context"]["contextActivities"] == {
        "grouping": [
            {
                "objectType": "Activity",
                "id": "https://lms.example/courses/c1",
                "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
            }
        ]
    }
    source = s["context"]["extensions"][v.SOURCE]
    assert source["platform"] == "example" and source["eventId"] == "ev-1"
    assert v.SESSION_ID not in s["context"]["extensions"]
    assert "result" not in s  # the traffic said nothing about a result


def test_ids_are_deterministic_and_differ_by_event_verb_and_actor() -> None:
    first = render_learning(learning(), actor(), Policy())
    assert isinstance(first, m.Statement)
    assert render_learning(learning(), actor(), Policy()) == first
    others = [
        render_learning(learning(source_event_id="ev-2"), actor(), Policy()),
        render_learning(learning("downloaded"), actor(), Policy()),
        render_learning(learning(), actor("learner-2"), Policy()),
    ]
    ids = {first.id} | {s.id for s in others if isinstance(s, m.Statement)}
    assert len(ids) == 4


def test_a_problem_result_carries_score_success_and_response() -> None:
    result = LearningResult(success=False, response="choice_2", score_raw=3, score_max=4)
    s = rendered(learning("attempted", result))
    assert s["result"] == {
        "success": False,
        "response": "choice_2",
        "score": {"raw": 3.0, "max": 4.0, "scaled": 0.75},
    }


def test_scaled_is_left_out_where_the_scale_does_not_start_at_zero() -> None:
    result = LearningResult(score_raw=3, score_min=1, score_max=5)
    assert rendered(learning("attempted", result))["result"]["score"] == {
        "raw": 3.0,
        "min": 1.0,
        "max": 5.0,
    }


def test_item_progress_is_cmi5_progress_and_completion_only_with_completed() -> None:
    progressed = rendered(learning("progressed", LearningResult(progress=40)))
    assert progressed["result"] == {"extensions": {v.CMI5_PROGRESS: 40}}
    completed = rendered(learning("completed", LearningResult(completion=True)))
    assert completed["result"] == {"completion": True}
    wrong = render_learning(learning("viewed", LearningResult(completion=True)), actor(), Policy())
    assert isinstance(wrong, Quarantined)
    assert "completion is only for the completed verb" in wrong.reason


def test_a_score_above_its_maximum_is_quarantined_not_sent() -> None:
    result = LearningResult(score_raw=5, score_max=4)
    out = render_learning(learning("attempted", result), actor(), Policy())
    assert isinstance(out, Quarantined)
    assert "score.raw is above score.max" in out.reason


def test_responses_lose_e_mail_addresses_and_are_bounded() -> None:
    query = rendered(learning("searched", LearningResult(response="help for ann@example.org")))
    assert "ann@example.org" not in query["result"]["response"]
    long = rendered(learning("answered", LearningResult(response="x" * 5000)))
    assert len(long["result"]["response"]) == 2000


def test_the_open_video_session_is_found_by_actor_and_video() -> None:
    sessions = VideoSessions()
    played = video_event(Kind.PLAYED, 0.0)
    routed = sessions.route("learner-1", played, WHEN)
    assert routed.session is not None
    video = played.video.id
    assert sessions.open_session("learner-1", video, None) is routed.session
    assert sessions.open_session("learner-2", video, None) is None
    assert sessions.open_session("learner-1", video + "/other", None) is None
    sessions.expire(WHEN + timedelta(hours=1))
    assert sessions.open_session("learner-1", video, None) is None


def test_a_learning_event_about_an_open_video_carries_its_session_id() -> None:
    s = rendered(learning("interacted"), session_id="0f7c7a0e-7d53-4a63-9a7e-1f1f6e1f2a3b")
    assert s["context"]["extensions"][v.SESSION_ID] == "0f7c7a0e-7d53-4a63-9a7e-1f1f6e1f2a3b"
