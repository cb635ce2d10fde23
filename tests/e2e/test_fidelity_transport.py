"""Issue 7, the transport defects through a REAL mitmdump with the addon: resent messages,
shuffled batches, and Coursera's resend after a 413-style split (D2, D9).

`requests` plays the browser over HTTPS; the proxy answers the analytics requests itself
(xapi_answer_locally), so no platform and no LRS is needed; what was translated is read back
from the proxy's store. The browser's clock is the real one: events happened in the recent
past and each request's `sentAt` is when it was really sent, so Segment's sentAt correction
keeps the events where the timeline put them.
"""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

import golden
from support.fidelity import COURSERA_EVENTING
from support.fidelity import SEGMENT_B
from support.fidelity import SEGMENT_T
from support.fidelity import batch
from support.fidelity import coursera_item
from support.fidelity import eventing
from support.fidelity import final_segments
from support.fidelity import iso
from support.fidelity import rows
from support.fidelity import seg
from support.fidelity import union
from support.fidelity import verbs
from support.local import stored
from support.proxy import Mitmdump
from xapitap.pseudonym import key_path_for

pytestmark = pytest.mark.e2e


def proxy_at(workdir: Path) -> Mitmdump:
    proxy = Mitmdump(workdir, "--set", "xapi_answer_locally=true")
    key_path_for(proxy.store).parent.mkdir(parents=True, exist_ok=True)
    key_path_for(proxy.store).write_text(golden.TEST_KEY.hex())  # the same actors every run
    return proxy


def send(proxy: Mitmdump, url: str, body: Any) -> None:
    response = requests.post(
        url,
        data=json.dumps(body, separators=(",", ":")).encode("utf-8"),
        headers={"Content-Type": "text/plain"},
        proxies=proxy.proxies,
        verify=str(proxy.ca),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-xapitap"] == "answered-locally"


def now() -> datetime:
    return datetime.now(UTC)


def test_a_resent_segment_message_adds_nothing(tmp_path: Path) -> None:
    """Played 0-15, paused, resumed, played to 30, left; analytics-next then retries the
    Started (same messageId) after the later events were delivered."""
    base = now() - timedelta(seconds=100)
    started = seg("Video Playback Started", 0, 0, mid="m0", base=base)
    first = [
        started,
        seg("Video Content Playing", 10, 10, mid="m1", base=base),
        seg("Video Playback Paused", 15, 15, mid="m2", base=base),
    ]
    second = [
        seg("Video Playback Resumed", 20, 15, mid="m3", base=base),
        seg("Video Content Playing", 30, 25, mid="m4", base=base),
        seg("Video Playback Paused", 35, 30, mid="m5", base=base),
    ]
    with proxy_at(tmp_path) as proxy:
        send(proxy, SEGMENT_B, batch(first, now()))
        send(proxy, SEGMENT_B, batch(second, now()))
        send(proxy, SEGMENT_T, {**started, "sentAt": iso(now())})  # the retry
        exited = seg("Video Playback Exited", 40, 30, mid="m6", base=base)
        send(proxy, SEGMENT_T, {**exited, "sentAt": iso(now())})
    assert proxy.returncode == 0, proxy.output
    ours = stored(proxy.store)
    assert verbs(ours) == ["initialized", "played", "paused", "played", "paused", "terminated"], (
        rows(ours)
    )
    final = final_segments(ours)
    assert union(final) == [(0.0, 30.0)] and sum(b - a for a, b in final) == 30.0, rows(ours)


def test_a_shuffled_segment_batch_is_translated_in_time_order(tmp_path: Path) -> None:
    """Played 0-25; analytics-next re-queued the first events behind newer ones."""
    base = now() - timedelta(seconds=100)
    m0 = seg("Video Playback Started", 0, 0, base=base)
    m1 = seg("Video Content Playing", 10, 10, base=base)
    m2 = seg("Video Content Playing", 20, 20, base=base)
    m3 = seg("Video Playback Paused", 25, 25, base=base)
    with proxy_at(tmp_path) as proxy:
        send(proxy, SEGMENT_B, batch([m1, m3, m0, m2], now()))
    assert proxy.returncode == 0, proxy.output
    ours = stored(proxy.store)
    assert "seeked" not in verbs(ours), rows(ours)
    assert verbs(ours)[0] == "initialized", rows(ours)
    stamps = [s["timestamp"] for s in ours]
    assert stamps == sorted(stamps), rows(ours)
    assert union(final_segments(ours)) == [(0.0, 25.0)], rows(ours)


def test_coursera_resend_after_a_413_split_adds_nothing(tmp_path: Path) -> None:
    """The tracker's batch of 4 events is answered 413 (the proxy saw it already) and resent
    as two smaller batches with the same guids. The store must hold exactly what the same
    traffic without the resend gives."""
    base = now() - timedelta(hours=1)
    first = [
        coursera_item("play", 0, 0, "g0", base=base),
        coursera_item("heartbeat", 5, 5, "g1", base=base),
        coursera_item("pause", 8, 8, "g2", base=base),
    ]
    big = [
        coursera_item("play", 12, 8, "g3", base=base),
        coursera_item("heartbeat", 17, 13, "g4", base=base),
        coursera_item("heartbeat", 22, 18, "g5", base=base),
        coursera_item("pause", 24, 20, "g6", base=base),
    ]

    def play(workdir: Path, resend: bool) -> list[dict[str, Any]]:
        with proxy_at(workdir) as proxy:
            send(proxy, COURSERA_EVENTING, eventing(first))
            send(proxy, COURSERA_EVENTING, eventing(big))
            if resend:
                send(proxy, COURSERA_EVENTING, eventing(big[:2]))
                send(proxy, COURSERA_EVENTING, eventing(big[2:]))
        assert proxy.returncode == 0, proxy.output
        return stored(proxy.store)

    once = play(tmp_path / "once", resend=False)
    twice = play(tmp_path / "resent", resend=True)
    assert once, "nothing translated"
    assert twice == once, f"with the resend:{rows(twice)}\nwithout:{rows(once)}"


def test_a_message_resent_after_a_restart_adds_nothing(tmp_path: Path) -> None:
    """classic analytics.js retries from localStorage on the next page load: the proxy may
    have restarted meanwhile. The store remembers which events were translated."""
    base = now() - timedelta(seconds=60)  # both are sent now (sentAt), 20 s apart
    started = seg("Video Playback Started", 0, 0, mid="r0", base=base, sent=60)
    paused = seg("Video Playback Paused", 20, 20, mid="r1", base=base, sent=60)
    with proxy_at(tmp_path) as proxy:
        for message in (started, paused):
            send(proxy, SEGMENT_T, message)
    assert proxy.returncode == 0, proxy.output
    before = stored(proxy.store)
    assert verbs(before) == ["initialized", "played", "paused", "terminated"]
    with proxy_at(tmp_path) as again:
        send(again, SEGMENT_T, started)  # the same messageId, after the restart
    assert again.returncode == 0, again.output
    assert stored(again.store) == before, rows(stored(again.store))
