"""Issue 7: one test (or a few) per numbered defect, each checking the TRUTH of a scenario.

Every scenario is a timeline a learner really played, sent as the platform's traffic; the
assertions compare the statements with what was played (README: "How the session model
decides"), never with a previous output. Times are seconds after 2024-06-01T09:00:00Z
(support.fidelity.T0).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.fidelity import COURSERA_ENDED
from support.fidelity import COURSERA_EVENTING
from support.fidelity import COURSERA_USER
from support.fidelity import PAGE
from support.fidelity import SEGMENT_B
from support.fidelity import SEGMENT_T
from support.fidelity import UDEMY_COMPLETED
from support.fidelity import UDEMY_CONTROLS
from support.fidelity import UDEMY_COOKIE
from support.fidelity import UDEMY_LOG
from support.fidelity import VISIT
from support.fidelity import Run
from support.fidelity import at
from support.fidelity import batch
from support.fidelity import beyond_truth
from support.fidelity import claimed
from support.fidelity import coursera_item
from support.fidelity import eventing
from support.fidelity import ext
from support.fidelity import final_progress
from support.fidelity import final_segments
from support.fidelity import iso
from support.fidelity import progress_log
from support.fidelity import rows
from support.fidelity import seg
from support.fidelity import session_of
from support.fidelity import sessions
from support.fidelity import source
from support.fidelity import union
from support.fidelity import verb
from support.fidelity import verbs
from support.fidelity import video_controls
from support.fidelity import watched
from support.sessions import run_events
from support.sessions import video_event
from xapitap.events import Kind
from xapitap.xapi import vocab as v
from xapitap.xapi.models import Statement

TESTS = Path(__file__).resolve().parents[1]


def one_terminated_last(statements: list[dict[str, Any]]) -> None:
    """Per session: exactly one terminated, and nothing after it (Video Profile)."""
    for sid, ss in sessions(statements).items():
        names = verbs(ss)
        assert names.count("terminated") == 1, f"session {sid[:8]}: {names}{rows(statements)}"
        assert names[-1] == "terminated", f"session {sid[:8]}: {names}{rows(statements)}"


def initialized_stored(statements: list[dict[str, Any]]) -> None:
    """Every session-id is the id of an initialized statement that exists."""
    initialized = {s["id"] for s in statements if verb(s) == "initialized"}
    dangling = {session_of(s) for s in statements} - initialized
    assert not dangling, f"session-ids naming no stored initialized: {dangling}{rows(statements)}"


def near(stamp: str, t: float, slack: float = 0.5) -> bool:
    """`stamp` is `t` (seconds after T0) give or take `slack`: Segment's sentAt correction
    adds the request's transit time, which these tests leave at 0.1-0.2 s."""
    return iso(at(t - slack)) <= stamp <= iso(at(t + slack))


def in_time_order(statements: list[dict[str, Any]]) -> None:
    for sid, ss in sessions(statements).items():
        stamps = [s["timestamp"] for s in ss]
        assert stamps == sorted(stamps), f"session {sid[:8]} out of time order{rows(ss)}"


# --- D1: paused time counted as playback ----------------------------------------------------


def test_d01_udemy_pause_then_drag_claims_only_what_was_played() -> None:
    """Udemy: play 0-30, pause 10 min, drag 30->570, play 15 s. Only progress logs exist."""
    run = Run()
    for t in (0, 15, 30):
        run.post(UDEMY_LOG, progress_log(t, t, 600), t + 0.2, UDEMY_COOKIE)
    # paused at t=30 for 10 min; resumes at t=630 at 570; the next log 15 s later
    run.post(UDEMY_LOG, progress_log(645, 585, 600), 645.2, UDEMY_COOKIE)
    run.finish()
    truth = [(0.0, 30.0), (570.0, 585.0)]
    over = beyond_truth(claimed(run.statements), truth)
    assert not over, f"claims never-played stretches {over}{rows(run.statements)}"
    progress = final_progress(run.statements)
    assert progress is None or progress <= 0.075 + 0.01, rows(run.statements)
    assert "completed" not in verbs(run.statements), rows(run.statements)


