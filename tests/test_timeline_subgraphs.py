"""The timeline with subgraphs: a subgraph's executions are bars in the group of the run that
ran them, on rows right under the lane of the task that ran the subgraph, indented by namespace,
and inside that task's bar in time; the summary counts the top-level run only."""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any

from typing_extensions import TypedDict

from agentgraph_nb import START, Send, StateGraph
from agentgraph_nb.ui.timeline import STATUSES

OK = list(STATUSES).index("ok")


class S(TypedDict, total=False):
    x: Annotated[int, operator.add]


def _app() -> Any:
    def slow(s: S) -> dict[str, Any]:
        time.sleep(0.01)
        return {"x": 1}

    inner = StateGraph(S, name="inner")
    inner.add_node("deep", slow).add_edge(START, "deep")
    team = StateGraph(S, name="team")
    team.add_node("prep", slow).add_node("inner", inner.compile())
    team.add_edge(START, "prep").add_edge("prep", "inner")
    g = StateGraph(S, name="desk")
    g.add_node("plan", lambda s: {}).add_node("side", slow).add_node("team", team.compile())
    g.add_node("publish", lambda s: {})
    g.add_edge(START, "plan").add_edge("plan", "side").add_edge("plan", "team").add_edge(["side", "team"], "publish")
    return g.compile(checkpointer="memory")


def _bars(tl: Any) -> dict[str, dict[str, float]]:
    t = tl.data[OK]
    return {t.text[i]: {"y": float(t.y[i]), "start": float(t.base[i]), "end": float(t.base[i] + t.x[i])}
            for i in range(len(t.x))}


def test_subgraph_bars_nest_under_the_parent_task_lane() -> None:
    app = _app()
    app.record()
    app.invoke({"x": 0}, thread_id="t")
    tl = app.timeline()
    try:
        labels = list(tl.layout.yaxis.ticktext)
        em = chr(0x2003)
        assert labels == ["lane 0", "lane 1", f"{em}team · lane 0", f"{em}{em}team > inner · lane 0"]
        b = _bars(tl)
        assert b["plan"]["y"] == b["side"]["y"] == b["publish"]["y"] == 0 and b["team"]["y"] == 1
        assert b["prep"]["y"] == 2 and b["deep"]["y"] == 3
        # inside the team bar in time (a stretched axis keeps the order)
        assert b["team"]["start"] <= b["prep"]["start"] < b["deep"]["start"] <= b["deep"]["end"] <= b["team"]["end"] + 1e-9
        hover = tl.data[OK].hovertext[list(tl.data[OK].text).index("deep")]
        assert "team &gt; inner &gt; deep" in hover
        assert repr(tl) == "Timeline(graph 'desk', thread 't': 7 executions, 3 steps)"
    finally:
        tl.close()


def test_send_to_a_subgraph_nests_each_instance_under_its_lane() -> None:
    team = StateGraph(S, name="team")
    team.add_node("work", lambda s: {"x": s["x"]}).add_edge(START, "work")
    g = StateGraph(S, name="fan")
    g.add_node("team", team.compile())
    g.add_conditional_edges(START, lambda s: [Send("team", {"x": i}) for i in range(2)], ["team"])
    app = g.compile(checkpointer="memory")
    app.record()
    app.invoke({"x": 0}, thread_id="f")
    tl = app.timeline()
    try:
        em = chr(0x2003)
        assert list(tl.layout.yaxis.ticktext) == ["lane 0", f"{em}team:0 · lane 0", "lane 1", f"{em}team:1 · lane 0"]
    finally:
        tl.close()
