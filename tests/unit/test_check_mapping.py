"""`xapitap check-mapping FILE [HAR_OR_FLOW]`: says whether a mapping file is right, and
what it would make of a recording, without storing or sending anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import golden
import mapping_cases
from support.local import cli
from support.local import stored
from xapitap.pseudonym import key_path_for

EXAMPLE = mapping_cases.ROOT / "mappings.example" / "lernwerk.toml"


def har_of(requests: list[golden.Request], path: Path) -> Path:
    """A HAR, as a browser's DevTools saves one, of these requests."""
    entries: list[dict[str, Any]] = []
    for r in requests:
        request: dict[str, Any] = {
            "method": r.method,
            "url": r.url,
            "httpVersion": "HTTP/2",
            "headers": [{"name": k, "value": v} for k, v in r.headers.items()],
        }
        if r.body:
            request["postData"] = {"mimeType": "text/plain", "text": r.body.decode()}
        entries.append(
            {
                "startedDateTime": r.received_at.isoformat().replace("+00:00", "Z"),
                "request": request,
                "response": {"status": 200},
            }
        )
    # A request of no analytics, and one a built-in platform takes, beside the site's.
    entries.append(
        {
            "startedDateTime": "2025-11-26T10:05:00.000Z",
            "request": {"method": "GET", "url": "https://www.lernwerk.example/", "headers": []},
            "response": {"status": 200},
        }
    )
    log = {"log": {"version": "1.2", "pages": [], "entries": entries}}
    path.write_text(json.dumps(log, indent=1))
    return path


def recorded(tmp_path: Path, name: str) -> tuple[Path, list[dict[str, Any]]]:
    """A HAR of one of the example's golden cases, and the statements the case expects."""
    (case,) = [c for c in mapping_cases.cases() if c.name == f"lernwerk/{name}"]
    expected = [s for r in golden.expected(case) for s in r.get("statements", [])]
    return har_of(case.requests(), tmp_path / f"{name}.har"), expected


def test_a_good_file_is_described_endpoint_by_endpoint() -> None:
    done = cli("check-mapping", str(EXAMPLE))
    lines = done.stdout.splitlines()
    assert lines[0] == (f"{EXAMPLE}: OK: site lernwerk (Lernwerk), 2 endpoints, 14 event types")
    assert (
        "  lernwerk.collect: POST t.lernwerk.example /v1/collect; events: each item of $.events"
        in lines
    )
    assert "    'video_heartbeat' → kind progress" in lines
    assert "    'quiz_answer' → verb answered" in lines
    assert "  lernwerk.pixel: GET t.lernwerk.example /p.gif; events: the query string" in lines


def test_a_bad_file_is_refused_with_its_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = EXAMPLE.read_text().replace('kind = "paused"', 'kind = "pause"')
    bad.write_text(text.replace('verb = "searched"', 'verb = "seached"'))
    done = cli("check-mapping", str(bad), check=False)
    assert done.returncode == 1 and not done.stdout
    assert f"{bad}:56: endpoint.collect.event.video_pause.kind: kind must be one of" in done.stderr
    assert (
        f"{bad}:97: endpoint.collect.event.search.verb: unknown verb 'seached' "
        "(did you mean searched?)" in done.stderr
    )


def test_with_a_recording_it_names_the_statements_it_would_make(tmp_path: Path) -> None:
    har, expected = recorded(tmp_path, "video-session")
    out = cli("check-mapping", str(EXAMPLE), str(har)).stdout
    assert f"dry run of {har} (nothing is stored or sent):" in out
    video = "https://www.lernwerk.example/courses/bio-101/videos/v-cells-1"
    assert f"2025-11-26T10:03:00.000Z  initialized  {video}" in out
    assert f"2025-11-26T10:03:26.400Z  paused       {video}  time 25.4 s  progress 0.141" in out
    assert f"2025-11-26T10:03:28.000Z  seeked       {video}  from 25.4 s  to 90.0 s" in out
    assert "  ignored: video_buffering: no mapping for this type" in out
    assert "  not read: lernwerk.collect: video_play: no video id" in out
    assert (
        f"4 requests read, 0 unreadable, 3 matched the mapping, {len(expected)} statements" in out
    )
    assert (
        "  statements: 1 initialized, 2 played, 2 paused, 1 seeked, 1 interacted, 1 terminated"
        in out
    )

    har, expected = recorded(tmp_path, "learning-events")
    out = cli("check-mapping", str(EXAMPLE), str(har)).stdout
    page = "https://www.lernwerk.example/courses/bio-101/lessons/cells"
    assert f"2025-11-26T10:02:50.000Z  viewed       {page}" in out
    assert (
        "2025-11-26T10:03:10.000Z  answered     "
        "https://www.lernwerk.example/courses/bio-101/quizzes/q1/questions/3  "
        'success true  response "mitochondrion"  score 2.0'
    ) in out
    assert f"2025-11-26T10:03:14.000Z  completed    {page}  progress 100%  completion true" in out
    assert "  not read: lernwerk.collect: quiz_answer: no response" in out


def test_its_json_statements_are_the_ones_the_proxy_would_store(tmp_path: Path) -> None:
    """Times, verbs, objects and results as the golden cases expect (the actor's pseudonym,
    and so the ids, come from a throwaway key)."""

    def seen(s: dict[str, Any]) -> tuple[Any, ...]:
        result = json.dumps(s.get("result"), sort_keys=True)
        return (s["timestamp"], s["verb"]["id"], s["object"]["id"], result)

    for name in ("video-session", "learning-events"):
        har, expected = recorded(tmp_path, name)
        done = cli("check-mapping", str(EXAMPLE), str(har), "--json")
        made = [json.loads(line) for line in done.stdout.splitlines()]
        assert [seen(s) for s in made] == [seen(s) for s in expected]


def test_replay_reads_a_recording_with_the_mapping_as_the_proxy_would(tmp_path: Path) -> None:
    """`xapitap replay --mapping FILE`: the statements the proxy stores (same study key)."""
    har, expected = recorded(tmp_path, "learning-events")
    store = tmp_path / "replayed.sqlite3"
    key_path_for(store).write_text(golden.TEST_KEY.hex())
    done = cli("replay", str(har), "--store", str(store), "--mapping", str(EXAMPLE))
    assert f"{len(expected)} new statements" in done.stdout, done.stdout + done.stderr
    assert stored(store) == expected
    without = tmp_path / "without.sqlite3"
    done = cli("replay", str(har), "--store", str(without))
    assert "0 analytics requests" in done.stdout and stored(without) == []