def test_d01_heartbeat_after_a_pause_is_a_resume_dated_at_its_own_time() -> None:
    """Segment: pause at 12, 5 min later a heartbeat at 590 with no Resumed (the learner
    dragged to 580 and played 10 s). The played is at 590, dated at the heartbeat."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, total=600), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10, total=600), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 12, 12, total=600), 12.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 322, 590, total=600), 322.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 332, 600, total=600), 332.2)
    run.finish()
    ss = run.statements
    over = beyond_truth(claimed(ss), [(0.0, 12.0), (580.0, 600.0)])
    assert not over, f"claims never-played stretches {over}{rows(ss)}"
    resumed = [s for s in ss[verbs(ss).index("paused") + 1 :] if verb(s) == "played"]
    assert resumed, rows(ss)
    assert ext(resumed[0], v.TIME) == 590.0, rows(ss)
    assert near(resumed[0]["timestamp"], 322), rows(ss)  # not at the pause, 5 min earlier
    assert "completed" not in verbs(ss), rows(ss)


@pytest.mark.parametrize(
    ("closing", "drag", "end_at", "end_pos"),
    [
        ("Video Playback Paused", (12, 50), 14, 52),
        ("Video Playback Completed", (11, 58), 13, 60),
        ("Video Playback Exited", (11, 56), 12, 57),
    ],
    ids=["paused", "completed", "exited"],
)
def test_d01_a_drag_before_a_closing_event_is_not_one_stretch(
    closing: str, drag: tuple[float, float], end_at: float, end_pos: float
) -> None:
    """A site that does not report seeks: play from 0 (heartbeat at 10), at `drag[0]` s a drag
    to `drag[1]` (unreported), play on, then the closing event at `end_pos`:
    paused/completed/terminated must test for the jump as heartbeats do."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10), 10.2)
    run.post(SEGMENT_T, seg(closing, end_at, end_pos), end_at + 0.2)
    run.finish()
    truth = [(0.0, float(drag[0])), (float(drag[1]), float(end_pos))]
    over = beyond_truth(claimed(run.statements), truth)
    assert not over, f"claims never-played stretches {over}{rows(run.statements)}"
    assert "completed" not in verbs(run.statements), rows(run.statements)


# --- D2: resent events ----------------------------------------------------------------------


def test_d02_segment_resent_message_id_adds_nothing() -> None:
    run = Run()
    started = seg("Video Playback Started", 0, 0, mid="m0")
    run.post(SEGMENT_T, started, 0.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 15, 15, mid="m1"), 15.2)
    retry = run.post(SEGMENT_T, {**started, "sentAt": iso(at(17))}, 17.2)  # same messageId
    run.post(SEGMENT_T, seg("Video Playback Resumed", 20, 15, mid="m2"), 20.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 35, 30, mid="m3"), 35.2)
    run.finish()
    ss = run.statements
    assert retry.statements == [], rows(retry.statements)
    assert any("resent" in reason for reason in retry.ignored), retry.ignored
    assert "seeked" not in verbs(ss), rows(ss)
    final = final_segments(ss)
    assert union(final) == [(0.0, 30.0)] and sum(b - a for a, b in final) == 30.0, rows(ss)


def test_d02_udacity_resent_stretch_adds_nothing() -> None:
    run = Run()
    first = watched(20, 0, 20, mid="w1")
    run.post(SEGMENT_T, first, 20.2)
    run.post(SEGMENT_T, watched(40, 20, 40, mid="w2"), 40.2)
    retry = run.post(SEGMENT_T, {**first, "sentAt": iso(at(41))}, 41.2)
    run.finish()
    ss = run.statements
    assert retry.statements == [], rows(retry.statements)
    assert "seeked" not in verbs(ss), rows(ss)
    final = final_segments(ss)
    assert sum(b - a for a, b in final) == 40.0, rows(ss)


