"""Per-video aggregates against hand-worked truths: which seconds were played, by how many
sessions, how far each session got, median progress and completion."""

from __future__ import annotations

from xapitap import viewing
from xapitap.dashboard import videos
from xapitap.store.reads import VideoStatement

VIDEO = "https://learn.example.org/v#1"
V = "https://w3id.org/xapi/video/verbs/"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
TERMINATED = "http://adlnet.gov/expapi/verbs/terminated"


def st(
    seq: int,
    session: str,
    verb: str,
    *,
    actor: str = "a",
    segments: str | None = None,
    progress: float | None = None,
    length: float | None = 60.0,
    video: str = VIDEO,
    **times: float,
) -> VideoStatement:
    return VideoStatement(
        seq=seq,
        session_id=session,
        object_id=video,
        platform="segment",
        name="Intro",
        actor=actor,
        verb=verb,
        timestamp=f"2024-06-01T09:00:{seq:02d}.000Z",
        length=length,
        time=times.get("time"),
        time_from=times.get("time_from"),
        time_to=times.get("time_to"),
        progress=progress,
        played_segments=segments,
    )


def test_segments_are_parsed_and_bad_parts_left_out() -> None:
    text = "0.000[.]30.000[,]10[.]20[,]x[.]5[,]9[.]3[,]nan[.]4[,]7"
    assert viewing.parse_segments(text) == [(0.0, 30.0), (10.0, 20.0)]
    assert viewing.parse_segments(None) == []


def test_a_second_counts_when_at_least_half_of_it_was_played() -> None:
    # 0-3.01 claims seconds 0, 1, 2 (the fourth is covered 0.01 s); 7.98-10 claims 8 and 9;
    # two pieces of one second that add up to half of it claim it.
    assert viewing.played_bins([(0, 3.01), (7.98, 10)]) == {0, 1, 2, 8, 9}
    assert viewing.played_bins([(20.0, 20.25), (20.5, 20.75)]) == {20}
    assert viewing.played_bins([(20.0, 20.2), (20.5, 20.7)]) == set()


def test_views_across_the_video_count_each_session_once_per_second() -> None:
    statements = [
        st(1, "s1", V + "initialized"),
        st(2, "s1", V + "paused", segments="0[.]30", progress=0.5, time=30),
        # The learner goes back over 10-20 and on to 45-60: a repeat is one view per session.
        st(3, "s1", V + "seeked", time_from=30, time_to=10),
        st(4, "s1", TERMINATED, segments="0[.]30[,]10[.]20[,]45[.]60", progress=0.75),
        st(5, "s2", V + "initialized", actor="b"),
        st(6, "s2", V + "paused", actor="b", segments="5[.]15", progress=0.1667),
    ]
    detail = videos.detail(statements)
    assert detail is not None
    expected = [0] * 60
    for s in [*range(0, 30), *range(45, 60)]:
        expected[s] += 1
    for s in range(5, 15):
        expected[s] += 1
    assert detail["views"] == expected
    # How far each got: s1 to its 60th second, s2 to its 15th.
    assert detail["reached"] == [2] * 15 + [1] * 45
    assert detail["bin_seconds"] == 1
    assert (detail["sessions"], detail["learners"]) == (2, 2)
    assert detail["median_progress"] == (0.75 + 0.1667) / 2
    timeline = {t["session_id"]: t for t in detail["timelines"]}
    assert timeline["s1"]["played"] == [[0, 30], [45, 60]]
    assert timeline["s1"]["terminated"] and not timeline["s2"]["terminated"]
    assert {"verb": "seeked", "at": "2024-06-01T09:00:03.000Z", "time_from": 30, "time_to": 10} in (
        timeline["s1"]["marks"]
    )


def test_completion_rate_counts_sessions_with_a_completed() -> None:
    statements = [
        st(1, "s1", V + "initialized"),
        st(2, "s1", COMPLETED, segments="0[.]58", progress=0.967),
        st(3, "s2", V + "initialized"),
        st(4, "s3", V + "initialized", actor="b"),
    ]
    (summary,) = videos.summaries(statements)
    assert summary["completed_sessions"] == 1
    assert summary["completion_rate"] == 1 / 3
    assert summary["learners"] == 2
    # Sessions that reported no progress yet are not counted as 0.
    assert summary["median_progress"] == 0.967
    assert summary["key"] == videos.video_key(VIDEO)


def test_without_a_length_the_chart_spans_what_was_played() -> None:
    detail = videos.detail([st(1, "s1", V + "paused", segments="0[.]12.5", length=None)])
    assert detail is not None
    assert len(detail["views"]) == 13 and detail["views"][12] == 1


def test_a_bogus_length_cannot_make_the_chart_unbounded() -> None:
    detail = videos.detail([st(1, "s1", V + "paused", segments="0[.]100000", length=1e9)])
    assert detail is not None
    assert len(detail["views"]) <= viewing.MAX_BINS
    assert detail["bin_seconds"] > 1
    assert sum(detail["views"]) >= 1


def test_videos_are_listed_most_recently_watched_first() -> None:
    statements = [
        st(1, "s1", V + "initialized", video="https://x/a"),
        st(2, "s2", V + "initialized", video="https://x/b"),
    ]
    assert [v["id"] for v in videos.summaries(statements)] == ["https://x/b", "https://x/a"]
    assert videos.detail([]) is None


def test_the_index_brought_up_to_date_in_steps_equals_one_look_at_everything() -> None:
    statements = [
        st(1, "s1", V + "initialized"),
        st(2, "s2", V + "initialized", actor="b", video="https://x/b"),
        st(3, "s1", V + "paused", segments="0[.]30", progress=0.5, time=30),
        st(4, "s1", COMPLETED, segments="0[.]58", progress=0.967),
        st(5, "s2", TERMINATED, actor="b", video="https://x/b", segments="0[.]5", progress=0.1),
    ]
    index = videos.VideoIndex()
    for step in (statements[:2], statements[2:3], statements[3:]):
        index.add(step)
    assert index.summaries() == videos.summaries(statements)
