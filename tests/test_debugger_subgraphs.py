"""Debugger and DebugSession with subgraphs: breakpoints inside by path, Step in / Step out,
the Subgraph tab (state and history by namespace, statuses of the nodes inside), and an
interrupt deep inside answered from the Debugger's form on the parent thread."""

from __future__ import annotations

import re
from typing import Any

import pytest
from typing_extensions import TypedDict

from agentgraph_nb import START, InvalidInputError, StateGraph, interrupt
from agentgraph_nb.graph.session import DebugSession
from agentgraph_nb.ui.debugger import Debugger


class S(TypedDict, total=False):
    x: int
    answer: Any


def _app(ask_inside: bool = True) -> Any:
    def ask(s: S) -> dict[str, Any]:
        return {"answer": interrupt({"question": "Publish?"})}

    inner = StateGraph(S, name="inner")
    inner.add_node("check", lambda s: {"x": s["x"] + 10})
    if ask_inside:
        inner.add_node("ask", ask).add_edge("check", "ask")
    inner.add_edge(START, "check")
    team = StateGraph(S, name="team")
    team.add_node("prep", lambda s: {"x": s["x"] + 1}).add_node("inner", inner.compile()).add_node("tidy", lambda s: {})
    team.add_edge(START, "prep").add_edge("prep", "inner").add_edge("inner", "tidy")
    g = StateGraph(S, name="desk")
    g.add_node("team", team.compile()).add_node("publish", lambda s: {"x": s["x"] + 100})
    g.add_edge(START, "team").add_edge("team", "publish")
    return g.compile(checkpointer="memory")


def _text(html: str) -> str:
    import html as h

    return re.sub(r"\s+", " ", h.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S))))


def test_session_steps_into_nested_subgraphs_and_out() -> None:
    d = DebugSession(_app(ask_inside=False), {"x": 0})
    assert d.subgraph_paths() == ["team", "team|inner"] and d.where == ""
    d.step_in()
    assert d.where == "team" and d.subgraph_state().next == ("prep",)
    d.step_in()
    assert d.where == "team" and d.subgraph_state().values["x"] == 1 and d.subgraph_state().next == ("inner",)
    d.step_in()
    assert d.where == "team|inner" and d.subgraph_state().next == ("check",)
    d.step_out()  # inner finishes; paused in team before the node after it
    assert d.subgraph_state("team|inner").values["x"] == 11
    assert d.where == "team" and d.subgraph_state().values["x"] == 11 and d.subgraph_state().next == ("tidy",)
    d.step_out()
    assert d.where == "" and d.state.next == ("publish",) and d.state.values["x"] == 11
    d.cont()
    assert d.done and d.state.values["x"] == 111
    assert [h.step for h in d.subgraph_history("team")][-1] == 0
    with pytest.raises(InvalidInputError, match="not paused inside a subgraph"):
        d.step_out()


def test_breakpoints_inside_by_path_and_bad_paths_name_the_graphs() -> None:
    d = DebugSession(_app(ask_inside=False), {"x": 0}, breakpoints=["team|inner|check"])
    d.cont()
    assert d.where == "team|inner" and d.subgraph_state().next == ("check",)
    d.cont()
    assert d.done
    with pytest.raises(InvalidInputError, match=r"unknown node 'chek' in subgraph 'team\|inner' \(graph 'inner'\) of graph 'desk'.*'check'"):
        d.toggle_breakpoint("team|inner|chek")
    with pytest.raises(InvalidInputError, match=r"node 'publish' of graph 'desk' is not a subgraph"):
        d.toggle_breakpoint("publish|x")
    assert d.toggle_breakpoint("team|*") and "team|*" in d.breakpoints
    with pytest.raises(InvalidInputError, match="has no subgraphs"):
        g = StateGraph(S, name="flat").add_node("a", lambda s: {}).add_edge(START, "a")
        DebugSession(g.compile(checkpointer="memory"), {"x": 0}).step_in()


def test_debugger_subgraph_tab_statuses_and_deep_interrupt_answered_from_the_form() -> None:
    app = _app()
    dbg = Debugger(app, {"x": 0})
    assert not dbg.step_in_button.disabled and dbg.step_out_button.disabled
    assert dbg.tabs.titles[-1] == "Subgraph"
    dbg.step_in_button.click()
    dbg.step_in_button.click()
    assert dbg.where == "team" and not dbg.step_out_button.disabled
    shown = _text(dbg.subgraph_html.value)
    assert "subgraph team" in shown and "next: inner" in shown
    assert dbg.graphview.status["team|prep"] == "done" and dbg.graphview.status["team|inner"] == "pending"
    dbg.subgraph_pick.value = "team|inner"
    assert "'team|inner' has no checkpoint: the thread has not run it" in _text(dbg.subgraph_html.value)
    dbg.subgraph_pick.value = ""
    dbg.cont_button.click()  # on to the interrupt two levels down
    assert dbg.where == "team|inner"
    assert "team > inner > ask asks: Publish?" in _text(dbg.interrupt_html.value)
    assert dbg.graphview.status["team|inner|ask"] == "interrupted"
    assert dbg.graphview.status["team|inner|check"] == "done"
    box = dbg.answer_box.children[0]
    box = box.children[0] if hasattr(box, "children") else box
    box.value = '"yes"'
    dbg.resume_button.click()  # the form's button: Command(resume=...) on the parent thread
    assert dbg.session.done, dbg.error_html.value
    assert dbg.state.values == {"x": 111, "answer": "yes"}
    dbg.close()
