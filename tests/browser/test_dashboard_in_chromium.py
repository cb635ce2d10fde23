"""The dashboard in real headless Chromium, served by a real mitmdump while analytics traffic
goes through that proxy; then the same store served by `xapitap dashboard`.

The truth is the scenario's own: two Udacity learners whose players report exactly which
stretches they played, so that the views across the video are known second by second before
anything is translated."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import sync_playwright
from test_truth import CHROMIUM
from test_truth import CHROMIUM_FLAGS

from support.dashboard import StandaloneDashboard
from support.fidelity import watched
from support.local import reading
from support.proxy import REPO_ROOT
from support.proxy import Mitmdump

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ARTIFACTS = Path(os.environ.get("XAPITAP_ARTIFACTS", REPO_ROOT / "test-artifacts"))
LENGTH = 60
# Who played what (seconds, end excluded), as their players reported it.
LEARNERS = {
    "learner-a": [(0, 10), (5, 20), (30, 40)],  # goes back over 5-10: still one view
    "learner-b": [(5, 15), (50, 60)],
}


def truth_views() -> list[int]:
    views = [0] * LENGTH
    for stretches in LEARNERS.values():
        for second in {s for start, end in stretches for s in range(start, end)}:
            views[second] += 1
    return views


def reports(learner: str) -> list[dict[str, Any]]:
    out = []
    for n, (start, end) in enumerate(LEARNERS[learner]):
        body = watched(10 + 15 * n, start, end, mid=f"{learner}-{n}", duration=LENGTH)
        body["userId"] = learner
        body["anonymousId"] = f"anon-{learner}"
        out.append(body)
    return out


def post(proxy: Mitmdump, body: dict[str, Any]) -> None:
    answer = requests.post(
        "https://api.segment.io/v1/t",
        data=json.dumps(body),
        headers={"Content-Type": "text/plain"},
        proxies=proxy.proxies,
        verify=str(proxy.ca),
        timeout=30,
    )
    assert answer.status_code == 200


class Watch:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


def opened(playwright: Playwright, url: str) -> tuple[Browser, Page, Watch]:
    """The dashboard in headless Chromium, opened directly (as the README says: not through
    the proxy), with its console watched."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(url)
    return browser, page, watch


def wait_until(page: Page, expression: str, timeout: float = 30) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function
    evaluates strings with eval, which the dashboard's Content-Security-Policy forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        time.sleep(0.05)


def statements_of(store: Path, verb: str) -> list[str]:
    with reading(store) as reader:
        return [t for t in reader.statements_json() if json.loads(t)["verb"]["id"].endswith(verb)]


def feed_ids(page: Page) -> list[str]:
    return list(page.eval_on_selector_all("#feed-rows tr", "rows => rows.map(r => r.dataset.id)"))


def chart_of_the_video(page: Page) -> tuple[list[int], list[list[list[float]]]]:
    page.click("#tab-videos")
    page.wait_for_selector("#video-rows tr")
    page.click("#video-rows tr")
    chart = page.wait_for_selector("#views-chart")
    assert chart is not None
    views = json.loads(chart.get_attribute("data-views") or "[]")
    strips = page.eval_on_selector_all(
        "#timelines svg.strip", "strips => strips.map(s => JSON.parse(s.dataset.played))"
    )
    return views, strips


