"""Parity with LangGraph: a node's exception reaches the caller with its own type.

LangGraph code catches what the node raised (``except ConnectionError``); we re-raise that very
exception, told where it failed: ``node_failure(err)`` gives node, step and attempt, and a note
(printed by tracebacks) says the same. Scenarios of libs/langgraph/tests/test_pregel.py and
test_pregel_async.py re-expressed on our API.
"""

from __future__ import annotations

import asyncio
import operator
import pickle
import traceback
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from agentgraph_nb import (
    START,
    NodeError,
    NodeFailure,
    NodeTimeoutError,
    RetryPolicy,
    StateGraph,
    node_failure,
)


class State(TypedDict, total=False):
    value: Annotated[int, operator.add]
    steps: Annotated[list[str], operator.add]
    attempt: int


class Awhile:
    """A node that returns ``rtn`` or raises it (the same exception object every call)."""

    def __init__(self, rtn: dict[str, Any] | Exception) -> None:
        self.rtn = rtn
        self.calls = 0

    def __call__(self, state: State) -> Any:
        self.calls += 1
        if isinstance(self.rtn, Exception):
            raise self.rtn
        return self.rtn


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'err.db'}"


def _pending_writes_graph(store: str) -> tuple[Any, Awhile, Awhile]:
    one = Awhile({"value": 2})
    boom = ConnectionError("I'm not good")
    two = Awhile(boom)
    g = StateGraph(State).add_node("one", one)
    g.add_node("two", two, retry=RetryPolicy(max_attempts=2, initial_interval=0, jitter=False))
    g.add_edge(START, "one").add_edge(START, "two")
    return g.compile(checkpointer=store), one, two


def test_pending_writes_resume(store: str) -> None:
    """Follows test_pregel.py::test_pending_writes_resume: two parallel nodes, one fails after its
    retries. The caller catches the node's ConnectionError itself; the sibling's write is kept,
    ``next`` names the failed node, and resuming re-runs only it."""
    app, one, two = _pending_writes_graph(store)
    with pytest.raises(ConnectionError, match="I'm not good") as ei:
        app.invoke({"value": 1}, thread_id="1")
    assert ei.value is two.rtn  # the very exception the node raised
    f = node_failure(ei.value)
    assert f == NodeFailure("two", 1, 2, "State", "1", "node")
    assert (one.calls, two.calls) == (1, 2)
    st = app.get_state("1")
    assert st.values["value"] == 3 and st.next == ("two",)

    with pytest.raises(ConnectionError, match="I'm not good") as ei:
        app.invoke(None, thread_id="1")
    assert (one.calls, two.calls) == (1, 4)
    # the same object failed twice at the same place: one note, not two
    assert ei.value.__notes__ == ["node 'two' of graph 'State' failed at step 1 (attempt 2, thread '1')"]

    two.rtn = {"value": 3}
    assert app.invoke(None, thread_id="1")["value"] == 6


def test_pending_writes_resume_async(store: str) -> None:
    """Follows test_pregel_async.py::test_pending_writes_resume: the same with async nodes under
    ainvoke; the async sibling's write is kept."""
    calls = {"one": 0, "two": 0}

    async def one(s: State) -> dict[str, Any]:
        calls["one"] += 1
        return {"value": 2}

    async def two(s: State) -> dict[str, Any]:
        calls["two"] += 1
        await asyncio.sleep(0.01)
        raise ConnectionError("I'm not good")

    g = StateGraph(State).add_node("one", one)
    g.add_node("two", two, retry=RetryPolicy(max_attempts=2, initial_interval=0, jitter=False))
    app = g.add_edge(START, "one").add_edge(START, "two").compile(checkpointer=store)
    with pytest.raises(ConnectionError) as ei:
        asyncio.run(app.ainvoke({"value": 1}, thread_id="1"))
    assert node_failure(ei.value) == NodeFailure("two", 1, 2, "State", "1")
    assert app.get_state("1").next == ("two",) and calls == {"one": 1, "two": 2}


def test_checkpoint_recovery(store: str) -> None:
    """Follows test_pregel.py::test_checkpoint_recovery: ``except RuntimeError`` catches the
    node's error; the input checkpoint is intact; new input runs the step again."""

    def failing_node(s: State) -> dict[str, Any]:
        if s["attempt"] == 1:
            raise RuntimeError("Simulated failure")
        return {"steps": ["node1"]}

    g = StateGraph(State).add_node("node1", failing_node).add_node("node2", lambda s: {"steps": ["node2"]})
    app = g.add_edge(START, "node1").add_edge("node1", "node2").compile(checkpointer=store)
    try:
        app.invoke({"steps": ["start"], "attempt": 1}, thread_id="1")
    except RuntimeError as err:
        caught = err
    assert type(caught) is RuntimeError and str(caught) == "Simulated failure"
    text = "".join(traceback.format_exception(caught))
    assert "RuntimeError: Simulated failure\nnode 'node1' of graph 'State' failed at step 1 (attempt 1" in text
    st = app.get_state("1")
    assert st.values == {"steps": ["start"], "attempt": 1, "value": 0} and st.next == ("node1",)
    out = app.invoke({"steps": [], "attempt": 2}, thread_id="1")
    assert out["steps"] == ["start", "node1", "node2"]


