"""Loop nodes in GraphView, in a real browser: a for-each and a while loop carry a loop badge,
which shows the live count ("3/3", "3/7") as a run goes, and the details panel says how the node
loops. Screenshot in tests/ui/screenshots/ for a person to look at."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypedDict

import pytest

from agentgraph_nb import END, START, StateGraph
from agentgraph_nb.ui.graphview import GraphView

pytestmark = pytest.mark.browser


class S(TypedDict, total=False):
    items: list[int]
    results: list[int]
    n: int


def small(s: S) -> bool:
    return s["n"] < 3


def exported_graph() -> StateGraph:
    g = StateGraph(S, name="loops")
    g.add_foreach("each", lambda x: 2 * x, over="items", into="results", max_concurrency=2)
    g.add_while("loop", lambda s: {"n": s["n"] + 1}, condition=small, max_iterations=7)
    g.add_edge(START, "each").add_edge("each", "loop").add_edge("loop", END)
    return g


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)




def test_loop_badges_show_the_live_count(show: Any, page_session: Any, screenshot: Any) -> None:
    app = exported_graph().compile()
    view = GraphView.from_app(app)
    view.attach(app)
    root = show(view)
    each = root.locator('[data-testid="loop-each"]')
    loop = root.locator('[data-testid="loop-loop"]')
    assert each.text_content() == "\u21bb" and loop.text_content() == "\u21bb"
    assert each.get_attribute("aria-label") == "for-each" and loop.get_attribute("aria-label") == "while loop"
    app.invoke({"items": [1, 2, 3], "n": 0})
    view.flush()
    wait_until(lambda: each.text_content() == "\u21bb 3/3", what="the for-each count")
    wait_until(lambda: loop.text_content() == "\u21bb 3/7", what="the while count")
    assert view.details["each"]["loop"] == "3/3" and "each[0]" not in view.status
    root.locator('[data-testid="node-each"]').click()
    meta = root.locator('[data-testid="graphview-details"] .agn-meta').first
    wait_until(lambda: "for each in items, 2 at once" in (meta.text_content() or ""), what="the details line")
    assert root.locator('[data-testid="graphview-details-loop"] pre').text_content() == "3/3"
    screenshot(page_session, "loops_graphview")
