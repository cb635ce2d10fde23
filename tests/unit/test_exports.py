"""`xapitap export`: CSV and session rows read back with Python's csv module, against what the
statements say (the golden Segment session's viewing is known: it played 0-30, went back
over 10-20 and then played 45-60 of a 60 s video, pausing twice and seeking twice)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

import golden
from support.local import cli
from xapitap.exports import SESSION_COLUMNS
from xapitap.exports import STATEMENT_COLUMNS
from xapitap.exports import utc
from xapitap.store import StoreFile
from xapitap.store.records import Provenance
from xapitap.xapi.models import Statement

EXT = "https://w3id.org/xapi/video/extensions/"


def filled(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "s.sqlite3"
    writer = StoreFile(path).writer()
    stored: list[dict[str, Any]] = []
    for platform, name in (("segment", "segment/whole-session"), ("udemy", "udemy/whole-session")):
        case = next(c for c in golden.cases() if c.name == name)
        items = [
            Statement.model_validate(s) for r in golden.expected(case) for s in r["statements"]
        ]
        writer.add((s, Provenance(platform, f"{platform}.rule", s.id, "f")) for s in items)
        stored += [json.loads(s.model_dump_json(exclude_none=True)) for s in items]
    writer.close()
    return path, stored


def rows(path: Path, *args: str) -> list[dict[str, str]]:
    out = cli("export", "--store", str(path), *args).stdout
    return list(csv.DictReader(io.StringIO(out)))


def test_statements_as_csv(tmp_path: Path) -> None:
    path, stored = filled(tmp_path)
    found = rows(path, "--format", "csv")
    assert len(found) == len(stored) and tuple(found[0]) == STATEMENT_COLUMNS
    for row, s in zip(found, stored, strict=True):
        result = s.get("result", {}).get("extensions", {})
        assert row["id"] == s["id"] and row["timestamp"] == s["timestamp"]
        assert row["verb_id"] == s["verb"]["id"] and s["verb"]["id"].endswith("/" + row["verb"])
        assert row["actor"] == s["actor"]["account"]["name"]
        assert row["object_id"] == s["object"]["id"]
        assert row["session_id"] == s["context"]["extensions"][EXT + "session-id"]
        for column, key in (("time", "time"), ("progress", "progress"), ("time_to", "time-to")):
            assert row[column] == ("" if EXT + key not in result else str(result[EXT + key]))
        assert row["played_segments"] == result.get(EXT + "played-segments", "")
        assert row["inferred"] in ("true", "false")
    assert {r["platform"] for r in found} == {"segment", "udemy"}


def test_filters(tmp_path: Path) -> None:
    path, stored = filled(tmp_path)
    paused = rows(path, "--format", "csv", "--verb", "paused", "--platform", "segment")
    assert paused and {(r["verb"], r["platform"]) for r in paused} == {("paused", "segment")}
    actor = stored[0]["actor"]["account"]["name"]
    mine = [s["id"] for s in stored if s["actor"]["account"]["name"] == actor]
    assert [r["id"] for r in rows(path, "--format", "csv", "--participant", actor)] == mine
    assert rows(path, "--format", "csv", "--participant", actor[:10]) == []  # exact
    assert [r["id"] for r in rows(path, "--format", "csv", "--actor", actor[:10])] == mine
    times = sorted({s["timestamp"] for s in stored})
    middle = times[len(times) // 2]
    later = rows(path, "--format", "csv", "--since", middle)
    assert {r["id"] for r in later} == {s["id"] for s in stored if s["timestamp"] >= middle}
    earlier = rows(path, "--format", "csv", "--until", middle)
    assert len(earlier) + len(later) == len(stored)
    lines = cli("export", "--store", str(path), "--verb", "terminated").stdout.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [
        s["id"] for s in stored if s["verb"]["id"].endswith("/terminated")
    ]


def test_one_row_per_session(tmp_path: Path) -> None:
    path, stored = filled(tmp_path)
    sessions = rows(path, "--sessions", "--format", "csv", "--platform", "segment")
    assert tuple(sessions[0]) == SESSION_COLUMNS
    by_video = {r["video"]: r for r in sessions}
    watched = by_video["https://learn.example.org/courses/stats/sampling#video-stats-2"]
    assert watched["seconds_played"] == "45.0"  # 0-30 and 45-60; 10-20 was played twice
    assert (watched["pauses"], watched["seeks"]) == ("2", "2")
    assert (watched["progress"], watched["completed"], watched["terminated"]) == (
        "0.75",
        "false",
        "true",
    )
    assert watched["length"] == "60.0" and watched["video_name"] == "Sampling"
    assert watched["start"] < watched["end"]
    ours = [
        s for s in stored if s["context"]["extensions"][EXT + "session-id"] == watched["session_id"]
    ]
    assert int(watched["statements"]) == len(ours)
    assert (watched["start"], watched["end"]) == (ours[0]["timestamp"], ours[-1]["timestamp"])
    # Every session once, across platforms; Udemy's carry their course.
    everything = rows(path, "--sessions", "--format", "csv")
    ids = {s["context"]["extensions"][EXT + "session-id"] for s in stored}
    assert sorted(r["session_id"] for r in everything) == sorted(ids)
    assert {r["course"] for r in everything if r["platform"] == "udemy"} == {
        "https://www.udemy.com/api-2.0/courses/4242"
    }
    as_json = cli("export", "--store", str(path), "--sessions").stdout.splitlines()
    assert [json.loads(line)["session_id"] for line in as_json] == [
        r["session_id"] for r in everything
    ]


def test_times_are_read_as_utc(tmp_path: Path) -> None:
    assert utc("2024-06-01") == "2024-06-01T00:00:00.000Z"
    assert utc("2024-06-01T11:00:00+02:00") == "2024-06-01T09:00:00.000Z"
    assert utc("2024-06-01T09:00:00Z") == "2024-06-01T09:00:00.000Z"
    with pytest.raises(ValueError):
        utc("yesterday")
    path, _ = filled(tmp_path)
    refused = cli("export", "--store", str(path), "--since", "yesterday", check=False)
    assert refused.returncode == 2 and "--since" in refused.stderr


def test_learning_results_have_columns_of_their_own(tmp_path: Path) -> None:
    """A quiz answer's success, score and response, and an item's progress, read back as
    the golden mapping case's statements say them."""
    path = tmp_path / "s.sqlite3"
    expected = json.loads(
        (golden.FIXTURES / "mappings/lernwerk/learning-events.expected.json").read_text()
    )
    items = [Statement.model_validate(s) for r in expected for s in r.get("statements", [])]
    writer = StoreFile(path).writer()
    writer.add((s, Provenance("lernwerk", "lernwerk.collect", s.id, "f")) for s in items)
    writer.close()
    by_verb = {r["verb"]: r for r in rows(path, "--format", "csv")}
    answered, completed = by_verb["answered"], by_verb["completed"]
    assert (answered["success"], answered["score_scaled"]) == ("true", "1.0")
    assert answered["response"] == "mitochondrion" and answered["item_progress"] == ""
    assert completed["item_progress"] == "100" and completed["completion"] == "true"
    assert by_verb["searched"]["response"] == "mitosis vs meiosis"
    assert by_verb["viewed"]["success"] == by_verb["viewed"]["response"] == ""
