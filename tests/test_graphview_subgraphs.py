"""GraphView with subgraphs, Python side: the nodes inside by path, small subgraphs open by
default, a subgraph's events light its nodes in the picture of the run it is part of, an
interrupt deep inside marks both the subgraph node and the node inside, and the static
picture draws open subgraphs as boxes."""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from agentgraph_nb import START, Command, StateGraph, interrupt
from agentgraph_nb.export.svg import render_svg
from agentgraph_nb.ui.graphview import SUBGRAPH_EXPAND_MAX, GraphView


class S(TypedDict, total=False):
    x: int


def _app() -> Any:
    def ask(s: S) -> dict[str, Any]:
        return {"x": interrupt("ok?")}

    inner = StateGraph(S, name="inner")
    inner.add_node("ask", ask).add_edge(START, "ask")
    team = StateGraph(S, name="team")
    team.add_node("prep", lambda s: {"x": 1}).add_node("inner", inner.compile())
    team.add_edge(START, "prep").add_edge("prep", "inner")
    big = StateGraph(S, name="big")
    for i in range(SUBGRAPH_EXPAND_MAX + 1):
        big.add_node(f"b{i}", lambda s: {})
        big.add_edge(START if i == 0 else f"b{i - 1}", f"b{i}")
    g = StateGraph(S, name="desk")
    g.add_node("team", team.compile()).add_node("big", big.compile())
    g.add_edge(START, "team").add_edge("team", "big")
    return g.compile(checkpointer="memory")


def test_inner_nodes_by_path_and_small_subgraphs_open() -> None:
    view = GraphView.from_app(_app())
    assert view.node_names[:2] == ["team", "big"]
    assert {"team|prep", "team|inner", "team|inner|ask", "big|b0", "big|b8"} <= set(view.node_names)
    assert view.expanded == ["sub:team", "sub:team|inner"]  # big has 9 nodes: collapsed
    view.expanded = []
    view.graph = dict(view.graph)  # the same graph again: the user's choice stays
    assert view.expanded == []


def test_subgraph_events_light_inner_nodes_in_the_parent_run_picture() -> None:
    app = _app()
    view = GraphView.from_app(app)
    view.attach(app)
    app.invoke({"x": 0}, thread_id="t")
    view.flush()
    st = view.status
    assert st["team|prep"] == "done"
    assert st["team|inner|ask"] == "interrupted" and st["team"] == "interrupted"
    assert st["big|b0"] == "idle"  # never ran: idle again once the run paused
    assert "ok?" in view.details["team|inner|ask"]["interrupt"]
    assert view.run["thread_id"] == "t" and view.run["state"] == "paused"
    assert len(view.runs) == 1  # the subgraph runs are part of the thread's picture, not runs of their own
    app.invoke(Command(resume=5), thread_id="t")
    view.flush()
    assert view.status["team|inner|ask"] == "done" and view.status["big|b8"] == "done"
    assert view.run["state"] == "ended"


def test_static_picture_draws_open_subgraphs_as_boxes() -> None:
    app = _app()
    view = GraphView.from_app(app)
    html = view._static_html("desk")
    assert "data-cluster" in render_svg(app.to_json(), expanded=view.expanded)
    svg = render_svg(app.to_json(), expanded=["sub:team", "sub:team|inner"], status={"team|prep": "done"})
    assert 'data-cluster="team"' in svg and 'data-cluster="team|inner"' in svg
    assert 'data-node="team|inner|ask"' in svg and 'data-node="big"' in svg and 'data-node="big|b0"' not in svg
    plain = render_svg(app.to_json())  # no expanded: each subgraph is one node, as before
    assert "data-cluster" not in plain and 'data-node="team"' in plain
    assert html.startswith("<img") or "<svg" in html


def test_static_picture_keeps_sibling_subgraph_boxes_apart() -> None:
    """A hub routing to three subgraphs that sit in the same columns: their boxes, and the nodes
    outside them, never overlap (they used to when the layout interleaved their nodes)."""
    import re

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
    svg = render_svg(g.compile().to_json(), expanded=["sub:a", "sub:b", "sub:c"])
    boxes = {
        m[0]: tuple(float(v) for v in m[1:])
        for m in re.findall(r'data-cluster="(\w+)"><title>[^<]*</title><rect x="([-\d.]+)" y="([-\d.]+)" '
                            r'width="([-\d.]+)" height="([-\d.]+)"', svg)
    }
    assert sorted(boxes) == ["a", "b", "c"]

    def overlap(p: tuple[float, ...], q: tuple[float, ...]) -> bool:
        return p[0] < q[0] + q[2] and q[0] < p[0] + p[2] and p[1] < q[1] + q[3] and q[1] < p[1] + p[3]

    names = sorted(boxes)
    assert not [(p, q) for i, p in enumerate(names) for q in names[i + 1:] if overlap(boxes[p], boxes[q])]
    # the team's own nodes (boss, END) are outside every box
    for node in ("boss",):
        m = re.search(rf'data-node="{node}"[^>]*>.*?<rect x="([-\d.]+)" y="([-\d.]+)" width="([-\d.]+)" '
                      rf'height="([-\d.]+)"', svg, flags=re.S)
        assert m, svg[:2000]
        own = tuple(float(v) for v in m.groups())
        assert not [b for b in boxes.values() if overlap(own, b)]
