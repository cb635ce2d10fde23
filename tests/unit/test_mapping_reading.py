"""Requests read with a mapping: where values come from, how they are read, and how a
mapping reaches the proxy's matcher and the translator (its text, with the settings)."""

from __future__ import annotations

import json
import logging
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import golden
import mapping_cases
from xapitap import settings
from xapitap.capture import Capture
from xapitap.events import Extraction
from xapitap.events import Kind
from xapitap.journal.format import Kind as RecordKind
from xapitap.journal.format import Record
from xapitap.journal.format import request_payload
from xapitap.mappings import MappingFile
from xapitap.mappings import platforms_of
from xapitap.pipeline import matcher
from xapitap.platforms import NAMES
from xapitap.platforms.base import Platform
from xapitap.platforms.base import raw_event_id
from xapitap.privacy import scrub
from xapitap.store import TranslationWriter
from xapitap.store.reads import ReadModel
from xapitap.translator.config import MappingText
from xapitap.translator.config import TranslationConfig
from xapitap.translator.core import Translator

ARRIVAL = datetime(2025, 11, 26, 10, 5, tzinfo=UTC)
SITE = 'format = 1\n[site]\nname = "acme"\ndisplay = "Acme Learning"\n'
ENDPOINT = """
[endpoint.t]
hosts = ["t.acme.example"]
path = "/t"
type = "ev"
events = "$[*]"
[endpoint.t.common]
vars = { v = "vid" }
video = "{origin}/v/{v}"
"""
EXAMPLE = golden.FIXTURES.parents[1] / "mappings.example" / "lernwerk.toml"


def platform(text: str, site: str = SITE) -> Platform:
    (found,) = platforms_of([MappingFile("m.toml", site + text)])
    return found


def capture(
    body: Any = None,
    path: str = "/t",
    query: str = "",
    host: str = "t.acme.example",
    method: str = "POST",
    headers: tuple[tuple[str, str], ...] = (),
) -> Capture:
    raw = b"" if body is None else json.dumps(body).encode()
    return Capture(method, "https", host, 443, path, query, headers, raw, ARRIVAL, "f")


def read(p: Platform, c: Capture) -> Extraction:
    found = matcher(None, [p]).match(c.method, c.host, c.path, c.header, lambda: c.body)
    assert found is not None and found.rule.platform == p.name
    return p.extract(found, c, json.loads(c.body) if c.body else None)


def test_values_come_from_the_event_the_body_the_path_the_query_headers_and_cookies() -> None:
    p = platform(
        """
[endpoint.t]
hosts = ["t.acme.example"]
path = "/t/{course}"
events = "$.data.items[*]"
type = "props.epn.kind"
[endpoint.t.event.ping]
kind = "progress"
vars = { v = { query = "video" } }
video = { id = "{origin}/c/{course}/v/{v}", name = { header = "X-Title" } }
position = { field = "props.epn.video_current_time", unit = "s" }
length = { body = "meta.len_ms", unit = "ms" }
user = [{ field = "uid", kind = "userId" }, { cookie = "acme_anon", kind = "anonymousId" }]
session = { value = "one" }
"""
    )
    body = {
        "meta": {"len_ms": 61500},
        "data": {"items": [{"props": {"epn.kind": "ping", "epn.video_current_time": "12.5"}}]},
    }
    c = capture(
        body,
        path="/t/c-1",
        query="video=v%201",
        headers=(("x-title", "Intro"), ("cookie", "acme_anon=a-77; other=1")),
    )
    (e,) = read(p, c).events
    assert e.video.id == "https://t.acme.example/c/c-1/v/v%201" and e.video.name == "Intro"
    assert (e.kind, e.position, e.length) == (Kind.PROGRESS, 12.5, 61.5)
    assert (e.user_ref, e.user_ref_kind, e.session_key) == ("a-77", "anonymousId", "one")
    assert (e.platform, e.platform_name, e.rule) == ("acme", "Acme Learning", "acme.t")


def test_a_length_of_zero_is_no_length() -> None:
    p = platform(
        ENDPOINT + '[endpoint.t.event.p]\nkind = "paused"\nlength = { field = "d", unit = "s" }\n'
    )
    zero, some = read(
        p, capture([{"ev": "p", "vid": "v", "d": 0}, {"ev": "p", "vid": "v", "d": 9}])
    ).events
    assert (zero.length, some.length) == (None, 9.0)


