"""Parity with LangGraph: ``Command(goto=...)`` as the input that continues a paused thread.

LangGraph runs the goto targets in the pending superstep, next to the nodes the edges chose.
Scenarios of libs/langgraph/tests/test_pregel.py re-expressed on our API. The target nodes here
are reached only by such a Command, which ``compile()`` warns about (unreachable from START).
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    END,
    START,
    Command,
    InvalidInputError,
    InvalidUpdateError,
    Send,
    StateGraph,
    interrupt,
)

pytestmark = pytest.mark.filterwarnings("ignore::agentgraph_nb.errors.GraphValidationWarning")


class State(TypedDict, total=False):
    foo: Annotated[str, operator.add]
    log: Annotated[list[str], operator.add]


def _log(name: str) -> Any:
    def node(s: State) -> dict[str, Any]:
        return {"log": [name]}

    node.__name__ = name
    return node


def _abc(**compile_kw: Any) -> Any:
    """a -> b -> c, and x (reached by goto only) -> END."""
    g = StateGraph(State)
    for n in "abcx":
        g.add_node(n, _log(n))
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("x", END)
    return g.compile(**compile_kw)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'goto.db'}"


def test_goto_after_interrupt_before_runs_with_the_pending_node(store: str) -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints: paused before node1,
    ``Command(goto=["node2"])`` runs node1 and node2 in one step, then node2 again after node1."""
    g = StateGraph(State)
    g.add_node("node1", lambda s: {"foo": "|node-1"}).add_node("node2", lambda s: {"foo": "|node-2"})
    g.add_edge(START, "node1").add_edge("node1", "node2")
    app = g.compile(checkpointer=store, interrupt_before=["node1"])
    app.invoke({"foo": "abc"}, thread_id="t")
    assert app.invoke(Command(goto=["node2"]), thread_id="t")["foo"] == "abc|node-1|node-2|node-2"


@pytest.mark.parametrize("where", ["before", "after"])
def test_goto_target_joins_the_pending_step(store: str, where: str) -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints at interrupt_before and
    interrupt_after: b (the edge's) and x (the goto's) run in one superstep, merged b first."""
    kw = {"interrupt_before": ["b"]} if where == "before" else {"interrupt_after": ["a"]}
    app = _abc(checkpointer=store, **kw)
    app.invoke({"log": []}, thread_id="t")
    assert app.get_state("t").next == ("b",)
    chunks = list(app.stream(Command(goto="x"), thread_id="t"))
    # b and x run side by side (streamed as they finish), then c
    assert sorted(chunks[:2], key=str) == [{"b": {"log": ["b"]}}, {"x": {"log": ["x"]}}]
    assert chunks[2:] == [{"c": {"log": ["c"]}}]
    hist = app.get_state_history("t")
    assert [h.values["log"] for h in hist[:2]] == [["a", "b", "x", "c"], ["a", "b", "x"]]
    # the Command is stored as an edit of its own, whose next names both
    edit = hist[2]
    assert edit.metadata["source"] == "update" and edit.next == ("b", "x") and edit.values["log"] == ["a"]


def test_goto_with_update_and_a_send() -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints with an update and a Send:
    the update is applied first, the targets run in the pending step (a Send with its payload)."""
    seen: list[Any] = []

    def x(s: Any) -> dict[str, Any]:
        seen.append(s)
        return {"log": ["x"]}

    g = StateGraph(State)
    for n in "abc":
        g.add_node(n, _log(n))
    g.add_node("x", x)
    g.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("x", END)
    app = g.compile(interrupt_before=["b"])
    app.invoke({"log": []}, thread_id="t")
    out = app.invoke(Command(update={"log": ["u"]}, goto=[Send("x", {"log": ["payload"]}), "c"]), thread_id="t")
    assert out["log"] == ["a", "u", "b", "c", "x", "c"]
    assert seen == [{"log": ["payload"]}]


def test_goto_to_the_pending_node_runs_it_once() -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints, naming the node already
    pending: it runs once, as a node triggered twice in one step does."""
    app = _abc(interrupt_before=["b"])
    app.invoke({"log": []}, thread_id="t")
    assert app.invoke(Command(goto="b"), thread_id="t")["log"] == ["a", "b", "c"]


def test_goto_on_a_finished_thread_runs_the_target() -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints on a finished thread:
    the goto target runs next (LangGraph does the same)."""
    app = _abc()
    app.invoke({"log": []}, thread_id="t")
    assert app.invoke(Command(goto="x"), thread_id="t")["log"] == ["a", "b", "c", "x"]


def test_goto_without_resume_leaves_the_question_open() -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints at a node paused by
    interrupt(): the target runs beside it, and without resume= the node asks again (it is not
    answered with None); the answer given later completes the step without re-running x."""
    runs = {"x": 0}

    def q(s: State) -> dict[str, Any]:
        return {"log": [f"q:{interrupt('?')}"]}

    def x(s: State) -> dict[str, Any]:
        runs["x"] += 1
        return {"log": ["x"]}

    g = StateGraph(State).add_node("a", _log("a")).add_node("q", q).add_node("x", x).add_node("c", _log("c"))
    g.add_edge(START, "a").add_edge("a", "q").add_edge("q", "c")
    app = g.compile()
    app.invoke({"log": []}, thread_id="t")
    chunks = list(app.stream(Command(goto="x"), thread_id="t"))
    assert chunks[0] == {"x": {"log": ["x"]}} and chunks[1]["__interrupt__"][0].value == "?"
    assert app.get_state("t").next == ("q",)
    assert app.invoke(Command(resume="late"), thread_id="t")["log"] == ["a", "q:late", "x", "c"]
    assert runs["x"] == 1
    # with resume= the answer and the goto go together
    app.invoke({"log": []}, thread_id="u")
    assert app.invoke(Command(resume="R", goto="x"), thread_id="u")["log"] == ["a", "q:R", "x", "c"]


def test_bad_goto_and_no_thread_are_typed_errors() -> None:
    """Follows test_pregel.py::test_command_goto_with_static_breakpoints for inputs it cannot run:
    an unknown target names itself and the near name; a thread with no checkpoint says so."""
    app = _abc(interrupt_before=["b"])
    app.invoke({"log": []}, thread_id="t")
    with pytest.raises(InvalidUpdateError, match=r"Command\(goto=...\) resuming thread 't'.*unknown node 'xx'.*'x'"):
        app.invoke(Command(goto="xx"), thread_id="t")
    assert app.get_state("t").next == ("b",)  # nothing was stored
    with pytest.raises(InvalidInputError, match="thread 'nope' is not paused: it has no checkpoint"):
        app.invoke(Command(goto="x"), thread_id="nope")
