"""Zero-loss delivery through the real parts: mitmdump with the addon, a real Ralph LRS, and
a relay in front of Ralph to make it slow or strict on demand."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import golden
from support.delivery import in_lrs
from support.delivery import lrs_count_for
from support.delivery import predicted
from support.delivery import proxy_for
from support.delivery import send_all
from support.delivery import status_of
from support.delivery import target
from support.delivery import targets_file
from support.delivery import video_events
from support.delivery import wait_until_delivered
from support.local import cli
from support.local import reading
from support.local import stored
from support.proxy import Mitmdump
from support.ralph import RalphLRS
from support.relay import Relay
from xapitap.pseudonym import key_path_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def second_ralph() -> Iterator[RalphLRS]:
    with RalphLRS() as lrs:
        yield lrs


def test_lrs_outage_mid_stream_loses_nothing_and_duplicates_nothing(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    events = video_events(30, secrets.token_hex(4))
    proxy = proxy_for(tmp_path, targets_file(tmp_path, target("main", ralph)))
    with proxy:
        send_all(proxy, events[:10])
        assert wait_until_delivered(proxy.store, "main").queued == 0
        ralph.stop()
        try:
            send_all(proxy, events[10:20])
            time.sleep(1)
            assert status_of(proxy.store, "main").queued == 10  # one statement per event
        finally:
            ralph.start()
        send_all(proxy, events[20:])
        wait_until_delivered(proxy.store, "main")
    status = status_of(proxy.store, "main")  # the terminated of the proxy's stop included
    ours = stored(proxy.store)
    assert len(ours) == 1 + 30 + 1  # initialized, one per event, terminated at stop
    assert (status.queued, status.delivered, status.dead) == (0, len(ours), 0)
    assert in_lrs(ralph, ours) == ours
    assert lrs_count_for(ralph, ours[0]) == len(ours)


def test_sigkill_mid_stream_then_restart_delivers_everything_once(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    events = video_events(20, secrets.token_hex(4))
    path = targets_file(tmp_path, target("main", ralph))
    first = proxy_for(tmp_path, path)
    key_path_for(first.store).parent.mkdir(parents=True, exist_ok=True)
    key_path_for(first.store).write_text(key.hex())
    with first:
        send_all(first, events[:10])
        first.kill()  # no shutdown, no flush: whatever was acknowledged is journaled
    assert len(stored(first.store)) == 1 + 10  # initialized and one per event
    second = proxy_for(tmp_path, path)
    with second:
        send_all(second, events[10:])
        status = wait_until_delivered(second.store, "main")
    assert (status.queued, status.dead) == (0, 0)
    ours = stored(second.store)
    # The translator keeps its open sessions in the store: after the crash, the session goes
    # on where it was, and the statements are those of a proxy that never stopped.
    assert ours == predicted(events, key)
    assert len(ours) == 1 + 20 + 1 and in_lrs(ralph, ours) == ours
    assert lrs_count_for(ralph, ours[0]) == len(ours)


def test_one_refused_statement_is_dead_lettered_and_the_rest_delivered(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    case = next(c for c in golden.cases() if c.name == "segment/video-spec-session")
    sent = [golden.without_sent_at(r) for r in case.requests()]
    predicted = [s for r in golden.run_requests(sent, key) for s in r.get("statements", [])]
    refused = predicted[2]
    with Relay(ralph.base_url) as relay:
        relay.refuse_ids = {refused["id"]}
        path = targets_file(tmp_path, target("strict", ralph, relay.url, batch_size=50))
        proxy = proxy_for(tmp_path, path)
        key_path_for(proxy.store).write_text(key.hex())
        with proxy:
            for request in sent:
                send_all(proxy, [request])
            status = wait_until_delivered(proxy.store, "strict")
            assert (status.delivered, status.dead) == (len(predicted) - 1, 1)
            assert in_lrs(ralph, predicted) == [s for s in predicted if s is not refused]
            report = cli("status", "--store", str(proxy.store)).stdout
            assert f"strict {refused['id']}: HTTP 400" in report and "refused" in report
            # After a fix (here: the LRS stops refusing it), `xapitap retry` re-queues it and
            # the running proxy delivers it.
            relay.refuse_ids = set()
            assert "re-queued 1" in cli("retry", "--store", str(proxy.store)).stdout
            status = wait_until_delivered(proxy.store, "strict", timeout=15)
    assert (status.delivered, status.dead, status.queued) == (len(predicted), 0, 0)
    assert in_lrs(ralph, predicted) == predicted


def test_id_conflicts_are_dead_lettered_with_a_diff_and_identical_copies_count(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    key = secrets.token_bytes(32)
    case = next(c for c in golden.cases() if c.name == "udacity/seed-course-video-watched")
    sent = [golden.without_sent_at(r) for r in case.requests()]
    predicted = [s for r in golden.run_requests(sent, key) for s in r.get("statements", [])]
    _initialized, played, paused, _terminated = predicted
    altered = json.loads(json.dumps(paused))
    altered["result"]["extensions"]["https://w3id.org/xapi/video/extensions/time"] = 99.0
    assert ralph.post([played, altered]).status_code == 200  # someone got there first
    proxy = proxy_for(tmp_path, targets_file(tmp_path, target("main", ralph)))
    key_path_for(proxy.store).write_text(key.hex())
    with proxy:
        send_all(proxy, sent)
        status = wait_until_delivered(proxy.store, "main")
    assert (status.delivered, status.dead) == (2, 1)  # initialized, the identical played
    with reading(proxy.store) as reader:
        (letter,) = reader.dead_letters()
    statement_id, reason, diff = letter.statement_id, letter.reason, letter.diff
    assert statement_id == paused["id"] and "409" in reason
    time_key = "https://w3id.org/xapi/video/extensions/time"
    assert diff == f".result.extensions.{time_key}: ours 10.155 != theirs 99.0"


def test_a_slow_lrs_does_not_slow_the_proxy(ralph: RalphLRS, tmp_path: Path) -> None:
    events = video_events(6, secrets.token_hex(4))
    with Relay(ralph.base_url) as relay:
        relay.delay = 5.0
        path = targets_file(tmp_path, target("slow", ralph, relay.url, timeout=30))
        proxy = proxy_for(tmp_path, path, "--set", "xapi_flush_seconds=1")
        with proxy:
            took = []
            for request in events:
                started = time.monotonic()
                send_all(proxy, [request])
                took.append(time.monotonic() - started)
        assert max(took) < 1.0, took  # the LRS takes 5 s a request
    status = status_of(proxy.store, "slow")
    assert status.delivered + status.queued == len(stored(proxy.store)) and status.dead == 0


def test_wrong_credentials_stop_loudly_keep_everything_and_resume_when_fixed(
    ralph: RalphLRS, tmp_path: Path
) -> None:
    events = video_events(8, secrets.token_hex(4))
    wrong = "not-the-password-" + secrets.token_hex(4)
    bad = targets_file(tmp_path, target("main", ralph, password=wrong))
    proxy = proxy_for(tmp_path, bad)
    with proxy:
        send_all(proxy, events)
        deadline = time.monotonic() + 15
        while "stopped" not in status_of(proxy.store, "main").state:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    status = status_of(proxy.store, "main")
    assert status.queued == len(stored(proxy.store)) and "HTTP 401" in (status.last_error or "")
    report = cli("status", "--store", str(proxy.store)).stdout
    assert "stopped: credentials refused" in report
    assert "refused our credentials" in proxy.output
    for text in (proxy.output, report, proxy.store.read_bytes().decode("latin-1")):
        assert wrong not in text
    fixed = proxy_for(tmp_path, targets_file(tmp_path, target("main", ralph)))
    with fixed:
        status = wait_until_delivered(fixed.store, "main")
    assert (status.delivered, status.queued) == (len(stored(fixed.store)), 0)


def test_two_targets_with_filters_each_get_exactly_their_share(
    ralph: RalphLRS, second_ralph: RalphLRS, tmp_path: Path
) -> None:
    path = targets_file(
        tmp_path,
        target("coursera-only", ralph, platforms=["coursera"]),
        target("pauses-and-completions", second_ralph, verbs=["paused", "completed"]),
    )
    proxy = proxy_for(tmp_path, path)
    with proxy:
        for name in ("coursera/eventing-session", "segment/video-spec-session"):
            case = next(c for c in golden.cases() if c.name == name)
            send_all(proxy, case.requests())
        for name in ("coursera-only", "pauses-and-completions"):
            assert wait_until_delivered(proxy.store, name).queued == 0
    ours = stored(proxy.store)
    coursera = [s for s in ours if s["context"]["platform"] == "Coursera"]
    pauses = [s for s in ours if s["verb"]["display"]["en-US"] in ("paused", "completed")]
    both = [s for s in coursera if s in pauses]
    neither = [s for s in ours if s not in coursera and s not in pauses]
    assert both and neither  # the filters overlap on Coursera's pauses, and leave some out
    assert in_lrs(ralph, ours) == coursera
    assert in_lrs(second_ralph, ours) == pauses


def test_version_is_negotiated_from_about(ralph: RalphLRS, tmp_path: Path) -> None:
    with Relay(ralph.base_url) as relay:
        relay.about_versions = ["1.0.3", "2.0.0"]
        proxy = proxy_for(tmp_path, targets_file(tmp_path, target("new", ralph, relay.url)))
        with proxy:
            send_all(proxy, video_events(2, secrets.token_hex(4)))
            status = wait_until_delivered(proxy.store, "new")
    assert status.version == "2.0.0" and set(relay.versions_seen) == {"2.0.0"}
    # Ralph itself has no /about: the default, 1.0.3, is what it gets.
    proxy = proxy_for(tmp_path / "b", targets_file(tmp_path, target("old", ralph)))
    with proxy:
        send_all(proxy, video_events(1, secrets.token_hex(4)))
        assert wait_until_delivered(proxy.store, "old").version == "1.0.3"


def test_push_sends_a_study_captured_without_an_lrs(ralph: RalphLRS, tmp_path: Path) -> None:
    proxy = Mitmdump(tmp_path, "--set", "xapi_answer_locally=true")
    with proxy:
        send_all(proxy, video_events(12, secrets.token_hex(4)))

    def push() -> subprocess.CompletedProcess[str]:
        return cli(
            "push",
            "--store",
            str(proxy.store),
            "--to",
            ralph.url,
            "--username",
            ralph.username,
            "--password-env",
            "LRS_SECRET",
            env={"LRS_SECRET": ralph.password},
            check=False,  # the test reads the exit code and stderr itself
        )

    done = push()
    assert done.returncode == 0, done.stderr
    ours = stored(proxy.store)
    n = len(ours)
    assert f"{n} delivered, 0 still queued, 0 dead-lettered" in done.stdout
    assert f"{n}/{n}" in done.stderr  # the progress bar
    assert in_lrs(ralph, ours) == ours
    again = push()
    assert "pushing 0 statements" in again.stdout and again.returncode == 0
