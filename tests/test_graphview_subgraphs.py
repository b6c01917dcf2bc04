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
