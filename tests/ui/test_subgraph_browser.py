"""Subgraphs in the GraphView, in a real browser: a small subgraph is drawn open as a box around
its nodes, a big one collapsed as one node; a click expands it, a click on the box's title
collapses it; a live run lights the nodes inside by their namespace (and the collapsed box)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from typing_extensions import TypedDict

from agentgraph_nb import START, StateGraph
from agentgraph_nb.ui.graphview import SUBGRAPH_EXPAND_MAX, GraphView

pytestmark = pytest.mark.browser


class S(TypedDict, total=False):
    x: int




def _desk(release: threading.Event) -> Any:
    def slow(s: S) -> dict[str, Any]:
        release.wait(20)
        return {"x": 2}

    team = StateGraph(S, name="team")
    team.add_node("prep", lambda s: {"x": 1}).add_node("slow", slow)
    team.add_edge(START, "prep").add_edge("prep", "slow")
    big = StateGraph(S, name="big")
    names = [f"b{i}" for i in range(SUBGRAPH_EXPAND_MAX + 1)]
    for n in names:
        big.add_node(n, lambda s: {})
    big.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        big.add_edge(a, b)
    g = StateGraph(S, name="desk")
    g.add_node("team", team.compile()).add_node("big", big.compile()).add_node("publish", lambda s: {})
    g.add_edge(START, "team").add_edge("team", "big").add_edge("big", "publish")
    return g.compile(checkpointer="memory")


def test_subgraphs_draw_as_clusters_expand_collapse_and_light_up_live(
    show: Any, page_session: Any, screenshot: Any
) -> None:
    release = threading.Event()
    app = _desk(release)
    view = GraphView.from_app(app)
    assert view.expanded == ["sub:team"]  # small: open; big: collapsed
    unsubscribe = view.attach(app)
    show(view)
    page = page_session
    page.locator('[data-testid="cluster-team"]').wait_for(timeout=10_000)
    for n in ("team|prep", "team|slow", "publish"):
        assert page.locator(f'[data-testid="node-{n}"]').count() == 1
    big = page.locator('[data-testid="group-sub:big"]')
    assert big.count() == 1 and "subgraph" in (big.get_attribute("aria-label") or "")
    assert page.locator('[data-testid="node-big|b0"]').count() == 0
    # the open box encloses its nodes
    box = page.locator('[data-testid="cluster-team"] > rect').bounding_box()
    inner = page.locator('[data-testid="node-team|slow"]').bounding_box()
    assert box["x"] <= inner["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"]

    worker = threading.Thread(target=app.invoke, args=({"x": 0},), kwargs={"thread_id": "t"})
    worker.start()
    try:
        page.locator('[data-testid="node-team|slow"][data-status="running"]').wait_for(timeout=10_000)
        assert page.locator('[data-testid="node-team|prep"]').get_attribute("data-status") == "done"
        assert big.get_attribute("data-status") == "pending"
        screenshot(page.locator('[data-testid="graphview"]').last, "subgraph-running")
    finally:
        release.set()
        worker.join(20)
    page.locator('[data-testid="group-sub:big"][data-status="done"]').wait_for(timeout=10_000)

    big.click()  # expand the big one
    page.locator('[data-testid="cluster-big"]').wait_for(timeout=10_000)
    assert page.locator('[data-testid="node-big|b0"]').get_attribute("data-status") == "done"
    assert "sub:big" in view.expanded
    page.locator('[data-testid="cluster-collapse-team"]').click()  # collapse the small one
    page.locator('[data-testid="group-sub:team"]').wait_for(timeout=10_000)
    assert page.locator('[data-testid="cluster-team"]').count() == 0
    assert "sub:team" not in view.expanded
    screenshot(page.locator('[data-testid="graphview"]').last, "subgraph-collapsed")
    unsubscribe()


def test_sibling_subgraph_boxes_do_not_overlap(show: Any, page_session: Any) -> None:
    """A hub routing to three open subgraphs in the same columns (a supervisor's team): each box
    keeps apart from the others and from the hub's own nodes."""
    from agentgraph_nb import Command

    def agent(name: str, n: int) -> Any:
        g = StateGraph(S, name=name)
        for i in range(n):
            g.add_node(f"s{i}", lambda s: {}).add_edge(START if i == 0 else f"s{i - 1}", f"s{i}")
        return g.compile()

    g = StateGraph(S, name="hub")
    g.add_node("boss", lambda s: Command(goto="a"), destinations=("a", "b", "c", "__end__"))
    for name, n in (("a", 3), ("b", 2), ("c", 3)):
        g.add_node(name, agent(name, n)).add_edge(name, "boss")
    g.add_edge(START, "boss")
    view = GraphView.from_app(g.compile())
    assert sorted(view.expanded) == ["sub:a", "sub:b", "sub:c"]
    show(view)
    page = page_session
    boxes = {}
    for name in ("a", "b", "c"):
        page.locator(f'[data-testid="cluster-{name}"]').wait_for(timeout=10_000)
        boxes[name] = page.locator(f'[data-testid="cluster-{name}"] > rect').bounding_box()
    boss = page.locator('[data-testid="node-boss"]').bounding_box()

    def overlap(p: dict[str, float], q: dict[str, float]) -> bool:
        return (p["x"] < q["x"] + q["width"] and q["x"] < p["x"] + p["width"]
                and p["y"] < q["y"] + q["height"] and q["y"] < p["y"] + p["height"])

    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    assert not [pq for pq in pairs if overlap(boxes[pq[0]], boxes[pq[1]])], boxes
    assert not [n for n, b in boxes.items() if overlap(b, boss)], (boxes, boss)
