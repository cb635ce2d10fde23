"""Prove the real-Ralph test harness (tests/support/ralph.py) works."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from support.ralph import RalphLRS
from support.ralph import ralph_python
from support.ralph import validate_with_ralph

pytestmark = pytest.mark.e2e

VIDEO_PROFILE = "https://w3id.org/xapi/video"
PLAYED = "https://w3id.org/xapi/video/verbs/played"
VIDEO_TYPE = "https://w3id.org/xapi/video/activity-type/video"
TIME_EXT = "https://w3id.org/xapi/video/extensions/time"
SESSION_EXT = "https://w3id.org/xapi/video/extensions/session-id"


def played_statement(video: str = "intro", at: float = 12.5) -> dict[str, Any]:
    """A video-profile `played` statement that Ralph's VideoPlayed model accepts."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "actor": {
            "objectType": "Agent",
            "account": {"homePage": "https://lms.example.org", "name": "learner-42"},
        },
        "verb": {"id": PLAYED, "display": {"en-US": "played"}},
        "object": {
            "objectType": "Activity",
            "id": f"https://lms.example.org/videos/{video}",
            "definition": {"type": VIDEO_TYPE, "name": {"en-US": video}},
        },
        "result": {"extensions": {TIME_EXT: at}},
        "context": {
            "contextActivities": {
                "category": [
                    {
                        "id": VIDEO_PROFILE,
                        "definition": {"type": "http://adlnet.gov/expapi/activities/profile"},
                    }
                ]
            },
            "extensions": {SESSION_EXT: str(uuid.uuid4())},
        },
    }


def stored_ids(lrs: RalphLRS, **params: str | int) -> list[str]:
    return [statement["id"] for statement in lrs.statements(**params)]


@pytest.fixture(scope="module")
def lrs() -> Iterator[RalphLRS]:
    with RalphLRS() as server:
        yield server


def test_separate_posts_are_all_stored(lrs: RalphLRS) -> None:
    first, second = played_statement("a"), played_statement("b")

    # Two POSTs to the same fs file: the second one fails with 500 without APPEND.
    for statement in (first, second):
        response = lrs.post(statement)
        assert response.status_code == 200, response.text
        assert response.json() == [statement["id"]]

    ids = stored_ids(lrs)
    assert first["id"] in ids
    assert second["id"] in ids


def test_identical_repost_is_accepted_once(lrs: RalphLRS) -> None:
    statement = played_statement("repost")
    assert lrs.post(statement).status_code == 200

    again = lrs.post(copy.deepcopy(statement))

    assert again.status_code in (200, 204), again.text
    assert stored_ids(lrs).count(statement["id"]) == 1


def test_get_returns_stored_statement(lrs: RalphLRS) -> None:
    statement = played_statement("get")
    assert lrs.post(statement).status_code == 200

    stored = lrs.get(statement["id"])

    assert stored is not None
    assert stored["verb"]["id"] == PLAYED
    assert stored["object"] == statement["object"]
    assert stored["authority"]["mbox"] == f"mailto:{lrs.username}@example.org"
    assert lrs.get(str(uuid.uuid4())) is None


def test_statements_follow_more_links(lrs: RalphLRS) -> None:
    for video in ("p1", "p2", "p3"):
        assert lrs.post(played_statement(video)).status_code == 200

    assert stored_ids(lrs, limit=1) == stored_ids(lrs)


def test_wrong_password_is_rejected(lrs: RalphLRS) -> None:
    response = lrs.session.get(
        lrs.statements_url,
        auth=(lrs.username, "wrong"),
        headers={"X-Experience-API-Version": "1.0.3"},
        timeout=10,
    )
    assert response.status_code == 401


def test_restart_keeps_data_and_exit_cleans_up() -> None:
    with RalphLRS() as lrs:
        before = played_statement("before-outage")
        assert lrs.post(before).status_code == 200
        url, tmp_dir = lrs.url, lrs.tmp_dir

        lrs.stop()
        with pytest.raises(requests.ConnectionError):
            lrs.post(played_statement("during-outage"))
        lrs.start()

        after = played_statement("after-outage")
        assert lrs.post(after).status_code == 200
        assert lrs.url == url
        assert stored_ids(lrs) == [before["id"], after["id"]]
        process_log = lrs.log_path.read_text()

    assert not tmp_dir.exists()
    assert "Application startup complete" in process_log


def test_validate_with_ralph_reports_each_statement() -> None:
    valid = played_statement()
    missing_result = played_statement()
    del missing_result["result"]
    unknown_verb = played_statement()
    unknown_verb["verb"] = {"id": "https://example.org/verbs/frobnicated"}

    results = validate_with_ralph([valid, missing_result, unknown_verb, valid])

    assert results[0] == {"ok": True, "model": "VideoPlayed"}
    assert results[1]["ok"] is False
    assert "result" in results[1]["error"]
    assert results[2]["ok"] is False
    assert "no matching model" in results[2]["error"]
    assert results[3] == results[0]


def test_missing_ralph_venv_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XAPITAP_RALPH_VENV", str(tmp_path / "nowhere"))

    with pytest.raises(RuntimeError, match="make test"):
        ralph_python()