def test_d02_coursera_resent_guid_adds_nothing() -> None:
    run = Run()
    g0 = coursera_item("play", 0, 0, "g0")
    run.post(
        COURSERA_EVENTING,
        eventing([g0, coursera_item("heartbeat", 5, 5, "g1"), coursera_item("pause", 8, 8, "g2")]),
        8.3,
    )
    run.post(COURSERA_EVENTING, eventing([coursera_item("play", 12, 8, "g3")]), 12.3)
    resend = run.post(COURSERA_EVENTING, eventing([g0]), 13.0)  # the 413 split resends g0
    run.post(
        COURSERA_EVENTING,
        eventing(
            [
                coursera_item("heartbeat", 17, 13, "g4"),
                coursera_item("heartbeat", 22, 18, "g5"),
                coursera_item("pause", 24, 20, "g6"),
            ]
        ),
        24.3,
    )
    run.finish()
    ss = run.statements
    assert resend.statements == [], rows(resend.statements)
    assert "seeked" not in verbs(ss), rows(ss)
    final = final_segments(ss)
    assert union(final) == [(0.0, 20.0)] and sum(b - a for a, b in final) == 20.0, rows(ss)


def test_d02_resend_after_the_session_ended_opens_no_session() -> None:
    run = Run()
    started = seg("Video Playback Started", 0, 0, mid="m0")
    run.post(SEGMENT_T, started, 0.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 10, 10, mid="m1"), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Exited", 12, 10, mid="m2"), 12.2)
    run.post(SEGMENT_T, seg("Video Playback Started", 20, 0, mid="n0", sid="s2", asset="v2"), 20.2)
    retry = run.post(SEGMENT_T, {**started, "sentAt": iso(at(21))}, 21.2)
    run.finish()
    assert retry.statements == [], rows(retry.statements)
    one_terminated_last(run.statements)
    ids = [s["id"] for s in run.statements]
    assert len(ids) == len(set(ids)), rows(run.statements)


# --- D3: client clocks ----------------------------------------------------------------------


@pytest.mark.parametrize("skew", [90.0, -3600.0], ids=["90s-fast", "1h-slow"])
def test_d03_segment_batch_is_corrected_by_sent_at(skew: float) -> None:
    """Played 0-25 (Started, heartbeats at 10 and 20, Paused at 25), batched and received
    at 09:00:25.2 by the proxy, from a browser whose clock is off by `skew` seconds."""
    run = Run()
    messages = [
        seg("Video Playback Started", skew + 0, 0),
        seg("Video Content Playing", skew + 10, 10),
        seg("Video Content Playing", skew + 20, 20),
        seg("Video Playback Paused", skew + 25, 25),
    ]
    run.post(SEGMENT_B, batch(messages, at(skew + 25.2)), 25.2)
    run.finish()
    ss = run.statements
    assert "seeked" not in verbs(ss), rows(ss)
    assert union(final_segments(ss)) == [(0.0, 25.0)], rows(ss)
    by_verb = {verb(s): s["timestamp"] for s in reversed(ss)}
    assert by_verb["played"] == iso(at(0)), rows(ss)
    assert by_verb["paused"] == iso(at(25)), rows(ss)


# --- D4: sessions cut wrongly ---------------------------------------------------------------