def test_without_a_time_of_its_own_an_event_is_timed_and_hashed_by_its_arrival() -> None:
    item = {"ev": "play", "vid": "v1"}
    (e,) = read(
        platform(ENDPOINT + '[endpoint.t.event.play]\nkind = "played"\n'), capture([item])
    ).events
    assert (e.timestamp, e.timed) == (ARRIVAL, False)
    assert (e.user_ref, e.user_ref_kind) == ("unknown", "none")  # as the built-ins say it
    assert e.source_event_id == raw_event_id([{}, item, ARRIVAL.isoformat()])

    timed = (
        ENDPOINT
        + '[endpoint.t.event.play]\nkind = "played"\ntime = { field = "at", format = "epoch_s" }\n'
    )
    item = {"ev": "play", "vid": "v1", "at": 1764151380}
    (e,) = read(platform(timed), capture([item])).events
    assert (e.timestamp, e.timed) == (datetime(2025, 11, 26, 10, 3, tzinfo=UTC), True)
    assert e.source_event_id == raw_event_id([{}, item])  # its own time tells resends apart

    sent_at_once = ENDPOINT + '[endpoint.t.event.play]\nkind = "played"\ntime = "arrival"\n'
    (e,) = read(platform(sent_at_once), capture([{"ev": "play", "vid": "v1"}])).events
    assert (e.timestamp, e.timed) == (ARRIVAL, True)


def test_the_origin_can_be_the_pages_and_is_the_requests_when_the_page_has_none() -> None:
    site = SITE + 'origin = { field = "page" }\n'
    p = platform(ENDPOINT + '[endpoint.t.event.play]\nkind = "played"\n', site)
    body = [
        {"ev": "play", "vid": "v", "page": "https://www.acme.example:8443/x?token=1"},
        {"ev": "play", "vid": "v", "page": "javascript:void(0)"},
    ]
    first, second = read(p, capture(body)).events
    assert (first.origin, first.video.id) == (
        "https://www.acme.example:8443",
        "https://www.acme.example:8443/v/v",
    )
    assert second.origin == "https://t.acme.example"


def test_settings_changes_and_stretches_are_read_as_the_player_reports_them() -> None:
    p = platform(
        ENDPOINT
        + """
[endpoint.t.event.rate]
kind = "interacted"
[endpoint.t.event.rate.interaction]
speed = "rate"
volume = { field = "vol", scale = 100 }
full_screen = { field = "fs", equals = "on" }
[endpoint.t.event.stretch]
kind = "watched"
segment_from = { field = "a", unit = "ms" }
segment_to = { field = "b", unit = "ms" }
platform_completed = { field = "state", equals = "ended" }
"""
    )
    body = [
        {"ev": "rate", "vid": "v", "rate": "1.5x", "vol": 80, "fs": "on"},
        {"ev": "rate", "vid": "v", "rate": 0},
        {"ev": "stretch", "vid": "v", "a": 1000, "b": 9500, "state": "ended"},
        {"ev": "stretch", "vid": "v", "a": 9500, "b": 1000},
    ]
    out = read(p, capture(body))
    rate, stretch = out.events
    assert rate.interaction is not None
    settings_ = rate.interaction
    assert (settings_.speed, settings_.volume, settings_.full_screen) == ("1.5x", 0.8, True)
    assert (stretch.segment_from, stretch.segment_to, stretch.position) == (1.0, 9.5, 9.5)
    assert stretch.platform_completed and stretch.kind is Kind.WATCHED
    assert [str(s) for s in out.ignored] == ["rate: no setting given"]
    assert [str(s) for s in out.rejected] == ["stretch: no valid segment_from/segment_to"]


def test_unmapped_and_unreadable_events_are_counted_by_fixed_reasons() -> None:
    p = platform(
        ENDPOINT
        + '[endpoint.t.event.play]\nkind = "played"\nrequire = ["position"]\n'
        + 'position = { field = "p", unit = "s" }\n'
    )
    secret = "jane@example.org " * 20
    body = [
        {"ev": secret, "vid": "v"},
        {"ev": "play", "vid": "v", "p": secret},
        {"ev": "play", "p": 3},
        7,
        {"vid": "v"},
    ]
    out = read(p, capture(body))
    assert not out.events
    (ignored,) = out.ignored
    assert ignored.reason == "no mapping for this type"
    assert ignored.event_type == scrub(secret[:100]) and "@" not in ignored.event_type
    assert [s.reason for s in out.rejected] == [
        "no position",
        "no video id",
        "an event that is not an object",
        "no event type",
    ]


