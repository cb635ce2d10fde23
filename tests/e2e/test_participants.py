"""Several participants through one proxy, told apart by their proxy login (mitmproxy's
proxyauth): each one's statements carry their own id; a request without a login gets
mitmproxy's 407 and is attributed to no one; the login password is kept nowhere."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests

from support.fidelity import watched
from support.local import cli
from support.local import stored
from support.proxy import Mitmdump
from xapitap.privacy import PARTICIPANT_HOME
from xapitap.viewing import parse_segments
from xapitap.viewing import union

pytestmark = pytest.mark.e2e

PASSWORDS = {"p-017": "pw-one-6b1f0e", "p-042": "pw-two-93ac5d"}


def send(proxy: Mitmdump, login: tuple[str, str] | None, body: dict[str, Any]) -> int:
    at = f"127.0.0.1:{proxy.port}"
    url = f"http://{login[0]}:{login[1]}@{at}" if login else f"http://{at}"
    answer = requests.post(
        "https://api.segment.io/v1/t",
        data=json.dumps(body),
        headers={"Content-Type": "text/plain"},
        proxies={"https": url, "http": url},
        verify=str(proxy.ca),
        timeout=30,
    )
    return answer.status_code


def test_each_participant_gets_their_own_actor(tmp_path: Path) -> None:
    args = ("--set", "proxyauth=any", "--set", "xapi_actor=participant")
    args += ("--set", "xapi_participant=proxyauth", "--set", "xapi_answer_locally=true")
    with Mitmdump(tmp_path, *args) as proxy:
        for who, password in PASSWORDS.items():
            for n, (start, end) in enumerate([(0, 10), (10, 30)]):
                assert (
                    send(proxy, (who, password), watched(10 + 20 * n, start, end, mid=f"{who}{n}"))
                    == 200
                )
        # Without a login: mitmproxy asks for one, and nothing is captured.
        with pytest.raises(requests.exceptions.ProxyError, match="407"):
            send(proxy, None, watched(60, 30, 40, mid="nobody"))
    statements = stored(proxy.store)
    actors = {s["actor"]["account"]["name"] for s in statements}
    assert actors == set(PASSWORDS)
    assert {s["actor"]["account"]["homePage"] for s in statements} == {PARTICIPANT_HOME}
    for who in PASSWORDS:
        theirs = [s for s in statements if s["actor"]["account"]["name"] == who]
        sessions = {
            s["context"]["extensions"]["https://w3id.org/xapi/video/extensions/session-id"]
            for s in theirs
        }
        assert len(sessions) == 1  # their own session, not one shared with the other
        final = theirs[-1]["result"]["extensions"]
        segments = final["https://w3id.org/xapi/video/extensions/played-segments"]
        assert union(parse_segments(segments)) == [(0.0, 30.0)]
    assert not any("nobody" in json.dumps(s) for s in statements)

    # Status and exports by participant.
    report = cli("status", "--store", str(proxy.store)).stdout
    assert "participants (statements, video sessions, last statement):" in report
    for who in PASSWORDS:
        assert (
            f"  {who}: {len([s for s in statements if s['actor']['account']['name'] == who])}, 1, "
            in report
        )
    only = cli("status", "--store", str(proxy.store), "--participant", "p-017").stdout
    assert "p-017" in only and "p-042" not in only
    rows = list(
        csv.DictReader(
            io.StringIO(
                cli(
                    "export",
                    "--store",
                    str(proxy.store),
                    "--sessions",
                    "--format",
                    "csv",
                    "--participant",
                    "p-042",
                ).stdout
            )
        )
    )
    assert [r["actor"] for r in rows] == ["p-042"] and rows[0]["seconds_played"] == "30.0"

    # The password is kept nowhere: store, its -wal, the journal, the log.
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "confdir" not in p.parts]
    for password in PASSWORDS.values():
        assert password not in proxy.output
        for path in files:
            assert password.encode() not in path.read_bytes(), path


def test_a_request_without_a_login_is_passed_through_and_counted(tmp_path: Path) -> None:
    """Without mitmproxy's proxyauth no request has a login: each is passed on untouched,
    counted, and attributed to no one (and the start-up log says why)."""
    args = ("--set", "xapi_actor=participant", "--set", "xapi_participant=proxyauth")
    with Mitmdump(tmp_path, *args, "--set", "xapi_answer_locally=true") as proxy:
        assert send(proxy, None, watched(10, 0, 10)) == 200
    assert "proxyauth is not set" in proxy.output
    assert stored(proxy.store) == []
    report = cli("status", "--store", str(proxy.store)).stdout
    assert "not attributed: no proxy login" in report