def test_d04_two_players_side_by_side_keep_two_sessions() -> None:
    """Two players on one page, each with its own session_id, both playing."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, sid="sA", asset="v1"), 0.1)
    run.post(SEGMENT_T, seg("Video Playback Started", 1, 0, sid="sB", asset="v2"), 1.1)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10, sid="sA", asset="v1"), 10.1)
    run.post(SEGMENT_T, seg("Video Content Playing", 11, 10, sid="sB", asset="v2"), 11.1)
    run.post(SEGMENT_T, seg("Video Playback Paused", 15, 15, sid="sA", asset="v1"), 15.1)
    run.finish()
    by_session = sessions(run.statements)
    assert len(by_session) == 2, rows(run.statements)
    by_video = {ss[0]["object"]["id"].rsplit("-", 1)[-1]: ss for ss in by_session.values()}
    assert union(final_segments(by_video["v1"])) == [(0.0, 15.0)], rows(run.statements)
    assert union(final_segments(by_video["v2"])) == [(0.0, 10.0)], rows(run.statements)
    one_terminated_last(run.statements)


def test_d04_late_unload_beacon_of_the_previous_video_does_not_split_the_next() -> None:
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, sid="sA", asset="A"), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10, sid="sA", asset="A"), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Started", 12.2, 0, sid="sB", asset="B"), 12.4)
    # page A's unload beacon (sent at 12.0) reaches the proxy after B's Started
    run.post(SEGMENT_T, seg("Video Playback Exited", 12, 12, sid="sA", asset="A"), 12.5)
    run.post(SEGMENT_T, seg("Video Content Playing", 22.2, 10, sid="sB", asset="B"), 22.4)
    run.post(SEGMENT_T, seg("Video Playback Paused", 27.2, 15, sid="sB", asset="B"), 27.4)
    run.finish()
    ss = run.statements
    by_session = sessions(ss)
    assert len(by_session) == 2, rows(ss)
    b = [x for x in by_session.values() if x[0]["object"]["id"].endswith("video-B")]
    assert len(b) == 1 and union(final_segments(b[0])) == [(0.0, 15.0)], rows(ss)
    one_terminated_last(ss)


def test_d04_null_asset_joins_the_open_session() -> None:
    """The spec's own lifecycle ends with content_asset_id null: same session_id, same video."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 20, 20, asset=None), 20.2)
    run.finish()
    ss = run.statements
    assert {s["object"]["id"] for s in ss} == {f"{PAGE}#video-v1"}, rows(ss)
    assert len(sessions(ss)) == 1, rows(ss)
    assert union(final_segments(ss)) == [(0.0, 20.0)], rows(ss)


# --- D5: playback and content levels ---------------------------------------------------------


def test_d05_length_never_flips_within_a_session() -> None:
    """A 32-s pre-roll: playback level 392 s (ads included), content level 360 s."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, total=392), 0.2)
    run.post(SEGMENT_T, seg("Video Content Started", 32, 0, total=360), 32.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 42, 10, total=360), 42.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 52, 20, total=360), 52.2)
    run.finish()
    ss = run.statements
    for sid, group in sessions(ss).items():
        lengths = {ext(s, v.LENGTH) for s in group if ext(s, v.LENGTH) is not None}
        assert lengths == {392.0}, f"session {sid[:8]} lengths {lengths}{rows(ss)}"
    over = beyond_truth(claimed(ss), [(0.0, 52.0)])
    assert not over, rows(ss)


def test_d05_video_content_completed_is_not_a_completion() -> None:
    """A content pod ends at 20 s of a 60-s video; playback goes on to 35."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10), 10.2)
    run.post(SEGMENT_T, seg("Video Content Completed", 20, 20), 20.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 30, 30), 30.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 35, 35), 35.2)
    run.finish()
    ss = run.statements
    assert "completed" not in verbs(ss), rows(ss)
    assert not any(source(s).get("platformCompleted") for s in ss), rows(ss)
    assert union(final_segments(ss)) == [(0.0, 35.0)], rows(ss)


# --- D6: Exited without session_id ---------------------------------------------------------


def test_d06_exited_without_session_id_ends_the_session() -> None:
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Exited", 12, 12, sid=None), 12.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 20, 20), 20.2)
    run.finish()
    one_terminated_last(run.statements)


def test_d06_exited_without_session_id_then_idle_sweep_gives_one_terminated() -> None:
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 12, 12), 12.2)
    run.post(SEGMENT_T, seg("Video Playback Exited", 13, 12, sid=None), 13.2)
    run.sweep(at(13 + 3 * 3600))
    run.finish()
    one_terminated_last(run.statements)


# --- D7: determinism across processes -------------------------------------------------------


def d7_output() -> str:
    """The D7 batch: Started sA at 0 and sB at 30 of one video, a Completed with no
    session_id, then another video. Every statement, as JSON lines."""
    run = Run()
    messages = [
        seg("Video Playback Started", 0, 0, sid="sA", mid="a0"),
        seg("Video Playback Started", 0, 30, sid="sB", mid="b0"),
        seg("Video Playback Completed", 30, 60, sid=None, mid="c0"),
        seg("Video Playback Started", 31, 0, sid="sC", asset="v2", mid="d0"),
    ]
    run.post(SEGMENT_B, batch(messages, at(31)), 31.2)
    run.finish()
    return "\n".join(json.dumps(s, sort_keys=True) for s in run.statements)