def test_body_has_tells_a_sites_requests_on_any_host_from_other_traffic() -> None:
    p = platform(
        """
[endpoint.t]
path = "/collect"
body_has = ['"acme_sdk"', '"events"']
events = "$.events[*]"
type = "ev"
[endpoint.t.event.play]
kind = "played"
video = "{origin}/v"
"""
    )
    rules = matcher(None, [p])
    ours = json.dumps({"acme_sdk": 2, "events": []}).encode()
    other = json.dumps({"events": []}).encode()
    assert rules.match("POST", "any.example", "/collect", lambda _: None, lambda: ours)
    assert rules.match("POST", "any.example", "/collect", lambda _: None, lambda: other) is None


def test_a_learning_event_reads_its_result_and_never_rounds_progress_up() -> None:
    p = platform(
        ENDPOINT
        + """
[endpoint.t.event.done]
verb = { id = "https://example.org/verbs/finished", display = "finished" }
object = { id = "{origin}/lesson/{v}", type = "https://example.org/types/unit" }
[endpoint.t.event.done.result]
progress = { field = "share", scale = 1 }
success = { field = "ok", equals = 1 }
duration = { field = "ms", unit = "ms" }
"""
    )
    out = read(p, capture([{"ev": "done", "vid": "v", "share": 0.999, "ok": 1, "ms": 1500}]))
    (e,) = out.learning
    assert e.verb.id == "https://example.org/verbs/finished" and e.object.type.endswith("/unit")
    assert e.result is not None
    assert (e.result.progress, e.result.success, e.result.duration) == (99, True, 1.5)
    assert e.video is not None and e.video.id == "https://t.acme.example/v/v"


def test_a_mapping_reaches_the_settings_the_matcher_and_the_translator(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its text travels with the settings: the translator reads the journal with it, though
    the file is gone by then; xapi_hosts and targets may name its site."""
    path = tmp_path / "lernwerk.toml"
    path.write_text(EXAMPLE.read_text())
    values = {name: default for name, (_, default, _) in settings.OPTIONS.items()}
    values |= {
        "xapi_mappings": [str(path)],
        "xapi_hosts": ["lernwerk=collector.lernwerk-partner.example"],
        "xapi_store": str(tmp_path / "s.sqlite3"),
    }
    s = settings.parse(values, NAMES)
    assert [f.path for f in s.mappings] == [str(path)]
    assert s.extra_hosts == {"lernwerk": ["collector.lernwerk-partner.example"]}
    config = TranslationConfig.of(s)
    assert config.mappings == (MappingText(path=str(path), text=EXAMPLE.read_text()),)
    path.unlink()

    case = next(c for c in mapping_cases.cases() if c.name == "lernwerk/video-session")
    (platform_,) = config.platforms()
    rules = matcher(s.extra_hosts, [platform_])
    request = case.requests()[0]
    c = request.capture()
    match = rules.match(
        c.method, "collector.lernwerk-partner.example", c.path, c.header, lambda: c.body
    )
    assert match is not None and match.rule.name == "lernwerk.collect"
    records = [Record(1, 0.0, RecordKind.CONFIG, config.model_dump_json().encode())]
    for seq, r in enumerate(case.requests(), 2):
        c = r.capture()
        found = rules.match(c.method, c.host, c.path, c.header, lambda c=c: c.body)
        assert found is not None
        records.append(
            Record(seq, c.received_at.timestamp(), RecordKind.REQUEST, request_payload(found, c))
        )
    writer = TranslationWriter(tmp_path / "s.sqlite3")
    try:
        Translator(writer).apply(records)
    finally:
        writer.close()
    reader = ReadModel(tmp_path / "s.sqlite3")
    try:
        verbs = [json.loads(t)["verb"]["display"]["en-US"] for t in reader.statements_json()]
    finally:
        reader.close()
    assert verbs[:2] == ["initialized", "played"] and "seeked" in verbs

    # A journal whose mapping no longer passes the checks: told, its requests counted.
    broken = config.model_copy(
        update={"mappings": (MappingText(path="old.toml", text="format = 1\nsite = 3\n"),)}
    )
    with caplog.at_level(logging.ERROR):
        assert broken.platforms() == ()
    assert "old.toml:2: site: site is a table" in caplog.text


def test_an_invalid_mapping_stops_the_settings_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        EXAMPLE.read_text().replace('unit = "ms" }\n\n# Player', 'unit = "min" }\n\n# Player')
    )
    values = {name: default for name, (_, default, _) in settings.OPTIONS.items()}
    with pytest.raises(ValueError) as caught:
        settings.parse(values | {"xapi_mappings": [str(path)]}, NAMES)
    assert str(caught.value).startswith("xapi_mappings: a mapping file cannot be used:\n")
    assert f'{path}:41: endpoint.collect.common.position.unit: unit must be "s" or "ms"' in str(
        caught.value
    )
