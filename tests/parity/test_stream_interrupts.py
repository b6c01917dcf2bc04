"""Parity with LangGraph: what ``stream``/``astream`` yield when a run pauses.

LangGraph's scenarios (libs/langgraph/tests/test_pregel.py, test_pregel_async.py) re-expressed on
our API. LangGraph yields ``{"__interrupt__": (Interrupt(...),)}`` in ``"updates"`` for each node
that called ``interrupt()`` and ``{"__interrupt__": ()}`` for a static breakpoint; in ``"values"``
the state with an ``"__interrupt__"`` entry for ``interrupt()`` and nothing extra for breakpoints.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import START, Command, Interrupt, StateGraph, interrupt


class State(TypedDict, total=False):
    answer: str
    log: Annotated[list[str], operator.add]


def _ask(s: State) -> dict[str, Any]:
    return {"answer": interrupt("what?")}


def _chain(**compile_kw: Any) -> Any:
    g = StateGraph(State)
    g.add_node("first", lambda s: {"log": ["first"]})
    g.add_node("ask", _ask)
    g.add_node("last", lambda s: {"log": ["last"]})
    g.add_edge(START, "first").add_edge("first", "ask").add_edge("ask", "last")
    return g.compile(**compile_kw)


def test_updates_yield_the_interrupt_of_a_node() -> None:
    """Follows test_pregel.py::test_interrupt_multiple (stream_mode="updates"): the pause is
    the last chunk, ``{"__interrupt__": (Interrupt,)}``; resuming streams the rest."""
    app = _chain()
    chunks = list(app.stream({"log": []}, thread_id="t"))
    assert chunks[0] == {"first": {"log": ["first"]}}
    assert list(chunks[1]) == ["__interrupt__"] and len(chunks) == 2
    (it,) = chunks[1]["__interrupt__"]
    assert isinstance(it, Interrupt) and it.value == "what?" and it.node == "ask"
    assert it.id == app.get_state("t").interrupts[0].id
    assert list(app.stream(Command(resume="42"), thread_id="t")) == [
        {"ask": {"answer": "42"}},
        {"last": {"log": ["last"]}},
    ]


def test_values_yield_the_state_with_the_interrupt() -> None:
    """Follows test_pregel.py::test_interrupt_stream_mode_values ("values" chunks): the paused
    state, with an ``"__interrupt__"`` entry, closes the stream."""
    app = _chain()
    chunks = list(app.stream({"log": []}, thread_id="t", mode="values"))
    assert chunks[:2] == [{"log": []}, {"log": ["first"]}]
    assert len(chunks) == 3
    it = app.get_state("t").interrupts[0]
    assert chunks[2] == {"log": ["first"], "__interrupt__": (it,)}


def test_several_modes_yield_the_interrupt_in_each() -> None:
    """Follows test_pregel.py::test_interrupt_stream_mode_values (["updates", "values"]): ``("updates", ...)``
    then ``("values", ...)`` for the pause."""
    app = _chain()
    chunks = list(app.stream({"log": []}, thread_id="t", mode=["updates", "values"]))
    it = app.get_state("t").interrupts[0]
    assert chunks[-2:] == [("updates", {"__interrupt__": (it,)}), ("values", {"log": ["first"], "__interrupt__": (it,)})]


def test_each_interrupting_node_of_a_step_yields_its_own_chunk() -> None:
    """Follows test_pregel.py::test_parallel_interrupts: two parallel nodes ask; each
    question is a chunk of its own, after the finished sibling's update."""

    def q1(s: State) -> dict[str, Any]:
        return {"log": [interrupt("q1")]}

    def q2(s: State) -> dict[str, Any]:
        return {"log": [interrupt("q2")]}

    g = StateGraph(State).add_node("ok", lambda s: {"log": ["ok"]}).add_node("q1", q1).add_node("q2", q2)
    g.add_edge(START, "ok").add_edge(START, "q1").add_edge(START, "q2")
    app = g.compile()
    chunks = list(app.stream({"log": ["s"]}, thread_id="t"))
    assert chunks[0] == {"ok": {"log": ["ok"]}}
    asked = sorted(c["__interrupt__"][0].value for c in chunks[1:])
    assert asked == ["q1", "q2"] and all(len(c["__interrupt__"]) == 1 for c in chunks[1:])
    answers = {i.id: f"{i.value}!" for i in app.get_state("t").interrupts}
    assert app.invoke(Command(resume=answers), thread_id="t")["log"] == ["s", "ok", "q1!", "q2!"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_static_breakpoint_yields_an_empty_interrupt(where: str) -> None:
    """Follows test_pregel.py::test_in_one_fan_out_state_graph_waiting_edge (interrupt_before,
    interrupt_after): a breakpoint pause yields
    ``{"__interrupt__": ()}`` in "updates" and nothing extra in "values"."""
    kw = {"interrupt_before": ["ask"]} if where == "before" else {"interrupt_after": ["first"]}
    app = _chain(**kw)
    assert list(app.stream({"log": []}, thread_id="u")) == [{"first": {"log": ["first"]}}, {"__interrupt__": ()}]
    assert list(app.stream({"log": []}, thread_id="v", mode="values")) == [{"log": []}, {"log": ["first"]}]
    # continuing past the breakpoint reaches the node's own interrupt()
    (chunk,) = list(app.stream(None, thread_id="u"))
    assert chunk["__interrupt__"][0].value == "what?"


def test_astream_yields_the_interrupt() -> None:
    """Follows test_pregel_async.py::test_interrupt_stream_mode_values: the same chunks from astream,
    for an async node."""

    async def ask(s: State) -> dict[str, Any]:
        return {"answer": interrupt("async?")}

    g = StateGraph(State).add_node("ask", ask).add_node("last", lambda s: {"log": ["last"]})
    g.add_edge(START, "ask").add_edge("ask", "last")
    app = g.compile(interrupt_before=["last"])

    async def collect(inp: Any, mode: Any = "updates") -> list[Any]:
        return [c async for c in app.astream(inp, thread_id="a", mode=mode)]

    chunks = asyncio.run(collect({"log": []}))
    (it,) = chunks[0]["__interrupt__"]
    assert len(chunks) == 1 and it.value == "async?"
    assert asyncio.run(collect(Command(resume="yes"), ["updates", "values"])) == [
        ("values", {"log": []}),
        ("updates", {"ask": {"answer": "yes"}}),
        ("values", {"log": [], "answer": "yes"}),
        ("updates", {"__interrupt__": ()}),
    ]


def test_invoke_is_unchanged() -> None:
    """Follows test_pregel.py::test_interrupt_task_functional (invoke): a paused invoke returns the
    state with an ``"__interrupt__"`` list, as before; no stream chunk leaks into it."""
    app = _chain()
    out = app.invoke({"log": []}, thread_id="t")
    assert out["log"] == ["first"] and [i.value for i in out["__interrupt__"]] == ["what?"]