def test_d07_same_traffic_same_statements_under_any_hash_seed() -> None:
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]; "
        "import test_fidelity_defects as t; sys.stdout.write(t.d7_output())"
    )
    outputs = {}
    for seed in range(6):
        env = {**os.environ, "PYTHONHASHSEED": str(seed)}
        done = subprocess.run(
            [sys.executable, "-c", code, str(TESTS), str(TESTS / "unit")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        outputs[seed] = done.stdout
    assert outputs[0], "no statements"
    digests = {seed: hashlib.sha256(out.encode()).hexdigest()[:16] for seed, out in outputs.items()}
    assert len(set(digests.values())) == 1, f"statements differ by PYTHONHASHSEED: {digests}"


# --- D8: raw user id in a hash --------------------------------------------------------------


RECEIVED_ENDED = at(56.123456)


def _coursera_ended_only(key: bytes) -> list[dict[str, Any]]:
    run = Run(key=key)
    run.post(COURSERA_ENDED, {"contentRequestBody": {}}, RECEIVED_ENDED, {"X-CSRF3-Token": "1~a"})
    run.finish()
    return run.statements


def test_d08_no_unkeyed_hash_of_the_raw_coursera_user_id() -> None:
    """The old way: sha256 of the path's parameters (with the user id) and the arrival time,
    all guessable but the user id; no statement may carry it, and the id must be keyed."""
    params = {"user": COURSERA_USER, "course": "geospatial", "item": "8xwbQ", "action": "ended"}
    raw = json.dumps(
        [params, RECEIVED_ENDED.isoformat()], sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    unkeyed = hashlib.sha256(raw).hexdigest()
    first = _coursera_ended_only(bytes(range(32)))
    published = json.dumps(first)
    assert unkeyed[:32] not in published, "source.eventId is an unkeyed sha256 of the raw user id"
    assert COURSERA_USER not in published
    second = _coursera_ended_only(bytes(range(1, 33)))
    ids_first = [source(s)["eventId"] for s in first]
    ids_second = [source(s)["eventId"] for s in second]
    assert ids_first, "the lecture API's ended made no statement"
    assert all(a != b for a, b in zip(ids_first, ids_second, strict=True)), (
        f"eventId does not depend on the study key: {ids_first}"
    )


# --- D9: order ------------------------------------------------------------------------------


def test_d09_out_of_order_batch_items_are_translated_in_time_order() -> None:
    run = Run()
    m0 = seg("Video Playback Started", 0, 0)
    m1 = seg("Video Content Playing", 10, 10)
    m2 = seg("Video Content Playing", 20, 20)
    m3 = seg("Video Playback Paused", 25, 25)
    run.post(SEGMENT_B, batch([m1, m0, m2, m3], at(25.1)), 25.2)
    run.finish()
    ss = run.statements
    assert "seeked" not in verbs(ss), rows(ss)
    assert verb(ss[0]) == "initialized" and near(ss[0]["timestamp"], 0), rows(ss)
    in_time_order(ss)
    assert union(final_segments(ss)) == [(0.0, 25.0)], rows(ss)


# --- D10: one bad item ----------------------------------------------------------------------


_BAD_ITEMS: dict[str, Any] = {
    "no-event-name": {"type": "track", "messageId": "x", "properties": {}},
    "not-an-object": None,
    # another player's event on a page whose URL has a port out of range
    "bad-port": seg(
        "Video Content Playing", 5, 5, sid="s9", asset="v9", page="https://h.example:99999/p"
    ),
    # names no asset, no page and no playback session: nothing to attach it to
    "nothing-named": {**seg("Video Content Playing", 5, 5, sid=None, asset=None), "context": {}},
    "udacity-end-before-start": watched(5, 30, 10),
}


@pytest.mark.parametrize("bad", list(_BAD_ITEMS), ids=list(_BAD_ITEMS))
def test_d10_one_bad_item_in_a_segment_batch_spares_the_rest(bad: str) -> None:
    run = Run()
    goods = [
        seg("Video Playback Started", 0, 0),
        seg("Video Content Playing", 10, 10),
        seg("Video Playback Paused", 20, 20),
    ]
    body = batch(goods, at(20.1))
    body["batch"].insert(1, _BAD_ITEMS[bad])  # as the browser sent it
    sent = run.post(SEGMENT_B, body, 20.2)
    video = [s for s in sent.statements if s["object"]["id"] == f"{PAGE}#video-v1"]
    assert {"initialized", "played", "paused"} <= set(verbs(video)), (
        f"crash={sent.crash} errors={sent.errors}{rows(sent.statements)}"
    )
    assert union(final_segments(video)) == [(0.0, 20.0)], rows(video)
    if bad != "bad-port":  # a bad port may simply lose the page, with nothing to reject
        assert len(sent.errors) == 1, sent.errors


def test_d10_one_bad_item_in_a_coursera_batch_spares_the_rest() -> None:
    run = Run()
    bad = coursera_item("heartbeat", 3, 3, "gx")
    del bad["value"]["open_course_slug"]
    items = [coursera_item("play", 0, 0, "g0"), bad, coursera_item("pause", 8, 8, "g1")]
    sent = run.post(COURSERA_EVENTING, eventing(items), 8.3)
    assert {"played", "paused"} <= set(verbs(sent.statements)), sent.errors
    assert len(sent.errors) == 1, sent.errors


# --- D11: dangling sessions, extreme timestamps ---------------------------------------------


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00Z", "0999-12-31T23:59:59Z"])
def test_d11_extreme_timestamps_neither_raise_nor_quarantine(stamp: str) -> None:
    run = Run()
    run.post(SEGMENT_T, {**seg("Video Playback Started", 0, 0), "timestamp": stamp}, 0.1)
    run.post(SEGMENT_T, seg("Video Playback Paused", 10, 10), 10.1)
    run.finish()
    assert not run.crashes, run.crashes
    assert not run.quarantined, run.quarantined
    initialized_stored(run.statements)
    assert all(s["timestamp"] >= iso(at(0.1 - 86400)) for s in run.statements), rows(run.statements)


def test_d11_a_request_lost_to_an_exception_leaves_no_dangling_session() -> None:
    """Go's zero time on a Udacity event, in the same batch as a Started of another video."""
    run = Run()
    zero = {**watched(0, 0, 20), "timestamp": "0001-01-01T00:00:00Z"}
    run.post(SEGMENT_B, batch([seg("Video Playback Started", 0, 0), zero], at(0.1)), 0.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 20, 20), 20.2)
    run.finish()
    initialized_stored(run.statements)
    assert not run.crashes, run.crashes
    assert not run.quarantined, run.quarantined


# --- D12: played after completed ------------------------------------------------------------


def test_d12_udemy_completed_lectures_while_playing_gives_no_played_after_completed() -> None:
    """A 75-s lecture played straight through; completed-lectures fires at 61 s."""
    run = Run()
    for t in (0, 15, 30, 45, 60):
        run.post(UDEMY_LOG, progress_log(t, t, 75), t + 0.2, UDEMY_COOKIE)
    run.post(UDEMY_COMPLETED, {"lecture_id": 9002}, 61.0, UDEMY_COOKIE)
    run.post(UDEMY_LOG, progress_log(75, 75, 75), 75.2, UDEMY_COOKIE)
    run.finish()
    ss = run.statements
    names = verbs(ss)
    assert names.count("played") == 1, rows(ss)
    if "completed" in names:
        assert "played" not in names[names.index("completed") :], rows(ss)
    assert union(final_segments(ss)) == [(0.0, 75.0)], rows(ss)


# --- D13: speed above 2x --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [2.2, 3.0])
def test_d13_fast_playback_with_steady_heartbeats_keeps_its_segments(rate: float) -> None:
    """A 300-s video played through at `rate`, heartbeats every 10 s of wall time."""
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, total=300), 0.2)
    t = 10.0
    while rate * t < 300:
        run.post(SEGMENT_T, seg("Video Content Playing", t, rate * t, total=300), t + 0.2)
        t += 10
    end = 300 / rate
    run.post(SEGMENT_T, seg("Video Playback Completed", end, 300, total=300), end + 0.2)
    run.finish()
    ss = run.statements
    assert not beyond_truth(claimed(ss), [(0.0, 300.0)]), rows(ss)
    # at most the first heartbeat interval may be left unclaimed (its rate was not yet known)
    progress = final_progress(ss)
    assert progress is not None and progress >= 1 - rate * 10 / 300 - 0.01, rows(ss)


