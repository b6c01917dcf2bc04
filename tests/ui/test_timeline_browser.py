"""The timeline in a real browser (Chromium): the figure of a known run renders one bar per node
execution, lanes for the parallel branches, and the live widget gains bars as a run goes."""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import END, START, RetryPolicy, StateGraph

pytestmark = pytest.mark.browser

BARS = ".js-plotly-plot .barlayer .point path"


class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def fan() -> Any:
    """plan -> (left, right) in parallel, right failing once and retried -> join."""
    calls = {"right": 0}

    def step(name: str) -> Callable[[S], S]:
        def run(s: S) -> S:
            time.sleep(0.03)  # wide enough bars to be drawn
            if name == "right":
                calls["right"] += 1
                if calls["right"] == 1:
                    raise ConnectionError("transient")
            return {"log": [name]}

        return run

    g = StateGraph(S, name="browser")
    for n in ("plan", "left", "right", "join"):
        g.add_node(
            n, step(n), retry=RetryPolicy(max_attempts=2, initial_interval=0.001, jitter=False)
        )
    g.add_edge(START, "plan").add_edge("plan", "left").add_edge("plan", "right")
    g.add_edge(["left", "right"], "join").add_edge("join", END)
    return g.compile()


def test_timeline_html_renders_one_bar_per_execution(page: Any, tmp_path: Path) -> None:
    app = fan()
    app.record()
    app.invoke({})
    tl = app.timeline()
    try:
        assert repr(tl) == "Timeline(graph 'browser': 5 executions, 3 steps, 1 retried)"
        path = tmp_path / "timeline.html"
        tl.write_html(str(path), include_plotlyjs=True)  # plotly.js inlined: no CDN, no network
    finally:
        tl.close()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", state="attached", timeout=30_000)
    page.wait_for_function(f"document.querySelectorAll({BARS!r}).length >= 5", timeout=30_000)
    bars = page.locator(BARS)
    assert bars.count() == 5  # plan, left, right (failed attempt + retry), join
    widths = [float(bars.nth(i).bounding_box()["width"]) for i in range(bars.count())]
    assert all(w > 1 for w in widths)
    ticks = [
        page.locator(".ytick text").nth(i).text_content()
        for i in range(page.locator(".ytick text").count())
    ]
    assert ticks == ["lane 0", "lane 1"]
    svg = page.locator(".js-plotly-plot").first.text_content() or ""
    for name in ("plan", "left", "right", "join"):
        assert name in svg
    # the retried attempt is its own colour: two bar traces drawn (ok and retried)
    assert page.locator(".barlayer .trace.bars").count() >= 2
    assert page.locator(".scatterlayer .point").count() == 1  # the retry mark
    assert not errors


def test_live_timeline_widget_gains_bars_during_a_run(solara_test: Any, page_session: Any) -> None:
    from IPython.display import display

    app = fan()
    tl = app.timeline()
    try:
        display(tl)
        page_session.wait_for_selector(
            ".js-plotly-plot .main-svg", state="attached", timeout=30_000
        )
        assert page_session.locator(BARS).count() == 0
        app.invoke({})
        page_session.wait_for_function(
            f"document.querySelectorAll({BARS!r}).length === 5", timeout=30_000
        )
        assert tl.updates_sent >= 2
        ticks = page_session.locator(".ytick text")
        assert [ticks.nth(i).text_content() for i in range(ticks.count())] == ["lane 0", "lane 1"]
    finally:
        tl.close()