def test_router_exception_reaches_the_caller() -> None:
    """Follows test_pregel.py::test_checkpoint_recovery for a conditional edge's router: its own
    KeyError reaches the caller, marked as a routing failure after the node."""

    def route(s: State) -> str:
        return {"x": "a"}[s.get("steps", ["?"])[-1]]

    g = StateGraph(State).add_node("a", lambda s: {"steps": ["a"]}).add_node("b", lambda s: None)
    g.add_edge(START, "a").add_conditional_edges("a", route, ["a", "b"])
    with pytest.raises(KeyError) as ei:
        g.compile().invoke({})
    f = node_failure(ei.value)
    assert f is not None and (f.node, f.step, f.during) == ("a", 1, "routing")
    assert ei.value.__notes__ == ["routing after node 'a' of graph 'State' failed at step 1"]


def test_router_of_start_exception_reaches_the_caller() -> None:
    """Follows test_pregel.py::test_checkpoint_recovery for a router of START: its own exception
    reaches the caller (it was an InvalidUpdateError wrapping it), marked as routing from START;
    nothing is stored, so the thread has no checkpoint to resume."""

    def route(s: State) -> str:
        raise LookupError("no route")

    g = StateGraph(State).add_node("a", lambda s: None)
    g.add_conditional_edges(START, route, ["a"])
    app = g.compile()
    with pytest.raises(LookupError, match="no route") as ei:
        app.invoke({}, thread_id="t")
    f = node_failure(ei.value)
    assert f is not None and (f.node, f.step, f.during) == ("__start__", 0, "routing")
    assert ei.value.__notes__ == ["routing from START of graph 'State' failed at step 0 (thread 't')"]
    assert app.get_state("t").checkpoint_id is None


def test_our_own_errors_keep_their_types() -> None:
    """Follows test_pregel.py::test_checkpoint_recovery for failures agentgraph_nb itself detects:
    a timeout stays a NodeTimeoutError (a TimeoutError), described by node_failure as well; an
    exception that refuses attributes falls back to a NodeError chained to it."""
    import time

    g = StateGraph(State).add_node("slow", lambda s: time.sleep(0.5), timeout=0.01).add_edge(START, "slow")
    with pytest.raises(NodeTimeoutError) as ei:
        g.compile().invoke({})
    assert isinstance(ei.value, TimeoutError)
    f = node_failure(ei.value)
    assert f is not None and (f.node, f.step, f.attempt) == ("slow", 1, 1)

    class Sealed(Exception):
        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError("sealed")

    def sealed(s: State) -> None:
        raise Sealed("no notes")

    g2 = StateGraph(State).add_node("sealed", sealed).add_edge(START, "sealed")
    with pytest.raises(NodeError, match=r"node 'sealed' failed at step 1 \(attempt 1\): Sealed: no notes") as ne:
        g2.compile().invoke({})
    assert isinstance(ne.value.__cause__, Sealed)
    f = node_failure(ne.value)
    assert f is not None and (f.node, f.step, f.attempt) == ("sealed", 1, 1)


def test_nested_graph_error_names_both_levels() -> None:
    """Follows test_pregel.py::test_checkpoint_recovery through a subgraph: the inner node's
    exception passes through the outer node; node_failure names the outer one (where the caller's
    thread resumes), the notes name both."""

    def inner_boom(s: State) -> None:
        raise ValueError("deep")

    inner = StateGraph(State, name="inner").add_node("boom", inner_boom).add_edge(START, "boom").compile()
    outer = StateGraph(State, name="outer").add_node("call", lambda s: inner.invoke({})).add_edge(START, "call")
    app = outer.compile()
    with pytest.raises(ValueError, match="deep") as ei:
        app.invoke({}, thread_id="t")
    assert node_failure(ei.value) == NodeFailure("call", 1, 1, "outer", "t")
    assert ei.value.__notes__ == [
        "node 'boom' of graph 'inner' failed at step 1 (attempt 1)",
        "node 'call' of graph 'outer' failed at step 1 (attempt 1, thread 't')",
    ]
    assert app.get_state("t").next == ("call",)


def test_failure_survives_rewrapping_and_pickling() -> None:
    """Follows test_pregel.py::test_pending_writes_resume for code that re-wraps or ships the
    error: node_failure finds it through ``raise ... from``; the exception pickles (the failure
    without the node's function, a lambda here)."""
    g = StateGraph(State).add_node("n", lambda s: 1 // 0).add_edge(START, "n")
    app = g.compile()

    class AppError(Exception):
        pass

    with pytest.raises(AppError) as ei:
        try:
            app.invoke({})
        except ZeroDivisionError as err:
            raise AppError("wrapped") from err
    f = node_failure(ei.value)
    assert f is not None and f.node == "n"
    assert node_failure(ValueError("elsewhere")) is None and node_failure(None) is None

    try:
        app.invoke({})
    except ZeroDivisionError as err:
        back = pickle.loads(pickle.dumps(err))
    assert type(back) is ZeroDivisionError and node_failure(back) == NodeFailure("n", 1, 1, "State")


def test_events_and_stream_carry_the_original_exception() -> None:
    """Follows test_pregel.py::test_pending_writes_resume for observers: the node_error event and
    the run_end event carry the node's exception; a stream raises it."""
    seen: list[Any] = []
    g = StateGraph(State).add_node("n", Awhile(LookupError("gone"))).add_edge(START, "n")
    app = g.compile()
    app.listen(lambda e: seen.append(e) if e.kind in ("node_error", "run_end") else None)
    with pytest.raises(LookupError):
        list(app.stream({}))
    err = seen[0].data
    assert type(err) is LookupError and seen[1].data["error"] is err
