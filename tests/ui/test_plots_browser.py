"""The timeline and the dashboard in a real JupyterLab (Chromium), as a user sees them.

A throwaway ``jupyter lab`` runs a small notebook: a graph whose node durations spread 10,000x
(one 0.5 s "model call" among 50 µs nodes), its timeline, a batch, and a dashboard. Checked where
the user looks: no cell wrote to stderr (the dashboard used to print "Message serialization
failed ... Out of range float values" on every display), every timeline bar is at least a few
pixels wide in the rendered SVG, plotly's toolbar does not cover the title, the dashboard's
legends do not overlap its panel titles, its latency axis is logarithmic, and the static
pictures left for exports are hidden while the live widgets show. Screenshots are saved under
``tests/ui/screenshots/`` (git-ignored) to look at.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _jupyterlab import CHROMIUM, JupyterLab, cell_with, run_all, wait_for_kernel

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parent / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
SETUP = """import operator, time
from typing import Annotated, TypedDict
from agentgraph_nb import END, START, StateGraph

class S(TypedDict, total=False):
    log: Annotated[list[str], operator.add]

def node(name, seconds):
    def run(state):
        t = time.perf_counter()
        while time.perf_counter() - t < seconds:
            pass
        return {"log": [name]}
    return run

g = StateGraph(S, name="spread")
for name, seconds in [("plan", 5e-5), ("call_model", 0.5), ("parse", 5e-5),
                      ("search_web", 5e-5), ("search_docs", 5e-5), ("write", 5e-5)]:
    g.add_node(name, node(name, seconds))
g.add_edge(START, "plan").add_edge("plan", "call_model").add_edge("call_model", "parse")
g.add_edge("parse", "search_web").add_edge("parse", "search_docs")
g.add_edge(["search_web", "search_docs"], "write").add_edge("write", END)
app = g.compile(checkpointer=None)
app.record()
app.invoke({})
first = app.last_run_id"""
TIMELINE = "app.timeline(first)"  # the later batch would replace the latest run in app.timeline()
DASHBOARD = "app.batch([{}] * 3)\napp.dashboard()"
BARS = ".js-plotly-plot .barlayer .point path"


def notebook(cells: list[str]) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "source": c,
                "outputs": [],
                "execution_count": None,
            }
            for c in cells
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterLab]:
    work = tmp_path / "work"
    work.mkdir()
    (work / "plots.ipynb").write_text(json.dumps(notebook([SETUP, TIMELINE, DASHBOARD])))
    server = JupyterLab(work, tmp_path / "jupyter")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def until(cond: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_timeline_and_dashboard_in_jupyterlab(lab: JupyterLab, playwright: Any) -> None:
    SHOTS.mkdir(exist_ok=True)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(lab.notebook_url("plots.ipynb"), wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
        wait_for_kernel(page)
        cells = run_all(page, timeout=120_000)
        try:
            _check(page, cells)
        finally:
            page.screenshot(path=str(SHOTS / "jupyterlab-plots-page.png"), full_page=True)
        assert not errors, errors
    finally:
        browser.close()


def _check(page: Any, cells: list[dict[str, Any]]) -> None:
    for c in cells:
        for o in c["outputs"]:
            assert o["output_type"] != "error", f"{c['source'][:40]!r}: {o.get('evalue')}"
            assert o.get("name") != "stderr", (
                f"{c['source'][:40]!r} wrote to stderr: {o.get('text')}"
            )

    # -- the timeline: a 10,000x spread, every bar visible ----------------------------------------
    tl = cell_with(page, TIMELINE)
    tl.scroll_into_view_if_needed()
    tl.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=60_000)
    bars = tl.locator(BARS)
    until(lambda: bars.count() == 6, "six timeline bars")
    widths = [bars.nth(i).bounding_box()["width"] for i in range(bars.count())]
    assert len(widths) == 6 and min(widths) >= 5, f"bar widths in px: {widths}"
    # the static twin is in the cell's outputs but hidden while the live figure shows
    twin = tl.locator("[data-agentgraph-static]")
    assert twin.count() == 1 and not twin.is_visible()
    # hover the plot: plotly's toolbar appears, away from the title
    tl.locator(".js-plotly-plot .nsewdrag").first.hover()
    modebar = tl.locator(".modebar").first
    modebar.wait_for(state="visible", timeout=5_000)
    title = tl.locator(".gtitle").first
    assert not boxes_overlap(modebar.bounding_box(), title.bounding_box())
    tl.screenshot(path=str(SHOTS / "jupyterlab-timeline-10000x.png"))

    # -- the dashboard -----------------------------------------------------------------------------
    dash = cell_with(page, "app.dashboard()")
    dash.scroll_into_view_if_needed()
    dash.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=60_000)
    points = dash.locator(".scatterlayer .point")
    until(lambda: points.count() >= 18, "latency markers (3 per node)")
    titles = dash.locator(".annotation-text")
    legends = dash.locator("g.legend, g.legend2, g.legend3")  # one group per panel legend
    assert titles.count() == 4 and legends.count() >= 2
    for i in range(titles.count()):
        for j in range(legends.count()):
            assert not boxes_overlap(titles.nth(i).bounding_box(), legends.nth(j).bounding_box()), (
                f"legend {j} overlaps the title {titles.nth(i).text_content()!r}"
            )
    # latency on a log axis: ticks span decades (50 µs and 500 ms nodes are both on it)
    ticks = [
        t.text_content()
        for t in dash.locator(".yaxislayer-above").first.locator(".ytick text").all()
    ]
    assert len(ticks) >= 4, ticks
    assert "4 completed" in dash.locator(".agentgraph-dashboard").inner_text()
    assert not dash.locator("[data-agentgraph-static]").is_visible()
    dash.screenshot(path=str(SHOTS / "jupyterlab-dashboard.png"))