# --- D14: Seek Started without seek_position ------------------------------------------------


def test_d14_seek_started_without_seek_position_gives_time_from() -> None:
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0), 0.2)
    run.post(SEGMENT_T, seg("Video Content Playing", 10, 10), 10.2)
    run.post(SEGMENT_T, seg("Video Playback Seek Started", 18, 18), 18.2)
    run.post(SEGMENT_T, seg("Video Playback Seek Completed", 18.5, 40), 18.7)
    run.post(SEGMENT_T, seg("Video Playback Paused", 23.5, 45), 23.7)
    run.finish()
    ss = run.statements
    seeks = [s for s in ss if verb(s) == "seeked"]
    assert len(seeks) == 1, rows(ss)
    assert ext(seeks[0], v.TIME_FROM) == 18.0 and ext(seeks[0], v.TIME_TO) == 40.0, rows(ss)
    assert not beyond_truth(claimed(ss), [(0.0, 18.0), (40.0, 45.0)]), rows(ss)
    progress = final_progress(ss)
    assert progress is not None and abs(progress - 23 / 60) <= 0.01, rows(ss)


# --- D15: Udacity ---------------------------------------------------------------------------


def test_d15_udacity_at_2x_is_in_time_order_and_its_ended_is_not_inferred() -> None:
    """At 2x: [0,20] played from 09:00:00 to :10, [20,60] from :12 to :32, ending the video."""
    run = Run()
    run.post(SEGMENT_T, watched(10, 0, 20, mid="w1"), 10.2)
    run.post(SEGMENT_T, watched(32, 20, 60, state="ended", mid="w2"), 32.2)
    run.finish()
    ss = run.statements
    stamps = [s["timestamp"] for s in ss]
    assert stamps == sorted(stamps), rows(ss)
    completed = [s for s in ss if verb(s) == "completed"]
    assert len(completed) == 1, rows(ss)  # 0-60 of 60 s was played: the threshold is reached
    assert source(completed[0])["inferred"] is False, rows(ss)
    assert source(ss[-1]).get("platformCompleted") is True, rows(ss)


