"""Our Open edX statements against Ralph's own edX -> xAPI converter, event by event.

One viewing on a legacy LMS page is sent as the browser sends it (tests/support/
openedx_browser.py); the LMS would log each request as one tracking-log line (wire-formats.md
§5.4: the envelope, `event` as the JSON string posted). `ralph convert -f edx -t xapi` reads
those lines; our pipeline reads the requests. For the events Ralph converts (load, play,
pause, seek, stop) we check that both say the same where both know it, and where we say
more, that it is what the traffic gave:
- verb, result time / time-from / time-to and timestamp: the same (stop_video aside: Ralph
  ends the session there, we do not, see openedx_video.py);
- object id: ERB's (`<LMS>/xblock/block-v1:<org+course+run>+type@video+block@<id>`); Ralph
  5.1.0 builds another, malformed one (it pastes the whole course key after `block-v1:` and
  appends `-course-v1:`), which is asserted as it is, so this test notices when Ralph fixes it;
- length: the video's `duration`, where Ralph writes 0.0 (or nothing, on played);
- session-id: our initialized's id; Ralph's is the edX login session, the same for every
  video the learner plays while logged in.
Ralph 5.1.0 converts only tracking logs whose `event` is already an object (it never reads
the JSON string the LMS logs for browser events): that is asserted too, and the comparison
uses the lines with `event` parsed, as ERB's fixtures show them.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

import golden
from support.openedx_browser import COURSE
from support.openedx_browser import LMS
from support.openedx_browser import PAGE
from support.openedx_browser import USERNAME
from support.openedx_browser import VIDEO_BLOCK
from support.openedx_browser import logger_log
from support.ralph import ralph_env
from support.ralph import ralph_executable
from xapitap.xapi import vocab as v

pytestmark = pytest.mark.e2e  # runs Ralph's CLI from its own virtualenv

T0 = datetime(2024, 9, 2, 10, 0, tzinfo=UTC)
NAMESPACE = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
EDX_SESSION = "485a6a16c27848a545da74a74114158d"  # the LMS's md5 of the Django session key
DURATION = 195
VIDEO = {"id": VIDEO_BLOCK, "code": "html5", "duration": DURATION}
ERB_OBJECT = f"{LMS}/xblock/block-v1:edX+DemoX+Demo_Course+type@video+block@{VIDEO_BLOCK}"
RALPH_OBJECT = f"{LMS}/xblock/block-v1:{COURSE}-course-v1:+type@video+block@{VIDEO_BLOCK}"
# What Ralph's converter makes of each event it reads.
RALPH_VERBS = {
    "load_video": v.VERBS["initialized"],
    "play_video": v.VERBS["played"],
    "pause_video": v.VERBS["paused"],
    "seek_video": v.VERBS["seeked"],
    "stop_video": v.VERBS["terminated"],
}
TIMES = (v.TIME, v.TIME_FROM, v.TIME_TO)


def viewing() -> list[golden.Request]:
    """Load, play 0-30, pause, drag to 100, play to 130, pause, drag back to 20 (paused),
    play 20-60, drag to 180 while playing, play to the end: stop_video (a YouTube player
    sends no pause at the end)."""
    events: list[tuple[float, str, dict[str, Any]]] = [
        (0, "load_video", {}),
        (2, "play_video", {"currentTime": 0}),
        (32, "pause_video", {"currentTime": 30.004}),
        (40, "seek_video", {"old_time": 30.004, "new_time": 100, "type": "onSlideSeek"}),
        (41, "play_video", {"currentTime": 100}),
        (71, "pause_video", {"currentTime": 130.01}),
        (75, "seek_video", {"old_time": 130.01, "new_time": 20, "type": "onSlideSeek"}),
        (76, "play_video", {"currentTime": 20}),
        (116, "seek_video", {"old_time": 60.002, "new_time": 180, "type": "onSlideSeek"}),
        (116.4, "play_video", {"currentTime": 180}),
        (131.4, "stop_video", {"currentTime": DURATION}),
    ]
    return [
        logger_log(name, {**VIDEO, **data}, T0 + timedelta(seconds=t)) for t, name, data in events
    ]


def tracking_log(request: golden.Request) -> dict[str, Any]:
    """The line the LMS logs for this browser request (§5.4), `event` as posted."""
    fields = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    return {
        "name": fields["event_type"],
        "event_type": fields["event_type"],
        "event_source": "browser",
        "time": request.received_at.isoformat(),
        "context": {"user_id": 7, "path": "/event", "course_id": COURSE, "org_id": "edX"},
        "username": USERNAME,
        "session": EDX_SESSION,
        "ip": "172.18.0.1",
        "agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",
        "host": "lms.example.org",
        "referer": PAGE,
        "accept_language": "en-GB,en;q=0.9",
        "page": fields["page"],
        "event": fields["event"],
    }


def ralph_convert(lines: list[dict[str, Any]], tmp: Path) -> tuple[list[dict[str, Any]], str]:
    """`ralph convert` over the lines (errors skipped and counted): its statements and log."""
    done = subprocess.run(
        [
            str(ralph_executable()),
            "convert",
            *("--from", "edx", "--to", "xapi", "--ignore-errors"),
            *("--uuid-namespace", NAMESPACE, "--platform-url", LMS),
        ],
        input="".join(json.dumps(line) + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        env=ralph_env({"RALPH_APP_DIR": str(tmp)}),
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()], done.stderr


def invalid_count(log: str) -> int:
    found = re.search(r"Total events: (\d+), Invalid events: (\d+)", log)
    assert found, log
    return int(found[2])


def ext(statement: dict[str, Any], part: str) -> dict[str, Any]:
    extensions = statement.get(part, {}).get("extensions", {})
    assert isinstance(extensions, dict)
    return extensions


def test_ralph_cannot_read_browser_events_as_the_lms_logs_them(tmp_path: Path) -> None:
    lines = [tracking_log(r) for r in viewing()]
    assert all(isinstance(line["event"], str) for line in lines)
    converted, log = ralph_convert(lines, tmp_path)
    assert converted == []
    assert invalid_count(log) == len(lines)


def test_our_statements_agree_with_ralphs_where_both_know_and_say_more(tmp_path: Path) -> None:
    requests = viewing()
    lines = [{**tracking_log(r), "event": json.loads(tracking_log(r)["event"])} for r in requests]
    theirs, log = ralph_convert(lines, tmp_path)
    assert invalid_count(log) == 0 and len(theirs) == len(lines)
    results = golden.run_requests(requests)
    ours_by_event = [r["statements"] for r in results[: len(requests)]]
    ours = [s for r in results for s in r["statements"]]
    initialized = ours[0]
    assert initialized["verb"]["id"] == v.VERBS["initialized"]

    last: dict[str, Any] | None = None  # our latest statement so far
    for line, their, mine in zip(lines, theirs, ours_by_event, strict=True):
        name = line["event_type"]
        previous, last = last, (mine[-1] if mine else last)
        assert their["verb"]["id"] == RALPH_VERBS[name], name
        assert their["object"]["id"] == RALPH_OBJECT  # Ralph's own, malformed
        their_ctx = ext(their, "context")
        assert their_ctx[v.SESSION_ID] == str(uuid.UUID(EDX_SESSION))
        if v.LENGTH in their_ctx:
            assert their_ctx[v.LENGTH] == 0.0  # Ralph: "null by default"
        if name == "stop_video":
            # Ralph ends the session at the player's end, with progress 0.0; the player is
            # still on the page: we end nothing there, and the progress is what was played.
            assert ext(their, "result")[v.PROGRESS] == 0.0
            assert all(s["verb"]["id"] != v.VERBS["terminated"] for s in mine)
            continue
        reported = [s for s in mine if not s["context"]["extensions"][v.SOURCE]["inferred"]]
        if name == "play_video" and not mine and previous is not None:
            # The player logs play_video again after a seek made while playing: playback
            # never stopped, and our seeked already says where it went on.
            assert previous["verb"]["id"] == v.VERBS["seeked"]
            assert ext(previous, "result")[v.TIME_TO] == ext(their, "result")[v.TIME]
            continue
        assert len(reported) == 1, (name, mine)
        (statement,) = reported
        assert statement["verb"]["id"] == their["verb"]["id"], name
        assert statement["object"]["id"] == ERB_OBJECT
        assert statement["timestamp"] == their["timestamp"].replace("Z", ".000Z")
        mine_times = {k: x for k, x in ext(statement, "result").items() if k in TIMES}
        their_times = {k: x for k, x in ext(their, "result").items() if k in TIMES}
        assert mine_times == their_times, name

    # Where we say more: the video's length, one session-id, the progress truly played.
    for statement in ours:
        context = ext(statement, "context")
        assert context[v.SESSION_ID] == initialized["id"]
        assert context[v.LENGTH] == DURATION
    terminated = ours[-1]
    assert terminated["verb"]["id"] == v.VERBS["terminated"]
    result = ext(terminated, "result")
    assert result[v.PLAYED_SEGMENTS] == (
        "0.000[.]30.004[,]100.000[.]130.010[,]20.000[.]60.002[,]180.000[.]195.000"
    )
    assert result[v.PROGRESS] == round((60.002 + 30.01 + 15) / DURATION, 3)
