"""End to end: a site described by a mapping file, through a real mitmdump (HTTPS, the
addon loaded as a user loads it) into a real Ralph LRS; and a mapping file with mistakes
stops the proxy before it starts, saying where they are."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_capture_to_lrs import as_sent
from test_capture_to_lrs import lrs_options
from test_capture_to_lrs import send

import golden
import mapping_cases
from support.local import stored
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.ralph import validate_with_ralph
from test_ralph_models import RALPH_MODELS
from test_ralph_models import is_video_profile
from test_ralph_models import ralph_gap
from test_ralph_models import with_placeholders
from xapitap.pseudonym import key_path_for

pytestmark = pytest.mark.e2e

EXAMPLE = mapping_cases.ROOT / "mappings.example" / "lernwerk.toml"


@pytest.mark.parametrize("case", mapping_cases.cases(), ids=lambda c: c.name)
def test_a_mapped_sites_traffic_becomes_statements_in_the_store_and_in_ralph(
    case: golden.Case, ralph: RalphLRS, tmp_path: Path
) -> None:
    proxy = Mitmdump(
        tmp_path,
        *lrs_options(ralph),
        "--set",
        "xapi_answer_locally=true",
        "--set",
        f"xapi_mappings={mapping_cases.mapping_path(case)}",
    )
    key_path_for(proxy.store).write_text(golden.TEST_KEY.hex())
    with proxy:
        for request in case.requests():
            response = send(proxy, request)
            assert response.status_code == 200, response.text
            assert response.headers["x-xapitap"] == "answered-locally"
    assert proxy.returncode == 0, proxy.output

    ours = stored(proxy.store)
    predicted = [s for r in golden.expected(case) for s in r.get("statements", [])]
    assert ours == predicted
    in_lrs = [ralph.get(s["id"]) for s in ours]
    assert [as_sent(s) for s in in_lrs if s] == ours, "the LRS holds exactly what we stored"
    verdicts = validate_with_ralph([with_placeholders(s) for s in ours])
    for statement, verdict in zip(ours, verdicts, strict=True):
        if is_video_profile(statement):
            assert verdict["ok"] != bool(ralph_gap(statement)), verdict
            continue
        # Ralph's own model where it has one (a page viewed), else its base statement model.
        kind = (statement["verb"]["id"], statement["object"]["definition"]["type"])
        if kind in RALPH_MODELS:
            assert verdict.get("model") == RALPH_MODELS[kind], verdict
        else:
            assert verdict["ok"] or verdict.get("base"), verdict


def test_without_the_mapping_the_sites_traffic_passes_by(tmp_path: Path) -> None:
    """The statements above are the mapping's doing: no built-in platform reads this site."""
    (case, *_) = mapping_cases.cases()
    proxy = Mitmdump(tmp_path, "--set", "xapi_answer_locally=true")
    with proxy:
        for request in case.requests():
            try:
                response = send(proxy, request)
            except OSError:  # the site does not exist: not answered locally, not reached
                continue
            assert "x-xapitap" not in response.headers
    assert stored(proxy.store) == []


def test_a_mapping_file_with_mistakes_stops_the_proxy_with_their_lines(tmp_path: Path) -> None:
    bad = tmp_path / "lernwerk.toml"
    text = EXAMPLE.read_text().replace('unit = "ms" }\n\n# Player', 'unit = "sec" }\n\n# Player')
    bad.write_text(text.replace('name = "lernwerk"', 'name = "udemy"'))
    # Several files: the good one is read, the bad one stops the start.
    proxy = Mitmdump(tmp_path, "--set", f"xapi_mappings={EXAMPLE}", "--set", f"xapi_mappings={bad}")
    assert proxy.run_to_exit() != 0
    assert "xapi_mappings: a mapping file cannot be used:" in proxy.output
    assert f"{bad}:15: site.name: 'udemy' is a built-in platform's name; choose another" in (
        proxy.output
    )
    assert f'{bad}:41: endpoint.collect.common.position.unit: unit must be "s" or "ms"' in (
        proxy.output
    )
    assert not proxy.store.exists() or stored(proxy.store) == []


def test_a_missing_mapping_file_stops_the_proxy(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    proxy = Mitmdump(tmp_path, "--set", f"xapi_mappings={missing}")
    assert proxy.run_to_exit() != 0
    assert f"{missing}: cannot read it (No such file or directory)" in proxy.output