# --- D16: Coursera completion in a separate session ----------------------------------------


def test_d16_coursera_ended_joins_the_eventing_session_and_is_not_a_completion() -> None:
    """30 s watched of a lecture, then the lecture API's ended (the platform marks it done).
    The `__400v` cookie on the lecture API request carries the eventing visitId."""
    run = Run()
    items = [coursera_item("play", 0, 0, "g0")]
    items += [coursera_item("heartbeat", t, t, f"g{t}") for t in (5, 10, 15, 20, 25)]
    items.append(coursera_item("pause", 30, 30, "g30"))
    run.post(COURSERA_EVENTING, eventing(items), 30.3)
    headers = {"X-CSRF3-Token": "1~a", "Cookie": f"__400v={VISIT}; CSRF3-Token=1~a"}
    run.post(COURSERA_ENDED, {"contentRequestBody": {}}, 31.0, headers)
    run.finish()
    ss = run.statements
    assert len(sessions(ss)) == 1, rows(ss)
    assert len({s["actor"]["account"]["name"] for s in ss}) == 1, rows(ss)
    assert "completed" not in verbs(ss), rows(ss)
    assert source(ss[-1]).get("platformCompleted") is True, rows(ss)
    assert union(final_segments(ss)) == [(0.0, 30.0)], rows(ss)


# --- D17: RudderStack beacon batches --------------------------------------------------------


