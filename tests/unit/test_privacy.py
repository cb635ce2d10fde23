from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest

import golden
from support.sessions import run_events
from xapitap.events import Activity
from xapitap.events import Kind
from xapitap.events import VideoEvent
from xapitap.pipeline import Pipeline
from xapitap.privacy import PARTICIPANT_HOME
from xapitap.privacy import Privacy
from xapitap.privacy import coarse_user_agent
from xapitap.privacy import scrub
from xapitap.pseudonym import Pseudonymizer
from xapitap.xapi import vocab as v
from xapitap.xapi.translate import Policy
from xapitap.xapi.translate import Quarantined

KEY = Pseudonymizer(b"k" * 32)
UDACITY = golden.SEED / "udacity-course-video-watched.json"
COURSERA = golden.SEED / "coursera-video-play.json"
CHROME_66_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_3) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/66.0.3359.139 Safari/537.36"
)


def statements(
    privacy: Privacy, *bodies: tuple[str, bytes], policy: Policy | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    pipeline = Pipeline(privacy, 1 << 20, policy=policy or Policy())
    out, quarantined = [], []
    for url, body in bodies:
        request = golden.Request(
            "POST", url, {"user-agent": CHROME_66_MAC}, body, datetime(2018, 5, 12, tzinfo=UTC)
        )
        capture = request.capture()
        match = pipeline.matcher().match(
            "POST", capture.host, capture.path, {}.get, lambda b=body: b
        )
        assert match is not None
        outcome = pipeline.process(match, capture)
        out += [json.loads(s.to_json()) for s, _ in outcome.statements]
        quarantined += [q.reason for q, _ in outcome.quarantined]
    return out, quarantined


SEGMENT_URL = "https://api.segment.io/v1/t"
COURSERA_URL = "https://www.coursera.org/api/rest/v1/eventing/infobatch"


def test_participant_mode_names_one_participant_everywhere() -> None:
    privacy = Privacy("participant", KEY, participant="P-017")
    out, _ = statements(
        privacy, (SEGMENT_URL, UDACITY.read_bytes()), (COURSERA_URL, COURSERA.read_bytes())
    )
    assert {json.dumps(s["actor"]) for s in out} == {
        json.dumps(
            {"account": {"homePage": PARTICIPANT_HOME, "name": "P-017"}, "objectType": "Agent"}
        )
    }
    assert {s["context"]["extensions"][v.SOURCE]["privacy"] for s in out} == {"participant/1"}


def test_platform_mode_uses_the_raw_id_and_pseudonym_mode_never_does() -> None:
    raw, _ = statements(Privacy("platform", KEY), (SEGMENT_URL, UDACITY.read_bytes()))
    assert raw[0]["actor"]["account"]["name"] == "1234567890"
    hidden, _ = statements(Privacy("pseudonym", KEY), (SEGMENT_URL, UDACITY.read_bytes()))
    text = json.dumps(hidden)
    for secret in ("1234567890", "u0v6T1NLYy1dJA9tWDSGSyuFolxZEzUp", "37079069-bbe4"):
        assert secret not in text


def test_user_agent_is_opt_in_and_coarse() -> None:
    off, _ = statements(Privacy("pseudonym", KEY), (SEGMENT_URL, UDACITY.read_bytes()))
    assert "Chrome" not in json.dumps(off)
    on, _ = statements(
        Privacy("pseudonym", KEY, user_agent=True), (SEGMENT_URL, UDACITY.read_bytes())
    )
    initialized = on[0]
    assert initialized["verb"]["display"]["en-US"] == "initialized"
    assert initialized["context"]["extensions"][v.USER_AGENT] == "Chrome 66 (macOS)"
    assert initialized["context"]["extensions"][v.SOURCE]["privacy"] == "pseudonym+user-agent/1"


@pytest.mark.parametrize(
    ("agent", "coarse"),
    [
        (CHROME_66_MAC, "Chrome 66 (macOS)"),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 (Linux)",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Safari 17 (iOS)",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "Edge 124 (Windows)",
        ),
        ("curl/8.0", "other browser (other system)"),
    ],
)
def test_coarse_user_agents(agent: str, coarse: str) -> None:
    assert coarse_user_agent(agent) == coarse


def test_emails_are_scrubbed_from_iris_and_names() -> None:
    assert scrub("https://x.org/u/jane.doe@example.org/v") == "https://x.org/u/redacted-email/v"
    assert scrub("Hi jane%40example.org") == "Hi redacted-email"
    body = json.loads(UDACITY.read_text())
    body["properties"]["concept_title"] = "Feedback to jane.doe@example.org"
    body["properties"]["conceptKey"] = "jane.doe@example.org"
    out, _ = statements(Privacy("pseudonym", KEY), (SEGMENT_URL, json.dumps(body).encode()))
    assert "jane.doe" not in json.dumps(out) and "redacted-email" in json.dumps(out)


def test_xapi_2_statements_say_so_and_get_their_own_ids() -> None:
    old, _ = statements(Privacy("pseudonym", KEY), (SEGMENT_URL, UDACITY.read_bytes()))
    new, _ = statements(
        Privacy("pseudonym", KEY),
        (SEGMENT_URL, UDACITY.read_bytes()),
        policy=Policy(xapi_version="2.0.0"),
    )
    assert all("version" not in s for s in old)
    assert all(s["version"] == "2.0.0" for s in new)
    assert not {s["id"] for s in old} & {s["id"] for s in new[1:]}


def test_a_statement_the_models_refuse_is_quarantined_not_sent() -> None:
    # Adapters escape what they put in IRIs, so only a hand-made event carries a raw space.
    event = VideoEvent(
        platform="segment",
        platform_name="learn.example.org",
        origin="https://learn.example.org",
        rule="segment.api",
        source_event_id="ajs-q-1",
        kind=Kind.PAUSED,
        timestamp=datetime(2018, 5, 11, 10, tzinfo=UTC),
        user_ref="u1",
        user_ref_kind="userId",
        video=Activity(id="https://learn.example.org/my course", type=v.VIDEO_TYPE),
        position=5.0,
        length=60.0,
    )
    out = run_events([event], close=False)
    assert len(out) == 2  # the session's initialized and the paused
    assert all(isinstance(item, Quarantined) for item in out)
    reasons = [item.reason for item in out if isinstance(item, Quarantined)]
    assert all("object.id: not an absolute IRI" in reason for reason in reasons)
