"""End to end: the learner's traffic is untouched, and the option contract holds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import golden
from support.local import cli
from support.proxy import Mitmdump
from support.upstream import RESPONSE_BODY
from support.upstream import Upstream
from xapitap.store import ReadModel

pytestmark = pytest.mark.e2e

MALFORMED = b'{"type":"track","event":"Video Playback Paused","writeKey":"WK","properties":{"posi'


def headers_of(request: requests.PreparedRequest) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in request.headers.items())


def test_unmatched_and_malformed_traffic_pass_through_byte_identical(tmp_path: Path) -> None:
    with Upstream(tls_dir=tmp_path) as upstream:
        proxy = Mitmdump(
            tmp_path, "--set", "ssl_insecure=true", "--set", "xapi_keep_unreadable=true"
        )
        with proxy:
            sent = []
            for path, body in [
                ("/api/cart?x=1", b'{"item": 1, "qty": 2}\n'),
                ("/v1/t", MALFORMED),  # Segment on a first-party host, but cut short
                ("/v1/t", (golden.SEED / "udacity-course-video-watched.json").read_bytes()),
            ]:
                response = requests.post(
                    upstream.url + path,
                    data=body,
                    headers={"Content-Type": "text/plain", "X-Custom": "kept as is"},
                    proxies=proxy.proxies,
                    verify=str(proxy.ca),
                    timeout=30,
                )
                assert response.status_code == 200
                assert response.content == RESPONSE_BODY
                assert response.headers["x-upstream"] == "yes"
                assert "x-xapitap" not in response.headers
                sent.append((path, body, headers_of(response.request)))
        assert proxy.returncode == 0, proxy.output
    received = []
    for r in upstream.received:
        headers = sorted((k.lower(), v) for k, v in r.headers)
        assert ("host", f"localhost:{upstream.port}") in headers  # added by http.client
        received.append((r.target, r.body, [h for h in headers if h[0] != "host"]))
    assert received == sent

    store = ReadModel(proxy.store)
    try:
        (reject,) = store.rejects()
        assert reject.rule == "segment.first-party" and "invalid JSON" in reject.reason
        # Kept when asked for, so it can be looked at and re-read later; scrubbed even then.
        assert reject.body == MALFORMED.replace(b'"writeKey":"WK"', b'"writeKey":"redacted"')
        assert store.counters()["errors"] == 1
        # the well-formed event still counts: its session, played, paused, terminated at stop
        assert store.count_statements() == 4
    finally:
        store.close()
    status = cli("status", "--store", str(proxy.store)).stdout
    assert "unreadable requests: 1" in status and "invalid JSON" in status


def test_upstream_mode_composes(tmp_path: Path) -> None:
    """--mode upstream: chains to another proxy; analytics are still captured on the way."""
    with Upstream() as next_proxy:
        proxy = Mitmdump(tmp_path, "--mode", f"upstream:http://127.0.0.1:{next_proxy.port}")
        with proxy:
            body = (golden.SEED / "udacity-course-video-watched.json").read_bytes()
            response = requests.post(
                "http://api.segment.io/v1/t", data=body, proxies=proxy.proxies, timeout=30
            )
            assert response.content == RESPONSE_BODY
    (received,) = next_proxy.received
    assert received.target == "http://api.segment.io/v1/t" and received.body == body
    verbs = [s["verb"]["display"]["en-US"] for s in exported(proxy.store)]
    assert verbs == ["initialized", "played", "paused", "terminated"]


def test_options_from_config_yaml_in_the_confdir(tmp_path: Path) -> None:
    store = tmp_path / "from-yaml.sqlite3"
    (tmp_path / "confdir").mkdir()
    (tmp_path / "confdir" / "config.yaml").write_text(
        f"xapi_store: {store}\nxapi_answer_locally: true\n"
    )
    proxy = Mitmdump(tmp_path, set_store=False)
    with proxy:
        response = requests.post(
            "https://www.coursera.org/api/rest/v1/eventing/infobatch",
            data=(golden.SEED / "coursera-video-play.json").read_bytes(),
            proxies=proxy.proxies,
            verify=str(proxy.ca),
            timeout=30,
        )
        assert response.headers["x-xapitap"] == "answered-locally"
    verbs = [s["verb"]["display"]["en-US"] for s in exported(store)]
    assert verbs == ["initialized", "played", "paused", "terminated"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "xapi_lrs_endpoint=ftp://lrs.example.org/"], "must be an http(s) URL"),
        (["--set", "xapi_lrs_endpiont=http://127.0.0.1:1/xAPI/"], "did you mean xapi_lrs_endpoint"),
        (["--set", "xapi_max_body_bytes=0"], "must be positive"),
        (["--set", "xapi_hosts=mixpanel=api.example.org"], "unknown platform"),
    ],
)
def test_bad_options_stop_the_start_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proxy = Mitmdump(tmp_path, *args)
    assert proxy.run_to_exit() != 0
    assert message in proxy.output


def test_xapitap_run_starts_the_proxy_and_says_where_the_ca_is(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite3"
    confdir = tmp_path / "certs"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xapitap",
            "run",
            "-p",
            "0",
            "--confdir",
            str(confdir),
            "--store",
            str(store),
            "--set",
            "xapi_answer_locally=true",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    port = 0
    deadline = time.monotonic() + 30
    while not port and time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "proxy listening at" in line:
            port = int(line.rsplit(":", 1)[1].rstrip(".\n"))
    assert port, "".join(lines)
    while not store.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    output = "".join(lines)
    assert f"CA certificate {confdir / 'mitmproxy-ca-cert.pem'}" in output
    proxy = f"http://127.0.0.1:{port}"
    response = requests.post(
        "https://www.udemy.com/api-2.0/visits/me/course-taking-events/",
        data=(golden.SEED / "udemy-video-play.json").read_bytes(),
        proxies={"http": proxy, "https": proxy},
        verify=str(confdir / "mitmproxy-ca-cert.pem"),
        timeout=30,
    )
    assert response.status_code == 200
    process.terminate()
    assert process.wait(30) == 0
    verbs = [s["verb"]["display"]["en-US"] for s in exported(store)]
    assert verbs == ["initialized", "played", "paused", "terminated"]


def exported(store: Path) -> list[dict[str, object]]:
    lines = cli("export", "--store", str(store)).stdout.splitlines()
    return [json.loads(line) for line in lines]


def test_privacy_options_through_the_proxy(tmp_path: Path) -> None:
    proxy = Mitmdump(
        tmp_path,
        "--set",
        "xapi_answer_locally=true",
        "--set",
        "xapi_actor=participant",
        "--set",
        "xapi_participant=P-042",
        "--set",
        "xapi_user_agent=true",
        "--set",
        "xapi_version=2.0.0",
        "--set",
        f"xapi_key_file={tmp_path / 'study.key'}",
    )
    with proxy:
        response = requests.post(
            "https://api.segment.io/v1/t",
            data=(golden.SEED / "udacity-course-video-watched.json").read_bytes(),
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0"},
            proxies=proxy.proxies,
            verify=str(proxy.ca),
            timeout=30,
        )
        assert response.status_code == 200
    statements = exported(proxy.store)
    assert {s["actor"]["account"]["name"] for s in statements} == {"P-042"}  # type: ignore[index]
    assert {s["version"] for s in statements} == {"2.0.0"}
    initialized = statements[0]
    agent = initialized["context"]["extensions"][
        "https://w3id.org/xapi/video/extensions/user-agent"
    ]  # type: ignore[index]
    assert agent == "Firefox 128 (Linux)"
    assert (tmp_path / "study.key").exists() and not key_beside_store(proxy.store).exists()


def key_beside_store(store: Path) -> Path:
    return store.with_name(store.name + ".key")