def test_d17_rudderstack_beacon_batch_on_a_first_party_host_is_translated() -> None:
    def rudder(message: dict[str, Any]) -> dict[str, Any]:
        out = {k: x for k, x in message.items() if k != "writeKey"}
        out["channel"] = "web"
        out["rudderId"] = "4a9f2c1e-0000-4000-8000-00000000abcd"
        out["context"] = {**out["context"], "library": {"name": "RudderLabs JavaScript SDK"}}
        return out

    run = Run()
    messages = [
        rudder(seg("Video Playback Started", 0, 0)),
        rudder(seg("Video Content Playing", 10, 10)),
        rudder(seg("Video Playback Paused", 12, 12)),
    ]
    url = "https://rs.learn.example.org/beacon/v1/batch?writeKey=2aBcD3fGh"
    sent = run.post(url, batch(messages, at(12.1)), 12.2, {"Content-Type": "text/plain"})
    assert sent.rule is not None, "the beacon batch is not matched"
    assert {"played", "paused"} <= set(verbs(sent.statements)), sent.errors


# --- D18: IRIs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    ["https://learn.example.org/course/intro|part-2", "https://learn.example.org/c/a^b"],
)
def test_d18_a_page_path_with_pipe_or_caret_is_not_quarantined(page: str) -> None:
    run = Run()
    run.post(SEGMENT_T, seg("Video Playback Started", 0, 0, page=page), 0.2)
    run.post(SEGMENT_T, seg("Video Playback Paused", 10, 10, page=page), 10.2)
    run.finish()
    assert not run.quarantined, run.quarantined
    assert {"initialized", "played", "paused", "terminated"} <= set(verbs(run.statements))
    assert all(
        "|" not in s["object"]["id"] and "^" not in s["object"]["id"] for s in run.statements
    )


# --- D19: Udemy interacted without the changed value ---------------------------------------

_SETTINGS = (v.VOLUME, v.SPEED, v.QUALITY, v.FULL_SCREEN, v.CC_ENABLED, v.CC_LANG)


def test_d19_udemy_volume_without_a_level_is_not_an_empty_interacted() -> None:
    run = Run()
    run.post(UDEMY_CONTROLS, video_controls("video play", 136697), 0.1)
    run.post(UDEMY_CONTROLS, video_controls("video volume", 140000), 3.4)
    run.finish()
    for s in run.statements:
        if verb(s) != "interacted":
            continue
        says = [key for key in _SETTINGS if ext(s, key) is not None]
        flagged = [name for name in source(s).get("missing", []) if "volume" in name]
        assert says or flagged, f"an interacted that says nothing, unflagged{rows([s])}"


# --- D20: a settings change or a platform's completion moved the playhead unchecked ---------


def test_d20_a_settings_change_after_a_silent_drag_does_not_claim_the_drag() -> None:
    """Udemy: play at 0, drag to 100 s (a drag this site reports nowhere), change quality at
    100 s 5 s later, pause at 101 s. Only 0-5 and 100-101 were played: the interaction's
    position is judged like any report of the playhead, not taken as where playback went."""
    run = Run()
    run.post(UDEMY_CONTROLS, video_controls("video play", 0), 0.1)
    run.post(UDEMY_CONTROLS, video_controls("video hd: 720", 100_000), 5.1)
    run.post(UDEMY_CONTROLS, video_controls("video pause", 101_000), 6.1)
    run.finish()
    over = beyond_truth(claimed(run.statements), [(0.0, 5.0), (100.0, 101.0)])
    assert not over, f"claims never-played stretches {over}{rows(run.statements)}"
    assert "seeked" in verbs(run.statements), rows(run.statements)


def test_d20_a_platform_completion_far_ahead_does_not_claim_the_gap() -> None:
    """Open edX's complete_video (which does not stop the player) reports where the playhead
    is: played 0-10, dragged silently to 190, marked complete there, paused at 192."""
    events = [
        video_event(Kind.PLAYED, 0, position=0.0, length=200.0),
        video_event(Kind.PROGRESS, 10, position=10.0, length=200.0),
        video_event(Kind.COMPLETED, 12, position=190.0, length=200.0, platform_completed=True),
        video_event(Kind.PAUSED, 14, position=192.0, length=200.0),
    ]
    statements = [json.loads(s.to_json()) for s in run_events(events) if isinstance(s, Statement)]
    over = beyond_truth(claimed(statements), [(0.0, 12.0), (190.0, 192.0)])
    assert not over, f"claims never-played stretches {over}{rows(statements)}"
    assert "completed" not in verbs(statements), rows(statements)
