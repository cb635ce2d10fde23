"""Delivery decisions for every kind of LRS answer, against a scripted fake LRS."""

from __future__ import annotations

import json
from typing import Any

import requests

from xapitap.delivery import Item
from xapitap.delivery import deliver
from xapitap.lrs import Reply
from xapitap.lrs import statement_diff


def item(n: int, **extra: Any) -> Item:
    statement = {"id": f"id-{n}", "verb": {"id": "https://example.org/v"}, **extra}
    return Item(n, f"id-{n}", json.dumps(statement))


class FakeLrs:
    """Refuses batches holding a 'bad' statement (400), like a conformant LRS must."""

    def __init__(
        self,
        bad: frozenset[str] = frozenset(),
        stored: dict[str, dict[str, Any]] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.bad = bad
        self.stored = stored or {}
        self.status = status
        self.headers = headers or {}
        self.posts: list[list[str]] = []

    def post(self, statements_json: list[str]) -> Reply:
        ids = [json.loads(s)["id"] for s in statements_json]
        self.posts.append(ids)
        if self.status is not None:
            return Reply(self.status, self.headers, "scripted")
        if self.bad & set(ids):
            return Reply(400, {}, f"statement {sorted(self.bad & set(ids))[0]} is invalid")
        if set(ids) & set(self.stored):
            return Reply(409, {}, "conflict")
        for text in statements_json:
            self.stored[json.loads(text)["id"]] = json.loads(text)
        return Reply(200, {}, json.dumps(ids))

    def get(self, statement_id: str) -> dict[str, Any] | None:
        found = self.stored.get(statement_id)
        return None if found is None else {**found, "stored": "2026-01-01T00:00:00Z"}


def test_a_bad_statement_is_isolated_and_the_rest_delivered() -> None:
    lrs = FakeLrs(bad=frozenset({"id-5"}))
    batch = [item(n) for n in range(8)]
    out = deliver(lrs, batch)
    assert sorted(out.delivered) == [0, 1, 2, 3, 4, 6, 7]
    ((dead,),) = [out.dead]
    assert dead.seq == 5 and "id-5 is invalid" in dead.reason
    assert not out.unsent and not out.halted
    assert len(lrs.posts) <= 2 * 3 + 1  # halving: a few requests, not one per statement


def test_409_identical_counts_as_delivered_differing_is_a_conflict_with_a_diff() -> None:
    same, other = item(1), item(2, result={"score": 1})
    lrs = FakeLrs(stored={"id-1": json.loads(same.json), "id-2": json.loads(item(2).json)})
    out = deliver(lrs, [same, other, item(3)])
    assert sorted(out.delivered) == [1, 3]
    (dead,) = out.dead
    assert dead.seq == 2 and "409" in dead.reason
    assert dead.diff == '.result: ours {"score": 1} != theirs (absent)'


def test_refused_credentials_halt_without_dropping() -> None:
    out = deliver(FakeLrs(status=401), [item(1), item(2)])
    assert out.auth_failed and out.unsent == [1, 2] and not out.delivered and not out.dead


def test_429_and_5xx_are_retried_later_honouring_retry_after() -> None:
    out = deliver(FakeLrs(status=429, headers={"Retry-After": "7"}), [item(1)])
    assert out.error and out.retry_after == 7.0 and out.unsent == [1]
    out = deliver(FakeLrs(status=503), [item(1)])
    assert out.error == "HTTP 503: scripted" and out.retry_after is None


def test_204_and_200_with_fewer_ids_are_success() -> None:
    assert deliver(FakeLrs(status=204), [item(1), item(2)]).delivered == [1, 2]


def test_connection_errors_leave_everything_queued() -> None:
    class Down(FakeLrs):
        def post(self, statements_json: list[str]) -> Reply:
            raise requests.ConnectionError("connection refused")

    out = deliver(Down(), [item(1), item(2)])
    assert out.unsent == [1, 2] and "ConnectionError" in (out.error or "")


def test_a_transient_error_while_halving_stops_the_rest() -> None:
    class Flaky(FakeLrs):
        def post(self, statements_json: list[str]) -> Reply:
            if len(self.posts) == 1:
                self.posts.append([])
                return Reply(502, {}, "gateway")
            return super().post(statements_json)

    out = deliver(Flaky(bad=frozenset({"id-0"})), [item(n) for n in range(4)])
    assert out.error == "HTTP 502: gateway"
    assert sorted(out.unsent + out.delivered + [d.seq for d in out.dead]) == [0, 1, 2, 3]


def test_diff_ignores_what_the_lrs_sets() -> None:
    ours = {"id": "x", "verb": {"id": "v"}}
    theirs = {**ours, "stored": "now", "authority": {"mbox": "mailto:a@b"}, "version": "1.0.0"}
    assert statement_diff(ours, theirs) == []
