"""Mapping files are checked whole before anything starts: every mistake is a message that
names its file, its line and its key, and says what would be right."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from xapitap.mappings import MappingError
from xapitap.mappings import MappingFile
from xapitap.mappings import load
from xapitap.mappings import read_files
from xapitap.mappings.paths import compile_path
from xapitap.mappings.validate import MAX_FILE_CHARS

GOOD = """\
format = 1

[site]
name = "lernwerk"
display = "Lernwerk"

[endpoint.collect]
hosts = ["t.lernwerk.example"]
path = "/v1/collect/{course}"
events = "$.events[*]"
type = "name"

[endpoint.collect.common]
user = { field = "uid", kind = "userId" }
vars = { video = "video" }
video = "{origin}/courses/{course}/videos/{video}"

[endpoint.collect.event.play]
kind = "played"
position = { field = "pos", unit = "s" }

[endpoint.collect.event.view]
verb = "viewed"
object = { id = "{origin}/courses/{course}", type = "course" }
"""


def problems(text: str, name: str = "m.toml") -> list[str]:
    with pytest.raises(MappingError) as caught:
        load(MappingFile(name, text))
    return list(caught.value.problems)


def changed(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_the_good_file_loads() -> None:
    mapping = load(MappingFile("m.toml", GOOD))
    assert mapping.site.name == "lernwerk"
    assert [e.name for e in mapping.endpoints] == ["collect"]
    assert set(mapping.endpoints[0].events) == {"play", "view"}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'position = { field = "pos", unit = "s" }',
            'position = { field = "pos", unit = "sec" }',
            'm.toml:20: endpoint.collect.event.play.position.unit: unit must be "s" or "ms"',
        ),
        (
            'position = { field = "pos", unit = "s" }',
            'position = "pos"',
            "m.toml:20: endpoint.collect.event.play.position: say its unit too: "
            '{ field = "pos", unit = "s" or "ms" }',
        ),
        (
            'kind = "played"',
            'kind = "play"',
            "m.toml:19: endpoint.collect.event.play.kind: kind must be one of initialized, "
            "played, paused, seeked, interacted, completed, terminated, watched, progress "
            "(did you mean played?)",
        ),
        (
            'verb = "viewed"',
            'verb = "paused"',
            "m.toml:23: endpoint.collect.event.view.verb: paused is a player action: "
            'write kind = "paused"',
        ),
        (
            'name = "lernwerk"',
            'name = "udemy"',
            "m.toml:4: site.name: 'udemy' is a built-in platform's name; choose another",
        ),
        (
            'name = "lernwerk"',
            'name = "Lern Werk"',
            "m.toml:4: site.name: name is lower-case letters, digits and - (at most 32), "
            "starting with a letter",
        ),
        (
            'path = "/v1/collect/{course}"',
            'path = "/v1/(collect|beacon)/{course}"',
            "m.toml:9: endpoint.collect.path: the path template '|' is not allowed in a path "
            "(write a {name} or * instead)",
        ),
        (
            'path = "/v1/collect/{course}"',
            'path = "/v1/collect/{course}-{lesson}"',
            "m.toml:9: endpoint.collect.path: the path template segment 3 has more than one "
            "{name} or *: split it",
        ),
        (
            'path = "/v1/collect/{course}"',
            'path = "v1/collect/{course}"',
            'm.toml:9: endpoint.collect.path: the path template must start with "/"',
        ),
        (
            'hosts = ["t.lernwerk.example"]',
            'hosts = ["https://t.lernwerk.example"]',
            "m.toml:8: endpoint.collect.hosts: 'https://t.lernwerk.example': a host is a name "
            "such as t.example.org or *.example.org (no port, no scheme); to read any host, "
            "leave hosts out and give body_has",
        ),
        (
            'hosts = ["t.lernwerk.example"]\n',
            "",
            "m.toml:7: endpoint.collect: an endpoint on any host needs body_has (strings its "
            "bodies hold): else it would read every site's requests to that path",
        ),
        (
            'events = "$.events[*]"',
            'events = "events[*]"',
            'm.toml:10: endpoint.collect.events: events starts with "$" (the body), e.g. "$", '
            '"$.events[*]" or "$[*]"',
        ),
        (
            'video = "{origin}/courses/{course}/videos/{video}"',
            'video = "{origin}/courses/{course}/videos/{vidoe}"',
            "m.toml:16: endpoint.collect.common.video.id: {vidoe} is neither {origin}, a var, "
            "nor a part of the path",
        ),
        (
            'video = "{origin}/courses/{course}/videos/{video}"',
            'video = "/courses/{course}/videos/{video}"',
            "m.toml:16: endpoint.collect.common.video.id: an id starts with {origin}, a URL var "
            "or http(s):// (ids are IRIs)",
        ),
        (
            'user = { field = "uid", kind = "userId" }',
            'user = { path = "user", kind = "userId" }',
            "m.toml:14: endpoint.collect.common.user.path: the endpoint's path has no {user} "
            "(it has: {course})",
        ),
        (
            'user = { field = "uid", kind = "userId" }',
            'user = { field = "uid" }',
            "m.toml:14: endpoint.collect.common.user: say its kind: kind = the kind of id, e.g. "
            '"userId" or "anonymousId"',
        ),
        (
            'user = { field = "uid", kind = "userId" }',
            'user = { field = "uid", kind = "userId", cookie = "uid" }',
            "m.toml:14: endpoint.collect.common.user: give exactly one of field, body, path, "
            "query, header, cookie, value",
        ),
        (
            'position = { field = "pos", unit = "s" }',
            'postion = { field = "pos", unit = "s" }',
            "m.toml:20: endpoint.collect.event.play.postion: unknown key 'postion' (did you mean "
            "position?)",
        ),
        (
            'object = { id = "{origin}/courses/{course}", type = "course" }',
            'object = { id = "{origin}/courses/{course}", type = "course" }\n'
            'position = { field = "pos", unit = "s" }',
            "m.toml:25: endpoint.collect.event.view.position: position is only for player "
            "events (kind)",
        ),
        (
            'object = { id = "{origin}/courses/{course}", type = "course" }',
            'object = { id = "{origin}/courses/{course}", type = "cours" }',
            "m.toml:24: endpoint.collect.event.view.object.type: type is one of page, file, "
            "interaction, video, course, lesson, module, assessment, question, search (did "
            "you mean course?), or an activity type IRI",
        ),
        (
            'object = { id = "{origin}/courses/{course}", type = "course" }',
            'object = { id = "{origin}/courses/{course}", type = "course" }\n'
            "result = { completion = true }",
            "m.toml:25: endpoint.collect.event.view.result.completion: result.completion is "
            'for verb = "completed"',
        ),
        (
            'object = { id = "{origin}/courses/{course}", type = "course" }',
            'object = { id = "{origin}/courses/{course}", type = "course" }\n'
            'result = { progress = "share" }',
            "m.toml:25: endpoint.collect.event.view.result.progress: say its scale too: "
            '{ field = "share", scale = 1 (a share, 0-1) or 100 (a percentage) }',
        ),
        (
            'kind = "played"',
            'kind = "played"\ncadence = 10',
            "m.toml:20: endpoint.collect.event.play.cadence: cadence is for progress pings "
            '(kind = "progress")',
        ),
        (
            'kind = "played"',
            'kind = "watched"',
            "m.toml:18: endpoint.collect.event.play: a watched stretch needs segment_from and "
            "segment_to",
        ),
        (
            'kind = "played"',
            'kind = "interacted"',
            "m.toml:18: endpoint.collect.event.play: an interacted event needs interaction = "
            "{ speed = ... }",
        ),
        (
            'kind = "played"',
            'kind = "played"\nrequire = ["length"]',
            "m.toml:20: endpoint.collect.event.play.require: requires length, which this event "
            "type does not read",
        ),
        (
            'kind = "played"',
            'verb = "viewed"\nkind = "played"',
            'm.toml:18: endpoint.collect.event.play: give kind = "played" (a player action) or '
            'verb = "viewed" (a learning event)',
        ),
        (
            'vars = { video = "video" }',
            'vars = { video = "video" }\nkind = "played"',
            "m.toml:16: endpoint.collect.common.kind: kind belongs to each event type, not to "
            "common",
        ),
        (
            'video = "{origin}/courses/{course}/videos/{video}"',
            'video = "{origin}/courses/{course}/my videos/{video}"',
            "m.toml:16: endpoint.collect.common.video.id: an id holds no spaces, nor any of "
            '<>"|\\^`',
        ),
        (
            "format = 1",
            "format = 2",
            "m.toml:1: format: say which format the file is in: format = 1",
        ),
        (
            "[site]",
            "[sites]",
            "m.toml:3: sites: unknown key 'sites' (did you mean site?)",
        ),
        (
            'type = "name"',
            'type = "name"\nmethods = ["POST", "FETCH"]',
            "m.toml:12: endpoint.collect.methods: 'FETCH': a method is one of GET, POST, PUT, "
            "PATCH",
        ),
        (
            'display = "Lernwerk"',
            'display = "Lernwerk"\norigin = "www.lernwerk.example"',
            'm.toml:6: site.origin: origin is "request", an origin such as '
            '"https://www.example.org", or where a page URL is: { field = "page_url" }',
        ),
    ],
)
def test_each_mistake_is_told_at_its_line(old: str, new: str, expected: str) -> None:
    found = problems(changed(old, new))
    assert expected in found, "\n".join(found)


def test_a_toml_syntax_error_names_its_line_and_column() -> None:
    (problem,) = problems(changed('kind = "played"', "kind = played"))
    assert re.fullmatch(r"m\.toml:19: TOML: Invalid value \(column 8\)", problem), problem


def test_every_mistake_is_told_at_once_in_line_order() -> None:
    text = changed('unit = "s"', 'unit = "sec"').replace('type = "course"', 'type = "cours"')
    text = text.replace('name = "lernwerk"', 'name = "udemy"')
    lines = [int(p.split(":")[1]) for p in problems(text)]
    assert lines == sorted(lines) and len(lines) == 3


def test_a_missing_table_is_named() -> None:
    found = problems('format = 1\n[site]\nname = "x"\ndisplay = "X"\n')
    assert found == ["m.toml: missing [endpoint] table"]


def test_a_mapping_file_is_bounded() -> None:
    text = GOOD + "#" * MAX_FILE_CHARS
    assert problems(text) == [f"m.toml: a mapping file has at most {MAX_FILE_CHARS} characters"]


def test_files_are_read_and_two_files_cannot_describe_one_site(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(GOOD)
    second.write_text(GOOD)
    (found,) = read_files([str(first)])
    assert found == MappingFile(str(first), GOOD)
    with pytest.raises(MappingError) as caught:
        read_files([str(first), str(second), str(tmp_path / "none.toml")])
    assert caught.value.problems == (
        f"{second}: site.name: 'lernwerk' is also {first}'s",
        f"{tmp_path / 'none.toml'}: cannot read it (No such file or directory)",
    )


def test_path_templates_compile_to_patterns_that_cannot_backtrack_far() -> None:
    regex, groups = compile_path("/api/{course:digits}/lectures/{lecture}/log-*/")
    assert groups == ("course", "lecture")
    pattern = re.compile(regex, re.IGNORECASE)
    assert pattern.search("/api/12/lectures/abc/log-v2").groupdict() == {  # type: ignore[union-attr]
        "course": "12",
        "lecture": "abc",
    }
    assert pattern.search("/api/12/lectures/abc/log-v2/") is not None
    assert pattern.search("/api/x12/lectures/abc/log-v2") is None
    assert pattern.search("/api/12/lectures/a/b/log-v2") is None  # {name} is one segment
    rest = re.compile(compile_path("/t/**")[0])
    assert rest.search("/t") and rest.search("/t/a/b/c") and not rest.search("/tx")
    # A long hostile path, which a pattern with nested repetition would take ages over.
    started = time.perf_counter()
    for template in ("/{a}x/{b}y", "/*-*/x", "/{a}/{b}/{c}/x"):
        regex = compile_path(template)[0] if template.count("*") < 2 else "^$"
        re.compile(regex).search("/" + "x-" * 50_000 + "/" + "y" * 50_000 + "/z")
    assert time.perf_counter() - started < 0.5


def test_regular_expression_syntax_in_a_path_is_refused_or_literal() -> None:
    for bad in ("/a?", "/a|b", "/a[0-9]", "/(?P<x>.*)", "/a\\d", "/a{2}"):
        with pytest.raises(ValueError):
            compile_path(bad)
    for literal, other in (("/v1.0/t", "/v1x0/t"), ("/a+", "/aa"), ("/(a)", "/a")):
        regex, _ = compile_path(literal)
        assert re.search(regex, literal) and not re.search(regex, other)