def test_the_dashboard_live_and_over_the_stored_store(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proxy = Mitmdump(tmp_path, "--set", "xapi_answer_locally=true")
    with proxy, sync_playwright() as playwright:
        browser, page, watch = opened(playwright, proxy.dashboard_url)
        try:
            assert "token" not in page.url  # exchanged for the cookie
            page.wait_for_selector("#empty:not([hidden])")  # says what to do first
            steps = page.inner_text("#empty")
            assert f"the proxy at 127.0.0.1:{proxy.port}" in steps
            assert f"CA certificate in that browser: {proxy.ca}" in steps
            wait_until(page, "document.querySelector('#feed-state').textContent.startsWith('live')")
            page.evaluate("window.stayed = true")

            # Statements appear in the feed as they are stored, without a reload.
            for body in reports("learner-a")[:1]:
                post(proxy, body)
                acknowledged = time.monotonic()
                wait_until(page, "document.querySelectorAll('#feed-rows tr').length >= 2", 2)
                assert time.monotonic() - acknowledged < 2
            for body in reports("learner-a")[1:] + reports("learner-b"):
                post(proxy, body)
            with reading(proxy.store) as reader:
                newest = [json.loads(t)["id"] for t in reader.statements_json()]
            wait_until(page, f"document.querySelectorAll('#feed-rows tr').length === {len(newest)}")
            assert page.evaluate("window.stayed") is True
            assert feed_ids(page) == newest[::-1]  # newest first, each once
            first_row = page.inner_text("#feed-rows tr:first-child")
            assert "udacity" in first_row and "learner-b" not in first_row

            # A row opens the full statement (and Escape closes it).
            page.click("#feed-rows tr:first-child")
            shown = json.loads(page.inner_text("#statement-json"))
            assert shown["id"] == newest[-1]
            page.keyboard.press("Escape")
            page.wait_for_selector("#statement", state="hidden")

            # Filters: the feed starts again with only what they take.
            page.select_option("#f-verb", "paused")
            paused = [json.loads(t)["id"] for t in statements_of(proxy.store, "paused")]
            wait_until(page, f"document.querySelectorAll('#feed-rows tr').length === {len(paused)}")
            assert feed_ids(page) == paused[::-1]
            page.select_option("#f-verb", "")
            wait_until(page, f"document.querySelectorAll('#feed-rows tr').length === {len(newest)}")

            views, strips = chart_of_the_video(page)
            assert views == truth_views()
            assert sorted(strips) == [[[0, 20], [30, 40]], [[5, 15], [50, 60]]]
            page.screenshot(path=str(ARTIFACTS / "dashboard-videos.png"), full_page=True)
            for tab in ("#tab-accounting", "#tab-delivery", "#tab-time", "#tab-feed"):
                page.click(tab)
                page.wait_for_selector(f"{tab}[aria-selected=true]")
            # The accounting follows every 2 s: the event type shows, with what became of it.
            page.click("#tab-accounting")
            wait_until(
                page,
                "document.querySelector('#event-rows').textContent"
                ".includes('Course Video Watched')",
                5,
            )
            # Types that appeared while the page was open are marked new.
            assert page.eval_on_selector_all(
                "#event-rows tr.new", "rows => rows.map(r => r.cells[1].textContent)"
            ) == ["Course Video Watched new"]
            page.click("#tab-feed")
            page.screenshot(path=str(ARTIFACTS / "dashboard-feed.png"), full_page=True)
            assert watch.errors == []
        finally:
            browser.close()

    # The same views over the store, with no proxy running.
    with StandaloneDashboard(proxy.store) as standalone, sync_playwright() as playwright:
        browser, page, watch = opened(playwright, standalone.url)
        try:
            with reading(proxy.store) as reader:
                stored = [json.loads(t)["id"] for t in reader.statements_json()]
            wait_until(page, f"document.querySelectorAll('#feed-rows tr').length === {len(stored)}")
            assert feed_ids(page) == stored[::-1]
            assert len(stored) > len(newest)  # the proxy's stop ended the sessions
            assert page.inner_text("#mode") == "reading a store"
            views, strips = chart_of_the_video(page)
            assert views == truth_views()
            assert sorted(strips) == [[[0, 20], [30, 40]], [[5, 15], [50, 60]]]
            page.click("#tab-delivery")
            assert "No LRS is configured" in page.inner_text("#targets")
            page.screenshot(path=str(ARTIFACTS / "dashboard-store.png"), full_page=True)
            assert watch.errors == []
        finally:
            browser.close()
